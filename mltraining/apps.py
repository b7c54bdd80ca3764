from django.apps import AppConfig


class MltrainingConfig(AppConfig):
    name = "mltraining"
