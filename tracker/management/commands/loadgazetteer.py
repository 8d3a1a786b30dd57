from django.core.management.base import BaseCommand

from tracker.services.gazetteer import gazetteer_load


class Command(BaseCommand):
    help = "Load or refresh the Central Asian gazetteer (offline GeoNames data). Idempotent."

    def handle(self, *args, **options):
        result = gazetteer_load()
        self.stdout.write(
            f"Gazetteer: {result['created']} cities created, {result['updated']} refreshed, "
            f"{result['names_added']} names added."
        )
