# The two set-up commands of the README. Each installs what it needs first (tools/setup_env.sh is
# idempotent: seconds on a ready machine).
PYTHON := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast

setup:
	bash tools/setup_env.sh

demo: setup
	$(PYTHON) tools/misc/demo.py

test: setup
	$(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: setup
	$(PYTHON) -m pytest -q -m "not slow" $(PYTEST_ARGS)
