# Two commands: `make run` (seeded demo clinic on SQLite, no services) and `make test` (lint + whole suite).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format migrate seed worker beat clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

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
	$(PY) -m pytest

# Full stack on locally installed services (see README): run each in its own terminal.
worker: $(STAMP)
	$(VENV)/bin/celery -A clinic worker --loglevel INFO --concurrency 2

beat: $(STAMP)
	$(VENV)/bin/celery -A clinic beat --loglevel INFO

clean:
	rm -rf $(VENV) var/static
