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
        ({'structures': [{'builder': 'si-crystal', 'file': 'x.xyz'}]}, 'exactly one of `builder` or `file`'),
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
