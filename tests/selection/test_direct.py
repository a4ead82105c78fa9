"""DIRECT sampling: encoding, BIRCH clusters, and stratified picks that cover every cluster."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from aiida_sianode.selection.direct import direct_sample, encode


@pytest.fixture
def pool():
    """Five well-separated groups of frames of different sizes in a 16-d descriptor space."""
    rng = np.random.default_rng(5)
    centres = rng.normal(scale=8.0, size=(5, 16))
    sizes = [120, 60, 30, 15, 5]
    features = np.vstack([centre + rng.normal(size=(size, 16)) for centre, size in zip(centres, sizes)])
    truth = np.repeat(np.arange(5), sizes)
    return features, truth


def test_fixed_number_of_clusters_finds_the_groups_and_covers_each(pool):
    features, truth = pool
    result = direct_sample(features, n_clusters=5, k=2)
    assert result.n_clusters == 5
    assert adjusted_rand_score(truth, result.labels) == pytest.approx(1.0)
    assert len(result.selected) == 10
    assert sorted(np.bincount(result.labels[result.selected]).tolist()) == [2, 2, 2, 2, 2]
    # stratified order: one per cluster first, largest cluster first, then the second round
    first_round = result.labels[result.selected[:5]]
    assert sorted(first_round.tolist()) == [0, 1, 2, 3, 4]
    assert truth[result.selected[0]] == 0


def test_picks_are_nearest_their_centroid(pool):
    features, _ = pool
    result = direct_sample(features, n_clusters=5, k=1)
    points = result.encoding.features
    for index in result.selected:
        members = np.flatnonzero(result.labels == result.labels[index])
        centroid = points[members].mean(axis=0)
        nearest = members[np.argmin(np.linalg.norm(points[members] - centroid, axis=1))]
        assert index == nearest


def test_threshold_mode_covers_every_cluster_and_is_deterministic(pool):
    features, _ = pool
    result = direct_sample(features, threshold=0.05, k=1)
    assert result.n_clusters >= 5
    assert sorted(set(result.labels[result.selected].tolist())) == list(range(result.n_clusters))
    again = direct_sample(features, threshold=0.05, k=1)
    assert np.array_equal(result.selected, again.selected)


def test_small_clusters_give_all_their_frames_and_too_many_clusters_are_capped():
    features = np.array([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0]])
    result = direct_sample(features, n_clusters=2, k=3, explained_variance=1.0)
    assert sorted(result.selected.tolist()) == [0, 1, 2]
    capped = direct_sample(features, n_clusters=10, k=1)
    assert capped.n_clusters == 3
    assert sorted(capped.selected.tolist()) == [0, 1, 2]
    same = direct_sample(np.ones((4, 3)), n_clusters=2)
    assert same.n_clusters == 1 and len(same.selected) == 1


def test_encoding_keeps_components_to_the_variance_threshold():
    rng = np.random.default_rng(6)
    latent = rng.normal(size=(300, 2))
    features = latent @ rng.normal(size=(2, 10)) + 1e-3 * rng.normal(size=(300, 10))
    encoding = encode(features, explained_variance=0.99)
    assert encoding.n_components == 2
    assert encoding.explained_variance > 0.99
    unweighted = encode(features, explained_variance=0.99, weighted=False)
    assert np.var(unweighted.features[:, 0]) > np.var(encoding.features[:, 0])


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({}, 'n_clusters or threshold'),
        ({'n_clusters': 0}, 'n_clusters'),
        ({'threshold': -1.0}, 'threshold'),
        ({'n_clusters': 2, 'k': 0}, 'frames per cluster'),
        ({'n_clusters': 2, 'explained_variance': 1.5}, 'explained_variance'),
    ],
)
def test_bad_input_is_refused(pool, kwargs, message):
    with pytest.raises(ValueError, match=message):
        direct_sample(pool[0], **kwargs)
    with pytest.raises(ValueError, match='NaN'):
        direct_sample(np.array([[np.nan, 1.0]]), n_clusters=1)


def test_direct_picks_repeat_on_float32_mace_descriptors(tiny_mace_model):
    """The benchmark's path: float32 MACE descriptors computed twice are identical, and DIRECT, run twice through
    the strategy table with the per-run cap, picks the same frames in the same order."""
    from ase.build import bulk
    from mace.calculators import MACECalculator

    from aiida_sianode.campaign_spec import SelectionSettings
    from aiida_sianode.selection.descriptors import mace_descriptors
    from aiida_sianode.selection.strategies import Pool, pick
    from aiida_sianode.selection.trust import cap_selection

    frames = []
    for index in range(12):
        atoms = bulk('Si', 'diamond', a=5.3 + 0.03 * index, cubic=True)
        atoms.rattle(0.05 + 0.01 * index, seed=index)
        frames.append(atoms)
    groups = np.arange(12) // 4  # three "MD runs" of four frames
    path = tiny_mace_model(atomic_numbers=(14,))
    settings = SelectionSettings(
        strategy='direct', max_total=4, max_per_run=2, n_clusters=4, k_per_cluster=12, upper=None
    ).model_dump()
    orders, blocks = [], []
    for _ in range(2):
        calculator = MACECalculator(model_paths=str(path), device='cpu', default_dtype='float32')
        per_atom = mace_descriptors(frames, calculator)
        blocks.append(per_atom)
        pool = Pool(
            deviation=np.zeros(12), groups=groups, per_atom=lambda d=per_atom: d, numbers=list, element_numbers=[14]
        )
        picks = pick('direct', pool, settings)
        assert picks.details['n_clusters'] == 4
        orders.append(picks.order)
    for first, second in zip(*blocks, strict=True):
        np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(orders[0], orders[1])
    # the stratified order holds every frame once; the cap then keeps 4 frames, at most 2 per run
    assert sorted(orders[0].tolist()) == list(range(12))
    kept = cap_selection(orders[0], groups, max_per_group=2, max_total=4)
    assert len(kept) == 4 and np.bincount(groups[kept]).max() <= 2
