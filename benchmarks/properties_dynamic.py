"""Dynamic-property checks that are too long for the tests: the Gamma optical mode of c-Si.

* ``--gpaw``: the phonons kernel's ``reference`` path with GPAW (PBE, 300 eV as the ``fast`` label protocol, k-point
  density ``--kpoint-density``, 1.5/Å as ``fast`` by default) on the 8-atom conventional cell, supercell 1x1x1: one
  displaced cell. Gamma frequencies from finite displacements are exact for any supercell (the dynamical matrix at
  Gamma sums the force constants over all periodic images), so this cell gives the Raman mode; the rest of the band
  structure needs the 216-atom cell.
* ``--committee DIR``: the committee in ``DIR/member_*.model`` through the kernel (per member, then mean ± std), on the
  same cell and on the ``fast`` protocol's 64-atom supercell.

Experiment: 520.7 cm^-1 (Raman); PW91 503 cm^-1 (libAtoms silicon testing framework); PBE about 500-510 cm^-1.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/properties_dynamic.py [--gpaw] [--committee benchmarks/models/fast]
[--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import tempfile
import time

A_SI = 5.431  # Å, experiment (room temperature)


def silicon():
    """Diamond Si, conventional cell, experimental lattice constant."""
    from ase.build import bulk

    return bulk('Si', 'diamond', a=A_SI, cubic=True)


def gpaw_gamma(workdir: pathlib.Path, kpoint_density: float = 1.5) -> dict:
    """Gamma modes of c-Si from GPAW forces on the kernel's reference configurations."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_sianode.engines.label import label
    from aiida_sianode.properties import phonons

    settings = {'supercell': [1, 1, 1], 'band_points': 5, 'mesh_density': 10.0}
    configurations = phonons.reference_configurations([silicon()], settings)
    start, cpu = time.perf_counter(), time.process_time()
    for index, atoms in enumerate(configurations):
        folder = workdir / f'gpaw_{kpoint_density}_{index}'
        folder.mkdir()
        result = label(atoms, 'gpaw', {'cutoff_ev': 300.0, 'kpoint_density': kpoint_density}, folder)
        if result['status'] != 'ok':
            raise RuntimeError(f'GPAW failed on configuration {index}: {result["error"]}')
        atoms.calc = SinglePointCalculator(atoms, energy=result['energy'], forces=result['forces'])
    reference = phonons.reference_result(configurations, settings)
    return {
        'gamma_cm1': reference['extra']['gamma_frequencies_cm1'],
        'optical_cm1': reference['scalars']['gamma_optical_max_cm1'],
        'configurations': len(configurations),
        'kpoint_density': kpoint_density,
        'max_force_ev_a': float(max(abs(atoms.get_forces()).max() for atoms in configurations)),
        'wall_s': time.perf_counter() - start,
        'cpu_s': time.process_time() - cpu,
    }


def committee_gamma(directory: pathlib.Path, workdir: pathlib.Path, supercell) -> dict:
    """Gamma optical mode per member of the committee in ``directory``, mean and std."""
    import numpy as np

    from aiida_sianode.engines.property import load_member_calculator
    from aiida_sianode.properties import phonons

    models = sorted(directory.glob('member_*.model'))
    if not models:
        raise FileNotFoundError(f'no member_*.model in {directory}')
    settings = {'supercell': supercell, 'band_points': 11, 'mesh_density': 40.0}
    start, cpu = time.perf_counter(), time.process_time()
    values = []
    for index, model in enumerate(models):
        calculator = load_member_calculator(model, 'cpu', 'float64')
        folder = workdir / f'member_{index}_{"x".join(map(str, supercell))}'
        folder.mkdir()
        result = phonons.run_member([silicon()], calculator, settings, folder)
        values.append(result['scalars']['gamma_optical_max_cm1'])
    return {
        'supercell': supercell,
        'members_cm1': values,
        'mean_cm1': float(np.mean(values)),
        'std_cm1': float(np.std(values)),
        'wall_s': time.perf_counter() - start,
        'cpu_s': time.process_time() - cpu,
    }


def main() -> None:
    """Run the chosen checks; print one line each and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--gpaw', action='store_true')
    parser.add_argument('--kpoint-density', type=float, default=1.5, help='GPAW k-point density (1/Å, 2π included)')
    parser.add_argument('--committee', type=pathlib.Path, default=None)
    parser.add_argument('--json', type=pathlib.Path, default=None)
    args = parser.parse_args()
    results = {'load_before': os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix='dynamic-') as scratch:
        scratch = pathlib.Path(scratch)
        if args.gpaw:
            results['gpaw'] = gpaw_gamma(scratch, args.kpoint_density)
            print(f'GPAW PBE (fast): Gamma optical {results["gpaw"]["optical_cm1"]:.1f} cm^-1', results['gpaw'])
        if args.committee:
            for supercell in ([1, 1, 1], [2, 2, 2]):
                key = f'committee_{"x".join(map(str, supercell))}'
                results[key] = committee_gamma(args.committee, scratch, supercell)
                print(f'committee {supercell}: {results[key]["mean_cm1"]:.1f} ± {results[key]["std_cm1"]:.1f} cm^-1')
    results['load_after'] = os.getloadavg()[0]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == '__main__':
    main()
