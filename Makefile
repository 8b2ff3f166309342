# Two entry points: `make run` (set up, fetch models, index seeds/, start Sanad) and
# `make test` (set up, fetch models, lint, run every test). Both are idempotent.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
DEPS_STAMP := $(VENV)/.deps-installed

.PHONY: run test setup models index lint bench clean-data

run: index
	$(BIN)/sanad chat

test: models lint
	$(BIN)/python -m pytest -q

setup: $(DEPS_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
$(DEPS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,local,milvus]'
	touch $@

models: $(DEPS_STAMP)
	$(BIN)/sanad models fetch

index: models
	$(BIN)/sanad index seeds/

lint: $(DEPS_STAMP)
	$(BIN)/ruff check .

bench: models
	$(BIN)/python bench/retrieval_recall.py
	$(BIN)/python bench/ingest_throughput.py

clean-data:
	rm -rf data
