# shipml: two commands. `make lab` opens the course; `make test` proves everything works.
# Needs Python 3.11 on PATH (python3.11, or python3 if that is 3.11) and nothing else.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Tests never write to the home folder.
TEST_ENV := JUPYTER_CONFIG_DIR=$(CURDIR)/build/home/jupyter-config \
            JUPYTER_DATA_DIR=$(CURDIR)/build/home/jupyter-data \
            JUPYTER_RUNTIME_DIR=$(CURDIR)/build/home/jupyter-runtime \
            IPYTHONDIR=$(CURDIR)/build/home/ipython \
            MPLCONFIGDIR=$(CURDIR)/build/home/matplotlib \
            MPLBACKEND=Agg \
            SHIPML_ANSWERS_DIR=$(CURDIR)/build/answers \
            PYTHONDONTWRITEBYTECODE=1

.PHONY: install lab test lint labs notebooks unit clean

install: $(STAMP)

# Every install goes through constraints.txt, the one list of pins (see pyproject.toml).
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"shipml needs Python 3.11, $(PYTHON) is {sys.version.split()[0]}"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[course,dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name shipml --display-name "Python (shipml)"
	touch $(STAMP)

lab: install
	$(BIN)/jupyter lab notebooks/

lint: install
	$(BIN)/ruff check .

labs: install
	$(BIN)/shipml labs build

# Notebooks and solutions run top to bottom in a fresh kernel (nbval, lax: no output comparison),
# with the CI sizes from tests/notebook_params.yml injected by papermill.
notebooks: install
	rm -rf build/nbval build/answers
	mkdir -p build/home
	$(BIN)/python tests/prepare_notebooks.py build/nbval
	$(TEST_ENV) $(BIN)/pytest -p no:cacheprovider --nbval-lax --nbval-kernel-name shipml \
	    --nbval-cell-timeout 900 build/nbval

unit: install
	mkdir -p build/home
	$(TEST_ENV) $(BIN)/pytest --durations=15 tests

test: install
	$(BIN)/ruff check .
	$(BIN)/shipml labs build --check
	$(MAKE) --no-print-directory notebooks
	$(MAKE) --no-print-directory unit

clean:
	rm -rf build .pytest_cache .ruff_cache
