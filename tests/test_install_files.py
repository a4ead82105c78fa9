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


def test_makefile_gives_pip_the_build_constraints_and_gpaw_its_siteconfig():
    makefile = (REPO / 'Makefile').read_text()
    assert 'export GPAW_CONFIG := $(CURDIR)/requirements/gpaw-siteconfig.py' in makefile
    assert 'PIP_CONSTRAINT=$(BUILD_CONSTRAINTS)' in makefile
    assert '$(BIN)/python -m aiida_sianode.selfcheck' in makefile


def test_gpaw_is_pinned():
    assert _pins(REPO / 'requirements' / 'constraints.txt')['gpaw'] == '26.7.0'
