"""Convergence criteria of a campaign beside the accurate fraction; plain Python on the iteration table's rows.

* **test-set RMSE**: the committee-mean force RMSE on the held-out ``test_set`` (meV/Å, from the training's
  ``committee_prediction.test`` metrics) falls below ``test_force_rmse``;
* **property**: a property of the explorations (the mass density of the explored frames, g/cm^3) moves less than
  its spread over the last ``property_iterations`` iterations: ``|p_n - p_(n-1)| < s_n`` for each of them. The
  spread is the standard deviation of the property over the exploration's MD runs (one value per run), so with
  several runs at one condition it measures how well the property is determined by this committee's MD.

:func:`convergence_reason` returns the name of the first criterion met (``test_rmse`` or ``property``), or ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Settings of these criteria (``None`` switches a criterion off); defaults in the campaign protocol's ``convergence``.
CRITERIA_KEYS = ('test_force_rmse', 'property', 'property_iterations')
PROPERTIES = ('density',)
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


def criteria_defaults(protocol: str | None = None) -> dict:
    """Return the defaults of :data:`CRITERIA_KEYS` from ``protocols/active_learning.yaml`` (one source for all)."""
    from aiida_sianode.campaign_spec import campaign_defaults

    convergence = campaign_defaults(protocol)['convergence']
    return {key: convergence[key] for key in CRITERIA_KEYS}


def validate_criteria(settings: Mapping) -> str | None:
    """Return a sentence naming the problem with the criteria's settings (missing keys take the protocol's
    defaults), or ``None``."""
    settings = {**criteria_defaults(), **settings}
    target = settings.get('test_force_rmse')
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float) or not target > 0):
        return f'test_force_rmse must be a positive number in meV/Å or null, got {target!r}'
    name = settings.get('property')
    if name is not None and name not in PROPERTIES:
        return f'unknown convergence property {name!r}; choose one of: {", ".join(PROPERTIES)}'
    window = settings['property_iterations']
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        return f'property_iterations must be a whole number >= 1, got {window!r}'
    return None


def test_force_rmse(metrics: Mapping) -> float | None:
    """Return the committee-mean force RMSE on the test set (meV/Å) from a committee's training metrics."""
    test = (metrics.get('committee_prediction') or {}).get('test') or {}
    value = test.get('rmse_f_mev_a')
    return None if value is None else float(value)


def property_moves_less_than_spread(values: Sequence[float], spreads: Sequence[float], iterations: int = 2) -> bool:
    """Return whether the last ``iterations`` changes of a property are each smaller than its spread then.

    ``values`` and ``spreads`` are one per iteration, oldest first; fewer than ``iterations + 1`` values is
    ``False`` (not enough history).
    """
    values = np.asarray(values, dtype=float)
    spreads = np.asarray(spreads, dtype=float)
    if values.shape != spreads.shape:
        raise ValueError(f'one spread per value is needed, got {values.size} values and {spreads.size} spreads')
    if values.size < iterations + 1:
        return False
    changes = np.abs(np.diff(values[-(iterations + 1) :]))
    return bool(np.all(np.isfinite(changes)) and np.all(changes < spreads[-iterations:]))


def convergence_reason(rows: Sequence[Mapping], settings: Mapping) -> str | None:
    """Return ``test_rmse`` or ``property`` when that criterion is met by the iteration table ``rows``, else ``None``.

    Reads ``test_force_rmse_mev_a`` of the last row, and the ``property`` entries (``value``, ``spread``) of the rows.
    Settings missing from ``settings`` take the campaign protocol's defaults.
    """
    if not rows:
        return None
    settings = {**criteria_defaults(), **settings}
    target = settings['test_force_rmse']
    measured = rows[-1].get('test_force_rmse_mev_a')
    if target is not None and measured is not None and measured < target:
        return 'test_rmse'
    if settings['property'] is not None:
        entries = [row.get('property') for row in rows if row.get('property')]
        if entries and property_moves_less_than_spread(
            [entry['value'] for entry in entries],
            [entry['spread'] for entry in entries],
            settings['property_iterations'],
        ):
            return 'property'
    return None


def mass_density(masses: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Return the mass density (g/cm^3) of frames with atomic ``masses`` (amu) and ``cells`` ``(n_frames, 3, 3)`` Å."""
    volumes = np.abs(np.linalg.det(np.asarray(cells, dtype=float)))
    return float(np.sum(masses)) / volumes * AMU_PER_A3_TO_G_PER_CM3


def property_over_runs(per_run: Sequence[float]) -> dict:
    """Return ``{'value': mean, 'spread': standard deviation (0 for one run), 'n_runs'}`` of per-run values."""
    values = np.asarray([value for value in per_run if np.isfinite(value)], dtype=float)
    if values.size == 0:
        return {'value': float('nan'), 'spread': float('nan'), 'n_runs': 0}
    return {
        'value': float(values.mean()),
        'spread': float(values.std(ddof=1)) if values.size > 1 else 0.0,
        'n_runs': int(values.size),
    }
