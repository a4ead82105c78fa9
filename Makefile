# One-command set-up for a fresh machine (Python 3.11, pip, a C compiler).
#   make demo   creates .venv, installs everything, creates the AiiDA profile in .aiida/ and runs the main job
#   make test   the same set-up, then the test suite
# AiiDA's configuration lives in the checkout (AIIDA_PATH=.aiida), so nothing touches ~/.aiida.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export AIIDA_PATH := $(CURDIR)/.aiida
export OMP_NUM_THREADS ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The AiiDA daemon starts its workers with the `verdi` on PATH: the environment's own comes first.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install profile demo test lint docs clean

install: $(VENV)/.installed

# torch goes first and pinned: a plain `torch` from a dependency would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[tests,docs,dev]'
	touch $@

profile: install
	$(BIN)/aiida-sianode setup

demo: profile
	$(BIN)/aiida-sianode run workflows/si_lixsi_gpaw.yaml

test: install
	$(BIN)/python -m pytest -q -ra tests

lint: install
	$(BIN)/ruff check aiida_sianode tests benchmarks
	$(BIN)/ruff format --check aiida_sianode tests benchmarks

docs: install
	$(BIN)/sphinx-build -W -b html docs/source docs/build/html

clean:
	rm -rf $(VENV) .aiida docs/build
