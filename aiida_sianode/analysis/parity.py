"""Parity plots: predicted against reference (DFT) energies per atom, force components and stresses.

Plain numpy + matplotlib (the ``Agg`` backend, no display needed); no AiiDA import. Inputs in eV/atom, eV/Å and
eV/Å^3; the RMSE in each panel's legend is in meV/atom, meV/Å and meV/Å^3.
"""

from __future__ import annotations

import pathlib

import numpy as np

__all__ = ('parity_plot', 'rmse')


def rmse(reference, predicted) -> float:
    """Root-mean-square difference of two equally shaped arrays (same unit as the inputs)."""
    reference, predicted = np.asarray(reference, dtype=float), np.asarray(predicted, dtype=float)
    if reference.shape != predicted.shape:
        raise ValueError(f'reference and predicted shapes differ: {reference.shape} != {predicted.shape}')
    if reference.size == 0:
        raise ValueError('no values to compare')
    return float(np.sqrt(np.mean((predicted - reference) ** 2)))


def _panel(axis, reference, predicted, quantity: str, unit: str, milli_unit: str, name: str) -> float:
    error = rmse(reference, predicted)
    low = float(min(reference.min(), predicted.min()))
    high = float(max(reference.max(), predicted.max()))
    pad = 0.05 * (high - low) if high > low else max(abs(high), 1.0) * 0.05
    limits = (low - pad, high + pad)
    axis.plot(limits, limits, color='0.6', linewidth=1.0, linestyle='--', zorder=1)
    axis.scatter(
        reference,
        predicted,
        s=10 if reference.size < 2000 else 3,
        alpha=0.7,
        edgecolors='none',
        label=f'{name}: RMSE {1000 * error:.4g} {milli_unit} (n={reference.size})',
        zorder=2,
    )
    axis.set_xlim(limits)
    axis.set_ylim(limits)
    axis.set_aspect('equal')
    axis.set_xlabel(f'reference {quantity} ({unit})')
    axis.set_ylabel(f'predicted {quantity} ({unit})')
    axis.legend(loc='upper left', fontsize='small', frameon=False)
    return error


def parity_plot(
    reference: dict,
    predicted: dict,
    path,
    *,
    title: str | None = None,
    name: str = 'MACE',
    dpi: int = 150,
) -> dict:
    """Draw the parity plot of ``predicted`` against ``reference`` and save it as PNG at ``path``.

    :param reference: ``{'e_per_atom': (n_frames,) eV/atom, 'forces': (n_components,) eV/Å, 'stress': (n,) eV/Å^3}``;
        ``stress`` may be empty or missing, then no stress panel is drawn.
    :param predicted: the same keys and shapes.
    :param title: figure title (for example the potential and the split).
    :param name: legend name of the predictions.
    :return: ``{'path', 'rmse_e_per_atom_mev', 'rmse_f_mev_a', 'rmse_stress_mev_a3' or None}``.
    """
    import matplotlib

    matplotlib.use('Agg')
    from matplotlib import pyplot

    energies = [np.asarray(reference['e_per_atom'], dtype=float), np.asarray(predicted['e_per_atom'], dtype=float)]
    forces = [np.asarray(reference['forces'], dtype=float), np.asarray(predicted['forces'], dtype=float)]
    stresses = [
        np.asarray(reference.get('stress', []), dtype=float),
        np.asarray(predicted.get('stress', []), dtype=float),
    ]
    if energies[0].size == 0:
        raise ValueError('no frames to plot')
    panels = 3 if stresses[0].size else 2
    figure, axes = pyplot.subplots(1, panels, figsize=(4.6 * panels, 4.6), constrained_layout=True)
    try:
        result = {
            'path': str(path),
            'rmse_e_per_atom_mev': 1000 * _panel(axes[0], *energies, 'energy', 'eV/atom', 'meV/atom', name),
            'rmse_f_mev_a': 1000 * _panel(axes[1], *forces, 'force component', 'eV/Å', 'meV/Å', name),
            'rmse_stress_mev_a3': None,
        }
        if panels == 3:
            result['rmse_stress_mev_a3'] = 1000 * _panel(
                axes[2], *stresses, 'stress component', 'eV/Å³', 'meV/Å³', name
            )
        if title:
            figure.suptitle(title)
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(str(path), dpi=dpi, format='png')
    finally:
        pyplot.close(figure)
    return result
