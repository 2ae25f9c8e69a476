# volforecast: the two commands are `make run` and `make test`; both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=
DEMO_PORT ?= 8765

.DEFAULT_GOAL := help
.PHONY: help install run serve mlflow test test-fast lint format bench clean

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

run: $(STAMP) ## The main job on the embedded default: ingest the sample, train, register, predict, serve
	$(BIN)/volforecast db upgrade
	$(BIN)/volforecast ingest --sample
	$(BIN)/volforecast quality
	$(BIN)/volforecast tickers
	$(BIN)/volforecast train --all --models garch,lstm --lstm-batch-size 256 --lstm-stride 5 --lstm-epochs 20
	$(BIN)/volforecast models list
	$(BIN)/volforecast predict --all
	@echo "Serving on port $(DEMO_PORT) for one request (make serve keeps it running):"
	@$(BIN)/volforecast serve --port $(DEMO_PORT) & server=$$!; \
	$(BIN)/python -m volforecast.api.client --url http://127.0.0.1:$(DEMO_PORT) --wait 120 \
		--ticker ^GSPC --model-type GARCH --horizon 5; status=$$?; \
	kill -TERM $$server; wait $$server; exit $$status

serve: $(STAMP) ## The prediction API on port 8000 (docs at /docs; Ctrl-C stops it)
	$(BIN)/volforecast serve

mlflow: $(STAMP) ## A real MLflow server on port 5000 over the embedded store (Ctrl-C stops it)
	$(BIN)/volforecast mlflow

test: $(STAMP) ## Every test, on SQLite and on PostgreSQL (started by the tests when installed)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## The tests without the slow ones
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff and mypy (strict)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP) ## Fix what ruff can fix
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: $(STAMP) ## Benchmarks (they need ../shared/data)
	$(BIN)/python benchmarks/ingest.py

clean: ## Remove the environment and the embedded state under ./var
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
