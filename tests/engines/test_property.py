"""The property engine: each member on its own, committee statistics, resuming, refusals."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
from ase.build import bulk

from aiida_sianode.engines import property as engine
from aiida_sianode.properties import eos
from aiida_sianode.properties.common import get_settings, split_settings

MODELS = pathlib.Path(__file__).resolve().parents[2] / 'fixtures' / 'models' / 'si_fast'


def prepare(directory: pathlib.Path, kind: str = 'eos', settings: dict | None = None, models=None) -> pathlib.Path:
    """Write ``input.json``, the Si8 structure and the two trained members into ``directory``."""
    engine.write_input(
        directory,
        kind,
        [bulk('Si', 'diamond', a=5.43, cubic=True)],
        models or sorted(MODELS.glob('member_*.model')),
        settings if settings is not None else get_settings(kind, 'fast', {'device': 'cpu'}),
    )
    return directory


@pytest.fixture(scope='module')
def eos_run(tmp_path_factory):
    directory = prepare(tmp_path_factory.mktemp('eos'))
    return directory, engine.run(directory)


def test_each_member_computes_the_property_on_its_own(eos_run, tmp_path):
    """Two members with different weights give two different bulk moduli; the aggregate is their mean and (population)
    spread; member 0's value is what the kernel gives with member 0's calculator alone."""
    directory, results = eos_run
    assert results['status'] == 'ok'
    assert results['device'] == 'cpu'
    stats = results['aggregate']['scalars']['bulk_modulus_gpa']
    first, second = stats['members']
    assert abs(first - second) > 1.0
    assert stats['mean'] == pytest.approx((first + second) / 2)
    assert stats['std'] == pytest.approx(abs(first - second) / 2)
    assert 40 < first < 120 and 40 < second < 120  # GPa; PBE c-Si is 88
    assert results['aggregate']['scalars']['lattice_a_a']['mean'] == pytest.approx(5.5, abs=0.15)
    digests = [engine.sha256(path) for path in sorted(MODELS.glob('member_*.model'))]
    assert results['model_sha256'] == digests
    assert json.loads((directory / 'member_1.json').read_text())['result']['scalars']['bulk_modulus_gpa'] == second
    assert (directory / 'energy_volume.png').read_bytes()[:4] == b'\x89PNG'
    curve = results['aggregate']['curves']['energy_volume']
    assert len(curve['members']) == 2 and len(curve['mean']) == len(curve['x'])

    calculator = engine.load_member_calculator(directory / 'member_0.model', 'cpu', 'float64')
    settings = split_settings(get_settings('eos', 'fast'))[1]
    alone = eos.run_member([bulk('Si', 'diamond', a=5.43, cubic=True)], calculator, settings, tmp_path)
    assert alone['scalars']['bulk_modulus_gpa'] == pytest.approx(first, rel=1e-6)


def test_finished_members_are_kept_on_restart(eos_run, tmp_path):
    """An interrupted run (member 1 and results.json missing) continues: member 0 is read back, not recomputed."""
    directory, results = eos_run
    restart = tmp_path / 'restart'
    shutil.copytree(directory, restart)
    (restart / 'results.json').unlink()
    (restart / 'member_1.json').unlink()
    record = json.loads((restart / 'member_0.json').read_text())
    record['result']['scalars']['bulk_modulus_gpa'] = 123.0  # a marker: recomputing would lose it
    (restart / 'member_0.json').write_text(json.dumps(record))
    again = engine.run(restart)
    assert again['members_kept'] == [0]
    first, second = again['aggregate']['scalars']['bulk_modulus_gpa']['members']
    assert first == 123.0
    assert second == pytest.approx(results['aggregate']['scalars']['bulk_modulus_gpa']['members'][1], rel=1e-6)


def test_refusals_and_failures_are_written_as_status(tmp_path):
    bad = prepare(tmp_path / 'range', settings=get_settings('eos', 'fast', {'volume_range': 0.5}))
    assert engine.main([str(bad / 'input.json')]) == 1
    result = json.loads((bad / 'results.json').read_text())
    assert result['status'] == 'invalid_input'
    assert '50.0 %, more than the 20 %' in result['message']

    unknown = prepare(tmp_path / 'kind', kind='eos')
    request = json.loads((unknown / 'input.json').read_text())
    request['kind'] = 'bandgap'
    (unknown / 'input.json').write_text(json.dumps(request))
    assert engine.main([str(unknown / 'input.json')]) == 1
    assert 'unknown property `bandgap`' in json.loads((unknown / 'results.json').read_text())['message']

    broken = prepare(tmp_path / 'model')
    (broken / 'member_0.model').write_bytes(b'not a model')
    assert engine.main([str(broken / 'input.json')]) == 1
    result = json.loads((broken / 'results.json').read_text())
    assert result['status'] == 'model_error'
    assert 'cannot load member_0.model' in result['message']
    assert result['members'] == [] and 'aggregate' not in result


def test_committee_models_passed_to_the_kernels_that_watch(tmp_path):
    """md and neb get the committee's model files (absolute paths) and the member's index from the engine, replacing
    any the settings named; eos, which does not watch, gets its settings unchanged."""
    from aiida_sianode.properties import load_kind

    models = [tmp_path / 'member_0.model', tmp_path / 'member_1.model']
    settings = {'temperature_k': 300.0, 'committee_models': ['elsewhere.model']}
    for kind in ('md', 'neb'):
        given = engine.member_settings(load_kind(kind), settings, models, 1)
        assert given['committee_models'] == [str(path.resolve()) for path in models]
        assert given['member_index'] == 1
        assert given['temperature_k'] == 300.0
    assert engine.member_settings(eos, {'points': 7}, models, 0) == {'points': 7}
    # diffusion runs production MD under `md`: its MD watches the committee (it took no sample before this was passed)
    given = engine.member_settings(load_kind('diffusion'), {'species': 'Li', 'md': {'length_ps': 2.0}}, models, 0)
    assert given['md'] == {
        'length_ps': 2.0,
        'committee_models': [str(path.resolve()) for path in models],
        'member_index': 0,
    }
    assert given['species'] == 'Li' and 'committee_models' not in given
