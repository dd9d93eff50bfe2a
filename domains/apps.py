from django.apps import AppConfig


class DomainsConfig(AppConfig):
    name = "domains"
    verbose_name = "Custom domains"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the CDN settings checks (issue 13) with Django's check framework.
        from domains import cdn_checks  # noqa: F401
