"""``select_frames`` / ``run_select``: provenance, per-run reports, each strategy on exploration-shaped nodes."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import calcfunction, run_get_node
from ase.build import bulk

from aiida_sianode.workflows.select import (
    DEFAULT_PARAMETERS,
    run_select,
    select_frames,
    select_from_exploration,
    validate_parameters,
)

#: max force deviations (eV/Å) of the two runs; trust levels 0.05 / 0.25:
#: run a: accurate 0, 4; candidates 1 (0.10), 3 (0.20), 5 (0.06), 6 (0.15); failed 2 (0.30), 7 (NaN)
DEVIATIONS_A = [0.01, 0.10, 0.30, 0.20, 0.02, 0.06, 0.15, np.nan]
#: run b: candidates 0 (0.12), 1 (0.24); failed 2 (0.25)
DEVIATIONS_B = [0.12, 0.24, 0.25]


def si_frames(count: int, seed: int, scale=None):
    """Rattled 8-atom diamond Si cells; ``scale[i]`` stretches frame ``i``'s cell."""
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(count):
        atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
        if scale is not None:
            atoms.set_cell(atoms.cell * scale[index], scale_atoms=True)
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        frames.append(atoms)
    return frames


def exploration_nodes(frames, max_force_deviation):
    """Return unstored ``trajectory`` and ``deviations`` nodes shaped as the exploration calculation's outputs."""
    count = len(frames)
    trajectory = orm.TrajectoryData()
    trajectory.set_trajectory(
        symbols=frames[0].get_chemical_symbols(),
        positions=np.array([atoms.positions for atoms in frames]),
        cells=np.array([atoms.cell.array for atoms in frames]),
        stepids=np.arange(count) * 50,
        times=np.arange(count) * 50.0,
        pbc=(True, True, True),
    )
    deviations = orm.ArrayData()
    deviations.set_array('max_force_deviation', np.asarray(max_force_deviation, dtype=float))
    deviations.set_array('energy_std_per_atom', np.asarray(max_force_deviation, dtype=float) / 10)
    for name in ('temperature', 'pressure_gpa', 'volume', 'time_fs'):
        deviations.set_array(name, np.zeros(count))
    deviations.set_array('step', np.arange(count) * 50)
    return trajectory, deviations


@calcfunction
def synthetic_exploration(seed: orm.Int, deviations: orm.List):
    """A process node with the exploration calculation's ``trajectory`` and ``deviations`` outputs."""
    frames = si_frames(len(deviations.get_list()), seed.value)
    trajectory, deviation_node = exploration_nodes(frames, deviations.get_list())
    return {'trajectory': trajectory, 'deviations': deviation_node}


@calcfunction
def synthetic_exploration_grid(deviations_a: orm.List, deviations_b: orm.List):
    """A process node with ``ExploreWorkChain``'s output layout: ``trajectories.<run>`` and ``deviations.<run>``."""
    trajectories, deviations = {}, {}
    for key, seed, values in (('si_600K', 1, deviations_a), ('si_900K', 2, deviations_b)):
        trajectories[key], deviations[key] = exploration_nodes(si_frames(len(values), seed), values.get_list())
    return {'trajectories': trajectories, 'deviations': deviations}


@pytest.fixture
def two_runs(aiida_profile):
    runs = {}
    for label, seed, values in (('a', 1, DEVIATIONS_A), ('b', 2, DEVIATIONS_B)):
        trajectory, deviations = exploration_nodes(si_frames(len(values), seed), values)
        runs[label] = {'trajectory': trajectory.store(), 'deviations': deviations.store()}
    return runs


def test_trust_selection_structures_report_and_provenance(two_runs):
    result = run_select(two_runs, strategy='trust', max_per_run=3, max_total=4)
    # candidates, most uncertain first, at most 3 from a run and 4 in all: b1 0.24, a3 0.20, a6 0.15, b0 0.12
    assert list(result.structures) == ['b_000001', 'a_000003', 'a_000006', 'b_000000']
    report = result.report
    assert report['runs']['a']['counts'] == {'accurate': 2, 'candidate': 4, 'failed': 2}
    assert report['runs']['b']['counts'] == {'accurate': 0, 'candidate': 2, 'failed': 1}
    assert report['counts'] == {'accurate': 2, 'candidate': 6, 'failed': 3}
    assert report['fractions']['failed'] == pytest.approx(3 / 11)
    assert report['runs']['a']['selected'] == [3, 6]
    assert report['runs']['a']['selected_deviations'] == pytest.approx([0.20, 0.15])
    assert report['n_pool'] == 6 and report['n_selected'] == 4
    assert report['parameters']['upper'] == DEFAULT_PARAMETERS['upper']

    structure = result.structures['a_000003']
    trajectory = two_runs['a']['trajectory']
    assert structure.is_stored
    assert structure.base.attributes.get('source_trajectory_uuid') == trajectory.uuid
    assert structure.base.attributes.get('source_frame_index') == 3
    assert structure.base.attributes.get('source_step') == 150
    assert structure.base.attributes.get('max_force_deviation') == pytest.approx(0.20)
    assert structure.base.attributes.get('energy_std_per_atom') == pytest.approx(0.02)
    np.testing.assert_allclose(structure.get_ase().positions, trajectory.get_positions()[3])
    np.testing.assert_allclose(structure.cell, trajectory.get_cells()[3])
    assert structure.creator.pk == result.node.pk
    incoming = result.node.base.links.get_incoming().all_link_labels()
    assert sorted(incoming) == ['a__deviations', 'a__trajectory', 'b__deviations', 'b__trajectory', 'parameters']
    assert result.node.outputs.report.get_dict()['selection'] == list(result.structures)


def test_random_is_reproducible_and_skips_failed_frames(two_runs):
    first = run_select(two_runs, strategy='random', seed=11, max_total=5)
    again = run_select(two_runs, strategy='random', seed=11, max_total=5)
    other = run_select(two_runs, strategy='random', seed=12, max_total=5)
    assert list(first.structures) == list(again.structures)
    assert list(first.structures) != list(other.structures)
    allowed = {'a_000000', 'a_000001', 'a_000003', 'a_000004', 'a_000005', 'a_000006', 'b_000000', 'b_000001'}
    assert set(first.structures) <= allowed and len(first.structures) == 5
    only_candidates = run_select(two_runs, strategy='random', include_accurate=False)
    assert set(only_candidates.structures) == allowed - {'a_000000', 'a_000004'}


def test_duplicated_frames_are_dropped(aiida_profile):
    frames = si_frames(4, seed=3)
    frames = [frames[0], frames[1], frames[0].copy(), frames[2], frames[2].copy()]  # frame 2 is an exact copy of 0
    frames[4].positions[0] += 1e-7  # frame 4 is a near copy of 3
    trajectory, deviations = exploration_nodes(frames, [0.20, 0.10, 0.21, 0.15, 0.14])
    runs = {'md': {'trajectory': trajectory.store(), 'deviations': deviations.store()}}
    kept = run_select(runs, strategy='trust', dedup_threshold=1e-4, descriptor='radial')
    # the copy (0.21) outranks its original (0.20); the near copy 4 (0.14) loses to frame 3 (0.15)
    assert list(kept.structures) == ['md_000002', 'md_000003', 'md_000001']
    assert kept.report['duplicates'] == {'md_000000': 'md_000002', 'md_000004': 'md_000003'}
    exact_only = run_select(runs, strategy='trust', dedup_threshold=0.0, descriptor='radial')
    assert list(exact_only.structures) == ['md_000002', 'md_000003', 'md_000004', 'md_000001']
    assert run_select(runs, strategy='trust').report['n_selected'] == 5


def test_direct_covers_both_phases(aiida_profile):
    compressed = si_frames(6, seed=4, scale=[0.9] * 6)
    expanded = si_frames(6, seed=5, scale=[1.1] * 6)
    trajectory, deviations = exploration_nodes(compressed + expanded, [0.1] * 12)
    runs = {'md': {'trajectory': trajectory.store(), 'deviations': deviations.store()}}
    result = run_select(runs, strategy='direct', n_clusters=2, k_per_cluster=2)
    frames = sorted(s.base.attributes.get('source_frame_index') for s in result.structures.values())
    assert len(frames) == 4
    assert sum(frame < 6 for frame in frames) == 2  # two from each phase
    clusters = {s.base.attributes.get('cluster') for s in result.structures.values()}
    assert clusters == {0, 1}
    assert result.report['direct']['n_clusters'] == 2
    by_max_total = run_select(runs, strategy='direct', max_total=2)
    assert {s.base.attributes.get('source_frame_index') < 6 for s in by_max_total.structures.values()} == {True, False}


def test_maxvol_with_a_mace_potential_and_its_training_set(aiida_profile, tmp_path, tiny_mace_model):
    from aiida_sianode.data.dataset import build_dataset
    from aiida_sianode.data.label import LabelData
    from aiida_sianode.data.potential import PotentialData

    level = {'code': 'gpaw', 'method': 'PBE', 'basis': 'plane-wave', 'cutoff_ev': 300, 'kpoint_spacing': 0.3}
    training_frames = si_frames(3, seed=6)
    labels = [
        LabelData(
            atoms, energy=-40.0, forces=np.zeros((8, 3)), level_of_theory=level, source={'kind': 'test', 'frame': i}
        ).store()
        for i, atoms in enumerate(training_frames)
    ]
    dataset = build_dataset(labels, valid_fraction=0.0)
    potential = PotentialData.from_model_file(tiny_mace_model(), training_set_uuid=dataset.uuid).store()

    # frames 0-2: the training frames themselves; 3: strongly compressed; 4: strongly expanded
    novel = si_frames(2, seed=7, scale=[0.85, 1.15])
    trajectory, deviations = exploration_nodes(training_frames + novel, [0.1] * 5)
    runs = {'md': {'trajectory': trajectory.store(), 'deviations': deviations.store()}}
    result = run_select(runs, strategy='maxvol', potential=potential, grade_threshold=1.5)
    grades = result.report['runs']['md']['grades']
    assert max(grades[:3]) <= 1 + DEFAULT_PARAMETERS['maxvol_tol'] + 1e-9  # environments of the training set
    assert min(grades[3:]) > 1.5
    assert sorted(result.report['runs']['md']['selected']) == [3, 4]
    assert result.report['maxvol']['n_training_frames'] == 3
    assert result.report['maxvol']['n_training_environments'] == 24
    assert result.report['training_set_uuid'] == dataset.uuid  # found through the potential
    for structure in result.structures.values():
        assert structure.base.attributes.get('extrapolation_grade') > 1.5
    assert {'potential', 'training_set'} <= set(result.node.base.links.get_incoming().all_link_labels())

    carbon = si_frames(1, seed=8)[0]
    carbon.symbols[0] = 'C'
    trajectory, deviations = exploration_nodes([carbon], [0.1])
    with pytest.raises(ValueError, match=r"no parameters for the elements \['C'\]"):
        run_select({'c': {'trajectory': trajectory, 'deviations': deviations}}, strategy='maxvol', potential=potential)
    # trust levels need no descriptors, so the potential's elements do not matter there
    trusted = run_select({'c': {'trajectory': trajectory, 'deviations': deviations}}, potential=potential)
    assert list(trusted.structures) == ['c_000000']


def test_select_from_an_exploration_process_node(aiida_profile):
    _, node = run_get_node(synthetic_exploration, seed=orm.Int(1), deviations=orm.List(DEVIATIONS_A[:7]))
    structures, report = select_from_exploration(node, {'strategy': 'trust', 'max_total': 2, 'seed': 0})
    assert list(structures) == [f'run_{node.pk}_000003', f'run_{node.pk}_000006']
    assert report['runs'][f'run_{node.pk}']['counts'] == {'accurate': 2, 'candidate': 4, 'failed': 1}
    named = run_select({'hot': node}, strategy='trust', max_total=1)
    assert list(named.structures) == ['hot_000003']

    _, grid = run_get_node(
        synthetic_exploration_grid, deviations_a=orm.List(DEVIATIONS_A[:7]), deviations_b=orm.List(DEVIATIONS_B)
    )
    structures, report = select_from_exploration(grid, {'strategy': 'trust', 'max_per_run': 1})
    assert list(structures) == ['si_900K_000001', 'si_600K_000003']
    assert sorted(report['runs']) == ['si_600K', 'si_900K']
    assert report['runs']['si_900K']['trajectory_uuid'] == grid.outputs.trajectories.si_900K.uuid


def test_bad_input_is_refused_before_anything_runs(two_runs):
    with pytest.raises(ValueError, match='unknown selection parameters: colour'):
        run_select(two_runs, colour='red')
    with pytest.raises(ValueError, match='unknown strategy `best`'):
        run_select(two_runs, strategy='best')
    with pytest.raises(ValueError, match='must be below the upper one'):
        run_select(two_runs, lower=0.3, upper=0.2)
    with pytest.raises(ValueError, match='direct strategy needs'):
        validate_parameters({'strategy': 'direct'})
    with pytest.raises(ValueError, match='max_total'):
        run_select(two_runs, max_total=-1)
    trajectory, deviations = exploration_nodes(si_frames(2, 0), [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match='has shape \\(3,\\) but the trajectory has 2 frames'):
        run_select({'x': {'trajectory': trajectory, 'deviations': deviations}})
    with pytest.raises(ValueError, match='reserved'):
        run_select({'parameters': two_runs['a']})
    # the calcfunction called directly fails with an exit code naming the problem
    _, node = run_get_node(select_frames, parameters=orm.Dict({'lower': -1}), **two_runs)
    assert node.exit_status == 201
    assert 'lower' in node.exit_message
    _, node = run_get_node(select_frames, parameters=orm.Dict({'descriptor': 'mace'}), **two_runs)
    assert node.exit_status == 203
