#!/usr/bin/env bash
# Install aiida-sianode and its engine stack into a virtual environment, the one way both `make install` (this
# checkout, editable, with the test extras) and `aiida-sianode computer install-engines` (a built wheel, on a
# remote machine) do it, so the two cannot drift:
#   install-engines.sh VENV PIP-TARGET...      e.g.  install-engines.sh .venv -e '.[tests,docs,dev]'
# The files beside this script (constraints.txt, build-constraints.txt, gpaw-siteconfig.py) pin every version.
# PYTHON names the interpreter that creates VENV when it does not exist yet (default python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$1
shift
[[ $# -gt 0 ]] || { echo "usage: $0 VENV PIP-TARGET..." >&2; exit 2; }
[[ -x $venv/bin/python ]] || "${PYTHON:-python3}" -m venv "$venv"
# torch first and pinned: a plain `torch` from a dependency would pull a multi-GB CUDA build.
"$venv/bin/python" -m pip install --quiet 'torch==2.13.0'
# GPAW is built from source with the compiler its siteconfig names; pip applies PIP_CONSTRAINT inside its isolated
# build environments too, so the build tools of every package built from source are pinned.
GPAW_CONFIG=$here/gpaw-siteconfig.py PIP_CONSTRAINT=$here/build-constraints.txt \
    "$venv/bin/python" -m pip install --quiet -c "$here/constraints.txt" "$@"
# the engines start, and GPAW and xTB compute (about 10 s)
"$venv/bin/python" -m aiida_sianode.selfcheck
