"""Fixtures of the label work chain tests: codes that are never run, and the pseudopotential families the protocols
name (POTCAR files are licensed and not shipped: the VASP family is empty)."""

import pytest
from aiida import orm


def fake_code(computer, label: str, plugin: str) -> orm.InstalledCode:
    """Return the code ``label`` on ``computer`` running ``/bin/true`` for ``plugin`` (created once)."""
    from aiida.common.exceptions import NotExistent

    try:
        return orm.load_code(f'{label}@{computer.label}')
    except NotExistent:
        return orm.InstalledCode(
            label=label, computer=computer, filepath_executable='/bin/true', default_calc_job_plugin=plugin
        ).store()


@pytest.fixture
def vasp_code(aiida_localhost):
    """A ``vasp.vasp`` code that is never run: builders and input validation only."""
    return fake_code(aiida_localhost, 'vasp-fake', 'vasp.vasp')


@pytest.fixture
def potcar_family(aiida_profile):
    """An empty POTCAR family named like the protocol's (``PBE.54``): POTCAR files are licensed and not shipped."""
    from aiida_vasp.data.potcar import PotcarData, PotcarGroup

    if PotcarData.get_potcar_group('PBE.54') is None:
        PotcarGroup(label='PBE.54').store()
    return 'PBE.54'


@pytest.fixture
def castep_code(aiida_localhost):
    """A ``castep.castep`` code that is never run."""
    return fake_code(aiida_localhost, 'castep-fake', 'castep.castep')


@pytest.fixture
def otfg_families(aiida_profile):
    """The C19 on-the-fly library as a family (any element), and a family with a Si potential only."""
    from aiida_castep.data.otfg import upload_otfg_family

    upload_otfg_family(['C19'], 'C19', 'CASTEP C19 library', stop_if_existing=False)
    upload_otfg_family(['Si 3|1.8|5|6|7|30:31:32'], 'Si-only', 'one Si string', stop_if_existing=False)
    return 'C19', 'Si-only'


@pytest.fixture(autouse=True)
def reports_stored_in_the_database(aiida_profile):
    """Restore AiiDA's database log handler: a CLI test earlier in the same interpreter reconfigures logging for the
    terminal and drops it, and these tests read the work chains' reports back from the database."""
    from aiida.common.log import configure_logging

    configure_logging(with_orm=True)
