from celery import shared_task


@shared_task(acks_late=True)
def verify_audit_chain() -> None:
    """Nightly: walk the audit hash chain and record the result as an audit row."""
    from clinic.services import audit_verify_and_record

    audit_verify_and_record()
