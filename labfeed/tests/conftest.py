import datetime
import zoneinfo

import pytest
from django.conf import settings

from labfeed.models import LabConnection
from labfeed.tests.factories import AUTHORITY, FACILITY, MRN
from patients.models import Sex
from patients.tests.factories import PatientFactory


@pytest.fixture
def connection(clinic_a):
    return LabConnection.objects.create(
        clinic=clinic_a, name="Central Lab", sending_facility=FACILITY, assigning_authority=AUTHORITY
    )


@pytest.fixture
def patient(clinic_a):
    return PatientFactory(clinic=clinic_a, mrn=MRN, given_name="Jane", family_name="Doe",
                          birth_date=datetime.date(1980, 5, 17), sex=Sex.FEMALE)  # fmt: skip


@pytest.fixture
def taken():
    """The specimen time of the builder's messages (OBR-7 202601150830, in the clinic's time zone)."""
    return datetime.datetime(2026, 1, 15, 8, 30, tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))
