from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "vedomains_site.observability"
    label = "observability"
    verbose_name = "Operations"
