import os

from django.core.management.base import BaseCommand

from tracker.services.demo import demo_load, demo_users


class Command(BaseCommand):
    help = (
        "Load the demo data: the gazetteer, the real events of the seed articles and generated "
        "events matching the published yearly figures. Deterministic and idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--users",
            action="store_true",
            help="Also create demo accounts admin, moderator and contributor "
            "(password from DEMO_PASSWORD). Never on a public server.",
        )

    def handle(self, *args, **options):
        result = demo_load()
        self.stdout.write(
            f"Demo data: {result['cities']} cities; {result['events_created']} events created "
            f"({result['events_total']} in the demo set)."
        )
        if options["users"]:
            password = os.environ.get("DEMO_PASSWORD", "tracker-demo")
            made = demo_users(password=password)
            if made:
                self.stdout.write(f"Demo accounts created: {', '.join(made)}.")
