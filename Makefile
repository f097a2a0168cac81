# `make demo` and `make test` work on a fresh Debian/Ubuntu machine with Python 3.11+:
# both create .venv and install everything through `make setup`, idempotently.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Offline machines (CI) read the tokenizer files and the embedding model from ../shared; with
# internet, tiktoken fetches its files and model2vec its default model by themselves.
ifneq ($(wildcard ../shared/tiktoken),)
export TIKTOKEN_CACHE_DIR ?= $(abspath ../shared/tiktoken)
endif
ifneq ($(wildcard ../shared/models/minilm-l6-m2v-256),)
export GATEWAY_EMBEDDING_MODEL ?= $(abspath ../shared/models/minilm-l6-m2v-256)
endif

.PHONY: setup demo test lint format bench gateway clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "Cannot create a virtual environment: on Debian/Ubuntu run 'sudo apt-get install python3-venv'"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

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

gateway: setup
	$(BIN)/finops-gateway

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache out
