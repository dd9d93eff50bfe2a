from django.apps import AppConfig


class DomainsConfig(AppConfig):
    name = "domains"
    verbose_name = "Custom domains"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the Celery tasks in every process (web, worker, commands), so
        # `lifecycle.enqueue_after_commit` finds them by name; nothing else imports them.
        # The CDN settings checks register themselves with Django's check framework.
        from domains import cdn_checks, tasks  # noqa: F401
