# Two entry points: `make run` (set up, fetch models, index seeds/, serve the web chat) and
# `make test` (set up, fetch models, lint, install Chromium if missing, run every test: CI).
# `make test-fast` is the quick loop while developing: set up and lint, then only the tests
# with fake models (`-m "not slow"`: no real model, no Chromium; under 90 s).
# All are idempotent. VENV=path uses another virtualenv (it is set up there if it is not).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
DEPS_STAMP := $(VENV)/.deps-installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast setup models index lint browser bench clean-data

run: index
	$(BIN)/sanad serve --host $(HOST) --port $(PORT)

test: models lint browser
	$(BIN)/python -m pytest -q

test-fast: lint
	$(BIN)/python -m pytest -q -m "not slow"

# The browser tests drive Debian's Chromium through Playwright (never `playwright install`,
# which downloads a browser build). Installed here when missing, as root on Debian.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	      chromium chromium-driver fonts-dejavu-core; \
	  else \
	    echo "the browser tests need /usr/bin/chromium: as root, apt-get install chromium chromium-driver" >&2; \
	    exit 1; \
	  fi; \
	fi

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
