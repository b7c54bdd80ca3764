import datetime

import factory

from clinic.tests.factories import ClinicFactory
from patients.models import Condition, Patient, Sex


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    mrn = factory.Sequence(lambda n: f"MRN{n:06d}")
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    birth_date = datetime.date(1980, 5, 17)
    sex = Sex.FEMALE


class ConditionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Condition

    patient = factory.SubFactory(PatientFactory)
    code = "E11.9"
    display = "Type 2 diabetes mellitus without complications"
