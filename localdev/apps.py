from django.apps import AppConfig


class LocaldevConfig(AppConfig):
    """Development tooling as a Django app, for its `local_dns` management command only.

    settings.py installs it when DEBUG is on or tests run; production neither installs its
    packages (requirements-dev.txt) nor loads it, and the product never imports it.
    """

    name = "localdev"
    verbose_name = "Local development tools"
