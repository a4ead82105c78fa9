"""Write the held-out test structures of the README's main job (``workflows/si_lixsi_gpaw_test.extxyz``).

The demo campaign (``workflows/si_lixsi_gpaw.yaml``) explores an 8-atom c-Si cell and Li4Si8 by NVT MD at 300 and
900 K. Its test set holds the same two cells at the same two temperatures, built with other seeds than any structure
of the campaign and heated by :func:`xtb_convergence.heated_frame`: every atom displaced by its harmonic thermal
amplitude at T (Si 0.076 Å per component at 300 K, the Debye-Waller amplitude of c-Si; Li twice that) and the cell
strained at random by up to 1 % x sqrt(T / 300 K). They are not MD snapshots (no potential covers Li-Si before the
campaign has trained one); the campaign labels them once with its own labeler and never trains on them.

Run from the repository root: ``python benchmarks/demo_test_frames.py`` (deterministic: the same file every time).
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from xtb_convergence import heated_frame

OUTPUT = pathlib.Path(__file__).parents[1] / 'workflows' / 'si_lixsi_gpaw_test.extxyz'
#: (builder, parameters) of the explored cells; seeds 101-104 are used by no structure of the campaign.
CELLS = [('si-crystal', {'size': [1, 1, 1]}), ('lixsi', {'x': 0.5, 'size': [1, 1, 1]})]
TEMPERATURES = (300.0, 900.0)
SEEDS = (101, 102)


def test_frames() -> list:
    """Return the test structures: each cell at each temperature with each seed (8 frames)."""
    frames = []
    for kind, parameters in CELLS:
        for temperature in TEMPERATURES:
            for seed in SEEDS:
                atoms = heated_frame(kind, parameters, temperature, seed)
                atoms.info.update({'builder': kind, 'temperature_k': temperature, 'seed': seed})
                frames.append(atoms)
    return frames


def main() -> None:
    from ase.io import write

    frames = test_frames()
    write(OUTPUT, frames, format='extxyz')
    print(f'wrote {len(frames)} frames to {OUTPUT}')


if __name__ == '__main__':
    main()
