# One-command set-up for a fresh machine (Python 3.11 with venv and pip, make, gcc and g++; nothing else).
#   make demo   creates .venv, installs everything, creates the AiiDA profile in .aiida/ and runs the main job
#   make test   the same set-up, then the test suite
# AiiDA's configuration lives in the checkout (AIIDA_PATH=.aiida), so nothing touches ~/.aiida.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export AIIDA_PATH := $(CURDIR)/.aiida
export OMP_NUM_THREADS ?= 1
# one BLAS thread too: on 2 cores, threaded scipy 3x3 solves (the cell filter of every relaxation) run 20x slower
export OPENBLAS_NUM_THREADS ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The AiiDA daemon starts its workers with the `verdi` on PATH: the environment's own comes first.
export PATH := $(CURDIR)/$(BIN):$(PATH)

# GPAW is built from source: its compiler (g++) is named in a siteconfig file, never taken from the machine.
export GPAW_CONFIG := $(CURDIR)/requirements/gpaw-siteconfig.py
# pip applies PIP_CONSTRAINT inside its isolated build environments too: the build tools of every package built
# from source are pinned there (see the file), so a new setuptools, numpy or pybind11 cannot change a build.
BUILD_CONSTRAINTS := $(CURDIR)/requirements/build-constraints.txt

.PHONY: install check profile demo test lint docs clean cluster-setup cluster-test

install: $(VENV)/.installed

# torch goes first and pinned: a plain `torch` from a dependency would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml requirements/constraints.txt requirements/build-constraints.txt \
		requirements/gpaw-siteconfig.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'
	PIP_CONSTRAINT=$(BUILD_CONSTRAINTS) $(BIN)/python -m pip install --quiet -c requirements/constraints.txt \
		-e '.[tests,docs,dev]'
	$(BIN)/python -m aiida_sianode.selfcheck
	touch $@

# versions of the engine stack, and a GPAW and an xTB single point of Si2 (about 10 s)
check: install
	$(BIN)/python -m aiida_sianode.selfcheck

profile: install
	$(BIN)/aiida-sianode setup

demo: profile
	$(BIN)/aiida-sianode run workflows/si_lixsi_gpaw.yaml

test: install
	$(BIN)/python -m pytest -q -ra tests

# The loopback cluster (root only: apt-get, munge, Slurm, sshd, PostgreSQL, RabbitMQ on 127.0.0.1), then its tests:
# a production profile, the loop-slurm computer, labels and a campaign as Slurm jobs, the daemon-kill repair.
cluster-setup:
	bash tests/cluster/setup_cluster.sh

cluster-test: install cluster-setup
	SIANODE_CLUSTER=1 $(BIN)/python -m pytest -q -ra -s --durations=0 tests/cluster

lint: install
	$(BIN)/ruff check aiida_sianode tests benchmarks
	$(BIN)/ruff format --check aiida_sianode tests benchmarks

docs: install
	$(BIN)/sphinx-build -W -b html docs/source docs/build/html

clean:
	rm -rf $(VENV) .aiida docs/build
