# volforecast: the two commands are `make run` and `make test`; both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=
# `make soak` writes its results page into the docs; SOAK_ARGS=--help lists the rest.
SOAK_ARGS ?= --markdown docs/results/soak.md
DEMO_PORT ?= 8765
# The bundled sample ends on this NYSE session: predicting as of it is fresh (today is not).
SAMPLE_LAST_SESSION ?= 2018-12-31
# Airflow 3.3 pins older libraries than volforecast: it gets an environment of its own.
AIRFLOW_VERSION ?= 3.3.2
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed-$(AIRFLOW_VERSION)-postgres
AIRFLOW_ENV = AIRFLOW_HOME=$(CURDIR)/var/airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__PARALLELISM=4 \
	AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=2 VOLFORECAST_BIN=$(CURDIR)/$(BIN)/volforecast

.DEFAULT_GOAL := help
.PHONY: help install airflow-install airflow run serve dashboard monitor mlflow test test-fast lint format docs docs-serve bench soak stack-test clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "volforecast needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP) ## Create .venv and install volforecast with its development tools

$(AIRFLOW_STAMP):
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet "apache-airflow[postgres]==$(AIRFLOW_VERSION)"
	@rm -f $(AIRFLOW_VENV)/.installed-*
	@touch $@

airflow-install: $(AIRFLOW_STAMP) ## Create .venv-airflow with Airflow $(AIRFLOW_VERSION)

airflow: $(STAMP) $(AIRFLOW_STAMP) ## Airflow standalone on SQLite with the project's DAGs (UI on :8080)
	@mkdir -p var/airflow
	@echo "Airflow UI: http://127.0.0.1:8080 (user admin; password in var/airflow/simple_auth_manager_passwords.json.generated)"
	PATH=$(CURDIR)/$(AIRFLOW_VENV)/bin:$$PATH $(AIRFLOW_ENV) $(AIRFLOW_VENV)/bin/airflow standalone

run: $(STAMP) ## The main job on the embedded default: ingest the sample, train, register, predict, serve
	$(BIN)/volforecast db upgrade
	$(BIN)/volforecast ingest --sample
	$(BIN)/volforecast quality
	$(BIN)/volforecast tickers
	$(BIN)/volforecast train --all
	$(BIN)/volforecast models list
	$(BIN)/volforecast predict --all --as-of $(SAMPLE_LAST_SESSION)
	@echo "Serving on port $(DEMO_PORT) for one request (make serve keeps it running):"
	@$(BIN)/volforecast serve --port $(DEMO_PORT) & server=$$!; \
	$(BIN)/python -m volforecast.api.client --url http://127.0.0.1:$(DEMO_PORT) --wait 120 \
		--ticker ^GSPC --horizon 5; status=$$?; \
	kill -TERM $$server; wait $$server; exit $$status

serve: $(STAMP) ## The prediction API on port 8000 (docs at /docs; Ctrl-C stops it)
	$(BIN)/volforecast serve

dashboard: $(STAMP) ## The Streamlit dashboard on port 8501 (start the API with `make serve` first)
	$(BIN)/volforecast dashboard

monitor: $(STAMP) ## Judge the production models: accuracy, drift alerts, retraining queue
	$(BIN)/volforecast monitor run --all

mlflow: $(STAMP) ## A real MLflow server on port 5000 over the embedded store (Ctrl-C stops it)
	$(BIN)/volforecast mlflow

test: $(STAMP) $(AIRFLOW_STAMP) ## Every test, on SQLite and PostgreSQL, and the DAGs in real Airflow
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## The tests without the slow ones
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff and mypy (strict)
	$(BIN)/ruff check src tests benchmarks dags docs/*.py
	$(BIN)/ruff format --check src tests benchmarks dags docs/*.py
	$(BIN)/mypy

format: $(STAMP) ## Fix what ruff can fix
	$(BIN)/ruff check --fix src tests benchmarks dags docs/*.py
	$(BIN)/ruff format src tests benchmarks dags docs/*.py

docs: $(STAMP) ## The documentation site, strict and offline, into var/site (open var/site/index.html)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

docs-serve: $(STAMP) ## The documentation site on port 8001, rebuilt on every change
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs serve --dev-addr 127.0.0.1:8001

bench: $(STAMP) ## The ingest benchmark (needs ../shared/data); rewrites docs/results/ingest.md
	$(BIN)/python benchmarks/ingest.py --markdown docs/results/ingest.md

.PHONY: accuracy
accuracy: $(STAMP) ## Every model's accuracy (over an hour; needs ../shared/data); rewrites docs/results/accuracy.md and the README's table
	$(BIN)/python benchmarks/accuracy.py --markdown docs/results/accuracy.md --readme README.md

soak: $(STAMP) $(AIRFLOW_STAMP) ## A month under Airflow's scheduler with faults, then checks (SOAK_ARGS=--help)
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

stack-test: $(STAMP) ## deploy/docker-compose.yml on a real Docker engine, lifecycle end to end (root, dockerd)
	deploy/stack-test/run.sh

clean: ## Remove the environment and the embedded state under ./var
	rm -rf $(VENV) $(AIRFLOW_VENV) var .pytest_cache .mypy_cache .ruff_cache
