"""Place imported events that have no city yet, after the gazetteer changed:

    python manage.py relink_places

By name first (the place the file gave), then as the nearest city within 30 km of the
event's point. Each change is an edit in the event's history ("relink_places").
"""

from __future__ import annotations

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Give imported events without a city their gazetteer city (by name, else by point)."

    def handle(self, *args, **options):
        from imports.relink import relink_places

        found = relink_places()
        self.stdout.write(
            f"Placed {found['by_name']} events by name and {found['by_point']} by their point; "
            f"{found['unplaced']} still without a city."
        )
        for name, count in found["unplaced_names"][:50]:
            self.stdout.write(f"  not in the gazetteer: {name} ({count})")
