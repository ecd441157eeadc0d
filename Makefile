VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DOCS_PORT ?= 8001
CONSOLE_PORT ?= 5173

.PHONY: install run console test lint format bench fuzz docs docs-build clean

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

# The console's dev server (`make console`) may call this service from its origin.
run: export ANTRING_CORS_ORIGINS ?= ["http://$(HOST):$(CONSOLE_PORT)"]
run: install
	$(BIN)/antring migrate
	$(BIN)/antring serve --host $(HOST) --port $(PORT)

# The operations console (console/) in Vite's dev server, against `make run`'s service; it
# offers the development sign-in with the admin key `make run` printed (see docs/console.md).
console/node_modules/.installed: console/package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --prefix console
	touch $@

console: console/node_modules/.installed
	cd console && VITE_API_URL=http://$(HOST):$(PORT) node_modules/.bin/vite --host $(HOST) --port $(CONSOLE_PORT)

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
