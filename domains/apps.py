from django.apps import AppConfig

from domains.system_checks import system_checks_register


class DomainsConfig(AppConfig):
    name = "domains"
    verbose_name = "Custom domains"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        system_checks_register()
