"""Settings of the load benchmark's server: the product's own, with bench/urls.py as the URLconf.

Used only by `bench/load.py` (DJANGO_SETTINGS_MODULE=bench.settings), so the bare view it adds is never part
of the product's URLs.
"""

from clinic.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
