# The two set-up commands of the README. Each installs what it needs first (tools/setup_env.sh is
# idempotent: seconds on a ready machine).
PYTHON := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast

setup:
	bash tools/setup_env.sh

demo: setup
	$(PYTHON) tools/misc/demo.py

# one pytest-xdist worker per core (each on one intra-op thread; tests/conftest.py), whole files per
# worker; then the tests marked `serial` (the learning claims at two threads), which need both cores.
# pytest's exit status 5 (no test selected, e.g. a PYTEST_ARGS path without serial tests) passes.
TEST_WORKERS ?= 2
test: setup
	$(PYTHON) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile -m "not serial" \
	    $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(PYTHON) -m pytest -q -p no:cacheprovider -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-fast: setup
	$(PYTHON) -m pytest -q -m "not slow" $(PYTEST_ARGS)
