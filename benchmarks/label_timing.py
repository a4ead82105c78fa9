"""Wall time of one label with the local codes at the ``fast`` protocol, by system size.

Runs the label engine in this process (the same function the ``LocalLabelCalculation`` runs), so the numbers are
the compute time of GPAW / tblite without AiiDA's overhead (submission, polling, retrieval, parsing: a few seconds
per label on the embedded profile). The cells are cubic diamond silicon (a = 5.43 Å) repeated and rattled by
0.03 Å (seed 0) so that, as for MD frames, symmetry does not reduce the k-points.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/label_timing.py [--repeat N] [--json results.json]

Prints a Markdown table; the machine's load average before and after each run is part of it, because on a shared
machine the wall time depends on it. The CPU time of this process (single-threaded) is what the label costs on an
idle core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

#: (labeler, repetitions of the 8-atom cubic cell)
CASES = [
    ('gpaw', (1, 1, 1)),
    ('gpaw', (2, 1, 1)),
    ('gpaw', (2, 2, 1)),
    ('xtb', (1, 1, 1)),
    ('xtb', (2, 2, 2)),
]


def fast_parameters(labeler: str) -> dict:
    """Return the engine parameters of the ``fast`` protocol of ``labeler`` (read from the protocol YAML)."""
    from aiida_sianode.protocols import load_protocol_file, recursive_merge

    data = load_protocol_file(f'label_{labeler}')
    inputs = recursive_merge(data['default_inputs'], data['protocols']['fast'])
    parameters = dict(inputs['calc']['parameters'])
    parameters.pop('labeler')
    return parameters


def silicon(repeat: tuple[int, int, int]):
    """Cubic diamond Si (8 atoms) repeated ``repeat`` times and rattled by 0.03 Å."""
    from ase.build import bulk

    atoms = bulk('Si', 'diamond', a=5.43, cubic=True).repeat(repeat)
    atoms.rattle(0.03, seed=0)
    return atoms


def time_case(labeler: str, repeat: tuple[int, int, int]) -> dict:
    """Label one cell and return its size, wall time, SCF iterations and k-point mesh."""
    from aiida_sianode.engines.label import gpaw_kpoint_mesh, label

    atoms = silicon(repeat)
    parameters = fast_parameters(labeler)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as workdir:
        start, cpu_start = time.perf_counter(), time.process_time()
        results = label(atoms, labeler, parameters, workdir)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if results['status'] != 'ok':
        raise RuntimeError(f'{labeler} on {len(atoms)} atoms: {results["status"]}: {results["error"]}')
    scf = results['scf']
    return {
        'labeler': labeler,
        'natoms': len(atoms),
        'wall_time_s': wall,
        'cpu_time_s': cpu,
        'scf_iterations': scf.get('iterations'),
        'kpoint_mesh': gpaw_kpoint_mesh(atoms, parameters['kpoint_density']) if labeler == 'gpaw' else None,
        'nkpts_ibz': scf.get('nkpts_ibz'),
        'load_before': load_before,
        'load_after': os.getloadavg()[0],
    }


def main() -> None:
    """Run every case ``--repeat`` times and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=1, help='runs per case; the table shows the fastest')
    parser.add_argument('--json', default=None, help='also write all runs to this JSON file')
    arguments = parser.parse_args()

    runs = [time_case(labeler, repeat) for labeler, repeat in CASES for _ in range(arguments.repeat)]
    from importlib import metadata

    header = (
        f'{platform.node()}: {os.cpu_count()} CPU cores, OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS")}, '
        f'gpaw {metadata.version("gpaw")}, tblite {metadata.version("tblite")}, python {platform.python_version()}'
    )
    print(header)
    print()
    print(
        '| labeler | atoms | k-point mesh (irreducible) | SCF iterations | wall time (s) | CPU time (s) '
        '| load avg before / after |'
    )
    print('|---|---|---|---|---|---|---|')
    for labeler, repeat in CASES:
        natoms = 8 * repeat[0] * repeat[1] * repeat[2]
        best = min(
            (run for run in runs if run['labeler'] == labeler and run['natoms'] == natoms),
            key=lambda run: run['wall_time_s'],
        )
        mesh = 'x'.join(map(str, best['kpoint_mesh'])) + f' ({best["nkpts_ibz"]})' if best['kpoint_mesh'] else '-'
        iterations = best['scf_iterations'] if best['scf_iterations'] is not None else '-'
        print(
            f'| {labeler} | {natoms} | {mesh} | {iterations} | {best["wall_time_s"]:.1f} | {best["cpu_time_s"]:.1f} '
            f'| {best["load_before"]:.1f} / {best["load_after"]:.1f} |'
        )
    if arguments.json:
        with open(arguments.json, 'w') as handle:
            json.dump({'machine': header, 'runs': runs}, handle, indent=1)


if __name__ == '__main__':
    main()
