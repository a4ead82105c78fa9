"""Learning curves of active-learning strategies: labels needed to reach a target error, and their ratio.

A *curve* is one strategy's test error after each training, against the number of labels it was trained on:
``(n_labels, rmse)`` with ``n_labels`` increasing. Curves of several seeds are averaged per training (the seeds of
one strategy share the label budget, so their ``n_labels`` agree up to labels a strategy could not spend).

* :func:`labels_to_target`: the number of labels at which a curve first reaches a target error, interpolated
  linearly between the two trainings that straddle it (``None`` when it never does);
* :func:`mean_curve`: the mean and spread over seeds, training by training;
* :func:`label_ratio`: labels a strategy needs over those random needs, with a qualifier when either curve does not
  reach the target within the budget (then only a bound is known).

Plain numpy, no AiiDA; used by ``benchmarks/learning_efficiency.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _check_curve(n_labels: Sequence[float], rmse: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(n_labels, dtype=float).ravel()
    y = np.asarray(rmse, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f'a curve needs one error per label count, got {x.size} label counts and {y.size} errors')
    if x.size == 0:
        raise ValueError('the curve has no points')
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError(f'label counts must be finite and >= 0, got {x.tolist()}')
    if np.any(np.diff(x) < 0):
        raise ValueError(f'label counts must not decrease along a curve, got {x.tolist()}')
    return x, y


def labels_to_target(n_labels: Sequence[float], rmse: Sequence[float], target: float) -> float | None:
    """Return the number of labels at which the curve first has ``rmse <= target``, or ``None`` if it never does.

    Between the last training above the target and the first at or below it the curve is taken as linear, so the
    answer may fall between two label counts. A curve that starts at or below the target returns its first count.
    Non-finite errors (a failed training) are points that do not reach the target.
    """
    if not np.isfinite(target) or target <= 0:
        raise ValueError(f'the target error must be a finite number > 0, got {target!r}')
    x, y = _check_curve(n_labels, rmse)
    reached = np.flatnonzero(np.isfinite(y) & (y <= target))
    if reached.size == 0:
        return None
    first = int(reached[0])
    if first == 0 or not np.isfinite(y[first - 1]) or y[first - 1] == y[first]:
        return float(x[first])
    fraction = (y[first - 1] - target) / (y[first - 1] - y[first])
    return float(x[first - 1] + fraction * (x[first] - x[first - 1]))


@dataclass
class MeanCurve:
    """A strategy's curve averaged over seeds, training by training."""

    n_labels: np.ndarray
    """Mean number of labels of each training."""
    mean: np.ndarray
    """Mean error over the seeds (NaN where every seed failed)."""
    spread: np.ndarray
    """Standard deviation over the seeds (population, ``ddof=0``; 0 for one seed)."""
    n_seeds: np.ndarray
    """Seeds with a finite error at each training."""


def mean_curve(curves: Sequence[tuple[Sequence[float], Sequence[float]]]) -> MeanCurve:
    """Average ``[(n_labels, rmse), ...]`` (one per seed, all with the same number of trainings) point by point."""
    if not curves:
        raise ValueError('no curves to average')
    checked = [_check_curve(x, y) for x, y in curves]
    lengths = {x.size for x, _ in checked}
    if len(lengths) != 1:
        raise ValueError(f'the curves have different numbers of trainings: {sorted(lengths)}')
    xs = np.stack([x for x, _ in checked])
    ys = np.stack([y for _, y in checked])
    finite = np.isfinite(ys)
    counts = finite.sum(axis=0)
    with np.errstate(invalid='ignore'):
        mean = np.where(counts > 0, np.nansum(np.where(finite, ys, 0.0), axis=0) / np.maximum(counts, 1), np.nan)
        deviations = np.where(finite, ys - mean, 0.0)
        spread = np.where(counts > 0, np.sqrt((deviations**2).sum(axis=0) / np.maximum(counts, 1)), np.nan)
    return MeanCurve(n_labels=xs.mean(axis=0), mean=mean, spread=spread, n_seeds=counts)


@dataclass
class Ratio:
    """Labels a strategy needs over labels random needs for the same target."""

    value: float | None
    """The ratio, or the bound when ``qualifier`` is ``<`` or ``>``; ``None`` when neither curve reaches it."""
    qualifier: str
    """``=`` (both reach the target), ``<`` (only the strategy does: random's need is beyond its budget),
    ``>`` (only random does) or ``?`` (neither)."""

    def __str__(self) -> str:
        if self.value is None:
            return 'n/a (neither reaches the target)'
        prefix = '' if self.qualifier == '=' else f'{self.qualifier} '
        return f'{prefix}{self.value:.2f}'


def label_ratio(strategy_labels: float | None, random_labels: float | None, budget: float) -> Ratio:
    """Return ``strategy_labels / random_labels`` as a :class:`Ratio`.

    ``None`` means the curve did not reach the target within ``budget`` labels (the most either was given): then
    its need is only known to exceed ``budget``, and the ratio is a bound.
    """
    if not np.isfinite(budget) or budget <= 0:
        raise ValueError(f'the label budget must be a finite number > 0, got {budget!r}')
    for name, value in (('strategy', strategy_labels), ('random', random_labels)):
        if value is not None and (not np.isfinite(value) or value <= 0):
            raise ValueError(f'the {name} label count must be a finite number > 0 or None, got {value!r}')
    if strategy_labels is not None and random_labels is not None:
        return Ratio(strategy_labels / random_labels, '=')
    if strategy_labels is not None:
        return Ratio(strategy_labels / budget, '<')
    if random_labels is not None:
        return Ratio(budget / random_labels, '>')
    return Ratio(None, '?')
