from django.apps import AppConfig


class WorkflowConfig(AppConfig):
    name = "workflow"
    verbose_name = "Domain workflow"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers this app's Celery tasks in every process (web, worker,
        # commands), so `domains.queueing` finds them by name. Inside ready():
        # the tasks import the models, which are not loaded before it.
        from workflow import tasks  # noqa: F401
