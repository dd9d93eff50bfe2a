from django.apps import AppConfig


class EdgeConfig(AppConfig):
    name = "edge"
    verbose_name = "Edge projection"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers this app's Celery tasks in every process (web, worker,
        # commands), so `domains.queueing` finds them by name. Inside ready():
        # the tasks import the models, which are not loaded before it.
        from edge import tasks  # noqa: F401
