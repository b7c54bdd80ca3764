"""Settings of the load benchmark's server: the product's own, with bench/urls.py as the URLconf.

Used only by `bench/load.py` (DJANGO_SETTINGS_MODULE=bench.settings), so the bare view it adds is never part
of the product's URLs.
"""

from clinic.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# No worker runs beside the benchmark's server: the tasks its result entries queue wait in a queue of their own,
# which `bench/load.py` empties at the end, never in the queue a worker of the same Redis would take them from.
CELERY_TASK_DEFAULT_QUEUE = "bench-load"
