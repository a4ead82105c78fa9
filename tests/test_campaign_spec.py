"""Campaign specs: the shipped specs validate, and bad specs are refused with the path of every bad key."""

import pathlib

import pytest
import yaml

from aiida_sianode.campaign_spec import SpecError, load_spec, parse_spec

WORKFLOWS = pathlib.Path(__file__).resolve().parent.parent / 'workflows'

MINIMAL = {
    'name': 'toy',
    'structures': [{'builder': 'si-crystal', 'parameters': {'size': [1, 1, 1]}}],
    'labeler': {'name': 'xtb'},
}


@pytest.mark.parametrize('name', ['si_lixsi_gpaw.yaml', 'si_lixsi_xtb.yaml'])
def test_shipped_specs_are_valid(name):
    spec = load_spec(WORKFLOWS / name)
    assert spec.training.committee_size == 3
    assert spec.selection.lower < spec.selection.upper
    assert spec.labeler.name in name


def test_the_main_job_converges_on_a_held_out_test_set():
    """The README's main job labels 8 held-out frames (Si8 and Li4Si8 at 300 and 900 K) and stops on their force
    RMSE, with trust levels from the calibration."""
    from ase.io import read

    spec = load_spec(WORKFLOWS / 'si_lixsi_gpaw.yaml')
    assert spec.test_set is None
    (source,) = spec.test_structures
    frames = read(WORKFLOWS / source.file, index=':')
    assert sorted(atoms.get_chemical_formula() for atoms in frames) == ['Li4Si8'] * 4 + ['Si8'] * 4
    assert sorted({atoms.info['temperature_k'] for atoms in frames}) == spec.exploration.temperatures == [300, 900]
    assert spec.convergence.test_force_rmse == 150
    assert (spec.selection.trust, spec.selection.target_force_error) == ('auto', 0.15)


def test_test_set_and_test_structures_are_exclusive():
    with pytest.raises(SpecError, match='not both'):
        parse_spec({**MINIMAL, 'test_set': 12, 'test_structures': MINIMAL['structures']})
    spec = parse_spec({**MINIMAL, 'test_structures': MINIMAL['structures']})
    assert spec.test_structures[0].builder == 'si-crystal'


def test_defaults_fill_a_minimal_spec():
    spec = parse_spec(MINIMAL)
    assert spec.structures[0].seeds == [0]
    assert spec.convergence.accurate_fraction == 0.99
    assert spec.exploration.ensembles == ['nvt']
    assert (spec.selection.max_per_run, spec.selection.max_total) == (2, 10)
    # a section given in part keeps the protocol's other keys
    spec = parse_spec({**MINIMAL, 'selection': {'strategy': 'random'}, 'convergence': {'max_iterations': 7}})
    assert (spec.selection.strategy, spec.selection.max_total, spec.selection.upper) == ('random', 10, 0.25)
    assert (spec.convergence.max_iterations, spec.convergence.max_labels) == (7, 100)


def test_the_campaign_protocol_is_the_one_source_of_settings():
    """Every default of the campaign lives in protocols/active_learning.yaml; the trust levels are the same in the
    campaign, the exploration work chain, select_frames and the exploration engine."""
    from aiida_sianode.campaign_spec import SETTINGS_MODELS, campaign_defaults, default_trust_levels
    from aiida_sianode.engines.explore import DEFAULT_PARAMETERS as ENGINE
    from aiida_sianode.protocols import load_protocol_file
    from aiida_sianode.workflows.explore import ExploreWorkChain
    from aiida_sianode.workflows.select import DEFAULT_PARAMETERS as SELECT

    raw = load_protocol_file('active_learning')['default_inputs']
    for section, model in SETTINGS_MODELS.items():
        assert set(raw[section]) <= set(model.model_fields), section
        model.model_validate(campaign_defaults()[section])  # complete: the models need nothing else
    assert set(raw['convergence']) == set(SETTINGS_MODELS['convergence'].model_fields)
    assert set(raw['dataset']) == set(SETTINGS_MODELS['dataset'].model_fields)

    lower, upper = default_trust_levels()
    assert (lower, upper) == (raw['selection']['lower'], raw['selection']['upper']) == (0.05, 0.25)
    explore = ExploreWorkChain.get_protocol_inputs('balanced')
    assert (explore['lower_trust'], explore['upper_trust']) == (lower, upper)
    assert ExploreWorkChain.get_protocol_inputs('stringent')['upper_trust'] == 0.20  # its own, on purpose
    assert ExploreWorkChain.get_protocol_inputs('fast', {'upper_trust': 0.4})['upper_trust'] == 0.4
    spec = ExploreWorkChain.spec().inputs
    assert (spec['lower_trust'].default().value, spec['upper_trust'].default().value) == (lower, upper)
    assert (SELECT['lower'], SELECT['upper']) == (lower, upper)
    assert (ENGINE['force_deviation_lower'], ENGINE['force_deviation_upper']) == (lower, upper)


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'trainning': {}}, 'trainning: unknown key'),
        ({'training': {'committe_size': 3}}, 'training.committe_size: unknown key'),
        ({'training': {'committee_size': 'three'}}, 'training.committee_size: Input should be a valid integer'),
        ({'selection': {'lower': 0.6, 'upper': 0.5}}, 'lower trust level 0.6 must be below the upper one 0.5'),
        ({'convergence': {'accurate_fraction': 1.5}}, 'convergence.accurate_fraction: Input should be less than'),
        ({'labeler': {'name': 'siesta'}}, 'labeler.name: unknown labeler `siesta`'),
        ({'labeler': {'name': 'xtb', 'protocol': 'precise'}}, 'labeler.protocol: Input should be'),
        ({'exploration': {'temperatures': [-5]}}, 'temperatures must be positive'),
        ({'exploration': {'pressures': [50]}}, 'at most 10 GPa'),
        ({'exploration': {'pressures': [1.0]}}, 'only used by NPT ensembles'),
        (
            {'structures': [{'builder': 'si-crystal', 'file': 'x.xyz'}]},
            'exactly one of `builder`, `file` or `presample`',
        ),
        (
            {'structures': [{'presample': {'material': 'a-ge'}}]},
            "structures.0.presample.material: Input should be 'a-si'",
        ),
        ({'structures': [{'presample': {'material': 'a-c'}, 'seeds': [0]}]}, "LAMMPS's velocities: 1 to 900000000"),
        ({'structures': [{'presample': {'material': 'a-c', 'density': 9.0}, 'seeds': [1]}]}, 'density'),
        ({'structures': [{'builder': 'unobtainium'}]}, 'unknown builder `unobtainium`'),
        ({'structures': [{'builder': 'si-crystal', 'parameters': {'sise': 2}}]}, 'sise'),
        ({'structures': []}, 'structures: List should have at least 1 item'),
    ],
)
def test_bad_specs_are_refused_with_the_key_named(change, message):
    with pytest.raises(SpecError) as error:
        parse_spec({**MINIMAL, **change}, source='bad.yaml')
    assert message in str(error.value)
    assert str(error.value).startswith('bad.yaml is not a valid campaign spec')


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match='does not exist'):
        load_spec(tmp_path / 'nothing.yaml')
    broken = tmp_path / 'broken.yaml'
    broken.write_text('name: [unclosed\n')
    with pytest.raises(SpecError, match='not valid YAML'):
        load_spec(broken)
    missing = tmp_path / 'missing.yaml'
    missing.write_text(yaml.safe_dump({**MINIMAL, 'structures': [{'file': 'cells.extxyz'}]}))
    with pytest.raises(SpecError, match=r'structure file `cells\.extxyz` not found'):
        load_spec(missing)


PRESAMPLE = {'presample': {'material': 'a-c', 'natoms': 16, 'density': 2.0, 'protocol': 'fast'}, 'seeds': [3, 4]}


def test_presample_entries_are_planned_from_their_random_start():
    """A `presample` entry: one melt-quench per seed; the dry run plans its random starting cell (no LAMMPS)."""
    from aiida_sianode.campaign_spec import preflight, presample_codes

    spec = parse_spec({**MINIMAL, 'structures': [PRESAMPLE]})
    assert presample_codes(spec) == ['lammps@localhost']
    planned = preflight(spec)
    assert [item.name for item in planned] == ['presample_a_c_00_seed3', 'presample_a_c_00_seed4']
    for item in planned:
        assert item.source == 'presample a-c'
        assert item.atoms.get_chemical_formula() == 'C16'
        assert item.summary()['density_g_cm3'] == pytest.approx(2.0, abs=1e-3)


@pytest.mark.slow
def test_presample_structure_is_the_melt_quench_output(aiida_profile, lammps_code):
    """The campaign's starting structure is the PresampleWorkChain's output: 16 C at 2.0 g/cm^3 (a-C keeps it)."""
    from aiida import orm

    from aiida_sianode.campaign_spec import build_structures
    from aiida_sianode.structures.common import mass_density
    from aiida_sianode.workflows.presample import PresampleWorkChain

    entry = {**PRESAMPLE, 'seeds': [5]}
    entry['presample'] = {**PRESAMPLE['presample'], 'code': lammps_code.full_label}
    spec = parse_spec({**MINIMAL, 'structures': [entry]})
    structures = build_structures(spec.structures, pathlib.Path('.'))
    assert list(structures) == ['presample_a_c_00_seed5']
    structure = structures['presample_a_c_00_seed5']
    atoms = structure.get_ase()
    assert atoms.get_chemical_formula() == 'C16'
    assert mass_density(atoms) == pytest.approx(2.0, abs=1e-3)
    query = orm.QueryBuilder().append(PresampleWorkChain, tag='presample', project=['id'])
    query.append(orm.StructureData, with_incoming='presample', filters={'id': structure.pk})
    assert query.count() == 1

    missing = {**entry, 'presample': {**entry['presample'], 'code': 'no-lammps@nowhere'}}
    with pytest.raises(ValueError, match='no code `no-lammps@nowhere`'):
        build_structures(parse_spec({**MINIMAL, 'structures': [missing]}).structures, pathlib.Path('.'))
