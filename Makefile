# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs
# (Debian packages, the venv), starts the database servers, and runs.
VENV ?= .venv
PY := $(VENV)/bin/python
export EXESQL_DATA ?= $(abspath ../shared/data)

.PHONY: setup dbs-up dbs-down dbs-status demo test test-fast clean

setup:
	@bash scripts/setup.sh

dbs-up: setup
	@bash scripts/dbs.sh up >/dev/null

dbs-down:
	@bash scripts/dbs.sh down

dbs-status:
	@bash scripts/dbs.sh status

demo: dbs-up
	@bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q -p no:cacheprovider --durations=25 $(PYTEST_ARGS)

# Pure logic, readers, the CLI without servers: no database server, no Ray, no model
test-fast: setup
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow" $(PYTEST_ARGS)

clean: dbs-down
	rm -rf .run runs
