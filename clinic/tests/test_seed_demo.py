import re

from django.contrib.auth import authenticate
from django.core.management import call_command

from clinic.models import Clinic, Role, User


def _credentials(output: str) -> dict[str, str]:
    return dict(re.findall(r"^\s+(admin|doctor|staff|patient)\s+(\S+)$", output, flags=re.MULTILINE))


def test_the_demo_seed_creates_one_user_per_role_with_printed_passwords(db, capsys, rf):
    call_command("seed_demo")

    credentials = _credentials(capsys.readouterr().out)
    clinic = Clinic.objects.get(slug="demo")
    assert set(credentials) == {"admin", "doctor", "staff", "patient"}
    for username, password in credentials.items():
        user = authenticate(rf.post("/accounts/login/"), username=username, password=password)
        assert user is not None
        assert user.clinic == clinic
    assert {user.role for user in User.objects.filter(clinic=clinic)} == set(Role.values)
    assert clinic.is_demo  # the one clinic where a model of the synthetic cohort may be active


def test_seeding_again_keeps_the_passwords_and_says_how_to_reset_them(db, capsys):
    call_command("seed_demo")
    hashes = dict(User.objects.values_list("username", "password"))
    capsys.readouterr()

    call_command("seed_demo")

    assert "--reset-passwords" in capsys.readouterr().out
    assert dict(User.objects.values_list("username", "password")) == hashes


def test_reset_passwords_prints_new_working_ones(db, capsys, rf):
    call_command("seed_demo")
    old = _credentials(capsys.readouterr().out)

    call_command("seed_demo", reset_passwords=True)

    new = _credentials(capsys.readouterr().out)
    assert new["doctor"] != old["doctor"]
    assert authenticate(rf.post("/accounts/login/"), username="doctor", password=new["doctor"]) is not None
