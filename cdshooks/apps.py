from django.apps import AppConfig


class CdsHooksConfig(AppConfig):
    name = "cdshooks"
    verbose_name = "CDS Hooks (EHR connections)"
    default_auto_field = "django.db.models.BigAutoField"
