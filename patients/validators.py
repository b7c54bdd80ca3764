"""Rules on a patient's identity that hold however the patient is created or changed: the portal, the API and
the FHIR import all reach them through `Patient.full_clean` or the fields generated from the model."""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils import timezone

# Older than anyone documented (122 years); beyond it, a birth date is a typing error (1852 for 1952).
MAX_AGE_YEARS = 120


def earliest_birth_date(today: datetime.date) -> datetime.date:
    try:
        return today.replace(year=today.year - MAX_AGE_YEARS)
    except ValueError:  # 29 February, and that year was not a leap year (1900)
        return today.replace(year=today.year - MAX_AGE_YEARS, day=28)


def validate_birth_date(value: datetime.date) -> None:
    """Refuse a birth date in the future (a typo such as 2030 for 2003) or more than MAX_AGE_YEARS ago."""
    today = timezone.localdate()
    if value > today:
        raise ValidationError(
            "Birth date %(date)s is in the future; check the year.",
            code="birth_date_in_future",
            params={"date": value.isoformat()},
        )
    if value < earliest_birth_date(today):
        raise ValidationError(
            "Birth date %(date)s is more than %(years)s years ago; check the year.",
            code="birth_date_too_old",
            params={"date": value.isoformat(), "years": MAX_AGE_YEARS},
        )


class InternationalEmailValidator(EmailValidator):
    """Django's e-mail checks, with a local part that may hold letters beyond ASCII (RFC 6531: tomás@example.com).

    Django's own validator accepts internationalised domains but only ASCII before the "@"; patients' addresses
    are what their mail providers gave them, and an EHR's export carries them as written.
    """

    def __call__(self, value: str) -> None:
        local, at, domain = str(value).rpartition("@")
        if at and not local.isascii() and all(c.isascii() or c.isalnum() for c in local):
            local = "".join(c if c.isascii() else "x" for c in local)  # same structure, checked as ASCII
        super().__call__(f"{local}{at}{domain}")


validate_email_address = InternationalEmailValidator()
