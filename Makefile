# The README's two commands: `make demo` and `make test`. Both set up what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup bytecode demo test

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

# Bytecode for the checkout's own modules, as installing a package writes it: where
# PYTHONDONTWRITEBYTECODE is set (CI, the build machine) every process the demo and the
# tests start would otherwise compile them again, and a crawl is three processes
# (bench.compile_checkout, which the crawl bench also calls before its timed runs).
bytecode: setup
	@$(BIN)/python -c 'import sys, bench; sys.exit(not bench.compile_checkout())'

demo: setup bytecode
	$(BIN)/portal-archive demo

# The whole suite on SQLite (tests that need PostgreSQL or Redis start their own
# throwaway servers) and, side by side, the archive tests again on PostgreSQL,
# each spread over every core (one test file per worker, so a file's servers are
# started once): much of either pass waits on servers, daemons and timeouts, so
# together they take little more than the longer one. The PostgreSQL pass prints
# when both are done (its log is also kept in test-output/); either failing fails
# the target. The SQLite pass gets one worker more than there are cores: many of its
# tests mostly wait (daemon slots, timeouts, the live portal's 110 s of events), and
# with a worker a core the pass ended minutes after the PostgreSQL one, cores idle.
XDIST ?= -n auto --dist loadfile
SQLITE_XDIST ?= -n $(shell echo $$(( $$(nproc) + 1 ))) --dist loadfile

test: setup bytecode
	@mkdir -p test-output
	@PORTAL_ARCHIVE_TEST_BACKEND=postgres $(BIN)/python -m pytest -m archive -p no:cacheprovider $(XDIST) \
		> test-output/postgres-pass.log 2>&1 & postgres=$$!; \
	trap 'kill $$postgres 2>/dev/null' INT TERM; \
	$(BIN)/python -m pytest $(SQLITE_XDIST); sqlite=$$?; \
	wait $$postgres; pg=$$?; \
	echo "--- the archive tests again on PostgreSQL (test-output/postgres-pass.log) ---"; \
	cat test-output/postgres-pass.log; \
	echo "SQLite pass exit $$sqlite, PostgreSQL pass exit $$pg"; \
	test $$sqlite -eq 0 -a $$pg -eq 0
