"""Vibrational density of states from the velocity autocorrelation of production MD (amorphous phases, liquids).

The member drives a production MD run (:mod:`aiida_sianode.properties.md`; frames with momenta every
``md.trajectory_interval`` steps, which sets the highest frequency resolved: ``1 / (2 dt_frame)``). After
equilibration, by the Wiener-Khinchin theorem the mass-weighted power spectrum of every atom's velocity equals the
Fourier transform of the velocity autocorrelation:

    g(nu) ∝ sum_i m_i |FFT_t[v_i(t) w(t)]|^2 ,

with a Hann window ``w``. It is broadened by a Gaussian of ``smearing_cm1`` and normalised to three modes per atom
(the integral over nu is 3), in states / cm^-1 / atom; partial densities per element are normalised the same way
(each integrates to 3 times that element's fraction of atoms). Classically every mode holds kT, so the spectrum
weights modes equally: it is the harmonic VDOS for a crystal at low temperature, and the anharmonic one above.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aiida_sianode.properties import md
from aiida_sianode.properties.common import InvalidPropertyInput, require_keys

#: trapezoidal integration (numpy 2 renamed ``trapz``; the project pins numpy < 2)
integrate = getattr(np, 'trapezoid', None) or np.trapz

KIND = 'vdos'
DESCRIPTION = 'vibrational density of states from the velocity autocorrelation of production MD'

#: speed of light in cm/ps: frequency (1/ps = THz) / C_CM_PS = wavenumber (cm^-1)
C_CM_PER_PS = 2.99792458e-2
DEFAULTS: dict[str, Any] = {
    'smearing_cm1': 10.0,
    'max_frequency_cm1': 1200.0,  # the curve stops here (Si's highest mode is about 520 cm^-1)
    # production MD settings: frames with momenta every 2 steps; a Nose-Hoover chain, whose deterministic coupling
    # leaves the spectrum alone (Langevin's white noise spreads weight to every frequency)
    'md': {'trajectory_interval': 2, 'ensemble': 'nvt_nose_hoover'},
}


def normalise_settings(settings: Mapping[str, Any]) -> dict:
    """Return ``settings`` over :data:`DEFAULTS`, checked (the MD part through :func:`md.normalise_settings`).

    :raises InvalidPropertyInput: an unknown key, a negative smearing, frames too far apart to resolve
        ``max_frequency_cm1``.
    """
    require_keys(settings, list(DEFAULTS), KIND)
    merged = {**DEFAULTS, **dict(settings)}
    merged['md'] = md.normalise_settings({**DEFAULTS['md'], **dict(merged['md'] or {})}, kind='vdos.md')
    if not merged['smearing_cm1'] >= 0:
        raise InvalidPropertyInput('vdos: `smearing_cm1` must be >= 0')
    frame_ps = merged['md']['trajectory_interval'] * merged['md']['timestep_fs'] / 1000
    nyquist = 1 / (2 * frame_ps) / C_CM_PER_PS
    if merged['max_frequency_cm1'] > nyquist:
        raise InvalidPropertyInput(
            f'vdos: frames every {frame_ps * 1000:g} fs resolve frequencies up to {nyquist:.0f} cm^-1, below '
            f'max_frequency_cm1 = {merged["max_frequency_cm1"]}; lower md.trajectory_interval'
        )
    return merged


def validate_settings(settings: dict, structures: list) -> None:
    """Refuse bad settings or not exactly one structure."""
    merged = normalise_settings(settings)
    if len(structures) != 1:
        raise InvalidPropertyInput(f'vdos: give exactly one structure, got {len(structures)}')
    md.check_structure(structures[0], merged['md'])


def vdos_from_velocities(
    velocities: np.ndarray,
    masses: Sequence[float],
    frame_ps: float,
    *,
    smearing_cm1: float = 10.0,
    max_frequency_cm1: float | None = None,
    groups: Mapping[str, Sequence[int]] | None = None,
) -> dict:
    """VDOS of velocities ``(n_frames, natoms, 3)`` sampled every ``frame_ps``.

    :returns: ``{'frequency_cm1', 'total' (integral 3), 'partial': {name: curve} (integral 3 * fraction of atoms),
        'resolution_cm1'}``.
    """
    velocities = np.asarray(velocities, dtype=float)
    n_frames, natoms = velocities.shape[:2]
    if n_frames < 8:
        raise InvalidPropertyInput(f'vdos: {n_frames} frames are too few for a spectrum (at least 8)')
    masses = np.asarray(masses, dtype=float)
    window = np.hanning(n_frames)[:, None, None]
    spectrum = np.abs(np.fft.rfft((velocities - velocities.mean(axis=0)) * window, axis=0)) ** 2  # (n_freq, n, 3)
    per_atom = (spectrum.sum(axis=-1) * masses[None, :]).T  # (natoms, n_freq)
    frequency = np.fft.rfftfreq(n_frames, d=frame_ps) / C_CM_PER_PS
    step = frequency[1] - frequency[0]
    if smearing_cm1 > 0:
        width = smearing_cm1 / step
        offsets = np.arange(-int(4 * width) - 1, int(4 * width) + 2)
        kernel = np.exp(-0.5 * (offsets / width) ** 2)
        kernel /= kernel.sum()
        per_atom = np.array([np.convolve(row, kernel, mode='same') for row in per_atom])
    keep = frequency <= (max_frequency_cm1 if max_frequency_cm1 is not None else frequency[-1])
    total_weight = integrate(per_atom.sum(axis=0), frequency)
    scale = 3.0 / total_weight if total_weight > 0 else 0.0  # 3 modes per atom over the whole spectrum

    def curve(indices) -> np.ndarray:
        return per_atom[list(indices)].sum(axis=0) * scale

    partial = {name: curve(indices)[keep].tolist() for name, indices in (groups or {}).items()}
    return {
        'frequency_cm1': frequency[keep].tolist(),
        'total': curve(range(natoms))[keep].tolist(),
        'partial': partial,
        'resolution_cm1': float(step),
    }


def run_member(structures: list, calculator, settings: dict, workdir: pathlib.Path) -> dict:
    """Production MD with this member, then the VDOS of the frames after equilibration."""
    validate_settings(settings, structures)
    merged = normalise_settings(settings)
    workdir = pathlib.Path(workdir)
    others = md.committee_others(calculator, merged['md'], workdir)
    summary = md.run_md(structures[0], calculator, merged['md'], workdir / 'md', others=others)
    frames = [
        frame
        for frame in md.read_trajectory(workdir / 'md')
        if frame.info['time_ps'] >= merged['md']['equilibration_ps']
    ]
    if not frames:
        raise InvalidPropertyInput('vdos: no frame after equilibration')
    masses = frames[0].get_masses()
    velocities = np.array([frame.get_momenta() / masses[:, None] for frame in frames])  # Å / (ASE time)
    frame_ps = merged['md']['trajectory_interval'] * merged['md']['timestep_fs'] / 1000
    symbols = frames[0].get_chemical_symbols()
    groups = {element: [i for i, s in enumerate(symbols) if s == element] for element in sorted(set(symbols))}
    spectrum = vdos_from_velocities(
        velocities,
        masses,
        frame_ps,
        smearing_cm1=merged['smearing_cm1'],
        max_frequency_cm1=merged['max_frequency_cm1'],
        groups=groups if len(groups) > 1 else None,
    )
    frequency = np.asarray(spectrum['frequency_cm1'])
    total = np.asarray(spectrum['total'])
    curves = {
        'vdos': {
            'x': frequency.tolist(),
            'y': total.tolist(),
            'x_label': 'frequency (cm^-1)',
            'y_label': 'VDOS (1/cm^-1/atom)',
        }
    }
    for element, values in spectrum['partial'].items():
        curves[f'vdos_{element}'] = {
            'x': frequency.tolist(),
            'y': values,
            'x_label': 'frequency (cm^-1)',
            'y_label': f'partial VDOS {element} (1/cm^-1/atom)',
        }
    weight = integrate(total, frequency)
    scalars = {
        'mean_frequency_cm1': float(integrate(total * frequency, frequency) / weight) if weight > 0 else None,
        'peak_frequency_cm1': float(frequency[int(np.argmax(total))]),
        'temperature_mean_k': summary['temperature_k_mean'],
        'fraction_above_upper_trust': summary['fraction_above_upper'],
    }
    extra = {
        'resolution_cm1': spectrum['resolution_cm1'],
        'frames': len(frames),
        'stop_reason': summary['stop_reason'],
        'flagged_steps': summary['flagged_steps'],
    }
    return {'scalars': scalars, 'curves': curves, 'extra': extra}
