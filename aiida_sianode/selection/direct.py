"""DIRECT sampling: DImensionality-Reduced Encoded Clusters with sTratified sampling.

After Qi et al., npj Comput. Mater. 10, 43 (2024): a configuration pool is covered by picking a few frames from
every region of descriptor space, rather than the most uncertain ones.

1. encode: one descriptor vector per frame (mean over its atoms), standardised per feature, projected on the
   principal components that together explain ``explained_variance`` of the variance, each component weighted by
   its explained-variance ratio (so that minor components count less in the distances);
2. cluster with BIRCH (:class:`sklearn.cluster.Birch`): either a fixed number of clusters (the BIRCH threshold is
   halved until there are at least that many subclusters, which are then merged by agglomerative clustering, or
   by weighted k-means when there are more than :data:`AGGLOMERATIVE_MAX_SUBCLUSTERS`: see :func:`birch_clusters`),
   or every BIRCH subcluster of radius ``threshold`` is a cluster;
3. stratified sampling: the ``k`` frames nearest each cluster's centroid. Every cluster gets a pick.

Everything here is deterministic: the same features give the same picks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

#: How many times the BIRCH threshold may be halved to reach the requested number of subclusters.
MAX_THRESHOLD_HALVINGS = 40


@dataclass
class Encoding:
    """Frames in the weighted principal-component space."""

    features: np.ndarray
    """``(n_frames, n_components)`` weighted principal-component scores."""
    n_components: int
    explained_variance: float
    """Fraction of the standardised variance the kept components explain."""


def encode(features: np.ndarray, explained_variance: float = 0.95, weighted: bool = True) -> Encoding:
    """Standardise ``features`` (``n_frames x d``), keep the principal components up to ``explained_variance``,
    and (with ``weighted``) scale each component's scores by its explained-variance ratio."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    features = _as_features(features)
    if not 0 < explained_variance <= 1:
        raise ValueError(f'explained_variance must be in (0, 1], got {explained_variance!r}')
    if len(features) < 2:
        return Encoding(features=np.zeros((len(features), 1)), n_components=1, explained_variance=1.0)
    standard = StandardScaler().fit_transform(features)
    if not np.any(standard):
        # Every frame has the same descriptor: one point, nothing to decompose.
        return Encoding(features=np.zeros((len(features), 1)), n_components=1, explained_variance=1.0)
    n_components = explained_variance if explained_variance < 1 else min(standard.shape)
    pca = PCA(n_components=n_components, svd_solver='full')
    scores = pca.fit_transform(standard)
    ratios = pca.explained_variance_ratio_
    if weighted:
        scores = scores * ratios
    return Encoding(features=scores, n_components=int(pca.n_components_), explained_variance=float(ratios.sum()))


def _as_features(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=float)
    if features.ndim != 2:
        raise ValueError(f'frame features must be 2-d (n_frames x d), got shape {features.shape}')
    if len(features) == 0:
        raise ValueError('there are no frames to sample from')
    if not np.all(np.isfinite(features)):
        raise ValueError('frame features contain NaN or infinite values')
    return features


#: Up to this many BIRCH subclusters are merged by agglomerative (Ward) clustering, as scikit-learn's ``Birch`` does
#: with a fixed ``n_clusters``; its cost grows with the square of the subclusters. Above it the threshold is raised
#: until there are at most ``max(2 * n_clusters, AGGLOMERATIVE_MAX_SUBCLUSTERS)`` subclusters, and more than this
#: many are merged by k-means weighted by the frames in each (linear in the subclusters per iteration).
AGGLOMERATIVE_MAX_SUBCLUSTERS = 5000
#: Bisections of the BIRCH threshold (in log scale) to bring the subclusters into that window.
MAX_THRESHOLD_BISECTIONS = 12


def _birch_tree(points: np.ndarray, threshold: float):
    """BIRCH's tree of subclusters of radius ``threshold`` (no global step, no labels)."""
    from sklearn.cluster import Birch

    return Birch(threshold=threshold, n_clusters=None, compute_labels=False).fit(points)


def birch_clusters(points: np.ndarray, n_clusters: int | None = None, threshold: float | None = None):
    """Cluster ``points`` with BIRCH; return ``(labels, threshold_used)``.

    Give ``n_clusters`` (a fixed count; capped at the number of distinct points) or ``threshold`` (the subcluster
    radius; every subcluster is a cluster). With ``n_clusters``, ``threshold`` is the first BIRCH threshold tried
    (default: a fifth of the points' RMS distance from their mean) and is halved until there are enough subclusters;
    the subclusters are then merged into ``n_clusters`` clusters on their centroids alone, and every point takes the
    cluster of its nearest subcluster centroid:

    - up to :data:`AGGLOMERATIVE_MAX_SUBCLUSTERS` subclusters by agglomerative (Ward) clustering, which is what
      scikit-learn's ``Birch(n_clusters=...)`` does (the same labels as before on small sets);
    - more (10^5 frames into thousands of clusters): the threshold is first bisected upwards to leave at most
      ``max(2 * n_clusters, AGGLOMERATIVE_MAX_SUBCLUSTERS)`` subclusters, then k-means (``random_state=0``, one
      k-means++ start) weighted by the points of each subcluster merges them. Both steps are linear in the points.

    Deterministic: the same points give the same labels.
    """
    from sklearn.exceptions import ConvergenceWarning

    if n_clusters is None and threshold is None:
        raise ValueError('give n_clusters or threshold for the BIRCH clustering')
    if threshold is not None and (not np.isfinite(threshold) or threshold <= 0):
        raise ValueError(f'the BIRCH threshold must be a finite number > 0, got {threshold!r}')
    if n_clusters is None:
        from sklearn.cluster import Birch

        birch = Birch(threshold=threshold, n_clusters=None).fit(points)
        return birch.labels_.astype(int), float(threshold)
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, int | np.integer) or n_clusters < 1:
        raise ValueError(f'n_clusters must be a whole number >= 1, got {n_clusters!r}')
    distinct = len(np.unique(points, axis=0))
    n_clusters = min(int(n_clusters), distinct)
    if n_clusters == 1:
        return np.zeros(len(points), dtype=int), float(threshold or 0.0)
    spread = float(np.sqrt(np.mean(np.sum((points - points.mean(axis=0)) ** 2, axis=1))))
    current = threshold if threshold is not None else max(spread / 5, np.finfo(float).tiny)
    for _ in range(MAX_THRESHOLD_HALVINGS):
        birch = _birch_tree(points, current)
        if len(birch.subcluster_centers_) >= n_clusters:
            break
        current /= 2
    most = max(2 * n_clusters, AGGLOMERATIVE_MAX_SUBCLUSTERS)
    if len(birch.subcluster_centers_) > most:
        # too many subclusters for the merge: bisect (log scale) between this threshold and the last one that gave
        # too few, keeping the largest threshold that still gives at least n_clusters subclusters
        low, high = current, current * 2
        for _ in range(MAX_THRESHOLD_BISECTIONS):
            middle = float(np.sqrt(low * high))
            tree = _birch_tree(points, middle)
            if len(tree.subcluster_centers_) < n_clusters:
                high = middle
                continue
            low, birch, current = middle, tree, middle
            if len(tree.subcluster_centers_) <= most:
                break
    centres = birch.subcluster_centers_
    nearest = birch.predict(points)  # every point's subcluster (n_clusters=None: the subcluster index)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ConvergenceWarning)
        if len(centres) <= AGGLOMERATIVE_MAX_SUBCLUSTERS:
            from sklearn.cluster import AgglomerativeClustering

            merged = AgglomerativeClustering(n_clusters=n_clusters).fit(centres).labels_
        else:
            from sklearn.cluster import KMeans

            weights = np.bincount(nearest, minlength=len(centres)).astype(float)
            kmeans = KMeans(n_clusters=n_clusters, n_init=1, random_state=0)
            merged = kmeans.fit(centres, sample_weight=weights).labels_
    return merged[nearest].astype(int), float(current)


@dataclass
class DirectSelection:
    """The result of :func:`direct_sample`."""

    selected: np.ndarray
    """Picked frames, stratified: the frame nearest each cluster's centroid (largest clusters first), then the
    second nearest of each cluster, and so on."""
    labels: np.ndarray
    """Cluster of every frame."""
    n_clusters: int
    distances: np.ndarray
    """Distance of every frame to its cluster's centroid in the encoded space."""
    encoding: Encoding
    threshold: float
    """The BIRCH threshold that made the clusters."""


def direct_sample(
    features: np.ndarray,
    n_clusters: int | None = None,
    threshold: float | None = None,
    k: int = 1,
    explained_variance: float = 0.95,
    weighted: bool = True,
) -> DirectSelection:
    """Pick ``k`` frames per BIRCH cluster of the encoded ``features`` (``n_frames x d``, one row per frame).

    :param n_clusters: number of clusters; or give ``threshold`` (BIRCH subcluster radius in the encoded space).
    :param k: frames per cluster (all of a smaller cluster).
    :param explained_variance: keep principal components up to this fraction of the variance.
    :param weighted: weight the components by their explained-variance ratio.
    """
    features = _as_features(features)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f'k (frames per cluster) must be a whole number >= 1, got {k!r}')
    if n_clusters is None and threshold is None:
        raise ValueError('give n_clusters or threshold for the BIRCH clustering')
    encoding = encode(features, explained_variance=explained_variance, weighted=weighted)
    labels, used = birch_clusters(encoding.features, n_clusters=n_clusters, threshold=threshold)
    clusters, labels, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    # each cluster's members in frame order, from one stable sort (not one pass over all frames per cluster)
    members = np.split(np.argsort(labels, kind='stable'), np.cumsum(sizes)[:-1])
    centroids = np.stack([encoding.features[rows].mean(axis=0) for rows in members])
    distances = np.linalg.norm(encoding.features - centroids[labels], axis=1)
    ranked = [rows[np.lexsort((rows, distances[rows]))][:k] for rows in members]
    by_size = sorted(range(len(clusters)), key=lambda cluster: (-sizes[cluster], cluster))
    selected = [
        int(ranked[cluster][depth]) for depth in range(k) for cluster in by_size if depth < len(ranked[cluster])
    ]
    return DirectSelection(
        selected=np.asarray(selected, dtype=int),
        labels=labels.astype(int),
        n_clusters=len(clusters),
        distances=distances,
        encoding=encoding,
        threshold=used,
    )
