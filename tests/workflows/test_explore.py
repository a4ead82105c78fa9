"""ExploreWorkChain: the grid, the trust-level summary, the protocols and a real grid of runs."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_sianode.engines.committee import save_untrained_mace
from aiida_sianode.protocols import ProtocolError
from aiida_sianode.workflows.explore import ExploreWorkChain, build_grid, run_parameters, summarise_runs


@pytest.fixture(scope='module')
def model_files(tmp_path_factory):
    """Two untrained Si models of different seeds."""
    directory = tmp_path_factory.mktemp('explore-workchain')
    return [
        save_untrained_mace(
            directory / f'si{seed}.model', [14], seed=seed, num_channels=8, max_L=0, r_max=4.0, num_interactions=1
        )
        for seed in range(2)
    ]


@pytest.fixture
def potentials(aiida_profile, model_files):
    """The committee as stored PotentialData."""
    from aiida_sianode.data.potential import PotentialData

    return [PotentialData.from_model_file(path).store() for path in model_files]


def _silicon(rattle=0.05):
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(rattle, seed=3)
    return atoms


def test_grid_pressures_only_for_npt():
    """NVT runs once per temperature, NPT once per temperature and pressure; ramps keep start and end."""
    grid = build_grid(['a', 'b'], ['nvt', 'npt'], [300, [300, 900]], [0.0, 5.0], [100])
    assert len(grid) == 2 * (2 + 2 * 2)
    assert [point['key'] for point in grid[:2]] == ['run_000', 'run_001']
    nvt = [point for point in grid if point['ensemble'] == 'nvt_langevin']
    assert {point['pressure_gpa'] for point in nvt} == {None}
    ramp = [point for point in grid if point['temperature'] != point['temperature_end']]
    assert {(point['temperature'], point['temperature_end']) for point in ramp} == {(300.0, 900.0)}
    assert {point['pressure_gpa'] for point in grid if point['ensemble'] == 'npt_isotropic'} == {0.0, 5.0}
    with pytest.raises(ValueError, match='unknown ensemble'):
        build_grid(['a'], ['nve'], [300], [0.0], [10])
    with pytest.raises(ValueError, match='ramp'):
        build_grid(['a'], ['nvt'], [[300, 600, 900]], [0.0], [10])


def test_run_parameters():
    """Each run gets the shared settings, its grid point, the trust levels and its own seed."""
    point = build_grid(['a'], ['npt'], [600], [2.0], [50])[0]
    parameters = run_parameters(point, {'timestep_fs': 0.5, 'seed': 10}, 0.05, 0.25, 3)
    assert parameters == {
        'timestep_fs': 0.5,
        'seed': 13,
        'ensemble': 'npt_isotropic',
        'temperature': 600.0,
        'temperature_end': 600.0,
        'pressure_gpa': 2.0,
        'steps': 50,
        'force_deviation_lower': 0.05,
        'force_deviation_upper': 0.25,
    }


def test_summary_by_hand():
    """Counts and fractions per run and in total, stop reasons, and runs without frames left out of the totals."""
    runs = [
        {
            'key': 'run_000',
            'structure': 'a',
            'ensemble': 'nvt_langevin',
            'stop_reason': 'completed',
            'exit_status': 0,
            'max_force_deviation': [0.01, 0.02, 0.1, 0.3],
        },
        {
            'key': 'run_001',
            'structure': 'a',
            'ensemble': 'nvt_langevin',
            'stop_reason': 'uncertainty',
            'exit_status': 0,
            'max_force_deviation': [0.04, 0.05, 0.25, 0.26],
        },
        {
            'key': 'run_002',
            'structure': 'b',
            'ensemble': 'nvt_langevin',
            'stop_reason': None,
            'exit_status': 300,
            'max_force_deviation': [],
        },
    ]
    summary = summarise_runs(runs, 0.05, 0.25)
    first = summary['runs']['run_000']
    assert (first['accurate'], first['candidate'], first['failed']) == (2, 1, 1)
    assert first['accurate_fraction'] == pytest.approx(0.5)
    second = summary['runs']['run_001']
    assert (second['accurate'], second['candidate'], second['failed']) == (1, 1, 2)  # 0.05 is a candidate, 0.25 fails
    total = summary['total']
    assert (total['frames'], total['accurate'], total['candidate'], total['failed']) == (8, 3, 2, 3)
    assert total['candidate_fraction'] == pytest.approx(2 / 8)
    assert total['stop_reasons'] == {'completed': 1, 'uncertainty': 1}
    assert total['runs'] == 3
    assert total['runs_with_frames'] == 2
    assert total['runs_without_frames'] == ['run_002']


def _validate(builder):
    return ExploreWorkChain.spec().inputs.validate(builder._inputs(prune=True))


def test_protocols(explore_code, potentials):
    """The three protocols build valid grids of the documented sizes; overrides are strict; scalars are lists."""
    structures = {'si': _silicon()}
    sizes = {'fast': 2, 'balanced': 6, 'stringent': 3 + 3 * 3}
    for protocol, size in sizes.items():
        builder = ExploreWorkChain.get_builder_from_protocol(explore_code, potentials, structures, protocol=protocol)
        assert _validate(builder) is None, protocol
        grid = build_grid(
            ['si'],
            builder.ensembles.get_list(),
            builder.temperatures.get_list(),
            builder.pressures.get_list(),
            builder.steps.get_list(),
        )
        assert len(grid) == size, protocol
    stringent = ExploreWorkChain.get_builder_from_protocol(explore_code, potentials, structures, protocol='stringent')
    assert stringent.upper_trust.value == 0.20
    assert stringent.parameters['timestep_fs'] == 0.5
    builder = ExploreWorkChain.get_builder_from_protocol(
        explore_code, potentials, _silicon(), protocol='fast', overrides={'steps': 50, 'temperatures': [[300, 600]]}
    )
    assert builder.steps.get_list() == [50]
    assert list(builder.structures) == ['structure_0']
    assert sorted(builder.potentials) == ['member_0', 'member_1']
    with pytest.raises(ProtocolError, match='`stepz` does not exist'):
        ExploreWorkChain.get_builder_from_protocol(explore_code, potentials, structures, overrides={'stepz': 5})
    with pytest.raises(ProtocolError, match='unknown protocol'):
        ExploreWorkChain.get_builder_from_protocol(explore_code, potentials, structures, protocol='quick')


@pytest.mark.parametrize(
    ('overrides', 'message'),
    [
        ({'pressures': [15.0], 'ensembles': ['npt']}, '100 kbar'),
        ({'temperatures': [0.0]}, '`temperature` must be in'),
        ({'lower_trust': 0.3}, 'lower_trust < upper_trust'),
        ({'ensembles': ['nve']}, 'unknown ensemble'),
    ],
)
def test_bad_grid_refused(explore_code, potentials, overrides, message):
    """A bad grid is refused by the spec before anything runs, with the problem named."""
    builder = ExploreWorkChain.get_builder_from_protocol(
        explore_code, potentials, {'si': _silicon()}, protocol='fast', overrides=overrides
    )
    error = _validate(builder)
    assert error is not None
    assert message in str(error)


def test_grid_keys_in_parameters_refused(explore_code, potentials):
    """The grid and the trust levels set steps, ensemble, ...: ``parameters`` may not."""
    builder = ExploreWorkChain.get_builder_from_protocol(explore_code, potentials, {'si': _silicon()}, protocol='fast')
    builder.parameters = orm.Dict({**builder.parameters.get_dict(), 'steps': 5, 'ensemble': 'nvt'})
    assert '`parameters` must not set ensemble, steps' in str(_validate(builder))


def test_empty_committee_refused(explore_code):
    """A builder without potentials (as the active-learning work chain makes it) is refused at launch."""
    builder = ExploreWorkChain.get_builder_from_protocol(explore_code, {}, {'si': _silicon()}, protocol='fast')
    assert 'at least one potential' in str(_validate(builder))


def test_grid_run(explore_code, potentials):
    """Two structures (one broken: two atoms 0.3 Å apart) x NVT and NPT at 5 GPa: four runs in parallel, every
    run's frames exposed (also the broken ones'), and a summary that matches the deviation arrays."""
    broken = bulk('Si', 'diamond', a=5.43, cubic=True)
    broken.positions[1] = broken.positions[0] + [0.3, 0.0, 0.0]
    builder = ExploreWorkChain.get_builder_from_protocol(
        explore_code,
        potentials,
        {'si': _silicon(), 'broken': broken},
        protocol='fast',
        overrides={
            'ensembles': ['nvt', 'npt'],
            'temperatures': [300.0],
            'pressures': [5.0],
            'steps': [10],
            'lower_trust': 0.005,
            'upper_trust': 0.5,
            'parameters': {'sample_interval': 5},
        },
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert sorted(results['trajectories']) == ['run_000', 'run_001', 'run_002', 'run_003']
    summary = results['summary'].get_dict()
    runs = summary['runs']
    # the grid is sorted by structure name: broken first
    assert [runs[key]['structure'] for key in sorted(runs)] == ['broken', 'broken', 'si', 'si']
    assert [runs[key]['ensemble'] for key in sorted(runs)] == ['nvt_langevin', 'npt_isotropic'] * 2
    assert runs['run_000']['pressure_gpa'] is None
    assert runs['run_001']['pressure_gpa'] == 5.0
    for key in ('run_000', 'run_001'):  # a blown-up calculation: exit code 410 naming the problem, frame kept
        assert runs[key]['stop_reason'] == 'min_distance'
        assert runs[key]['exit_status'] == 410
        assert runs[key]['frames'] == 1
        calculation = results['deviations'][key].creator
        assert calculation.exit_status == 410
        assert 'two atoms came 0.300 Å apart' in calculation.exit_message
        assert results['trajectories'][key].numsteps == 1
    for key in ('run_002', 'run_003'):
        assert runs[key]['stop_reason'] == 'completed'
        assert runs[key]['frames'] == 3
    arrays = [results['deviations'][key] for key in sorted(results['deviations'])]
    everything = np.concatenate([node.get_array('max_force_deviation') for node in arrays])
    broken = np.concatenate([node.get_array('physically_broken') for node in arrays]).astype(bool)
    assert broken.tolist() == [True, True] + [False] * 6  # the frame each broken run ended on
    total = summary['total']
    assert total['frames'] == everything.size == 8
    assert total['accurate'] == int((everything[~broken] < 0.005).sum())
    assert total['failed'] == int((everything[~broken] >= 0.5).sum()) + 2  # a broken frame is failed whatever its d
    assert total['candidate'] == 8 - total['accurate'] - total['failed']
    assert total['accurate_fraction'] + total['candidate_fraction'] + total['failed_fraction'] == pytest.approx(1)
    assert total['stop_reasons'] == {'min_distance': 2, 'completed': 2}
    # the NPT run at 5 GPa changed the cell; the NVT run did not
    volumes = results['deviations']['run_003'].get_array('volume')
    assert volumes[-1] != pytest.approx(volumes[0])
    assert results['deviations']['run_002'].get_array('volume') == pytest.approx([5.43**3] * 3)
