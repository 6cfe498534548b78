# The README's two commands: `make demo` and `make test`. Both set up what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: setup
	$(BIN)/portal-archive demo

# The whole suite on SQLite (tests that need PostgreSQL or Redis start their own
# throwaway servers), then the archive tests again on PostgreSQL.
test: setup
	$(BIN)/python -m pytest
	PORTAL_ARCHIVE_TEST_BACKEND=postgres $(BIN)/python -m pytest -m archive
