"""Static files as production serves them (collected, WhiteNoise): compressed for a browser that accepts gzip."""

import gzip
import json

import pytest
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client, override_settings

from clinic.tests.test_settings import PRODUCTION_ENV, _manage


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """The static files collected once with production's own storage settings (read in a production process)."""
    code = "import json; from django.conf import settings; print(json.dumps(settings.STORAGES))"
    shown = _manage("shell", "-c", code, **PRODUCTION_ENV)
    assert shown.returncode == 0, shown.stderr
    storages = json.loads(shown.stdout.strip().splitlines()[-1])
    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root, STORAGES=storages, DEBUG=False):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


@pytest.mark.parametrize(
    "name", ["plotly/plotly.min.js", "bootstrap/css/bootstrap.min.css", "bootstrap/js/bootstrap.bundle.min.js"]
)
def test_a_static_file_is_sent_gzipped_to_a_browser_that_accepts_it_and_plain_to_one_that_does_not(collected, name):
    url = static(name)
    original = (collected / url.removeprefix("/static/")).read_bytes()
    client = Client()  # a new handler: WhiteNoise indexes the collected files as it starts

    packed = client.get(url, headers={"accept-encoding": "gzip, deflate, br"})
    plain = client.get(url)

    body = b"".join(packed.streaming_content)
    assert packed.status_code == 200
    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    assert gzip.decompress(body) == original
    assert len(body) < len(original) / 2
    assert "immutable" in packed["Cache-Control"]  # a hashed name: the browser never asks for it again
    assert not plain.has_header("Content-Encoding")
    assert b"".join(plain.streaming_content) == original
