from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "imports"
    verbose_name = "Imports and exports"

    def ready(self):
        # Registers the job tasks in every process, so that imports.jobs can queue them
        # by name (it does not import the tasks module, which imports it).
        from imports import tasks  # noqa: F401
