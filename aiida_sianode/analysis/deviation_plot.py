"""Plot committee uncertainty against MD time, with the trust levels; matplotlib only, no AiiDA.

The top panel shows each run's max atomic force deviation (eV/Å) against time, over three bands: *accurate*
(below the lower trust level), *candidate* (between the levels) and *failed* (at or above the upper level). A run
that stopped early is marked with a cross at its last frame and its stop reason. The bottom panel shows the
instantaneous temperature (K), when the runs carry one.
"""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: band colours: accurate, candidate, failed
BAND_COLOURS = ('#d9f0d3', '#fff2b2', '#f4c7c3')


def _time_axis(runs: Sequence[Mapping[str, Any]]) -> tuple[float, str]:
    """Return the factor from fs and the unit name: ps once the longest run passes 5 ps."""
    longest = max((float(np.nanmax(run['time_fs'])) for run in runs if len(run['time_fs'])), default=0.0)
    return (1e-3, 'ps') if longest > 5000 else (1.0, 'fs')


def plot_deviation(
    runs: Sequence[Mapping[str, Any]],
    lower: float | None = None,
    upper: float | None = None,
    *,
    title: str | None = None,
    log_scale: bool | None = None,
    path: str | pathlib.Path | None = None,
    dpi: int = 150,
):
    """Draw max force deviation against time for one or more runs; return the matplotlib ``Figure``.

    :param runs: one mapping per run with ``time_fs`` and ``max_force_deviation`` (eV/Å) arrays, and optionally
        ``label`` (legend text), ``temperature`` (K, per frame) and ``stop_reason`` (marked unless ``completed``).
    :param lower: lower trust level (eV/Å), drawn when given.
    :param upper: upper trust level (eV/Å), drawn when given.
    :param log_scale: logarithmic deviation axis; ``None`` chooses it when the positive values span more than two
        decades.
    :param path: write the figure there (PNG, PDF or SVG, from the suffix).
    :raises ValueError: no runs, arrays of different lengths, or ``lower >= upper``.
    """
    from matplotlib.figure import Figure

    runs = list(runs)
    if not runs:
        raise ValueError('nothing to plot: no runs')
    for run in runs:
        if len(run['time_fs']) != len(run['max_force_deviation']):
            raise ValueError(f'run {run.get("label", "")!r}: time_fs and max_force_deviation differ in length')
    if lower is not None and upper is not None and not lower < upper:
        raise ValueError(f'the lower trust level {lower} must be below the upper one {upper}')

    factor, unit = _time_axis(runs)
    with_temperature = any(run.get('temperature') is not None and len(run['temperature']) for run in runs)
    figure = Figure(figsize=(7.5, 5.5 if with_temperature else 4.0), layout='constrained')
    if with_temperature:
        axis, temperature_axis = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1.4))
    else:
        axis, temperature_axis = figure.subplots(1, 1), None

    values = np.concatenate([np.asarray(run['max_force_deviation'], dtype=float) for run in runs])
    positive = values[np.isfinite(values) & (values > 0)]
    levels = [level for level in (lower, upper) if level is not None and level > 0]
    if log_scale is None:
        spread = np.concatenate([positive, levels]) if levels else positive
        log_scale = spread.size > 1 and spread.max() / spread.min() > 100
    top = max([*positive.tolist(), *levels, 1e-3]) * (3.0 if log_scale else 1.15)
    bottom = (min([*positive.tolist(), *levels]) / 3.0 if positive.size or levels else 1e-4) if log_scale else 0.0

    if log_scale:
        axis.set_yscale('log')
    edges = [bottom, lower if lower is not None else bottom, upper if upper is not None else top, top]
    names = ('accurate', 'candidate', 'failed')
    for (low, high), colour, name in zip(itertools.pairwise(edges), BAND_COLOURS, names):
        if high > low:
            axis.axhspan(low, high, color=colour, zorder=0, label=name)
    for level, name in ((lower, 'lower'), (upper, 'upper')):
        if level is not None:
            axis.axhline(level, color='0.3', linestyle='--', linewidth=1.0, zorder=1)
            axis.annotate(
                f'{name} {level:g} eV/Å',
                xy=(1.0, level),
                xycoords=('axes fraction', 'data'),
                xytext=(-4, 3),
                textcoords='offset points',
                ha='right',
                fontsize=8,
                color='0.25',
            )

    for index, run in enumerate(runs):
        time = np.asarray(run['time_fs'], dtype=float) * factor
        deviation = np.asarray(run['max_force_deviation'], dtype=float)
        label = run.get('label') or f'run {index}'
        reason = run.get('stop_reason')
        if reason and reason != 'completed':
            label = f'{label} (stopped: {reason})'
        (line,) = axis.plot(time, deviation, marker='.', markersize=4, linewidth=1.2, label=label, zorder=3)
        if reason and reason != 'completed' and time.size:
            axis.plot(time[-1], deviation[-1], marker='x', markersize=9, color=line.get_color(), zorder=4)
        if temperature_axis is not None and run.get('temperature') is not None:
            temperature_axis.plot(time, np.asarray(run['temperature'], dtype=float), color=line.get_color(), lw=1.0)

    axis.set_ylim(bottom, top)
    axis.set_ylabel('max force deviation (eV/Å)')
    axis.legend(fontsize=8, loc='upper left', ncols=2 if len(runs) > 4 else 1)
    if title:
        axis.set_title(title)
    if temperature_axis is not None:
        temperature_axis.set_ylabel('T (K)')
        temperature_axis.set_xlabel(f'time ({unit})')
    else:
        axis.set_xlabel(f'time ({unit})')
    if path is not None:
        figure.savefig(path, dpi=dpi)
    return figure
