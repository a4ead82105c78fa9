"""Pictures of built structures (matplotlib with the Agg backend, ASE's ``plot_atoms``)."""

from __future__ import annotations

import pathlib

import numpy as np
from ase import Atoms


def save_picture(
    atoms: Atoms,
    path: str | pathlib.Path,
    rotation: str = '10x,-10y,0z',
    section: float | None = None,
    title: str | None = None,
    radii: float = 0.5,
) -> pathlib.Path:
    """Draw ``atoms`` (with its cell) into the PNG file ``path`` and return the path.

    ``rotation`` is ASE's rotation string; ``section`` (Å), when given, keeps only the atoms within ``section / 2``
    of the middle of the cell along z, to show the inside of a particle or a slab. ``radii`` scales the covalent
    radii of the drawn atoms.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from ase.visualize.plot import plot_atoms

    shown = atoms.copy()
    if section is not None:
        middle = 0.5 * shown.cell.array.sum(axis=0)[2]
        shown = shown[np.abs(shown.positions[:, 2] - middle) <= 0.5 * section]
    figure, axes = plt.subplots(figsize=(5, 5), dpi=90)
    plot_atoms(shown, axes, rotation=rotation, radii=radii, show_unit_cell=2)
    axes.set_axis_off()
    if title:
        axes.set_title(title, fontsize=10)
    figure.tight_layout()
    path = pathlib.Path(path)
    figure.savefig(path)
    plt.close(figure)
    return path
