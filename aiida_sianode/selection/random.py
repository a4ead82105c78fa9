"""Random frame selection: the baseline every informed strategy should beat."""

from __future__ import annotations

import numpy as np


def random_sample(n_frames: int, n_select: int | None = None, seed: int = 0) -> np.ndarray:
    """Return ``n_select`` distinct frame indices out of ``n_frames`` in a random order fixed by ``seed``.

    ``n_select=None`` (or more than ``n_frames``) returns a permutation of all frames: the caller's caps then take
    the first ones. The same ``seed`` always gives the same order.
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, int | np.integer) or n_frames < 0:
        raise ValueError(f'n_frames must be a whole number >= 0, got {n_frames!r}')
    if n_select is not None and (
        isinstance(n_select, bool) or not isinstance(n_select, int | np.integer) or n_select < 0
    ):
        raise ValueError(f'n_select must be a whole number >= 0 or None, got {n_select!r}')
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f'seed must be a whole number >= 0, got {seed!r}')
    order = np.random.default_rng(seed).permutation(int(n_frames))
    return order if n_select is None else order[: int(n_select)]
