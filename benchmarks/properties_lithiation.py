"""Benchmark: the lithiation property's `reference` path with GFN1-xTB labels, against the DFT hull.

The kernel's :func:`reference_configurations` (the built-in Li-Si phases asked for, as built: Li15Si4 at its
measured 123 K cell, the others at their DFT-relaxed cells, bcc Li at a = 3.51 Å, diamond Si at 5.431 Å;
conventional cells repeated to at least ``--min-width`` Å, since tblite samples only the Gamma point) are
labelled one by one with the project's local GFN1-xTB labeler (tblite), then :func:`reference_result` gives the
formation energies, hull, voltage steps and expansion at that level. The DFT numbers beside them come from the
DFT energies of the DFTB_LiSi crystal set (fixtures/structures/DFTB_LiSi_crystal) through the same
:func:`lithiation_analysis`.

Run from the repository root: ``OMP_NUM_THREADS=1 python benchmarks/properties_lithiation.py --json out.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import tempfile
import time

from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read

from aiida_sianode.engines.label import label
from aiida_sianode.properties.lithiation import lithiation_analysis, reference_configurations, reference_result

ROOT = pathlib.Path(__file__).resolve().parents[1]
DFT_PHASES = ('Li', 'Si', 'LiSi', 'Li12Si7', 'Li7Si3', 'Li13Si4', 'Li15Si4')
XTB_PARAMETERS = {'accuracy': 1.0, 'electronic_temperature_k': 1000.0, 'compute_stress': False}


def dft_result(phases) -> dict:
    entries = []
    for name in (phase for phase in DFT_PHASES if phase in phases):
        atoms = read(ROOT / f'fixtures/structures/DFTB_LiSi_crystal/{name}.xyz')
        symbols = atoms.get_chemical_symbols()
        entries.append(
            {
                'name': name,
                'n_li': symbols.count('Li'),
                'n_si': symbols.count('Si'),
                'energy_ev': atoms.get_potential_energy(),
                'volume_a3': atoms.get_volume(),
            }
        )
    return lithiation_analysis(entries)


def xtb_result(settings: dict) -> tuple[dict, list[dict]]:
    """Label every reference configuration; a phase whose label fails is recorded in the timings (with the
    status and error) and left out of the hull."""
    labelled, timings = [], []
    with tempfile.TemporaryDirectory() as workdir:
        for atoms in reference_configurations([], settings):
            start_cpu = time.process_time()
            load = os.getloadavg()[0]
            results = label(atoms, 'xtb', XTB_PARAMETERS, workdir)
            if results['status'] == 'ok':
                atoms.calc = SinglePointCalculator(atoms, energy=results['energy'])
                labelled.append(atoms)
            timings.append(
                {
                    'phase': atoms.info['lithiation_name'],
                    'atoms': len(atoms),
                    'status': results['status'],
                    'error': results['error'],
                    'energy_ev': results['energy'],
                    'wall_s': results['wall_time_s'],
                    'cpu_s': time.process_time() - start_cpu,
                    'load': load,
                }
            )
            print(timings[-1], flush=True)
    return reference_result(labelled, settings), timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', type=pathlib.Path, default=None)
    parser.add_argument(
        '--phases',
        nargs='+',
        default=['Li', 'Si', 'LiSi', 'Li12Si7', 'Li7Si3', 'Li13Si4', 'Li15Si4', 'Li17Si4'],
        help='phases to label (Li and Si are needed); the DFT hull is taken over the same phases',
    )
    parser.add_argument(
        '--min-width', type=float, default=9.0, help='reference_min_width_a (Å): tblite samples only the Gamma point'
    )
    arguments = parser.parse_args()
    settings = {'phases': arguments.phases, 'primitive': True, 'reference_min_width_a': arguments.min_width}
    start = time.perf_counter()
    xtb, timings = xtb_result(settings)
    labelled_phases = [row['phase'] for row in timings if row['status'] == 'ok']
    dft = dft_result(labelled_phases)
    rows = []
    for phase in settings['phases']:
        row = {'phase': phase}
        for level, result in (('xtb', xtb), ('dft', dft)):
            for key in ('formation_energy', 'e_above_hull', 'expansion'):
                unit = 'percent' if key == 'expansion' else 'ev_atom'
                row[f'{key}_{level}'] = result['scalars'].get(f'{key}_{phase}_{unit}')
        rows.append(row)
    summary = {
        'xtb_parameters': XTB_PARAMETERS,
        'settings': settings,
        'rows': rows,
        'xtb_voltage_steps': xtb['extra']['voltage_steps'],
        'dft_voltage_steps': dft['extra']['voltage_steps'],
        'xtb_average_voltage_v': xtb['scalars']['average_voltage_v'],
        'dft_average_voltage_v': dft['scalars']['average_voltage_v'],
        'xtb_stable': xtb['extra']['stable_phases'],
        'timings': timings,
        'wall_s': time.perf_counter() - start,
        'cpu_s': resource.getrusage(resource.RUSAGE_SELF).ru_utime + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
    }
    print(json.dumps(summary, indent=1))
    if arguments.json:
        arguments.json.write_text(json.dumps(summary, indent=1))


if __name__ == '__main__':
    main()
