# The README's commands. Each creates .venv and installs the project when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test ui bench lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/synchro demo --data-dir data

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q

ui: $(STAMP)
	$(BIN)/synchro prepare-home --data-dir data >/dev/null
	DAGSTER_HOME=$(CURDIR)/data/dagster_home SYNCHRO_DATA_DIR=$(CURDIR)/data \
		$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .
