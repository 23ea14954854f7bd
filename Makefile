# openasm: `make demo` and `make test` each build their own virtualenv from pyproject.toml on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_BENES ?= 20000

.PHONY: demo test test-all bench clean venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[spark,test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/openasm demo --out demo-output --benes $(DEMO_BENES)

# `make test` (CI) leaves out the tests marked slow: PySpark repeats of paths another PySpark test covers.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python bench/synth_bench.py --benes 1000000

clean:
	rm -rf $(VENV) demo-output .pytest_cache spark-warehouse
