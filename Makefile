# nq-ray — the two commands are `make up` and `make test`.
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
SHARED  ?= ../shared
STAMP   := $(VENV)/.installed

.PHONY: setup up test test-fast test-gpu test-network bench bench-quick lint services clean

$(STAMP): pyproject.toml
	@py=$$(command -v $(PY) || command -v python3); test -x $(BIN)/python || $$py -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[dev,bench]'
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install nq-ray with the dev and bench extras (bench: reference engines
                 ## for the parity tests and benchmarks only; never imported by nq_ray)

up: setup  ## set up if needed, then run the main job on the embedded default (SQLite, in-process cache)
	$(BIN)/nq-ray up

services:  ## make sure Redis and PostgreSQL are up on 127.0.0.1
	@if [ -x $(SHARED)/services.sh ] || [ -f $(SHARED)/services.sh ]; then bash $(SHARED)/services.sh; \
	else echo "services: $(SHARED)/services.sh not found; expecting Redis and PostgreSQL already up"; fi

test: setup services  ## the whole suite (all but the gpu and network markers)
	$(BIN)/pytest -q -m "not gpu and not network" --durations=15

test-fast: setup  ## inner loop: skip slow tests
	$(BIN)/pytest -q -x -m "not gpu and not network and not slow"

test-gpu: setup  ## GPU-only tests (needs an NVIDIA GPU and `pip install -e .[gpu]`)
	$(BIN)/pytest -q -m gpu

test-network: setup  ## live smoke tests against Yahoo etc. (needs the internet)
	$(BIN)/pytest -q -m network

bench: setup  ## benchmarks, each printing ratios against its reference measured in the same run
	$(BIN)/python -m benchmarks

bench-quick: setup
	$(BIN)/python -m benchmarks --quick

lint: setup
	$(BIN)/ruff check nq_ray tests benchmarks
	$(BIN)/ruff format --check nq_ray tests benchmarks
	$(BIN)/mypy nq_ray/domain nq_ray/market nq_ray/data nq_ray/config.py nq_ray/errors.py nq_ray/risk \
		nq_ray/backtest nq_ray/analysis nq_ray/llm nq_ray/agents nq_ray/testing

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .nq_data
