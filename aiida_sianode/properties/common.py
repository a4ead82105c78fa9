"""The frame every property kernel shares: errors, committee statistics, relaxation, plots and protocol settings.

No AiiDA import here: the property engine (:mod:`aiida_sianode.engines.property`) and the kernels use it on the
compute node, the work chains use the same functions to check inputs before anything runs.

Statistics over the committee use the population standard deviation (``numpy.std``, ``ddof=0``), as the training
summary does: the spread of the members we have, not an estimate for a larger population.
"""

from __future__ import annotations

import copy
import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: settings read by the engine itself, not by the kernels: torch device (``auto``: cuda when torch sees one, else
#: cpu) and the floating-point precision the models run in
ENGINE_SETTINGS = {'device': 'auto', 'dtype': 'float64'}

#: atoms closer than this (Å) are refused before anything runs
MIN_DISTANCE_A = 0.5

#: largest strain or relative volume change a kernel may ask for (fraction)
MAX_STRAIN = 0.20


class InvalidPropertyInput(ValueError):
    """A property input that cannot give a meaningful result; the message names the problem and the fix."""


# --------------------------------------------------------------------------------------------------------------------
# settings and protocols


def protocol_name(kind: str) -> str:
    """Return the protocol file name (relative to ``aiida_sianode/protocols``) of ``kind``."""
    return f'properties/{kind}'


def load_protocols(kind: str) -> dict:
    """Return the parsed ``aiida_sianode/protocols/properties/<kind>.yaml``.

    :raises InvalidPropertyInput: when the kind has no protocol file.
    """
    from aiida_sianode.protocols import PROTOCOL_DIRECTORY, load_protocol_file

    if not (PROTOCOL_DIRECTORY / f'{protocol_name(kind)}.yaml').is_file():
        raise InvalidPropertyInput(f'the property `{kind}` has no protocol file protocols/properties/{kind}.yaml')
    return load_protocol_file(protocol_name(kind))


def get_settings(kind: str, protocol: str | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Return the full settings of ``kind`` at ``protocol``: engine settings (``device``, ``dtype``), the
    protocol's ``default_inputs`` and the protocol's own values, then ``overrides``.

    :raises InvalidPropertyInput: for an unknown protocol or an override key the protocol does not have.
    """
    from aiida_sianode.protocols import ProtocolError, recursive_merge

    data = load_protocols(kind)
    protocol = protocol or data['default_protocol']
    if protocol not in data['protocols']:
        known = ', '.join(sorted(data['protocols']))
        raise InvalidPropertyInput(f'unknown protocol `{protocol}` for the property {kind}; choose one of: {known}')
    selected = copy.deepcopy(data['protocols'][protocol])
    selected.pop('description', None)
    settings = recursive_merge({**ENGINE_SETTINGS, **data.get('default_inputs', {})}, selected)
    if overrides:
        overrides = dict(overrides)
        free = {key: overrides.pop(key) for key in free_form_settings(kind) if key in overrides}
        try:
            settings = recursive_merge(settings, overrides, strict=True)
        except ProtocolError as exception:
            raise InvalidPropertyInput(f'unknown setting for the property {kind}: {exception}') from exception
        settings = recursive_merge(settings, free)
    return settings


#: settings whose keys are data, not names (``cutoffs: {Si-Si: 2.85}``): an override may add keys to them
FREE_FORM_SETTINGS = ('cutoffs',)


def free_form_settings(kind: str) -> tuple[str, ...]:
    """Settings of ``kind`` that overrides may extend with new keys: :data:`FREE_FORM_SETTINGS` and the kernel's own
    ``FREE_FORM_SETTINGS``."""
    from aiida_sianode.properties import load_kind

    try:
        extra = tuple(getattr(load_kind(kind), 'FREE_FORM_SETTINGS', ()))
    except ImportError:
        extra = ()
    return FREE_FORM_SETTINGS + extra


def split_settings(settings: Mapping[str, Any]) -> tuple[dict, dict]:
    """Return ``(engine_settings, kernel_settings)``: the engine's own keys (:data:`ENGINE_SETTINGS`, defaults filled
    in) and everything else, which is what the kernel sees."""
    engine = {key: settings.get(key, default) for key, default in ENGINE_SETTINGS.items()}
    kernel = {key: copy.deepcopy(value) for key, value in settings.items() if key not in ENGINE_SETTINGS}
    return engine, kernel


def require_keys(settings: Mapping[str, Any], known: Sequence[str], kind: str) -> None:
    """Refuse settings keys that ``kind`` does not know (a typo would otherwise be silently ignored)."""
    unknown = sorted(set(settings) - set(known) - set(ENGINE_SETTINGS))
    if unknown:
        raise InvalidPropertyInput(
            f'unknown setting(s) for the property {kind}: {", ".join(unknown)}; known: {", ".join(sorted(known))}'
        )


def check_fraction_range(name: str, values: Sequence[float], limit: float = MAX_STRAIN) -> None:
    """Refuse an empty range, or a strain / relative volume change beyond ``limit`` (20 % by default).

    :param values: the strains or relative changes (fractions, 0.02 = 2 %).
    """
    values = [float(value) for value in values]
    if not values or max(abs(value) for value in values) == 0:
        raise InvalidPropertyInput(f'the {name} range is empty: give non-zero values (fractions, 0.02 = 2 %)')
    largest = max(abs(value) for value in values)
    if largest > limit:
        raise InvalidPropertyInput(
            f'the {name} range reaches {largest * 100:.1f} %, more than the {limit * 100:.0f} % allowed: '
            'the harmonic / equation-of-state fits are meaningless that far from equilibrium'
        )


# --------------------------------------------------------------------------------------------------------------------
# structures


def shortest_distance(atoms, cutoff: float = MIN_DISTANCE_A) -> tuple[float, tuple[int, int] | None]:
    """Return the shortest interatomic distance (Å) below ``cutoff`` and the pair, or ``(inf, None)`` if none.

    Uses periodic images where the cell is periodic.
    """
    from ase.neighborlist import neighbor_list

    if len(atoms) < 2 and not any(atoms.pbc):
        return math.inf, None
    first, second, distances = neighbor_list('ijd', atoms, cutoff, self_interaction=False)
    if len(distances) == 0:
        return math.inf, None
    index = int(np.argmin(distances))
    return float(distances[index]), (int(first[index]), int(second[index]))


def check_min_distance(atoms, name: str = 'the structure', cutoff: float = MIN_DISTANCE_A) -> None:
    """Refuse atoms closer than ``cutoff`` (0.5 Å): no potential is trained there and MD would explode."""
    distance, pair = shortest_distance(atoms, cutoff)
    if pair is not None:
        symbols = atoms.get_chemical_symbols()
        raise InvalidPropertyInput(
            f'{name}: atoms {pair[0]} ({symbols[pair[0]]}) and {pair[1]} ({symbols[pair[1]]}) are {distance:.3f} Å '
            f'apart, closer than {cutoff} Å'
        )


# --------------------------------------------------------------------------------------------------------------------
# relaxation


def max_force(atoms) -> float:
    """Largest atomic force norm (eV/Å)."""
    forces = atoms.get_forces()
    return float(np.sqrt((forces**2).sum(axis=1)).max()) if len(forces) else 0.0


def max_stress_gpa(atoms) -> float:
    """Largest absolute component of the stress (GPa)."""
    from ase.units import GPa

    return float(np.abs(atoms.get_stress(voigt=True)).max() / GPa)


def relax(
    atoms,
    *,
    fmax: float = 0.01,
    stress_tol_gpa: float | None = 0.05,
    max_steps: int = 500,
    cell: bool = True,
    hydrostatic: bool = False,
    logfile: str | None = None,
    pressure_gpa: float = 0.0,
) -> dict:
    """Relax ``atoms`` in place (it must carry its calculator) with FIRE, the cell through ASE's
    ``FrechetCellFilter`` when ``cell`` is true.

    Converged when every force is below ``fmax`` (eV/Å) and, for a cell relaxation, every stress component below
    ``stress_tol_gpa`` (GPa; the stress is measured against ``pressure_gpa``); with ``hydrostatic`` (the cell only
    scaled) the pressure alone, since a scaling cannot remove shear or the difference of the normal stresses.

    :returns: ``{'converged', 'steps', 'max_force_ev_a', 'max_stress_gpa' (None for fixed cell), 'energy_ev'}``.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from ase.units import GPa

    def stress_error() -> float:
        stress = atoms.get_stress(voigt=True).copy()
        stress[:3] += pressure_gpa * GPa
        if hydrostatic:
            return float(abs(stress[:3].mean()) / GPa)
        return float(np.abs(stress).max() / GPa)

    cell_relax = cell and all(atoms.pbc)
    target = (
        FrechetCellFilter(atoms, hydrostatic_strain=hydrostatic, scalar_pressure=pressure_gpa * GPa)
        if cell_relax
        else atoms
    )
    optimizer = FIRE(target, logfile=logfile)
    steps, converged = 0, False
    for _ in optimizer.irun(fmax=0.0, steps=max_steps):
        forces_ok = max_force(atoms) <= fmax
        stress_ok = (not cell_relax) or stress_tol_gpa is None or stress_error() <= stress_tol_gpa
        if forces_ok and stress_ok:
            converged = True
            break
        steps += 1
    return {
        'converged': converged,
        'steps': steps,
        'max_force_ev_a': max_force(atoms),
        'max_stress_gpa': stress_error() if cell_relax else None,
        'energy_ev': float(atoms.get_potential_energy()),
    }


# --------------------------------------------------------------------------------------------------------------------
# committee statistics


def _stats(values: Sequence[float]) -> dict:
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    return {
        'mean': float(finite.mean()) if finite.size else None,
        'std': float(finite.std()) if finite.size else None,
        'members': [float(value) if math.isfinite(value) else None for value in array],
    }


def common_grid(xs: Sequence[Sequence[float]]) -> np.ndarray:
    """Return the common x of several curves: the shared x when all are equal, else an even grid over the range all
    members cover, with as many points as the longest curve."""
    arrays = [np.asarray(x, dtype=float) for x in xs]
    if all(array.shape == arrays[0].shape and np.allclose(array, arrays[0]) for array in arrays):
        return arrays[0]
    low = max(float(array.min()) for array in arrays)
    high = min(float(array.max()) for array in arrays)
    if not high > low:
        raise ValueError('the members’ curves do not overlap: no common x range')
    return np.linspace(low, high, max(len(array) for array in arrays))


def aggregate_members(per_member: Sequence[Mapping[str, Any]]) -> dict:
    """Committee statistics of the members' results (``run_member`` dicts).

    Returns ``{'scalars': {name: {'mean', 'std', 'members'}}, 'curves': {name: {'x', 'x_label', 'y_label', 'members'
    (one y list per member on the common x), 'mean', 'std'}}, 'n_members'}``. A scalar or curve that some member
    lacks is taken over the members that have it (``None`` in ``members`` where missing). Curves with different x
    are interpolated linearly onto :func:`common_grid`.
    """
    per_member = list(per_member)
    scalar_names: list[str] = []
    curve_names: list[str] = []
    for result in per_member:
        scalar_names += [name for name in result.get('scalars', {}) if name not in scalar_names]
        curve_names += [name for name in result.get('curves', {}) if name not in curve_names]

    scalars = {}
    for name in scalar_names:
        values = []
        for result in per_member:
            value = result.get('scalars', {}).get(name)
            values.append(math.nan if value is None else float(value))
        scalars[name] = _stats(values)

    curves = {}
    for name in curve_names:
        present = [result['curves'][name] for result in per_member if name in result.get('curves', {})]
        x = common_grid([curve['x'] for curve in present])
        ys = []
        for result in per_member:
            curve = result.get('curves', {}).get(name)
            if curve is None:
                ys.append(None)
                continue
            cx, cy = np.asarray(curve['x'], dtype=float), np.asarray(curve['y'], dtype=float)
            same = cx.shape == x.shape and np.allclose(cx, x)
            order = np.argsort(cx)
            ys.append(cy if same else np.interp(x, cx[order], cy[order]))
        stack = np.array([y for y in ys if y is not None], dtype=float)
        curves[name] = {
            'x': x.tolist(),
            'x_label': present[0].get('x_label', 'x'),
            'y_label': present[0].get('y_label', 'y'),
            'members': [None if y is None else np.asarray(y).tolist() for y in ys],
            'mean': stack.mean(axis=0).tolist(),
            'std': stack.std(axis=0).tolist(),
        }
    return {'scalars': scalars, 'curves': curves, 'n_members': len(per_member)}


# --------------------------------------------------------------------------------------------------------------------
# plots


def plot_curve(
    curve: Mapping[str, Any],
    path: str | pathlib.Path,
    *,
    title: str = '',
    reference: Mapping[str, Any] | None = None,
) -> pathlib.Path:
    """Write a PNG of an aggregated curve: every member thin, the committee mean bold with a ±1 std band, and the
    ``reference`` curve (``{'x', 'y'}``, DFT) as points when given. Returns the path."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    x = np.asarray(curve['x'], dtype=float)
    mean = np.asarray(curve['mean'], dtype=float)
    std = np.asarray(curve['std'], dtype=float)
    figure, axis = plt.subplots(figsize=(4.8, 3.4), dpi=100)
    for index, y in enumerate(curve.get('members', [])):
        if y is not None:
            axis.plot(x, y, lw=0.7, alpha=0.6, label=f'member {index}')
    axis.fill_between(x, mean - std, mean + std, color='k', alpha=0.15, lw=0, label='mean ± std')
    axis.plot(x, mean, color='k', lw=1.6, label='committee mean')
    if reference is not None:
        axis.plot(reference['x'], reference['y'], 'o', color='tab:red', ms=4, label='reference')
    axis.set_xlabel(curve.get('x_label', 'x'))
    axis.set_ylabel(curve.get('y_label', 'y'))
    if title:
        axis.set_title(title, fontsize=9)
    axis.legend(fontsize=6, frameon=False)
    figure.tight_layout()
    path = pathlib.Path(path)
    figure.savefig(path)
    plt.close(figure)
    return path


#: kinds whose curves are compared with the reference after shifting each curve to its own minimum: total energies of
#: two methods (a committee trained on PBE, GFN1-xTB) differ by a constant that says nothing about the curve
ALIGN_TO_MINIMUM = ('eos',)


def _shifted(values, shift: float) -> np.ndarray:
    return np.asarray(values, dtype=float) - shift


def compare_with_reference(
    kind: str,
    committee_curves: Mapping[str, Mapping[str, Any]],
    reference: Mapping[str, Any],
    directory: str | pathlib.Path,
    committee_bands: Mapping[str, Any] | None = None,
) -> dict[str, dict]:
    """Draw the reference beside the committee for every curve both have (and the phonon band structures).

    :param committee_curves: aggregated curves by name (``x``, ``mean``, ``std``, ``members``, labels).
    :param reference: the kind's ``reference_result`` (``curves`` by name with ``x`` and ``y``; ``extra``).
    :param committee_bands: the committee's band structure (``distances``, ``mean``, ``std`` per branch) for phonons.
    :returns: ``{name: {'arrays': {...}, 'png': path}}``; the arrays are what is drawn: ``committee_x``,
        ``committee_mean``, ``committee_std``, ``reference_x``, ``reference_y`` (for the band structure
        ``committee_distances``, ``committee_mean``, ``committee_std`` (branches x q), ``reference_distances``,
        ``reference_frequencies``). For :data:`ALIGN_TO_MINIMUM` kinds both curves are shifted to their own minimum
        (``*_shift`` arrays hold the constants taken off).
    """
    directory = pathlib.Path(directory)
    compared: dict[str, dict] = {}
    for name, curve in committee_curves.items():
        theirs = (reference.get('curves') or {}).get(name)
        if theirs is None:
            continue
        mean, ref_y = np.asarray(curve['mean'], dtype=float), np.asarray(theirs['y'], dtype=float)
        own_shift = float(np.nanmin(mean)) if kind in ALIGN_TO_MINIMUM else 0.0
        ref_shift = float(np.nanmin(ref_y)) if kind in ALIGN_TO_MINIMUM else 0.0
        drawn = {
            'x': curve['x'],
            'mean': _shifted(mean, own_shift),
            'std': curve['std'],
            'members': [None if member is None else _shifted(member, own_shift) for member in curve.get('members', [])],
            'x_label': curve.get('x_label', 'x'),
            'y_label': ('relative ' if own_shift else '') + curve.get('y_label', 'y'),
        }
        arrays = {
            'committee_x': np.asarray(curve['x'], dtype=float),
            'committee_mean': drawn['mean'],
            'committee_std': np.asarray(curve['std'], dtype=float),
            'reference_x': np.asarray(theirs['x'], dtype=float),
            'reference_y': _shifted(ref_y, ref_shift),
        }
        if kind in ALIGN_TO_MINIMUM:
            arrays['committee_shift'] = np.array([own_shift])
            arrays['reference_shift'] = np.array([ref_shift])
        png = plot_curve(
            drawn,
            directory / f'{name}_reference.png',
            title=f'{kind}: {name}, committee and reference',
            reference={'x': arrays['reference_x'], 'y': arrays['reference_y']},
        )
        compared[name] = {'arrays': arrays, 'png': png}
    bands = (reference.get('extra') or {}).get('band_structure')
    if committee_bands is not None and bands is not None:
        from aiida_sianode.properties.phonons import plot_bands

        png = plot_bands(
            {
                key: committee_bands[key]
                for key in ('distances', 'mean', 'std', 'segment_ends')
                if key in committee_bands
            },
            directory / 'band_structure_reference.png',
            reference=bands,
        )
        compared['band_structure'] = {
            'arrays': {
                'committee_distances': np.asarray(committee_bands['distances'], dtype=float),
                'committee_mean': np.asarray(committee_bands['mean'], dtype=float),
                'committee_std': np.asarray(committee_bands['std'], dtype=float),
                'reference_distances': np.asarray(bands['distances'], dtype=float),
                'reference_frequencies': np.asarray(bands['frequencies_cm1'], dtype=float),
            },
            'png': png,
        }
    return compared
