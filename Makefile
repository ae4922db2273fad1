# parkmatch: `make help` lists the targets. Variables: PYTHON, VENV, TORCH_VERSION, TORCH_INDEX, HOST, PORT,
# PYTEST_ARGS, BENCH_DATA, CLUSTER_DATABASE_URL, CLUSTER_BROKER_URL, CLUSTER_WORKERS (e.g. `make install TORCH_INDEX=https://download.pytorch.org/whl/cpu`).

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
BENCH_DATA ?= ../shared/data/bench
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv install run demo serve cluster test test-all lint bench screenshots

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: $(BIN)/python ## create the virtual environment in .venv

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/matcher encoder build --quiet
	touch $(STAMP)

install: $(STAMP) ## install parkmatch with its dev tools (CPU torch first) and build the default encoder once

demo: install ## load the demo data (the default encoder is built at install); prints an admin API key last
	$(BIN)/matcher demo

serve: install ## serve the API on HOST:PORT (default 127.0.0.1:8000)
	$(BIN)/matcher serve --host $(HOST) --port $(PORT)

run: demo serve ## the demo: load the demo data, then serve it

CLUSTER_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
CLUSTER_BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672//
CLUSTER_WORKERS ?= 2
cluster: install ## 2 API replicas (ports 8001, 8002) and 2 task workers on the local PostgreSQL and RabbitMQ (API only when the broker does not answer); Ctrl-C stops
	@workers=$(CLUSTER_WORKERS); \
	if ! $(BIN)/python -c "from kombu import Connection; Connection('$(CLUSTER_BROKER_URL)', connect_timeout=2).ensure_connection(max_retries=1)" 2>/dev/null; then \
	  echo "no broker answers at $(CLUSTER_BROKER_URL): running the API replicas only (no task workers)"; workers=0; \
	fi; \
	$(BIN)/matcher cluster --replicas 2 --workers $$workers --base-port 8001 \
	  --database-url $(CLUSTER_DATABASE_URL) --broker-url $(CLUSTER_BROKER_URL)

# PostgreSQL tests run when MATCHER_TEST_POSTGRES_URL is set or a server listens on 127.0.0.1:5432
define run_pytest
	@if [ -z "$${MATCHER_TEST_POSTGRES_URL:-}" ] && [ -z "$${MATCHER_SKIP_POSTGRES:-}" ] && \
	   ! $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then \
	  echo "no PostgreSQL on 127.0.0.1:5432: running the SQLite store only"; export MATCHER_SKIP_POSTGRES=1; \
	fi; \
	$(BIN)/python -m pytest $(1) $(PYTEST_ARGS)
endef

test: install ## the fast suite (everything not marked slow)
	$(call run_pytest,-m "not slow")

test-all: install ## every test, the slow ones (model training, benchmark runs) included; what CI runs
	$(call run_pytest,)

lint: install ## ruff: lint and formatting check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install ## nDCG@10 of the match path on the shared benchmark sets, with an encoder that never saw a judged document
	$(BIN)/python -m bench.heldout_encoder --data $(BENCH_DATA)/.. --out data/models/encoder-heldout
	MATCHER_ENCODER=data/models/encoder-heldout $(BIN)/matcher eval $(BENCH_DATA)/csl-need2doc-dev --split dev --json
	MATCHER_ENCODER=data/models/encoder-heldout $(BIN)/matcher eval $(BENCH_DATA)/csl-need2doc-en --split dev --json
	MATCHER_ENCODER=data/models/encoder-heldout $(BIN)/matcher eval $(BENCH_DATA)/csl-kw2doc --split test --json
	MATCHER_ENCODER=data/models/encoder-heldout $(BIN)/matcher eval $(BENCH_DATA)/cranfield --split test --json

screenshots: install ## the browser tests, keeping screenshots of the main pages in docs/screenshots (needs chromium)
	MATCHER_TEST_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest tests/e2e -m slow $(PYTEST_ARGS)
