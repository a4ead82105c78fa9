"""Per-atom and per-frame descriptors for frame selection.

* :func:`mace_descriptors`: the invariant node features of a MACE model (``MACECalculator.get_descriptors``), one
  row per atom. The model that drives the exploration is the natural choice: its features are what it has learnt
  to tell environments apart by.
* :func:`radial_descriptors`: a model-free fallback (first iteration, no potential yet): per atom and per
  neighbour element, Gaussian-smeared counts of neighbour distances inside ``r_max``, smoothly cut off, plus a
  one-hot code of the atom's own element.
* :func:`mean_descriptors`: one vector per frame, the mean over its atoms, optionally per element.

mace and torch are imported only inside :func:`mace_descriptors`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mace_descriptors(atoms_list: Sequence, calculator, num_layers: int = -1) -> list[np.ndarray]:
    """Return the invariant MACE descriptors ``(n_atoms, d)`` of every frame in ``atoms_list``.

    :param calculator: a mace ``MACECalculator`` (e.g. ``PotentialData.get_calculator()``); for a committee
        calculator the first member's descriptors are used, so that all frames share one descriptor space.
    :param num_layers: how many interaction layers to take the features of (``-1``: all).
    """
    if not hasattr(calculator, 'get_descriptors'):
        raise TypeError(f'{type(calculator).__name__} has no get_descriptors(); pass a mace MACECalculator')
    descriptors = []
    for atoms in atoms_list:
        values = calculator.get_descriptors(atoms, invariants_only=True, num_layers=num_layers)
        if isinstance(values, list):
            values = values[0]
        descriptors.append(np.asarray(values, dtype=float).reshape(len(atoms), -1))
    return descriptors


def _cosine_cutoff(distances: np.ndarray, r_max: float) -> np.ndarray:
    return 0.5 * (np.cos(np.pi * distances / r_max) + 1.0) * (distances < r_max)


def radial_descriptors(
    atoms_list: Sequence,
    r_max: float = 5.0,
    n_bins: int = 12,
    elements: Sequence[str] | None = None,
    width: float | None = None,
) -> list[np.ndarray]:
    """Return model-free per-atom descriptors ``(n_atoms, n_el * (n_bins + 1))`` for every frame.

    For each atom: per neighbour element, Gaussians of width ``width`` (default: the bin spacing) centred on
    ``n_bins`` distances from 0.5 Å to ``r_max`` summed over its neighbours (weighted by a cosine cutoff), then a
    one-hot code of its own element. ``elements`` fixes the element order (default: all elements in the frames,
    sorted), so that descriptors of different frames are comparable.
    """
    from ase.data import chemical_symbols
    from ase.neighborlist import neighbor_list

    if not np.isfinite(r_max) or r_max <= 0.5:
        raise ValueError(f'r_max must be a finite number above 0.5 Å, got {r_max!r}')
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f'n_bins must be a whole number >= 1, got {n_bins!r}')
    if elements is None:
        elements = sorted({symbol for atoms in atoms_list for symbol in atoms.get_chemical_symbols()})
    element_index = np.full(len(chemical_symbols), -1)
    for position, symbol in enumerate(elements):
        element_index[chemical_symbols.index(symbol)] = position
    n_elements = len(elements)
    centres = np.linspace(0.5, r_max, n_bins)
    sigma = width or (centres[1] - centres[0] if n_bins > 1 else r_max / 4)
    descriptors = []
    for atoms in atoms_list:
        species = element_index[atoms.numbers]
        if np.any(species < 0):
            missing = sorted(set(np.asarray(atoms.get_chemical_symbols())[species < 0]))
            raise ValueError(f'frame has elements {missing} that are not in elements={list(elements)}')
        first, second, distance = neighbor_list('ijd', atoms, r_max)
        weights = _cosine_cutoff(distance, r_max)[:, None] * np.exp(
            -0.5 * ((distance[:, None] - centres[None, :]) / sigma) ** 2
        )
        radial = np.zeros((len(atoms), n_elements, n_bins))
        np.add.at(radial, (first, species[second]), weights)
        onehot = np.zeros((len(atoms), n_elements))
        onehot[np.arange(len(atoms)), species] = 1.0
        descriptors.append(np.hstack([radial.reshape(len(atoms), -1), onehot]))
    return descriptors


def mean_descriptors(
    per_atom: Sequence[np.ndarray],
    numbers: Sequence[np.ndarray] | None = None,
    elements: Sequence[int] | None = None,
) -> np.ndarray:
    """Return one descriptor per frame, ``(n_frames, d)``: the mean of its atoms' descriptors.

    With ``numbers`` (each frame's atomic numbers), the mean is taken per element and the means are concatenated
    in the order of ``elements`` (default: all atomic numbers present, sorted) -- ``(n_frames, n_el * d)``; an
    element absent from a frame contributes zeros.
    """
    if len(per_atom) == 0:
        raise ValueError('there are no frames')
    widths = {np.shape(block)[1] for block in per_atom}
    if len(widths) != 1:
        raise ValueError(f'frames have descriptors of different widths: {sorted(widths)}')
    if numbers is None:
        return np.stack([np.asarray(block, dtype=float).mean(axis=0) for block in per_atom])
    if len(numbers) != len(per_atom):
        raise ValueError(f'got atomic numbers for {len(numbers)} frames and descriptors for {len(per_atom)}')
    if elements is None:
        elements = sorted({int(number) for frame in numbers for number in frame})
    width = widths.pop()
    pooled = np.zeros((len(per_atom), len(elements) * width))
    for frame, (block, frame_numbers) in enumerate(zip(per_atom, numbers, strict=True)):
        block = np.asarray(block, dtype=float)
        frame_numbers = np.asarray(frame_numbers)
        if len(frame_numbers) != len(block):
            raise ValueError(f'frame {frame}: {len(frame_numbers)} atomic numbers but {len(block)} descriptor rows')
        for position, element in enumerate(elements):
            mask = frame_numbers == element
            if mask.any():
                pooled[frame, position * width : (position + 1) * width] = block[mask].mean(axis=0)
    return pooled
