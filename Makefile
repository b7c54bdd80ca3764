# Two commands: `make run` (seeded demo clinic on SQLite, no services) and `make test` (lint + whole suite).
# `make bench` (not part of `make test`) runs the benchmarks on PostgreSQL + Redis and writes bench/RESULTS.md.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format migrate seed worker worker-interactive worker-default worker-batch worker-training beat hl7 \
	bench clean lock

# The .txt files are locks compiled from the .in files (`make lock`); pip refuses any file whose hash is not in them.
$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

# Regenerates requirements*.txt from requirements*.in with every file's hash, for Linux and Python 3.11.2 or newer:
# Debian bookworm's /usr/bin/python3.11, an optimised build like the image's, which the benchmarks are also run on
# (bench/README.md), as well as this machine's pyenv 3.11.7 and the image's (before 3.11.3, redis needs async-timeout).
# Pins already in a .txt are kept unless its .in asks otherwise; LOCK_FLAGS="--upgrade-package NAME" moves one.
LOCK := $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11.2 --python-platform linux \
	--custom-compile-command "make lock" $(LOCK_FLAGS)
# Only uv is needed, not an install of the current locks (which may be mid-merge).
lock: | $(VENV)/bin/uv
	$(LOCK) requirements.in -o requirements.txt
	$(LOCK) requirements-dev.in -o requirements-dev.txt
	$(LOCK) requirements-bench.in -o requirements-bench.txt

$(VENV)/bin/uv:
	$(MAKE) $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo --patients 2000
	$(PY) manage.py train_model --clinic demo --sync --unless-active --candidates dummy,logistic_regression,random_forest,hist_gradient_boosting,lightgbm
	$(PY) manage.py predict_all --clinic demo
	$(PY) manage.py seed_demo_reviews --clinic demo --patients 300

run: seed
	@echo ""
	@echo "Clinic platform: http://127.0.0.1:8000/  (Ctrl-C to stop)"
	@echo ""
	$(PY) manage.py runserver 127.0.0.1:8000

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest -n 2 --dist worksteal

# Full stack on locally installed services (see README): run each in its own terminal.
# Queues by kind of work (CELERY_TASK_ROUTES): `worker` takes every queue on one box; on several, one worker per
# kind, so a training run or a nightly batch never holds up what a clinician waits for.
CELERY := $(VENV)/bin/celery -A clinic worker --loglevel INFO
worker: $(STAMP)
	$(CELERY) --queues interactive,default,batch,training --concurrency 2

worker-interactive: $(STAMP)
	$(CELERY) --queues interactive --concurrency 2 --hostname interactive@%h

worker-default: $(STAMP)
	$(CELERY) --queues default --concurrency 1 --hostname default@%h

worker-batch: $(STAMP)
	$(CELERY) --queues batch --concurrency 2 --hostname batch@%h

worker-training: $(STAMP)
	$(CELERY) --queues training --concurrency 1 --hostname training@%h

beat: $(STAMP)
	$(VENV)/bin/celery -A clinic beat --loglevel INFO

# The HL7 v2 lab interface (README, "Connecting a clinic's lab"): an MLLP listener, one log line per message.
HL7_HOST ?= 127.0.0.1
HL7_PORT ?= 2575
hl7: $(STAMP)
	$(PY) manage.py hl7_listen --host $(HL7_HOST) --port $(HL7_PORT)

# Benchmarks (bench/README.md). BENCH_QUICK=1: a smoke run of every script, small sizes, one run each; its rough
# figures overwrite bench/RESULTS.md too. Databases clinic_bench, clinic_bench_load and clinic_bench_network (dropped
# and created again by its script) are created on BENCH_PG.
BENCH_PG ?= postgres://postgres@127.0.0.1:5432
BENCH_REDIS ?= redis://127.0.0.1:6379/0
BENCH_STAMP := $(VENV)/.installed-bench
ifeq ($(BENCH_QUICK),1)
BENCH_RUNS ?= 1
BENCH_SEED_PATIENTS ?= 2000
BENCH_TRAIN_PATIENTS ?= 2000
BENCH_BATCH_PATIENTS ?= 1000
BENCH_LOAD_SECONDS ?= 5
BENCH_LOAD_CLINICIANS ?= 100,300
BENCH_LOAD_STEP_SECONDS ?= 10
BENCH_HL7_MESSAGES ?= 50
BENCH_NETWORK_CLINICS ?= 3 30 30
BENCH_NETWORK_PATIENTS ?= 200 20 40
else
BENCH_RUNS ?= 3
BENCH_SEED_PATIENTS ?= 10000 100000
BENCH_TRAIN_PATIENTS ?= 10000
BENCH_BATCH_PATIENTS ?= 1000 10000 100000
BENCH_LOAD_SECONDS ?= 30
BENCH_LOAD_CLINICIANS ?= 300,600,1000,1500
BENCH_LOAD_STEP_SECONDS ?= 60
BENCH_HL7_MESSAGES ?= 2000
BENCH_NETWORK_CLINICS ?= 4 40 100 100
BENCH_NETWORK_PATIENTS ?= 1000 100 40 80
endif

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt \
		-r requirements-dev.txt -r requirements-bench.txt
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@$(PY) -c "import psycopg; psycopg.connect('$(BENCH_PG)/postgres', connect_timeout=3).close()" 2>/dev/null \
		|| { echo "make bench: no PostgreSQL at $(BENCH_PG) (start it, or set BENCH_PG=postgres://user@host:port)."; exit 1; }
	@$(PY) -c "import redis; redis.Redis.from_url('$(BENCH_REDIS)', socket_connect_timeout=3).ping()" 2>/dev/null \
		|| { echo "make bench: no Redis at $(BENCH_REDIS) (start it, or set BENCH_REDIS=redis://host:port/db)."; exit 1; }
	DATABASE_URL=$(BENCH_PG)/clinic_bench $(PY) bench/seed_demo.py --patients $(BENCH_SEED_PATIENTS) --runs $(BENCH_RUNS)
	$(PY) bench/train_models.py --patients $(BENCH_TRAIN_PATIENTS)
	DATABASE_URL=$(BENCH_PG)/clinic_bench REDIS_URL=$(BENCH_REDIS) MODEL_DIR=$(CURDIR)/var/bench-models \
		$(PY) bench/batch_predict.py --patients $(BENCH_BATCH_PATIENTS) --runs $(BENCH_RUNS)
	DATABASE_URL=$(BENCH_PG)/clinic_bench REDIS_URL=$(BENCH_REDIS) MODEL_DIR=$(CURDIR)/var/bench-models \
		$(PY) bench/pages.py --patients $(lastword $(BENCH_BATCH_PATIENTS))
	DATABASE_URL=$(BENCH_PG)/clinic_bench_load REDIS_URL=$(BENCH_REDIS) \
		$(PY) bench/load.py --duration $(BENCH_LOAD_SECONDS) --runs $(BENCH_RUNS) \
		--think 5,15 --users $(BENCH_LOAD_CLINICIANS) --step-duration $(BENCH_LOAD_STEP_SECONDS)
	DATABASE_URL=$(BENCH_PG)/clinic_bench REDIS_URL=$(BENCH_REDIS) \
		$(PY) bench/hl7_feed.py --messages $(BENCH_HL7_MESSAGES) --runs $(BENCH_RUNS)
	DATABASE_URL=$(BENCH_PG)/clinic_bench_network MODEL_DIR=$(CURDIR)/var/bench-network-models \
		$(PY) bench/clinic_network.py --clinics $(BENCH_NETWORK_CLINICS) --patients $(BENCH_NETWORK_PATIENTS)
	$(PY) bench/real_tables.py
	$(PY) manage.py evaluate_ranking --simulate --write-results
	$(PY) bench/page_weight.py
	@echo "Written: bench/RESULTS.md"

clean:
	rm -rf $(VENV) var/static
