from django.apps import AppConfig


class MltrainingConfig(AppConfig):
    name = "mltraining"
    verbose_name = "Model training"
