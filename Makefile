# The two commands: `make demo` runs the whole service on embedded defaults,
# `make test` passes the tests on a fresh machine (it installs what they need).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck pytest system-deps clean bench

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check callcenter tests bench
	$(BIN)/ruff format --check callcenter tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps
	bash scripts/with-postgres.sh $(BIN)/pytest -q

test: lint typecheck pytest

demo: $(STAMP)
	bash scripts/with-postgres.sh $(BIN)/python -m callcenter demo

bench: $(STAMP)
	bash scripts/with-postgres.sh $(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
