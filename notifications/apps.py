from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications and webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers this app's Celery tasks in every process (web, worker,
        # commands), so `domains.queueing` finds them by name. Inside ready():
        # the tasks import the models, which are not loaded before it.
        from notifications import tasks  # noqa: F401
