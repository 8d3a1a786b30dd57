from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Protest tracker"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from tracker import (
            signals,  # noqa: F401 - connects the receivers
            tasks,  # noqa: F401 - registered for tracker.dispatch (by name)
        )
