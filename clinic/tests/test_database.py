"""PostgreSQL runs queries with any number of parameters: the product sends tens of thousands in one statement.

A batch, an import or the demo seeding passes lists of patient ids and rows far longer than the 65,535 parameters
PostgreSQL accepts when the server binds them (Django's `server_side_binding` option). Client-side binding, Django's
default, has no such limit; turning the option on (it would let psycopg prepare statements, bench/README.md) first
needs every such statement bounded.
"""

import pytest
from django.db import connection

from patients.models import Patient

MORE_THAN_THE_SERVER_BINDS = 70_000


@pytest.mark.postgres
def test_a_query_with_more_parameters_than_the_server_could_bind_runs(clinic_a):
    ids = list(range(1, MORE_THAN_THE_SERVER_BINDS + 1))

    assert connection.vendor == "postgresql"
    assert Patient.objects.filter(clinic=clinic_a, pk__in=ids).count() == 0
