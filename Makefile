# shipml: two commands. `make lab` opens the course; `make test` proves everything works.
# Needs Python 3.11 on PATH (python3.11, or python3 if that is 3.11) and nothing else.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := $(VENV)/share/jupyter/kernels/shipml/kernel.json

# Tests never write to the home folder.
TEST_ENV := JUPYTER_CONFIG_DIR=$(CURDIR)/build/home/jupyter-config \
            JUPYTER_DATA_DIR=$(CURDIR)/build/home/jupyter-data \
            JUPYTER_RUNTIME_DIR=$(CURDIR)/build/home/jupyter-runtime \
            IPYTHONDIR=$(CURDIR)/build/home/ipython \
            MPLCONFIGDIR=$(CURDIR)/build/home/matplotlib \
            MPLBACKEND=Agg \
            SHIPML_ANSWERS_DIR=$(CURDIR)/build/answers \
            PYTHONDONTWRITEBYTECODE=1

# `make lab`: JupyterLab at the repository root (notebooks/, labs/, solutions/ in its file browser), with the
# course's config from jupyter/ and Jupyter's own files under build/ (shipml.kernel.server_env).
# As root (containers, WSL, cloud shells) it adds --allow-root; LAB_FLAGS passes more, e.g.
#   make lab LAB_FLAGS="--no-browser --port 8890"
LAB_FLAGS ?=
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_ENV := JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter \
           JUPYTER_CONFIG_DIR=$(CURDIR)/build/jupyter/config \
           JUPYTER_DATA_DIR=$(CURDIR)/build/jupyter/data \
           JUPYTER_RUNTIME_DIR=$(CURDIR)/build/jupyter/runtime \
           JUPYTER_PLATFORM_DIRS=1

.PHONY: install lab test lint labs notebooks browser unit clean git-filters base-image

install: $(STAMP) $(KERNEL) git-filters

# Notebook outputs never reach a commit: git's clean filter strips them (nbstripout, .gitattributes) while
# your working copy keeps them. Relative to the work tree, so every clone/worktree uses its own .venv (a
# checkout without one passes notebooks through unchanged); --keep-id: labs and the grader use cell ids.
NBSTRIP_CLEAN := nbs() { if [ -x .venv/bin/nbstripout ]; then .venv/bin/nbstripout --keep-id "$$@"; else cat "$$@"; fi; }; nbs
NBSTRIP_DIFF := nbs() { if [ -x .venv/bin/nbstripout ]; then .venv/bin/nbstripout --keep-id -t "$$@"; else cat "$$@"; fi; }; nbs
git-filters:
	@if git rev-parse --git-dir >/dev/null 2>&1 && [ "$$(git config filter.nbstripout.clean)" != '$(NBSTRIP_CLEAN)' ]; then \
	    git config filter.nbstripout.clean '$(NBSTRIP_CLEAN)' && \
	    git config filter.nbstripout.smudge cat && \
	    git config diff.ipynb.textconv '$(NBSTRIP_DIFF)' && \
	    echo "git: nbstripout filter installed (outputs stay in your notebooks, never in commits)"; fi

# Every install goes through constraints.txt, the one list of pins (see pyproject.toml).
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"shipml needs Python 3.11, $(PYTHON) is {sys.version.split()[0]}"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[course,dev]"
	touch $(STAMP)

# The `shipml` kernel: the venv's bin/ on PATH, caches in build/, a failing `!command` fails its cell.
$(KERNEL): $(STAMP) $(wildcard shared/shipml/kernel.py)
	$(BIN)/python -m shipml.kernel $(CURDIR)

lab: install
	@mkdir -p build/jupyter
	$(LAB_ENV) $(BIN)/jupyter lab $(ALLOW_ROOT) $(LAB_FLAGS)

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

# UNIT_ARGS passes more to pytest, e.g. make unit UNIT_ARGS="-k serving -x"
UNIT_ARGS ?=
unit: install
	mkdir -p build/home
	$(TEST_ENV) $(BIN)/pytest --durations=25 $(UNIT_ARGS) tests

# Every notebook and lab run from JupyterLab's Run menu in headless Chromium (tests/browser).
browser: install
	mkdir -p build/home
	$(TEST_ENV) $(BIN)/pytest --durations=25 tests/browser

# The notebooks under nbval and the browser run are independent (each its own kernels, ports and scratch
# folders), so they run side by side on two cores; -Otarget keeps each one's output in one piece.
test: install
	$(BIN)/ruff check .
	$(BIN)/shipml labs build --check
	$(MAKE) --no-print-directory -j2 -Otarget notebooks browser
	$(MAKE) --no-print-directory unit UNIT_ARGS="--ignore=tests/browser"

clean:
	rm -rf build .pytest_cache .ruff_cache

# The local python:3.11-slim the images build FROM, made without any registry (Debian's debootstrap; root):
# what a fresh machine or the tag workflow (.github/workflows/model-pipeline.yml) runs before `shipml pipeline build`.
base-image: install
	command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q --no-install-recommends debootstrap; }
	$(BIN)/shipml docker base-image
