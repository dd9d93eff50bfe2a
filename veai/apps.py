from django.apps import AppConfig


class VeaiConfig(AppConfig):
    name = "veai"
    verbose_name = "ve.ai integration"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers this app's Celery tasks in every process (web, worker,
        # commands), so `domains.queueing` finds them by name. Inside ready():
        # the tasks import the models, which are not loaded before it.
        from veai import tasks  # noqa: F401
