"""Descriptors: MACE invariant features of a tiny random model, the radial fallback, pooling per frame."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from aiida_sianode.selection.descriptors import mace_descriptors, mean_descriptors, radial_descriptors


@pytest.fixture
def frames():
    si = bulk('Si', 'diamond', a=5.43, cubic=True)
    rattled = si.copy()
    rattled.rattle(0.1, seed=1)
    lisi = si.copy()
    lisi.symbols[[0, 3]] = 'Li'
    return [si, rattled, lisi]


def test_mace_descriptors_shapes_and_invariance(frames, tiny_mace_model):
    from mace.calculators import MACECalculator

    path = tiny_mace_model()
    calculator = MACECalculator(model_paths=str(path), device='cpu', default_dtype='float64')
    descriptors = mace_descriptors(frames, calculator)
    assert [block.shape for block in descriptors] == [(8, 8), (8, 8), (8, 8)]  # 4 invariants x 2 layers
    # ideal diamond: every atom has the same environment; rattling makes them differ
    assert np.ptp(descriptors[0], axis=0).max() < 1e-10
    assert np.ptp(descriptors[1], axis=0).max() > 1e-6
    # the same frame rotated and translated gives the same descriptors
    moved = frames[1].copy()
    moved.rotate(33, 'z', rotate_cell=True)
    moved.translate([0.3, -0.2, 1.1])
    np.testing.assert_allclose(mace_descriptors([moved], calculator)[0], descriptors[1], atol=1e-8)
    # Li atoms are told apart from Si atoms
    li = frames[2].numbers == 3
    assert np.linalg.norm(descriptors[2][li].mean(0) - descriptors[2][~li].mean(0)) > 1e-3
    with pytest.raises(TypeError, match='get_descriptors'):
        mace_descriptors(frames, object())


def test_radial_descriptors_invariance_and_content(frames):
    blocks = radial_descriptors(frames, r_max=4.0, n_bins=8, elements=['Li', 'Si'])
    assert [block.shape for block in blocks] == [(8, 18), (8, 18), (8, 18)]
    # one-hot of the atom's own element in the last two columns
    np.testing.assert_array_equal(blocks[2][:, -2:].argmax(axis=1), (frames[2].numbers == 14).astype(int))
    # a pure Si frame has no Li neighbours
    assert np.all(blocks[0][:, :8] == 0)
    permuted = frames[1][[3, 1, 2, 0, 7, 5, 6, 4]]
    permuted.rotate(50, 'x', rotate_cell=True)
    moved_blocks = radial_descriptors([permuted], r_max=4.0, n_bins=8, elements=['Li', 'Si'])[0]
    np.testing.assert_allclose(moved_blocks, blocks[1][[3, 1, 2, 0, 7, 5, 6, 4]], atol=1e-10)
    with pytest.raises(ValueError, match="not in elements=\\['Si'\\]"):
        radial_descriptors(frames, elements=['Si'])


def test_mean_descriptors_overall_and_per_element():
    per_atom = [np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([[0.0, 2.0]])]
    np.testing.assert_allclose(mean_descriptors(per_atom), [[3.0, 4.0], [0.0, 2.0]])
    numbers = [np.array([3, 14, 14]), np.array([14])]
    np.testing.assert_allclose(
        mean_descriptors(per_atom, numbers=numbers), [[1.0, 2.0, 4.0, 5.0], [0.0, 0.0, 0.0, 2.0]]
    )
    with pytest.raises(ValueError, match='different widths'):
        mean_descriptors([np.ones((2, 2)), np.ones((2, 3))])
