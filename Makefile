# Every target creates .venv and installs what it needs on first use.
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: quickstart simulate test lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/rldispatch quickstart

simulate: $(STAMP)
	$(BIN)/rldispatch simulate --preset geneva --episodes 20

# Tests run in parallel, one process per core; a module's tests stay on one process so its
# fixtures are built once. Modules go out in collection order, where tests/conftest.py puts
# the modules with slow tests first, so the short ones fill the end. Bytecode is written even
# where the shell says not to: the tests start dozens of rldispatch processes, each of which
# would otherwise compile the package from source again.
test: $(STAMP) lint
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -q -n auto --dist loadscope --no-loadscope-reorder --durations=10

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: $(STAMP)
	$(BIN)/python bench/env_speed.py
	$(BIN)/python bench/train_speed.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
