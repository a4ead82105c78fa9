"""Diffusion of one species from production MD at several temperatures: D(T), an Arrhenius fit, conductivity.

For every temperature the member drives a production MD run (:mod:`aiida_sianode.properties.md`, with its
checkpoints and uncertainty watch) in ``workdir/T_<T>K``. From its trajectory after equilibration:

* the positions are unwrapped (minimum-image steps between frames, in fractional coordinates, so NPT cells work
  too) and the drift of the whole system's centre of mass is removed;
* the mean-squared displacement of the species is averaged over every time origin and atom;
* ``D`` is the slope of MSD(t) / 6 fitted over a window (``fit_window``: fractions of a block's length) in each of
  ``n_blocks`` consecutive blocks of the trajectory; ``D`` is their mean and its sampling uncertainty their standard
  error. Blocks, not kinisi's Bayesian fit: independent blocks give an error bar that includes the time correlation
  of the MSD, cost nothing, and can be tested exactly (kinisi took 5 s and 7 s of imports for a small synthetic walk
  and put it 1.6 sigma off).

The Arrhenius fit is a weighted least-squares line through ``ln D`` against ``1/T`` (weights ``D / sigma_D``):
``D = D0 exp(-Ea / kB T)``, with ``Ea``'s error from the fit's covariance and ``D`` extrapolated to 300 K. The
Nernst-Einstein conductivity is ``sigma = n (z e)^2 D / (kB T)`` with the carriers' number density ``n`` (Haven
ratio 1). Each member computes all of it; the committee's spread (the model spread) is reported beside each member's
sampling error.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aiida_sianode.properties import md
from aiida_sianode.properties.common import InvalidPropertyInput, require_keys

KIND = 'diffusion'
DESCRIPTION = 'tracer diffusion of one species from production MD at several temperatures, Arrhenius fit'

DEFAULTS: dict[str, Any] = {
    'species': 'Li',
    'temperatures_k': [600.0, 800.0, 1000.0],
    'charge': 1,  # the carrier's charge number z, for the Nernst-Einstein conductivity
    'n_blocks': 5,
    'fit_window': [0.1, 0.5],  # fractions of a block's length between which MSD(t) is fitted
    'md': {},  # production MD settings (aiida_sianode.properties.md), temperature_k set per temperature
}
#: 1 Å^2/ps in cm^2/s
A2_PER_PS_TO_CM2_PER_S = 1e-4
BOLTZMANN_EV = 8.617333262e-5
#: most lags at which an MSD is evaluated (evenly spread over the fit window)
MAX_LAGS = 40
ELEMENTARY_CHARGE = 1.602176634e-19
BOLTZMANN_J = 1.380649e-23


# --------------------------------------------------------------------------------------------------------------------
# settings


def normalise_settings(settings: Mapping[str, Any]) -> dict:
    """Return ``settings`` over :data:`DEFAULTS`, checked (the MD part through :func:`md.normalise_settings`).

    :raises InvalidPropertyInput: no temperature, a repeated or non-positive temperature, fewer than 2 blocks, a fit
        window outside (0, 1], an unknown key.
    """
    require_keys(settings, list(DEFAULTS), KIND)
    merged = {**DEFAULTS, **dict(settings)}
    temperatures = merged['temperatures_k']
    if not isinstance(temperatures, list | tuple) or not temperatures:
        raise InvalidPropertyInput('diffusion: `temperatures_k` must be a non-empty list of temperatures (K)')
    temperatures = [float(value) for value in temperatures]
    if min(temperatures) <= 0 or len(set(temperatures)) != len(temperatures):
        raise InvalidPropertyInput(f'diffusion: temperatures must be positive and distinct, got {temperatures}')
    merged['temperatures_k'] = temperatures
    if not isinstance(merged['n_blocks'], int) or merged['n_blocks'] < 2:
        raise InvalidPropertyInput(f'diffusion: `n_blocks` must be an integer >= 2, got {merged["n_blocks"]!r}')
    window = merged['fit_window']
    if not (isinstance(window, list | tuple) and len(window) == 2 and 0 <= window[0] < window[1] <= 1):
        raise InvalidPropertyInput(
            f'diffusion: `fit_window` must be [start, end] with 0 <= start < end <= 1, got {window}'
        )
    if not isinstance(merged['species'], str):
        raise InvalidPropertyInput('diffusion: `species` must be a chemical symbol such as Li')
    md_settings = dict(merged['md'] or {})
    if 'temperature_k' in md_settings:
        raise InvalidPropertyInput('diffusion: set the temperatures in `temperatures_k`, not in md.temperature_k')
    merged['md'] = md.normalise_settings({**md_settings, 'temperature_k': temperatures[0]}, kind='diffusion.md')
    return merged


def validate_settings(settings: dict, structures: list) -> None:
    """Refuse bad settings, more than one structure, or a structure without the species."""
    merged = normalise_settings(settings)
    if len(structures) != 1:
        raise InvalidPropertyInput(f'diffusion: give exactly one structure, got {len(structures)}')
    atoms = structures[0]
    count = atoms.get_chemical_symbols().count(merged['species'])
    if count == 0:
        raise InvalidPropertyInput(
            f'diffusion: the structure ({atoms.get_chemical_formula()}) has no {merged["species"]} atom to follow'
        )
    if not all(atoms.pbc):
        raise InvalidPropertyInput('diffusion: the structure must be periodic in x, y and z')
    md.check_structure(atoms, merged['md'])


# --------------------------------------------------------------------------------------------------------------------
# MSD and D


def unwrapped_positions(frames: Sequence) -> np.ndarray:
    """Return ``(n_frames, natoms, 3)`` Cartesian positions followed continuously across periodic boundaries.

    Each step between frames is taken as its minimum image in fractional coordinates (frames must be close enough
    that no atom moves half a cell between them) and converted with the later frame's cell.
    """
    first = frames[0]
    unwrapped = [first.positions.copy()]
    previous = first.cell.scaled_positions(first.positions) if first.cell.rank == 3 else None
    pbc = np.asarray(first.pbc, dtype=bool)
    for frame in frames[1:]:
        fractional = frame.cell.scaled_positions(frame.positions)
        step = fractional - previous
        step[:, pbc] -= np.round(step[:, pbc])
        unwrapped.append(unwrapped[-1] + step @ np.asarray(frame.cell))
        previous = fractional
    return np.array(unwrapped)


def remove_drift(positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Subtract the centre-of-mass displacement of the whole system from every frame."""
    centre = (positions * masses[None, :, None]).sum(axis=1) / masses.sum()
    return positions - (centre - centre[0])[:, None, :]


def msd(positions: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """Mean-squared displacement (Å^2) at each lag (in frames), averaged over all time origins and atoms of
    ``positions`` ``(n_frames, natoms, 3)``."""
    values = []
    for lag in lags:
        if lag == 0:
            values.append(0.0)
            continue
        displacement = positions[lag:] - positions[:-lag]
        values.append(float((displacement**2).sum(axis=-1).mean()))
    return np.array(values)


def fit_slope(times: np.ndarray, values: np.ndarray) -> float:
    """Least-squares slope of ``values`` against ``times`` (with an intercept)."""
    slope, _ = np.polyfit(times, values, 1)
    return float(slope)


def block_diffusion(
    positions: np.ndarray,
    frame_time_ps: float,
    *,
    n_blocks: int = 5,
    fit_window: Sequence[float] = (0.1, 0.5),
    dimensions: int = 3,
) -> dict:
    """Diffusion coefficient of the atoms in ``positions`` ``(n_frames, natoms, 3)`` (unwrapped, drift removed)
    sampled every ``frame_time_ps``.

    :returns: ``{'d_cm2_s', 'd_std_cm2_s' (standard error over blocks), 'block_d_cm2_s', 'lag_ps', 'msd_a2' (whole
        trajectory), 'fit_start_ps', 'fit_end_ps', 'd_whole_cm2_s' (one fit of the whole-trajectory MSD)}``.
    :raises InvalidPropertyInput: when a block's fit window holds fewer than 3 lags.
    """
    n_frames = positions.shape[0]
    block_frames = n_frames // n_blocks
    first = max(1, math.floor(fit_window[0] * block_frames))
    last = math.floor(fit_window[1] * block_frames)
    if last - first + 1 < 3:
        raise InvalidPropertyInput(
            f'diffusion: {n_frames} frames in {n_blocks} blocks leave {last - first + 1} lag(s) in the fit window; '
            'run longer, write frames more often or use fewer blocks'
        )
    lags = np.unique(np.linspace(first, last, min(MAX_LAGS, last - first + 1)).round().astype(int))
    slopes = []
    for block in range(n_blocks):
        part = positions[block * block_frames : (block + 1) * block_frames]
        slopes.append(fit_slope(lags * frame_time_ps, msd(part, lags)))
    block_d = np.array(slopes) / (2 * dimensions) * A2_PER_PS_TO_CM2_PER_S
    all_lags = np.unique(np.concatenate([np.linspace(0, last, min(MAX_LAGS, last + 1)).round().astype(int), lags]))
    whole = msd(positions, all_lags)
    in_window = all_lags >= first
    whole_d = fit_slope(all_lags[in_window] * frame_time_ps, whole[in_window]) / (2 * dimensions)
    whole_d *= A2_PER_PS_TO_CM2_PER_S
    return {
        'd_cm2_s': float(block_d.mean()),
        'd_std_cm2_s': float(block_d.std(ddof=1) / math.sqrt(n_blocks)),
        'block_d_cm2_s': block_d.tolist(),
        'lag_ps': (all_lags * frame_time_ps).tolist(),
        'msd_a2': whole.tolist(),
        'fit_start_ps': float(first * frame_time_ps),
        'fit_end_ps': float(last * frame_time_ps),
        'd_whole_cm2_s': whole_d,
    }


# --------------------------------------------------------------------------------------------------------------------
# Arrhenius and Nernst-Einstein


def arrhenius_fit(temperatures_k: Sequence[float], d: Sequence[float], d_std: Sequence[float] | None = None) -> dict:
    """Fit ``D = D0 exp(-Ea / kB T)`` by weighted least squares of ``ln D`` against ``1/T``.

    With ``d_std`` (all > 0) the weights are ``D / sigma_D`` and the covariance is the absolute one; without, the
    fit is unweighted and the covariance scaled by the residuals (zero for exactly Arrhenius data).

    :returns: ``{'ea_ev', 'ea_std_ev', 'prefactor_cm2_s', 'ln_prefactor_std', 'covariance'}`` (covariance of
        ``(ln D0, -Ea/kB)``).
    :raises InvalidPropertyInput: fewer than two temperatures or a non-positive D.
    """
    temperatures = np.asarray(temperatures_k, dtype=float)
    values = np.asarray(d, dtype=float)
    if temperatures.size < 2:
        raise InvalidPropertyInput('diffusion: an Arrhenius fit needs at least two temperatures')
    if np.any(values <= 0) or not np.all(np.isfinite(values)):
        raise InvalidPropertyInput(f'diffusion: every D must be positive for an Arrhenius fit, got {values.tolist()}')
    design = np.column_stack([np.ones_like(temperatures), 1 / temperatures])
    target = np.log(values)
    weighted = d_std is not None and np.all(np.asarray(d_std, dtype=float) > 0)
    if weighted:
        sigma = np.asarray(d_std, dtype=float) / values
        weights = 1 / sigma
        coefficients, *_ = np.linalg.lstsq(design * weights[:, None], target * weights, rcond=None)
        covariance = np.linalg.inv((design * weights[:, None] ** 2).T @ design)
    else:
        coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
        residuals = target - design @ coefficients
        dof = max(temperatures.size - 2, 1)
        covariance = np.linalg.inv(design.T @ design) * float(residuals @ residuals) / dof
    ln_prefactor, slope = coefficients
    return {
        'ea_ev': float(-slope * BOLTZMANN_EV),
        'ea_std_ev': float(math.sqrt(covariance[1, 1]) * BOLTZMANN_EV),
        'prefactor_cm2_s': float(math.exp(ln_prefactor)),
        'ln_prefactor_std': float(math.sqrt(covariance[0, 0])),
        'covariance': covariance.tolist(),
        'coefficients': [float(ln_prefactor), float(slope)],
    }


def arrhenius_extrapolate(fit: Mapping[str, Any], temperature_k: float) -> tuple[float, float]:
    """``D`` (cm^2/s) at ``temperature_k`` from an :func:`arrhenius_fit`, and its standard deviation."""
    ln_prefactor, slope = fit['coefficients']
    gradient = np.array([1.0, 1.0 / temperature_k])
    value = math.exp(ln_prefactor + slope / temperature_k)
    ln_std = math.sqrt(float(gradient @ np.asarray(fit['covariance']) @ gradient))
    return value, value * ln_std


def nernst_einstein_conductivity(d_cm2_s: float, n_carriers: int, volume_a3: float, temperature_k: float, charge=1):
    """Ionic conductivity (S/cm) ``n (z e)^2 D / (kB T)`` of ``n_carriers`` in ``volume_a3`` (Haven ratio 1)."""
    density_m3 = n_carriers / (volume_a3 * 1e-30)
    d_m2_s = d_cm2_s * 1e-4
    sigma_s_m = density_m3 * (charge * ELEMENTARY_CHARGE) ** 2 * d_m2_s / (BOLTZMANN_J * temperature_k)
    return sigma_s_m / 100


# --------------------------------------------------------------------------------------------------------------------
# the kernel contract


def analyse_run(workdir: pathlib.Path, species: str, settings: Mapping[str, Any]) -> dict:
    """D of ``species`` from the production trajectory in ``workdir`` (frames after ``md.equilibration_ps``)."""
    frames = md.read_trajectory(workdir)
    equilibration = settings['md']['equilibration_ps']
    frames = [frame for frame in frames if frame.info['time_ps'] >= equilibration - 1e-9]
    if len(frames) < 2:
        raise InvalidPropertyInput(f'diffusion: fewer than 2 frames after equilibration in {workdir.name}')
    frame_time = settings['md']['trajectory_interval'] * settings['md']['timestep_fs'] / 1000
    positions = remove_drift(unwrapped_positions(frames), frames[0].get_masses())
    indices = [index for index, symbol in enumerate(frames[0].get_chemical_symbols()) if symbol == species]
    result = block_diffusion(
        positions[:, indices], frame_time, n_blocks=settings['n_blocks'], fit_window=settings['fit_window']
    )
    result['volume_a3'] = float(np.mean([frame.get_volume() for frame in frames]))
    result['n_carriers'] = len(indices)
    return result


def temperature_label(temperature_k: float) -> str:
    """``600.0`` -> ``600k``, ``612.5`` -> ``612p5k`` (for result keys)."""
    return f'{temperature_k:g}'.replace('.', 'p') + 'k'


def run_member(structures: list, calculator, settings: dict, workdir: pathlib.Path) -> dict:
    """MD at every temperature with this member, D per temperature, the Arrhenius fit and conductivities."""
    validate_settings(settings, structures)
    merged = normalise_settings(settings)
    workdir = pathlib.Path(workdir)
    others = md.committee_others(calculator, merged['md'], workdir)
    scalars: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    per_temperature = []
    for temperature in merged['temperatures_k']:
        label = temperature_label(temperature)
        run_settings = {**merged['md'], 'temperature_k': temperature}
        summary = md.run_md(structures[0], calculator, run_settings, workdir / f'T_{label.upper()}', others=others)
        if summary['stop_reason'] in md.PHYSICAL_STOPS:
            # the member blew up at this temperature: its MSD measures the explosion, not diffusion
            per_temperature.append(
                {
                    'temperature_k': temperature,
                    'stop_reason': summary['stop_reason'],
                    'stopped_at_ps': summary['n_steps'] * merged['md']['timestep_fs'] / 1000,
                    'flagged_steps': summary['flagged_steps'],
                }
            )
            continue
        analysis = analyse_run(workdir / f'T_{label.upper()}', merged['species'], merged)
        conductivity = nernst_einstein_conductivity(
            analysis['d_cm2_s'], analysis['n_carriers'], analysis['volume_a3'], temperature, merged['charge']
        )
        scalars[f'd_{label}_cm2_s'] = analysis['d_cm2_s']
        scalars[f'd_{label}_sampling_std_cm2_s'] = analysis['d_std_cm2_s']
        scalars[f'conductivity_{label}_s_cm'] = conductivity
        scalars[f'temperature_mean_{label}_k'] = summary['temperature_k_mean']
        if summary.get('fraction_above_upper') is not None:
            scalars[f'fraction_above_upper_trust_{label}'] = summary['fraction_above_upper']
        curves[f'msd_{label}'] = {
            'x': analysis['lag_ps'],
            'y': analysis['msd_a2'],
            'x_label': 't (ps)',
            'y_label': f'MSD {merged["species"]} (Å^2)',
        }
        per_temperature.append(
            {
                'temperature_k': temperature,
                'stop_reason': summary['stop_reason'],
                'fit_start_ps': analysis['fit_start_ps'],
                'fit_end_ps': analysis['fit_end_ps'],
                'block_d_cm2_s': analysis['block_d_cm2_s'],
                'n_carriers': analysis['n_carriers'],
                'volume_a3': analysis['volume_a3'],
                'flagged_steps': summary['flagged_steps'],
            }
        )
    extra: dict[str, Any] = {'species': merged['species'], 'temperatures': per_temperature}
    excluded = [entry['temperature_k'] for entry in per_temperature if entry['stop_reason'] in md.PHYSICAL_STOPS]
    if excluded:
        extra['excluded_temperatures_k'] = excluded
    temperatures = [t for t in merged['temperatures_k'] if t not in excluded]
    if len(temperatures) >= 2:
        d = [scalars[f'd_{temperature_label(t)}_cm2_s'] for t in temperatures]
        d_std = [scalars[f'd_{temperature_label(t)}_sampling_std_cm2_s'] for t in temperatures]
        try:
            fit = arrhenius_fit(temperatures, d, d_std)
        except InvalidPropertyInput as exception:
            extra['arrhenius_error'] = str(exception)
        else:
            d300, d300_std = arrhenius_extrapolate(fit, 300.0)
            reference = next(entry for entry in per_temperature if entry['temperature_k'] == temperatures[0])
            scalars.update(
                ea_ev=fit['ea_ev'],
                ea_fit_std_ev=fit['ea_std_ev'],
                prefactor_cm2_s=fit['prefactor_cm2_s'],
                d_300k_cm2_s=d300,
                d_300k_fit_std_cm2_s=d300_std,
                conductivity_300k_s_cm=nernst_einstein_conductivity(
                    d300, reference['n_carriers'], reference['volume_a3'], 300.0, merged['charge']
                ),
            )
            curves['arrhenius'] = {
                'x': [1000 / t for t in temperatures],
                'y': [math.log10(value) if value > 0 else None for value in d],
                'x_label': '1000/T (1/K)',
                'y_label': 'log10 D (cm^2/s)',
            }
            extra['arrhenius'] = fit
    elif len(merged['temperatures_k']) >= 2:
        extra['arrhenius_error'] = (
            f'no Arrhenius fit: {len(temperatures)} of {len(merged["temperatures_k"])} temperatures ran without '
            f'blowing up (excluded: {", ".join(f"{t:g} K" for t in excluded)})'
        )
    plot_member(workdir, merged, curves, per_temperature, scalars)
    return {'scalars': scalars, 'curves': curves, 'extra': extra}


def plot_member(workdir: pathlib.Path, settings, curves, per_temperature, scalars) -> None:
    """``msd.png`` (MSD(t) per temperature with the fit window shaded) and ``arrhenius.png`` (D with its sampling
    error bars and the fitted line) in ``workdir``."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.8, 3.4), dpi=100)
    for entry in per_temperature:
        if entry['stop_reason'] in md.PHYSICAL_STOPS:
            continue
        curve = curves[f'msd_{temperature_label(entry["temperature_k"])}']
        line = axis.plot(curve['x'], curve['y'], label=f'{entry["temperature_k"]:g} K')[0]
        axis.axvspan(entry['fit_start_ps'], entry['fit_end_ps'], color=line.get_color(), alpha=0.08)
    axis.set_xlabel('t (ps)')
    axis.set_ylabel(f'MSD {settings["species"]} (Å$^2$)')
    axis.legend(fontsize=7, frameon=False)
    figure.tight_layout()
    figure.savefig(workdir / 'msd.png')
    plt.close(figure)
    if 'ea_ev' not in scalars:
        return
    temperatures = np.array([entry['temperature_k'] for entry in per_temperature if 'fit_start_ps' in entry])
    d = np.array([scalars[f'd_{temperature_label(t)}_cm2_s'] for t in temperatures])
    d_std = np.array([scalars[f'd_{temperature_label(t)}_sampling_std_cm2_s'] for t in temperatures])
    figure, axis = plt.subplots(figsize=(4.8, 3.4), dpi=100)
    axis.errorbar(1000 / temperatures, d, yerr=d_std, fmt='o', capsize=3, label='MD (block errors)')
    grid = np.linspace(1000 / temperatures.max(), 1000 / 300.0, 50)
    fitted = scalars['prefactor_cm2_s'] * np.exp(-scalars['ea_ev'] / (BOLTZMANN_EV * 1000 / grid))
    axis.plot(grid, fitted, '-', label=f'Ea = {scalars["ea_ev"]:.3f} ± {scalars["ea_fit_std_ev"]:.3f} eV')
    axis.set_yscale('log')
    axis.set_xlabel('1000/T (1/K)')
    axis.set_ylabel('D (cm$^2$/s)')
    axis.legend(fontsize=7, frameon=False)
    figure.tight_layout()
    figure.savefig(workdir / 'arrhenius.png')
    plt.close(figure)
