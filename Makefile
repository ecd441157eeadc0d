VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DOCS_PORT ?= 8001

.PHONY: install run test lint format bench fuzz docs docs-build clean

$(BIN)/.installed: pyproject.toml requirements.lock requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# The error messages' catalogues, compiled from their .po source (which git keeps).
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard app/errors/locales/*/LC_MESSAGES/messages.po))

%.mo: %.po | $(BIN)/.installed
	$(BIN)/pybabel compile --statistics -i $< -o $@

install: $(BIN)/.installed $(CATALOGUES)

run: install
	$(BIN)/antring migrate
	$(BIN)/antring serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# make fuzz FUZZ_ARGS="--max-examples 200": see tests/fuzz/run.py.
fuzz: install
	$(BIN)/python -m tests.fuzz.run $(FUZZ_ARGS)

bench: install
	$(BIN)/python -m bench.run

docs: install
	$(BIN)/mkdocs serve --dev-addr $(HOST):$(DOCS_PORT)

# --strict: a broken link, anchor or nav entry fails the build (not with --quiet, which hides
# the warnings that --strict counts).
docs-build: install
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) site antring.db antring.db-wal antring.db-shm
