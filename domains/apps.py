from django.apps import AppConfig

from domains.system_checks import system_checks_register


class DomainsConfig(AppConfig):
    name = "domains"
    verbose_name = "Custom domains"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        system_checks_register()
        # Registers the Celery tasks in every process (web, worker, commands), so
        # `lifecycle.enqueue_after_commit` finds them by name; nothing else imports them.
        # Inside ready(): the tasks import the models, which are not loaded before it.
        from domains import tasks  # noqa: F401
