"""Load the advice catalog (`advice_data.ADVICE`) into the database; called by data migrations.

A later change to `advice_data.py` reaches an existing database through a new migration that calls
`advice_sync` again: items are updated by code, and items no longer in the data are made inactive (never
deleted: past recommendations point at them).
"""

from __future__ import annotations

from recommendations.advice_data import ADVICE


def advice_sync(apps, schema_editor=None) -> None:
    AdviceItem = apps.get_model("recommendations", "AdviceItem")
    codes = []
    for spec in ADVICE:
        codes.append(spec.code)
        AdviceItem.objects.update_or_create(
            code=spec.code,
            defaults={
                "title": spec.title,
                "patient_text": spec.patient_text,
                "clinician_text": spec.clinician_text,
                "category": spec.category,
                "source": spec.source,
                "active": True,
            },
        )
    AdviceItem.objects.exclude(code__in=codes).update(active=False)
