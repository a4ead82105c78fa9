"""The random baseline: reproducible by seed, distinct indices, refuses bad input."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_sianode.selection.random import random_sample


def test_same_seed_same_picks_other_seed_other_picks():
    first = random_sample(1000, 20, seed=7)
    assert np.array_equal(first, random_sample(1000, 20, seed=7))
    assert not np.array_equal(first, random_sample(1000, 20, seed=8))
    assert len(set(first.tolist())) == 20
    assert first.min() >= 0 and first.max() < 1000


def test_more_than_available_gives_a_permutation():
    picks = random_sample(5, 50, seed=0)
    assert sorted(picks.tolist()) == [0, 1, 2, 3, 4]
    assert np.array_equal(random_sample(5, None, seed=0), picks)
    assert random_sample(0, 3).size == 0


@pytest.mark.parametrize(('args', 'message'), [((-1, 2), 'n_frames'), ((5, -2), 'n_select'), ((5, 2, -3), 'seed')])
def test_bad_input_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        random_sample(*args)
