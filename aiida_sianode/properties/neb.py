"""Migration barriers: nudged elastic band (ASE) with the climbing image and the improved tangent, per member.

Two structures, the initial and final states, with the same atoms in the same order. For each member: the end
points are relaxed (positions only, the cell kept; ``relax_endpoints``), ``n_images`` intermediate images are
interpolated by IDPP (image-dependent pair potential, minimum image) and the band is relaxed with FIRE, the highest
image climbing (``climb``) along the improved tangent (Henkelman & Jónsson 2000). Outputs per member: the forward
and reverse barriers, the reaction energy, the whole minimum-energy path (energies and images, ``neb_path.extxyz``),
and, with the rest of the committee, each image's max force deviation: images at or above ``force_deviation_upper``
are reported as candidates to label.

The ``reference`` configurations are the IDPP images between the given end points (what DFT can label before any
member has run); ``reference_result`` is the DFT energy profile along that path, an upper bound of the DFT barrier
on the same path, drawn beside the committee's relaxed paths.

Refused before anything runs: not exactly two structures, different compositions, the same atoms in another order,
end points closer than ``min_endpoint_distance_a`` (identical), different cells, fewer than 3 images.
"""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aiida_sianode.properties import md
from aiida_sianode.properties.common import InvalidPropertyInput, check_min_distance, relax, require_keys

KIND = 'neb'
DESCRIPTION = 'migration barrier by climbing-image NEB (improved tangent, IDPP start) per member'

DEFAULTS: dict[str, Any] = {
    'n_images': 5,  # intermediate images
    'climb': True,
    'spring_ev_a2': 0.1,
    'fmax_ev_a': 0.05,
    'max_steps': 500,
    'relax_endpoints': True,
    'endpoint_fmax_ev_a': 0.02,
    'min_endpoint_distance_a': 0.1,
    'force_deviation_upper': 0.25,  # eV/Å, images at or above are candidates to label
    'committee_models': None,
    'member_index': None,
}
PATH_FILE = 'neb_path.extxyz'


def normalise_settings(settings: Mapping[str, Any]) -> dict:
    """Return ``settings`` over :data:`DEFAULTS`, checked.

    :raises InvalidPropertyInput: an unknown key, fewer than 3 images, non-positive tolerances.
    """
    require_keys(settings, list(DEFAULTS), KIND)
    merged = {**DEFAULTS, **dict(settings)}
    if not isinstance(merged['n_images'], int) or merged['n_images'] < 3:
        raise InvalidPropertyInput(
            f'neb: `n_images` = {merged["n_images"]!r} is too few; at least 3 intermediate images are needed to '
            'find the saddle point'
        )
    for key in ('spring_ev_a2', 'fmax_ev_a', 'endpoint_fmax_ev_a', 'force_deviation_upper', 'min_endpoint_distance_a'):
        if not merged[key] > 0:
            raise InvalidPropertyInput(f'neb: `{key}` must be > 0, got {merged[key]!r}')
    if not isinstance(merged['max_steps'], int) or merged['max_steps'] < 1:
        raise InvalidPropertyInput('neb: `max_steps` must be a positive integer')
    return merged


def displacement(initial, final) -> np.ndarray:
    """Per-atom displacement from ``initial`` to ``final`` (Å), minimum image along periodic directions."""
    delta = final.positions - initial.positions
    if any(initial.pbc):
        from ase.geometry import find_mic

        delta, _ = find_mic(delta, initial.cell, initial.pbc)
    return delta


def validate_settings(settings: dict, structures: list) -> None:
    """Refuse bad settings or end points that cannot be joined by a band."""
    merged = normalise_settings(settings)
    if len(structures) != 2:
        raise InvalidPropertyInput(f'neb: give exactly two structures (initial and final state), got {len(structures)}')
    initial, final = structures
    if sorted(initial.get_chemical_symbols()) != sorted(final.get_chemical_symbols()):
        raise InvalidPropertyInput(
            f'neb: the end points have different compositions ({initial.get_chemical_formula()} and '
            f'{final.get_chemical_formula()})'
        )
    if initial.get_chemical_symbols() != final.get_chemical_symbols():
        raise InvalidPropertyInput(
            'neb: the end points hold the same atoms in a different order; atom i must be the same atom in both'
        )
    if not np.allclose(np.asarray(initial.cell), np.asarray(final.cell), atol=1e-6) or any(initial.pbc != final.pbc):
        raise InvalidPropertyInput('neb: the end points have different cells; a band needs one cell')
    largest = float(np.linalg.norm(displacement(initial, final), axis=1).max())
    if largest < merged['min_endpoint_distance_a']:
        raise InvalidPropertyInput(
            f'neb: the end points are identical (no atom moves more than {largest:.3f} Å); give two different states'
        )
    for name, atoms in (('the initial state', initial), ('the final state', final)):
        check_min_distance(atoms, name)


def interpolate(initial, final, n_images: int, calculator=None) -> list:
    """The band: ``initial``, ``n_images`` IDPP-interpolated images, ``final`` (copies; constraints kept)."""
    from ase.mep import NEB

    images = [initial.copy()] + [initial.copy() for _ in range(n_images)] + [final.copy()]
    band = NEB(images, method='improvedtangent', allow_shared_calculator=True)
    band.interpolate(method='idpp', mic=any(initial.pbc))
    if calculator is not None:
        for image in images:
            image.calc = calculator
    return images


def path_coordinate(images: Sequence) -> np.ndarray:
    """Cumulative distance (Å) along the band, image to image, minimum image."""
    steps = [np.linalg.norm(displacement(a, b)) for a, b in itertools.pairwise(images)]
    return np.concatenate([[0.0], np.cumsum(steps)])


def single_point(atoms, calculator) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Å) of ``atoms`` with ``calculator`` (a copy is evaluated)."""
    frame = atoms.copy()
    frame.calc = calculator
    return float(frame.get_potential_energy()), frame.get_forces(apply_constraint=False).copy()


def run_neb(initial, final, calculator, settings: Mapping[str, Any], workdir: pathlib.Path, *, others=()) -> dict:
    """Relax the end points and the band with ``calculator``; return the member's result (see :func:`run_member`)."""
    from ase.io import write
    from ase.mep import NEB
    from ase.optimize import FIRE

    settings = normalise_settings(settings)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    initial, final = initial.copy(), final.copy()
    endpoints = {}
    for name, atoms in (('initial', initial), ('final', final)):
        atoms.calc = calculator
        if settings['relax_endpoints']:
            endpoints[name] = relax(atoms, fmax=settings['endpoint_fmax_ev_a'], cell=False, max_steps=1000)
    images = interpolate(initial, final, settings['n_images'], calculator)
    band = NEB(
        images,
        climb=settings['climb'],
        k=settings['spring_ev_a2'],
        method='improvedtangent',
        allow_shared_calculator=True,
    )
    optimizer = FIRE(band, logfile=str(workdir / 'neb.log'))
    converged = bool(optimizer.run(fmax=settings['fmax_ev_a'], steps=settings['max_steps']))

    energies, deviations = [], []
    for image in images:
        energy, forces = single_point(image, calculator)
        energies.append(energy)
        if others:
            deviations.append(md.committee_deviation(energy, forces, others, image)['max_force_deviation'])
    energies = np.array(energies)
    coordinate = path_coordinate(images)
    saddle = int(np.argmax(energies))
    for index, (image, energy) in enumerate(zip(images, energies)):
        image.info = {'image': index, 'energy_ev': float(energy)}
        if deviations:
            image.info['max_force_deviation'] = deviations[index]
    frames = [image.copy() for image in images]
    for frame in frames:
        frame.calc = None
    write(workdir / PATH_FILE, frames, format='extxyz')

    upper = settings['force_deviation_upper']
    candidates = [index for index, value in enumerate(deviations) if not value < upper]
    relative = energies - energies[0]
    unconverged = [] if converged else ['band']
    unconverged += [name for name, record in endpoints.items() if not record['converged']]
    # A band or end point that did not converge gives no barrier: its highest image is wherever the optimiser
    # stopped. The member's path stays in `extra` and the path file; the barrier scalars and the `mep` curve are
    # left out, so the committee's mean and std are over the members that converged.
    path_values = None if unconverged else relative
    scalars = {
        'barrier_ev': None if path_values is None else float(energies.max() - energies[0]),
        'barrier_reverse_ev': None if path_values is None else float(energies.max() - energies[-1]),
        'reaction_energy_ev': None if path_values is None else float(energies[-1] - energies[0]),
        'path_length_a': float(coordinate[-1]),
        'neb_max_force_ev_a': float(np.sqrt((band.get_forces() ** 2).sum(axis=1).max())),
    }
    if deviations:
        scalars['max_force_deviation_max_ev_a'] = float(max(deviations))
    curves = {}
    if path_values is not None:
        curves['mep'] = {
            'x': (coordinate / coordinate[-1]).tolist(),
            'y': relative.tolist(),
            'x_label': 'reaction coordinate (fraction of the path)',
            'y_label': 'E - E_initial (eV)',
        }
    extra = {
        'converged': converged,
        'unconverged': unconverged,
        'optimizer_steps': int(optimizer.nsteps),
        'saddle_image': saddle,
        'energies_ev': energies.tolist(),
        'path_coordinate_a': coordinate.tolist(),
        'image_positions': [image.positions.tolist() for image in images],
        'max_force_deviation': deviations or None,
        'candidate_images': candidates,
        'endpoint_relaxation': endpoints,
        'path_file': PATH_FILE,
    }
    plot_path(coordinate, relative, workdir / 'mep.png')
    return {'scalars': scalars, 'curves': curves, 'extra': extra}


def plot_path(coordinate: np.ndarray, energies: np.ndarray, path: pathlib.Path) -> None:
    """Energy along the band, one point per image."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.8, 3.4), dpi=100)
    axis.plot(coordinate, energies, 'o-')
    axis.set_xlabel('path (Å)')
    axis.set_ylabel('E - E$_{initial}$ (eV)')
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def run_member(structures: list, calculator, settings: dict, workdir: pathlib.Path) -> dict:
    """Climbing-image NEB between ``structures[0]`` and ``structures[1]`` with this member; the rest of the committee
    (found as :func:`md.find_committee_models` finds it) checks every image."""
    validate_settings(settings, structures)
    merged = normalise_settings(settings)
    workdir = pathlib.Path(workdir)
    others = md.committee_others(calculator, merged, workdir)
    return run_neb(structures[0], structures[1], calculator, merged, workdir, others=others)


def reference_configurations(structures: list, settings: dict) -> list:
    """The IDPP band between the given end points (end points included), for a DFT labeler."""
    merged = normalise_settings(settings)
    return interpolate(structures[0], structures[1], merged['n_images'])


def reference_result(labelled: list, settings: dict) -> dict:
    """The DFT energy profile along the labelled IDPP band (not a DFT NEB: an upper bound of its barrier)."""
    normalise_settings(settings)
    energies = np.array([atoms.get_potential_energy() for atoms in labelled])
    coordinate = path_coordinate(labelled)
    return {
        'scalars': {
            'barrier_ev': float(energies.max() - energies[0]),
            'barrier_reverse_ev': float(energies.max() - energies[-1]),
            'reaction_energy_ev': float(energies[-1] - energies[0]),
        },
        'curves': {
            'mep': {
                'x': (coordinate / coordinate[-1]).tolist(),
                'y': (energies - energies[0]).tolist(),
                'x_label': 'reaction coordinate (fraction of the path)',
                'y_label': 'E - E_initial (eV)',
            }
        },
        'extra': {'energies_ev': energies.tolist(), 'path': 'IDPP interpolation, not relaxed'},
    }
