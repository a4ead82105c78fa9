"""Does any tblite SCF setting converge GFN1-xTB on the ordered Li-Si crystals? One single point per cell and setting.

The Li-Si crystals of the package (``lixsi-crystal``: LiSi 32 atoms, Li13Si4 34, Li15Si4 38 in its primitive cell, DFT
cells) rattled by 0.05 Å (seed 1), labelled by tblite directly (the calculator the xTB label engine builds) with
each setting below, from tblite's default start. bcc Li (16 and 54 atoms, a = 3.44 Å) is the metallic reference.
Prints one line per label: converged or not, energy per atom, wall and CPU seconds.

    OMP_NUM_THREADS=1 python benchmarks/xtb_crystal_scf.py [--cells LiSi Li13Si4] [--settings quick plain-1000 ...]

tblite 0.8 offers one mixer (Broyden); what can be varied is its damping and memory, the iteration count, the start
(``sad`` or ``eeq``), the electronic temperature, SCF annealing, the accuracy, the method (GFN1/GFN2) and the cell.
"""

from __future__ import annotations

import argparse
import os
import time

#: name -> tblite calculator settings (besides accuracy 3, 250 cycles, damping 0.4, GFN1-xTB unless given).
ANNEAL_6000 = (6000.0, 5, 30)  # start temperature (K, converted to Hartree below), hold cycles, cooling cycles
SETTINGS = {
    'quick': {'electronic_temperature': 1000.0, 'annealing': ANNEAL_6000},  # workflows/si_lixsi_xtb.yaml
    'plain-300': {'electronic_temperature': 300.0},  # the label_xtb protocol
    'plain-1000': {'electronic_temperature': 1000.0},
    'eeq-1000': {'electronic_temperature': 1000.0, 'guess': 'eeq'},
    'damped-1000': {'electronic_temperature': 1000.0, 'mixer_damping': 0.1, 'max_iterations': 500},
    'short-memory-1000': {
        'electronic_temperature': 1000.0,
        'mixer_damping': 0.05,
        'mixer_memory': 3,
        'max_iterations': 400,
    },
    'hot-5000': {'electronic_temperature': 5000.0, 'mixer_damping': 0.2, 'max_iterations': 400},
    'hot-20000': {'electronic_temperature': 20000.0, 'mixer_damping': 0.2, 'max_iterations': 400},
    'hot-50000': {'electronic_temperature': 50000.0, 'mixer_damping': 0.2, 'max_iterations': 400},
    'accuracy-1': {'electronic_temperature': 1000.0, 'annealing': ANNEAL_6000, 'accuracy': 1.0},
    'gfn2-1000': {'electronic_temperature': 1000.0, 'method': 'GFN2-xTB'},
}
#: name -> (builder kind, parameters, lattice scale)
CELLS = {
    'LiSi': ('lixsi-crystal', {'phase': 'LiSi'}, 1.0),
    'Li13Si4': ('lixsi-crystal', {'phase': 'Li13Si4'}, 1.0),
    'Li15Si4': ('lixsi-crystal', {'phase': 'Li15Si4', 'primitive': True}, 1.0),
    'Li13Si4+4%': ('lixsi-crystal', {'phase': 'Li13Si4'}, 1.04),
    'Li13Si4+8%': ('lixsi-crystal', {'phase': 'Li13Si4'}, 1.08),
    'Li13Si4x2': ('lixsi-crystal', {'phase': 'Li13Si4', 'size': [1, 1, 2]}, 1.0),
    'Li16': ('bcc-li', {'repeat': 2}, 1.0),
    'Li54': ('bcc-li', {'repeat': 3}, 1.0),
}


def cell(name: str):
    """Return the cell ``name`` of ``CELLS`` (crystals rattled by 0.05 Å, seed 1; bcc Li unperturbed)."""
    from ase.build import bulk

    from aiida_sianode.structures import build

    kind, parameters, scale = CELLS[name]
    if kind == 'bcc-li':
        return bulk('Li', 'bcc', a=3.44, cubic=True).repeat(parameters['repeat'])
    atoms = build(kind, parameters, seed=0)
    atoms.set_cell(atoms.cell.array * scale, scale_atoms=True)
    atoms.rattle(0.05, seed=1)
    return atoms


def single_point(atoms, setting: dict) -> dict:
    """Return the outcome of one tblite single point of ``atoms`` with ``setting``."""
    from ase.calculators.calculator import CalculationFailed
    from ase.units import Hartree, kB
    from tblite.ase import TBLite

    options = {'method': 'GFN1-xTB', 'accuracy': 3.0, 'max_iterations': 250, 'mixer_damping': 0.4, **setting}
    if options.get('annealing'):
        start, hold, cycles = options['annealing']
        options['annealing'] = (start * kB / Hartree, hold, cycles)
    atoms = atoms.copy()
    atoms.calc = TBLite(verbosity=0, **options)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        energy = atoms.get_potential_energy() / len(atoms)
        status = 'ok'
    except CalculationFailed as exception:
        energy, status = float('nan'), 'not converged' if 'not converged' in str(exception) else str(exception)
    return {
        'status': status,
        'energy_per_atom_ev': energy,
        'wall_s': time.perf_counter() - wall,
        'cpu_s': time.process_time() - cpu,
    }


def main() -> None:
    """Label every chosen cell with every chosen setting and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cells', nargs='+', choices=list(CELLS), default=['LiSi', 'Li13Si4', 'Li15Si4'])
    parser.add_argument('--settings', nargs='+', choices=list(SETTINGS), default=list(SETTINGS))
    arguments = parser.parse_args()
    for setting in arguments.settings:
        for name in arguments.cells:
            atoms = cell(name)
            outcome = single_point(atoms, SETTINGS[setting])
            print(
                f'{setting:18s} {name:11s} {len(atoms):3d} atoms {outcome["status"]:14s} '
                f'{outcome["energy_per_atom_ev"]:10.4f} eV/atom {outcome["wall_s"]:6.1f} s wall '
                f'{outcome["cpu_s"]:6.1f} s CPU, load {os.getloadavg()[0]:.1f}',
                flush=True,
            )


if __name__ == '__main__':
    main()
