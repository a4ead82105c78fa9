"""One interface over every registered labeler, as aiida-common-workflows tests its implementations: each entry point
``sianode.label.<name>`` is a :class:`CommonLabelWorkChain` whose protocols make a builder for a silicon cell that its
own validators accept, whose exit codes mean the same everywhere, and which refuses the same bad input the same way.
No code runs: builders and validation only."""

import pytest
from aiida import orm
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from aiida.plugins.entry_point import get_entry_point_names
from ase import Atoms
from ase.build import bulk

from aiida_sianode.common.validation import StructureValidationError
from aiida_sianode.data.label import LabelData
from aiida_sianode.protocols import ProtocolError
from aiida_sianode.workflows.label import CommonLabelWorkChain, get_label_workchain

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')

LABELERS = sorted(
    name.split('.', 2)[2] for name in get_entry_point_names('aiida.workflows') if name.startswith('sianode.label.')
)

#: Exit codes every labeler shares, by name and status.
SHARED_EXIT_CODES = {
    'ERROR_MISSING_OUTPUTS': 300,
    'ERROR_SCF_NOT_CONVERGED': 410,
    'ERROR_CODE_FAILED': 420,
    'ERROR_LEVEL_OF_THEORY_MISMATCH': 440,
}


def test_every_labeler_is_registered():
    assert LABELERS == ['castep', 'gpaw', 'vasp', 'xtb']


@pytest.fixture
def generate_code(request, aiida_profile):
    """Return the code (and set up the pseudopotential family its protocol names) of a labeler."""

    def generate(labeler):
        fixture = {'gpaw': 'label_code', 'xtb': 'label_code', 'vasp': 'vasp_code', 'castep': 'castep_code'}[labeler]
        if labeler == 'vasp':
            request.getfixturevalue('potcar_family')
        if labeler == 'castep':
            request.getfixturevalue('otfg_families')
        return request.getfixturevalue(fixture)

    return generate


@pytest.mark.parametrize('labeler', LABELERS)
def test_interface(labeler):
    workchain = get_label_workchain(labeler)
    assert issubclass(workchain, CommonLabelWorkChain) and workchain.labeler == labeler
    spec = workchain.spec()
    assert spec.inputs['structure'].valid_type is orm.StructureData
    assert spec.outputs['label'].valid_type is LabelData
    assert {name: spec.exit_codes[name].status for name in SHARED_EXIT_CODES} == SHARED_EXIT_CODES
    assert set(workchain.get_available_protocols()) == {'fast', 'balanced', 'stringent'}
    assert workchain.get_default_protocol() == 'balanced'


@pytest.mark.parametrize('labeler', LABELERS)
def test_builder_from_the_default_protocol_is_valid(labeler, generate_code):
    """The default protocol's builder passes every validator of the spec (each labeler's own tests go through its
    other protocols and their settings)."""
    workchain = get_label_workchain(labeler)
    structure = orm.StructureData(ase=bulk('Si', 'diamond', a=5.43))
    builder = workchain.get_builder_from_protocol(generate_code(labeler), structure)
    process = instantiate_process(get_manager().get_runner(), builder)
    assert process.inputs.structure.get_formula() == 'Si2'


@pytest.mark.parametrize('labeler', LABELERS)
def test_same_refusals_before_anything_runs(labeler, generate_code):
    workchain = get_label_workchain(labeler)
    code = generate_code(labeler)
    silicon = orm.StructureData(ase=bulk('Si', 'diamond', a=5.43))
    overlapping = Atoms('Si2', positions=[[0, 0, 0], [0.3, 0, 0]], cell=[5, 5, 5], pbc=True)
    with pytest.raises(StructureValidationError, match=r'closer than'):
        workchain.get_builder_from_protocol(code, overlapping)
    with pytest.raises(ProtocolError, match=r'unknown protocol `precise`'):
        workchain.get_builder_from_protocol(code, silicon, protocol='precise')
    with pytest.raises(StructureValidationError, match=r'the structure is empty'):
        workchain.get_builder_from_protocol(code, Atoms(cell=[5, 5, 5], pbc=True))
