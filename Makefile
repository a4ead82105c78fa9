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
# install-engines.sh sets it again, and PIP_CONSTRAINT (requirements/build-constraints.txt): the build tools of every
# package built from source are pinned inside pip's isolated build environments too.

.PHONY: install check profile demo test lint docs clean cluster-setup cluster-test

install: $(VENV)/.installed

# torch goes first and pinned (a plain `torch` from a dependency would pull a multi-GB CUDA build), then the rest
# under requirements/constraints.txt, then the self-check.
# requirements/install-engines.sh is also what `aiida-sianode computer install-engines` runs on a remote machine.
$(VENV)/.installed: pyproject.toml requirements/constraints.txt requirements/build-constraints.txt \
		requirements/gpaw-siteconfig.py requirements/install-engines.sh
	PYTHON=$(PYTHON) bash requirements/install-engines.sh $(VENV) -e '.[tests,docs,dev]'
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
