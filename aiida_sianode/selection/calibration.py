"""Calibrated trust levels: how large is the committee's true force error for a given committee deviation?

Every frame a campaign labels gives, for free, the true error of the committee on that frame: the largest atomic
force error of the committee mean against the label, ``max_i |F_mean,i - F_label,i|`` (eV/Å), beside the committee's
max atomic force deviation ``d`` on the same frame (the quantity trust levels are set on). This module fits the
relation between the two:

* a **scale factor** through the origin, ``error = s * d``, by least squares (``s = sum(d e) / sum(d d)``): robust
  with a handful of pairs, and it extrapolates below the deviations seen (selected frames are candidates, so the
  pairs sit above the lower trust level);
* an **isotonic** (monotone non-decreasing) fit with scikit-learn, which needs no shape but more pairs; outside the
  deviations seen it is extended with the scale factor.

:func:`deviation_for_error` inverts either fit: the deviation at which the predicted error reaches a target, which is
what ``selection: {trust: auto, target_force_error: ...}`` uses as the lower trust level (and ``max_force_error`` as
the upper one). :func:`unreachable_lower_level` says when a fixed lower trust level lies below every deviation the
committee produced, so that no frame can ever be classed accurate. Plain numpy / scikit-learn, no AiiDA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

METHODS = ('scale', 'isotonic')
#: Fewest (deviation, error) pairs a calibration is fitted on.
MIN_PAIRS = 3


def true_max_force_error(predicted_forces: np.ndarray, label_forces: np.ndarray) -> float:
    """Return ``max_i |F_pred,i - F_label,i|`` (eV/Å) of one frame from two ``(natoms, 3)`` force arrays."""
    predicted = np.asarray(predicted_forces, dtype=float)
    reference = np.asarray(label_forces, dtype=float)
    if predicted.shape != reference.shape or predicted.ndim != 2 or predicted.shape[1] != 3:
        raise ValueError(
            f'the forces must be two (natoms, 3) arrays of the same shape, got {predicted.shape} and {reference.shape}'
        )
    return float(np.linalg.norm(predicted - reference, axis=1).max())


@dataclass
class Calibration:
    """A fitted relation between committee deviation ``d`` and true max force error ``e`` (both eV/Å).

    :ivar deviations: the ``d`` of the pairs the fit was made on.
    :ivar errors: the ``e`` of the same pairs.
    :ivar scale: least-squares factor through the origin, ``e ≈ scale * d``.
    :ivar isotonic_x: breakpoints (deviations) of the isotonic fit, increasing.
    :ivar isotonic_y: the fitted errors at ``isotonic_x``, non-decreasing.
    """

    deviations: np.ndarray
    errors: np.ndarray
    scale: float
    isotonic_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    isotonic_y: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_pairs(self) -> int:
        """Number of (deviation, error) pairs behind the fit."""
        return len(self.deviations)

    def predict(self, deviations, method: str = 'scale') -> np.ndarray:
        """Return the predicted true max force error (eV/Å) for committee ``deviations`` (eV/Å)."""
        _check_method(method)
        values = np.asarray(deviations, dtype=float)
        linear = self.scale * values
        if method == 'scale' or len(self.isotonic_x) < 2:
            return linear
        inside = (values >= self.isotonic_x[0]) & (values <= self.isotonic_x[-1])
        return np.where(inside, np.interp(values, self.isotonic_x, self.isotonic_y), linear)

    def deviation_for_error(self, target_error: float, method: str = 'scale') -> float:
        """Return the committee deviation (eV/Å) at which the predicted error reaches ``target_error`` (eV/Å).

        For the isotonic fit: the smallest deviation within the fitted range whose predicted error is at least the
        target (linear between breakpoints); a target outside the fitted errors falls back to the scale factor.
        """
        _check_method(method)
        if not target_error > 0:
            raise ValueError(f'the target error must be positive, got {target_error!r}')
        if method == 'isotonic' and len(self.isotonic_x) >= 2:
            x, y = self.isotonic_x, self.isotonic_y
            if y[0] <= target_error <= y[-1]:
                index = int(np.argmax(y >= target_error))
                if index == 0 or y[index] == y[index - 1]:
                    return float(x[index])
                fraction = (target_error - y[index - 1]) / (y[index] - y[index - 1])
                return float(x[index - 1] + fraction * (x[index] - x[index - 1]))
        return float(target_error / self.scale)

    def as_dict(self) -> dict:
        """Return the fit as plain JSON-able numbers (the pairs are left out; see :attr:`deviations`)."""
        return {
            'n_pairs': self.n_pairs,
            'scale': self.scale,
            'isotonic_x': [float(v) for v in self.isotonic_x],
            'isotonic_y': [float(v) for v in self.isotonic_y],
        }


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f'unknown calibration method {method!r}; choose one of: {", ".join(METHODS)}')


def fit_calibration(deviations: Sequence[float], errors: Sequence[float], min_pairs: int = MIN_PAIRS) -> Calibration:
    """Fit the scale factor and the isotonic relation of true max force ``errors`` on committee ``deviations``.

    Pairs with a non-finite value are dropped. :raises ValueError: fewer than ``min_pairs`` finite pairs, a negative
    value, or all deviations zero (no scale can be fitted).
    """
    from sklearn.isotonic import IsotonicRegression

    d = np.asarray(deviations, dtype=float).ravel()
    e = np.asarray(errors, dtype=float).ravel()
    if d.shape != e.shape:
        raise ValueError(f'one error per deviation is needed, got {d.size} deviations and {e.size} errors')
    finite = np.isfinite(d) & np.isfinite(e)
    d, e = d[finite], e[finite]
    if d.size < min_pairs:
        raise ValueError(f'a calibration needs at least {min_pairs} finite (deviation, error) pairs, got {d.size}')
    if (d < 0).any() or (e < 0).any():
        raise ValueError('deviations and errors are magnitudes and cannot be negative')
    if not (d > 0).any():
        raise ValueError('every deviation is zero: the committee members agree exactly and no scale can be fitted')
    scale = float(np.dot(d, e) / np.dot(d, d))
    isotonic = IsotonicRegression(increasing=True, out_of_bounds='clip').fit(d, e)
    return Calibration(
        deviations=d,
        errors=e,
        scale=scale,
        isotonic_x=np.asarray(isotonic.X_thresholds_, dtype=float),
        isotonic_y=np.asarray(isotonic.y_thresholds_, dtype=float),
    )


def auto_trust_levels(
    calibration: Calibration, target_force_error: float, max_force_error: float, method: str = 'scale'
) -> tuple[float, float]:
    """Return ``(lower, upper)`` trust levels (eV/Å of committee deviation) from ``calibration``.

    ``lower`` is the deviation at which the predicted true max force error reaches ``target_force_error``: below it
    a frame is accurate to the target. ``upper`` is where it reaches ``max_force_error``: beyond it a frame is taken
    as broken and not labelled. :raises ValueError: ``max_force_error`` not above ``target_force_error``.
    """
    if not max_force_error > target_force_error > 0:
        raise ValueError(
            f'need 0 < target_force_error < max_force_error, got {target_force_error!r} and {max_force_error!r}'
        )
    lower = calibration.deviation_for_error(target_force_error, method)
    upper = calibration.deviation_for_error(max_force_error, method)
    if upper <= lower:  # a flat isotonic stretch can map both targets to one deviation
        upper = max_force_error / calibration.scale
    return lower, max(upper, lower * (1 + 1e-6))


def unreachable_lower_level(deviations: Sequence[float], lower: float) -> str | None:
    """Return a sentence when ``lower`` is below every finite committee deviation in ``deviations``, else ``None``.

    Such a lower trust level can never be reached: no frame is classed accurate, and a campaign that waits for an
    accurate fraction never converges.
    """
    values = np.asarray(deviations, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    floor = float(values.min())
    if floor <= lower:
        return None
    return (
        f'the lower trust level {lower:g} eV/Å is below every committee deviation of this exploration '
        f'(smallest {floor:.3g} eV/Å, median {float(np.median(values)):.3g} eV/Å over {values.size} frames): '
        'no frame can be classed accurate; use `trust: auto` with a target_force_error, or raise `lower`'
    )
