# The two commands: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-stamp
TEST_WORKERS ?= 2

.PHONY: install demo test lint format bench-sync bench-load bench-soak clean

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c requirements.lock -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) scripts/demo.py

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench-sync: install
	$(PY) benchmarks/sync_bench.py

bench-load: install
	$(PIP) install -q -c requirements.lock -e '.[test,bench]'
	$(PY) benchmarks/load_bench.py $(BENCH_ARGS)

bench-soak: install
	$(PIP) install -q -c requirements.lock -e '.[test,bench]'
	$(PY) benchmarks/soak_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles
