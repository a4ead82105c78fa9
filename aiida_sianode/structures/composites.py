"""Si/a-C composites: a Si(001) slab against random a-C, and a Si@C core-shell nanoparticle.

Lengths in Å except where a name ends in ``_nm``; densities in g/cm^3. The carbon is a random-placement start
(a distance floor, no bonding network yet): melt and quench it with a potential, keeping the Si fixed if wanted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from aiida_sianode.structures.carbon import A_C_DENSITY_RANGE, CARBON_MASS
from aiida_sianode.structures.common import (
    StructureBuildError,
    check_int,
    check_number,
    check_packable,
    check_size,
    coordination_numbers,
    fill_largest_voids,
    insert_at_largest_voids,
    make_rng,
    random_sequential_packing,
    uniform_in_box,
    uniform_in_spherical_shell,
    volume_for_density,
)
from aiida_sianode.structures.silicon import SI_LATTICE_CONSTANT, diamond_silicon


def si_ac_interface(
    si_size: Sequence[int] = (2, 2),
    si_layers: int = 2,
    carbon_thickness: float = 8.0,
    carbon_density: float = 2.0,
    interface_gap: float = 2.0,
    min_distance: float = 1.4,
    vacuum: float = 0.0,
    lattice_constant: float = SI_LATTICE_CONSTANT,
    n_li: int = 0,
    li_interface_width: float = 4.0,
    li_min_distance: float = 1.9,
    seed: int = 0,
) -> Atoms:
    """A c-Si(001) slab with random a-C on top, the interface set by ``interface_gap``.

    The slab is ``si_size`` (x, y) by ``si_layers`` conventional cubic cells of diamond Si (8 atoms each). Carbon
    fills a layer ``carbon_thickness`` Å thick at ``carbon_density`` g/cm^3; no C atom is closer than
    ``interface_gap`` Å to a Si atom nor closer than ``min_distance`` Å to another C. With ``vacuum`` = 0 the cell
    is periodic along z as a Si | a-C | Si sandwich (two interfaces, each ``interface_gap`` wide); with
    ``vacuum`` > 0 the carbon has a free surface and ``vacuum`` Å of empty space separates it from the next
    slab. ``atoms.info`` records the carbon region (``carbon_z_range``).

    Li at the interface: ``n_li`` > 0 puts that many Li atoms, one at a time, at the centre of the largest empty
    sphere left (the shared largest-void insertion of the periodic builders: a 0.25 Å grid, ties drawn from the
    seed), no closer than ``li_min_distance`` Å to any atom, among the grid points within an interface slab: a
    layer ``li_interface_width`` Å thick centred on the middle of each Si/C gap (both gaps of the periodic
    sandwich; the one under the carbon with ``vacuum`` > 0). ``atoms.info['li_interface_z']`` lists the slabs'
    (low, high) z bounds in Å; the Li of a periodic sandwich may sit across the cell's z boundary.
    """
    rng = make_rng(seed)
    nx, ny = check_size('si_size', si_size, length=2)
    si_layers = check_int('si_layers', si_layers, 1, 50)
    carbon_thickness = check_number('carbon_thickness', carbon_thickness, 2.0, 500.0)
    carbon_density = check_number('carbon_density', carbon_density, *A_C_DENSITY_RANGE)
    interface_gap = check_number('interface_gap', interface_gap, 0.5, 5.0)
    min_distance = check_number('min_distance', min_distance, 0.5, 2.5)
    vacuum = check_number('vacuum', vacuum, 0.0, 200.0)
    lattice_constant = check_number('lattice_constant', lattice_constant, 4.5, 6.5)
    n_li = check_int('n_li', n_li, 0, 1000)
    li_interface_width = check_number('li_interface_width', li_interface_width, 1.0, 10.0)
    li_min_distance = check_number('li_min_distance', li_min_distance, 1.0, 3.0)

    slab = diamond_silicon((nx, ny, si_layers), lattice_constant)
    slab.positions[:, 2] -= slab.positions[:, 2].min()
    top = slab.positions[:, 2].max()
    lx, ly = nx * lattice_constant, ny * lattice_constant
    # In the bulk the next Si layer would sit a/4 above the top one; the interface gap replaces that spacing.
    z_low = top + interface_gap
    z_high = z_low + carbon_thickness
    lz = z_high + (interface_gap if vacuum == 0 else vacuum)
    n_carbon = _carbon_atoms(lx * ly * carbon_thickness, carbon_density)
    check_packable('si-ac-interface carbon', n_carbon, lx * ly * carbon_thickness, min_distance)
    positions = random_sequential_packing(
        n_carbon,
        uniform_in_box((0, 0, z_low), (lx, ly, z_high)),
        min_distance,
        rng,
        obstacles=slab.positions,
        obstacle_distance=interface_gap,
        box=(lx, ly, lz),
        what='si-ac-interface',
    )
    atoms = slab + Atoms('C' * n_carbon, positions=positions)
    atoms.set_cell([lx, ly, lz])
    atoms.pbc = True
    atoms.info['carbon_z_range'] = [float(z_low), float(z_high)]
    if n_li:
        planes = [top + interface_gap / 2] + ([z_high + interface_gap / 2] if vacuum == 0 else [])
        half = li_interface_width / 2

        def in_interface(points):
            dz = points[:, 2, None] - np.array(planes)[None, :]
            dz -= lz * np.round(dz / lz)
            return (np.abs(dz) <= half).any(axis=1)

        atoms = insert_at_largest_voids(
            atoms, 'Li', n_li, li_min_distance, rng, what='si-ac-interface Li', region=in_interface
        )
        atoms.info['li_interface_z'] = [[float(z - half), float(z + half)] for z in planes]
    return atoms


def core_shell(
    core_radius_nm: float = 1.0,
    shell_thickness_nm: float = 0.5,
    carbon_density: float = 2.0,
    interface_gap: float = 2.0,
    min_distance: float = 1.4,
    vacuum: float = 10.0,
    lattice_constant: float = SI_LATTICE_CONSTANT,
    core_li_per_si: float = 0.0,
    li_min_distance: float = 1.9,
    periodic: bool = True,
    seed: int = 0,
) -> Atoms:
    """A Si@C core-shell nanoparticle: a diamond Si sphere inside a random a-C shell, with vacuum around it.

    The core holds the Si atoms of a diamond lattice within ``core_radius_nm`` of the centre (atoms left with
    fewer than two Si neighbours are trimmed). The shell starts ``interface_gap`` Å outside the nominal core
    radius and is ``shell_thickness_nm`` thick (up to 10 nm), filled with C at ``carbon_density`` g/cm^3, no two C
    closer than ``min_distance`` Å. The cubic cell leaves ``vacuum`` Å between the shell and each face (the cell is
    periodic; the vacuum keeps images apart). ``atoms.info`` records the nominal radii in Å.

    A lithiated core: ``core_li_per_si`` > 0 (up to 1) puts ``round(core_li_per_si * n_Si)`` Li into the core, each
    at the centre of the largest empty sphere inside the core radius (a 0.25 Å grid, ties drawn from the seed), no
    closer than ``li_min_distance`` Å to any atom; the core is not expanded (an early stage of lithiation).

    ``periodic=False`` returns the same particle as an isolated cluster (``pbc`` all False, the cell kept to show the
    box), so that a labeler skips periodic sums (GFN1-xTB on a 196-atom particle: 13 % less CPU time per SCF cycle);
    plane-wave labelers need the periodic cell.
    """
    rng = make_rng(seed)
    core_radius_nm = check_number('core_radius_nm', core_radius_nm, 0.3, 50.0)
    shell_thickness_nm = check_number('shell_thickness_nm', shell_thickness_nm, 0.0, 10.0)
    carbon_density = check_number('carbon_density', carbon_density, *A_C_DENSITY_RANGE)
    interface_gap = check_number('interface_gap', interface_gap, 0.5, 5.0)
    min_distance = check_number('min_distance', min_distance, 0.5, 2.5)
    vacuum = check_number('vacuum', vacuum, 0.0, 200.0)
    lattice_constant = check_number('lattice_constant', lattice_constant, 4.5, 6.5)
    core_li_per_si = check_number('core_li_per_si', core_li_per_si, 0.0, 1.0)
    li_min_distance = check_number('li_min_distance', li_min_distance, 1.0, 3.0)
    if not isinstance(periodic, bool):
        raise StructureBuildError(f'periodic must be true or false, not {periodic!r}')
    if 0 < shell_thickness_nm * 10 < 2 * min_distance:
        raise StructureBuildError(
            f'shell_thickness_nm {shell_thickness_nm} is thinner than two carbon distance floors '
            f'({2 * min_distance / 10:.2f} nm); use 0 for a bare core or a thicker shell'
        )

    core_radius = 10 * core_radius_nm
    inner = core_radius + interface_gap
    outer = inner + 10 * shell_thickness_nm
    half = outer + vacuum
    center = np.full(3, half)

    repeats = int(np.ceil(2 * core_radius / lattice_constant)) + 2
    lattice = diamond_silicon((repeats,) * 3, lattice_constant)
    lattice.positions -= lattice.positions.mean(axis=0)
    # Centre the sphere on an atom so that the core is symmetric about its centre.
    lattice.positions -= lattice.positions[np.argmin(np.linalg.norm(lattice.positions, axis=1))]
    core = lattice[np.linalg.norm(lattice.positions, axis=1) <= core_radius]
    core.positions += center
    core.set_cell([2 * half] * 3)
    core.pbc = False
    bond_cutoff = lattice_constant * np.sqrt(3) / 4 * 1.15
    while len(core):
        dangling = coordination_numbers(core, bond_cutoff) < 2
        if not dangling.any():
            break
        del core[np.flatnonzero(dangling)]
    if not len(core):
        raise StructureBuildError(f'core_radius_nm {core_radius_nm} is too small to hold a bonded Si core')
    n_li = round(core_li_per_si * len(core))
    if n_li:
        core += Atoms(
            'Li' * n_li, positions=_largest_voids_in_sphere(core, center, core_radius, n_li, li_min_distance, rng)
        )

    shell_volume = 4 / 3 * np.pi * (outer**3 - inner**3)
    n_carbon = _carbon_atoms(shell_volume, carbon_density)
    if n_carbon:
        check_packable('core-shell carbon', n_carbon, shell_volume, min_distance)
        positions = random_sequential_packing(
            n_carbon,
            uniform_in_spherical_shell(center, inner, outer),
            min_distance,
            rng,
            obstacles=core.positions,
            obstacle_distance=interface_gap,
            what='core-shell',
        )
        atoms = core + Atoms('C' * n_carbon, positions=positions)
    else:
        atoms = core.copy()
    atoms.set_cell([2 * half] * 3)
    atoms.pbc = periodic
    atoms.info['center'] = center.tolist()
    atoms.info['core_radius'] = float(core_radius)
    atoms.info['shell_inner_radius'] = float(inner)
    atoms.info['shell_outer_radius'] = float(outer)
    return atoms


def _largest_voids_in_sphere(
    atoms: Atoms, center: np.ndarray, radius: float, count: int, min_distance: float, rng: np.random.Generator
) -> np.ndarray:
    """Return ``count`` positions within ``radius`` Å of ``center``, each the centre of the largest empty sphere
    left among ``atoms`` and the positions already chosen (non-periodic: the core sits in vacuum)."""
    from scipy.spatial import cKDTree

    spacing = 0.25
    axis = np.arange(-radius, radius + spacing, spacing)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing='ij'), axis=-1).reshape(-1, 3)
    grid = grid + rng.random(3) * spacing
    grid = grid[np.linalg.norm(grid, axis=1) <= radius] + center
    distance, _ = cKDTree(atoms.positions).query(grid, k=1)

    def update(position, _largest):
        np.minimum(distance, np.linalg.norm(grid - position, axis=1), out=distance)

    chosen = fill_largest_voids(
        grid,
        distance,
        count,
        min_distance,
        rng,
        update,
        lambda inserted, largest: (
            f'core-shell: after {inserted} of {count} Li in the core the largest empty site has a radius of '
            f'{largest:.2f} Å, below the {min_distance} Å floor; lower core_li_per_si or li_min_distance'
        ),
    )
    return np.array(chosen)


def _carbon_atoms(volume: float, density: float) -> int:
    """Number of C atoms that give ``density`` g/cm^3 in ``volume`` Å^3."""
    return round(volume / volume_for_density(CARBON_MASS, density))
