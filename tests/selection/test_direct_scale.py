"""DIRECT's merge of many BIRCH subclusters by weighted k-means (the path 10^5 frames take), on a small pool with the
agglomerative limit lowered so that the path runs here in a second."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from aiida_sianode.selection import direct


@pytest.fixture
def phases():
    """2,000 frames around 20 phase centres in 32 dimensions (the benchmark's synthetic pool, mean-pooled)."""
    rng = np.random.default_rng(11)
    centres = rng.normal(scale=3.0, size=(20, 32))
    phase = rng.integers(0, 20, size=2000)
    return centres[phase] + rng.normal(scale=0.125, size=(2000, 32)), phase


def test_many_subclusters_are_merged_by_kmeans_deterministically(phases, monkeypatch):
    features, phase = phases
    trees = []
    original = direct._birch_tree

    def counted(points, threshold):
        tree = original(points, threshold)
        trees.append(len(tree.subcluster_centers_))
        return tree

    monkeypatch.setattr(direct, '_birch_tree', counted)
    monkeypatch.setattr(direct, 'AGGLOMERATIVE_MAX_SUBCLUSTERS', 30)
    result = direct.direct_sample(features, n_clusters=25, k=2)
    # the threshold was bisected until the subclusters were between n_clusters and 2 * n_clusters (k-means merges them)
    assert any(count > 50 for count in trees) and 25 <= trees[-1] <= 50, trees
    sizes = np.bincount(result.labels)
    assert result.n_clusters == 25 and len(sizes) == 25
    assert np.bincount(result.labels[result.selected], minlength=25).tolist() == np.minimum(sizes, 2).tolist()
    # every cluster lies within one phase, and every phase is picked
    assert all(len(set(phase[result.labels == cluster])) == 1 for cluster in range(25))
    assert len(set(phase[result.selected])) == 20
    again = direct.direct_sample(features, n_clusters=25, k=2)
    assert np.array_equal(result.selected, again.selected) and result.threshold == again.threshold


def test_small_pools_keep_the_agglomerative_merge(phases):
    """At most AGGLOMERATIVE_MAX_SUBCLUSTERS subclusters: the labels of scikit-learn's own Birch(n_clusters=...)."""
    from sklearn.cluster import Birch

    features, _ = phases
    result = direct.direct_sample(features, n_clusters=86, k=1)
    reference = Birch(threshold=result.threshold, n_clusters=86).fit(result.encoding.features).labels_
    assert adjusted_rand_score(reference, result.labels) == pytest.approx(1.0)
