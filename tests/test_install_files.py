"""The install's own files agree with each other (a brand-new machine sees only these)."""

import pathlib
import re
import runpy

REPO = pathlib.Path(__file__).resolve().parents[1]


def _pins(path: pathlib.Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            name, version = line.split('==')
            pins[re.sub(r'[-_.]+', '-', name).lower()] = version.split('+')[0]
    return pins


def test_build_constraints_agree_with_the_lock_file():
    """A package pinned for builds and at run time must have one version: pip applies both files together."""
    build = _pins(REPO / 'requirements' / 'build-constraints.txt')
    runtime = _pins(REPO / 'requirements' / 'constraints.txt')
    assert {'setuptools', 'numpy', 'pybind11', 'flit-core'} <= set(build)
    shared = set(build) & set(runtime)
    assert 'numpy' in shared
    assert {name: build[name] for name in shared} == {name: runtime[name] for name in shared}


def test_gpaw_siteconfig_names_a_serial_cxx_compiler():
    settings = runpy.run_path(str(REPO / 'requirements' / 'gpaw-siteconfig.py'))
    assert settings['compiler'] == 'g++'
    assert settings['mpi'] is False


def test_makefile_installs_through_the_shared_script():
    """`make install` runs requirements/install-engines.sh, the script `computer install-engines` runs remotely."""
    makefile = (REPO / 'Makefile').read_text()
    assert 'export GPAW_CONFIG := $(CURDIR)/requirements/gpaw-siteconfig.py' in makefile
    assert "bash requirements/install-engines.sh $(VENV) -e '.[tests,docs,dev]'" in makefile


def test_install_script_pins_torch_gives_pip_the_build_constraints_and_gpaw_its_siteconfig(tmp_path):
    """Run the script against a stand-in `python` that records each call: torch 2.13.0 first, then the package under
    the lock file with PIP_CONSTRAINT = the build constraints and GPAW_CONFIG = the siteconfig, then the self-check."""
    import os
    import subprocess

    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    record = tmp_path / 'calls.txt'
    python = venv / 'bin' / 'python'
    python.write_text(
        f'#!/bin/bash\necho "GPAW_CONFIG=$GPAW_CONFIG PIP_CONSTRAINT=$PIP_CONSTRAINT ARGS=$*" >> {record}\n'
    )
    python.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key not in ('GPAW_CONFIG', 'PIP_CONSTRAINT')}
    script = REPO / 'requirements' / 'install-engines.sh'
    subprocess.run(['bash', str(script), str(venv), '-e', '.[tests]'], check=True, env=env, capture_output=True)
    requirements = REPO / 'requirements'
    assert record.read_text().splitlines() == [
        'GPAW_CONFIG= PIP_CONSTRAINT= ARGS=-m pip install --quiet torch==2.13.0',
        f'GPAW_CONFIG={requirements}/gpaw-siteconfig.py PIP_CONSTRAINT={requirements}/build-constraints.txt '
        f'ARGS=-m pip install --quiet -c {requirements}/constraints.txt -e .[tests]',
        'GPAW_CONFIG= PIP_CONSTRAINT= ARGS=-m aiida_sianode.selfcheck',
    ]


def test_gpaw_is_pinned():
    assert _pins(REPO / 'requirements' / 'constraints.txt')['gpaw'] == '26.7.0'
