"""Authentication backends.

`AddressThrottleBackend` comes first and refuses an address that has failed too often lately, before any password
is hashed; `ClinicModelBackend` is Django's ModelBackend with the signed-in user's clinic fetched in the same query.
"""

import functools
from dataclasses import dataclass

from axes.helpers import get_client_ip_address, get_cool_off
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field
from django.utils import timezone

from clinic import selectors
from clinic.models import Clinic, User


class AddressThrottleBackend:
    """Refuse every sign-in from an address with LOGIN_ADDRESS_FAILURE_LIMIT failures within the cool-off time.

    django-axes locks a username at an address after a few failures; an attacker who tries one password on each of
    many usernames (spraying) never trips it, and each try costs an Argon2 hash. This counts the address's failures
    over all usernames. Raising PermissionDenied stops Django's `authenticate` before the backends that hash;
    `axes_locked_out` makes axes' middleware answer 429 (clinic.views.locked_out) instead of "wrong password".
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:  # a management command or a test calling authenticate() directly
            return None
        address = get_client_ip_address(request)
        if not address:
            return None
        since = timezone.now() - get_cool_off(request)
        if selectors.login_failures_from(ip_address=address, since=since) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            request.axes_locked_out = True
            raise PermissionDenied("Too many failed sign-ins from this address.")
        return None

    # No get_user: this backend never signs anyone in, and Django's test client signs in with the first backend
    # that has one.


class ClinicModelBackend(ModelBackend):
    """Every page's header names the user's clinic, and every scoped query starts from it; fetching it with the
    user saves a query on every request."""

    def get_user(self, user_id):
        user = user_with_clinic(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


@dataclass(frozen=True)
class _UserQuery:
    sql: str
    user_fields: tuple[Field, ...]
    clinic_fields: tuple[Field, ...]


_SENTINEL_PK = 0


@functools.cache
def _user_query(alias: str, vendor: str) -> _UserQuery:
    """`User.objects.select_related("clinic").get(pk=...)`, compiled by Django's ORM once: every signed-in request
    loads its user, and building the query (not running it) was a fifth of the audited floor's CPU time."""
    query = User._default_manager.db_manager(alias).select_related("clinic").filter(pk=_SENTINEL_PK).query
    compiler = query.get_compiler(alias)
    sql, params = compiler.as_sql()
    if params != (_SENTINEL_PK,):  # the pk is the query's one parameter, or the compiled text cannot be reused
        raise AssertionError(f"Unexpected parameters of the user query: {params!r}")
    columns = [column for column, _sql, _alias in compiler.select]
    user_fields = tuple(columns[i].target for i in compiler.klass_info["select_fields"])
    (related,) = compiler.klass_info["related_klass_infos"]
    clinic_fields = tuple(columns[i].target for i in related["select_fields"])
    expected = (tuple(User._meta.concrete_fields), tuple(Clinic._meta.concrete_fields))
    if (user_fields, clinic_fields) != expected:
        raise AssertionError("The user query does not select the user's and the clinic's fields in model order.")
    return _UserQuery(sql, user_fields, clinic_fields)


def _values(fields: tuple[Field, ...], row: tuple, connection) -> list:
    """The row's values as the ORM would give them (a backend's converters: SQLite's datetimes, booleans)."""
    values = []
    for field, value in zip(fields, row, strict=True):
        for convert in connection.ops.get_db_converters(field.cached_col) + field.get_db_converters(connection):
            value = convert(value, field.cached_col, connection)
        values.append(value)
    return values


def user_with_clinic(user_id, *, using: str = DEFAULT_DB_ALIAS) -> User | None:
    """The user with this id and their clinic (cached on the user, as `select_related` does), or None."""
    connection = connections[using]
    compiled = _user_query(using, connection.vendor)
    pk = User._meta.pk.get_db_prep_value(User._meta.pk.to_python(user_id), connection)
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, (pk,))
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(compiled.user_fields)
    user = User.from_db(
        using, [f.attname for f in compiled.user_fields], _values(compiled.user_fields, row[:split], connection)
    )
    clinic = None
    if user.clinic_id is not None:
        clinic_row = _values(compiled.clinic_fields, row[split:], connection)
        clinic = Clinic.from_db(using, [f.attname for f in compiled.clinic_fields], clinic_row)
    User.clinic.field.set_cached_value(user, clinic)
    return user
