from django.apps import AppConfig


class LabfeedConfig(AppConfig):
    name = "labfeed"
    verbose_name = "Lab feed (HL7 v2)"
