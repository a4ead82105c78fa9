"""SCF failure rate of the GFN1-xTB labeler on hot c-Si, a-Si and LixSi frames, per system and temperature.

Each frame is labelled once, from tblite's default start (SAD guess, no wavefunction carried from a previous frame),
with the engine function the ``LocalLabelCalculation`` runs, so a failure here is a failed first attempt of a label.
Two parameter sets are compared:

* ``protocol``: the ``fast`` protocol of ``aiida_sianode/protocols/label_xtb.yaml`` as it is now (SCF annealing);
* ``plain``: the same without annealing, at the electronic temperature ``--plain-temperature`` (300 K, the level
  of theory of the protocol);
* ``old-campaign``: without annealing at 1000 K, what the quick campaign ``workflows/si_lixsi_xtb.yaml`` used;
* ``quick-campaign``: the protocol's annealing at 1000 K, what that campaign uses now.

The frames are heated cells, not MD snapshots (an xTB MD of every system at every temperature costs more than this
shared machine allows; no cheap potential covers Li-Si): each is a cell from the project's builders with every atom
displaced by a Gaussian of the harmonic (Einstein) thermal amplitude at temperature T,
``sigma = sqrt(k_B T / (m omega^2))`` per Cartesian component, with omega chosen so that Si has the measured
Debye-Waller amplitude of c-Si at 300 K (0.076 Å per component, B = 0.46 Å^2), and the cell strained at random by a
symmetric strain of up to ``0.01 * sqrt(T / 300)`` per component. Li, lighter and bound to the same force constant,
moves sqrt(28.09 / 6.94) = 2 times further. At 1500 K Si moves 0.17 Å and Li 0.34 Å per component, which is as hot
and disordered as the frames an exploration at 1500 K sends to the labeler.

Systems: c-Si (8-atom diamond cell), a-Si (16 Si at random at the a-Si density, minimum distance 2.2 Å: a
melt-quench start, as disordered as a liquid), LixSi (x = 0.5, 1, 2 on the 8-atom Si host, the builder's Li at the
largest voids, cell scaled to the volume model).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/xtb_convergence.py [--frames 12] [--temperatures 300 600 1000 1500]
        [--settings protocol plain] [--json out.json]

Prints a Markdown table per parameter set: frames, failures and failure rate per system (and per temperature), the
mean wall time per label, and the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time

import numpy as np

SI_SIGMA_300K = 0.076  # Å per Cartesian component, c-Si at 300 K (Debye-Waller B = 0.46 Å^2)
STRAIN_300K = 0.01

#: system -> list of (builder kind, parameters); frames cycle over the list.
SYSTEMS = {
    'c-Si': [('si-crystal', {'size': [1, 1, 1]})],
    'a-Si': [('si-random', {'n_atoms': 16, 'min_distance': 2.2})],
    'LixSi': [
        ('lixsi', {'x': 0.5, 'size': [1, 1, 1]}),
        ('lixsi', {'x': 1.0, 'size': [1, 1, 1]}),
        ('lixsi', {'x': 2.0, 'size': [1, 1, 1]}),
    ],
}


def thermal_sigma(masses: np.ndarray, temperature: float) -> np.ndarray:
    """Return the harmonic thermal displacement (Å per component) of atoms of ``masses`` (amu) at ``temperature``."""
    si_mass = 28.0855
    return SI_SIGMA_300K * np.sqrt(temperature / 300.0) * np.sqrt(si_mass / masses)


def heated_frame(kind: str, parameters: dict, temperature: float, seed: int):
    """Return one heated cell: the builder's structure (seed ``seed``), strained and displaced at ``temperature``."""
    from aiida_sianode.structures import build

    atoms = build(kind, parameters, seed=seed)
    rng = np.random.default_rng(10_000 + seed)
    amplitude = STRAIN_300K * math.sqrt(temperature / 300.0)
    strain = rng.uniform(-amplitude, amplitude, (3, 3))
    strain = (strain + strain.T) / 2
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
    sigma = thermal_sigma(atoms.get_masses(), temperature)
    atoms.positions += rng.normal(size=atoms.positions.shape) * sigma[:, None]
    atoms.wrap()
    return atoms


def protocol_parameters(protocol: str = 'fast') -> dict:
    """Return the engine parameters of ``protocol`` of the xTB labeler, read from its protocol YAML."""
    from aiida_sianode.protocols import load_protocol_file, recursive_merge

    data = load_protocol_file('label_xtb')
    inputs = recursive_merge(data['default_inputs'], data['protocols'][protocol])
    parameters = dict(inputs['calc']['parameters'])
    parameters.pop('labeler')
    return parameters


def parameter_sets(names, plain_temperature: float) -> dict[str, dict]:
    """Return ``{name: engine parameters}`` for the compared settings."""
    protocol = protocol_parameters('fast')  # 300 K, no annealing (opt-in since it breaks molecules)
    annealing = {'start_k': 6000.0, 'hold_iterations': 5, 'cycles': 30}
    sets = {
        'protocol': {**protocol, 'scf_annealing': annealing},
        'plain': {**protocol, 'scf_annealing': None, 'electronic_temperature_k': plain_temperature},
        # What workflows/si_lixsi_xtb.yaml used before: 1000 K smearing, no annealing.
        'old-campaign': {**protocol, 'scf_annealing': None, 'electronic_temperature_k': 1000.0},
        # What workflows/si_lixsi_xtb.yaml uses now: 1000 K with annealing.
        'quick-campaign': {**protocol, 'scf_annealing': annealing, 'electronic_temperature_k': 1000.0},
        # Gentler mixing and more cycles at 1000 K with annealing (the level of theory of quick-campaign).
        'quick-damped': {
            **protocol,
            'scf_annealing': annealing,
            'electronic_temperature_k': 1000.0,
            'mixer_damping': 0.2,
            'max_iterations': 500,
        },
        # A 2000 K electronic temperature with annealing: another level of theory, named as such (0.17 eV smearing).
        'hot-2000': {**protocol, 'scf_annealing': annealing, 'electronic_temperature_k': 2000.0},
    }
    unknown = set(names) - set(sets)
    if unknown:
        raise SystemExit(f'unknown settings {sorted(unknown)}; choose from {sorted(sets)}')
    return {name: sets[name] for name in names}


def run(frames: int, temperatures, settings: dict[str, dict], systems=None, log=None) -> list[dict]:
    """Label every frame with every parameter set; return one record per label (also appended to ``log``)."""

    records = []
    with tempfile.TemporaryDirectory() as workdir:
        for system, cells in SYSTEMS.items():
            if systems and system not in systems:
                continue
            for temperature in temperatures:
                for index in range(frames):
                    kind, parameters = cells[index % len(cells)]
                    atoms = heated_frame(kind, parameters, temperature, seed=index)
                    for name, values in settings.items():
                        record = {'settings': name, 'system': system, 'temperature_k': temperature, 'frame': index}
                        records.append(_label_and_record(atoms, values, workdir, record, log))
    return records


def _label_and_record(atoms, values: dict, workdir, record: dict, log=None) -> dict:
    """Label ``atoms`` with xTB settings ``values``; complete ``record`` with the outcome, append it to ``log`` (one
    JSON line) and print one line."""
    from aiida_sianode.engines.label import label

    result = label(atoms, 'xtb', values, workdir)
    record = {
        **record,
        'formula': atoms.get_chemical_formula(),
        'status': result['status'],
        'error': result['error'],
        'wall_time_s': result['wall_time_s'],
    }
    if log:
        with open(log, 'a') as handle:
            handle.write(json.dumps(record) + '\n')
    print(
        f'{record["settings"]:14s} {record["system"]:6s} {record["temperature_k"]:6.0f} K {record["formula"]:8s} '
        f'{result["status"]:18s} {result["wall_time_s"]:6.1f} s',
        flush=True,
    )
    return record


def run_frames(path, settings: dict[str, dict], systems=None, log=None) -> list[dict]:
    """Label every frame of the extended XYZ file ``path`` (``info['system']``, ``info['temperature_k']``, as
    ``xtb_md_frames.py`` writes them) with every parameter set; return one record per label."""
    from ase.io import read

    records = []
    with tempfile.TemporaryDirectory() as workdir:
        for index, atoms in enumerate(read(path, index=':')):
            system, temperature = atoms.info['system'], float(atoms.info['temperature_k'])
            if systems and system not in systems:
                continue
            for name, values in settings.items():
                # ``index``/``cell`` (when the file has them) name the frame's place in the original file and its start
                # cell, so logs of one file labelled in several orders (or split between processes) can be merged.
                record = {
                    'settings': name,
                    'system': system,
                    'temperature_k': temperature,
                    'frame': int(atoms.info.get('index', index)),
                    'cell': atoms.info.get('cell'),
                    'source': 'md',
                }
                records.append(_label_and_record(atoms.copy(), values, workdir, record, log))
    return records


def table(records: list[dict], settings: dict[str, dict], temperatures) -> str:
    """Return the Markdown tables of failure rates, one per parameter set."""
    lines = []
    for name, values in settings.items():
        annealing = values.get('scf_annealing')
        lines.append(
            f'\n**{name}**: electronic temperature {values["electronic_temperature_k"]:g} K, accuracy '
            f'{values["accuracy"]:g}, max_iterations {values["max_iterations"]}, mixer_damping '
            f'{values["mixer_damping"]:g}, annealing {annealing}\n'
        )
        header = '| system | ' + ' | '.join(f'{t:g} K' for t in temperatures) + ' | all | rate | mean time (s) |'
        lines += [header, '|' + '---|' * (len(temperatures) + 4)]
        for system in SYSTEMS:
            if not any(r['system'] == system for r in records):
                continue
            mine = [r for r in records if r['settings'] == name and r['system'] == system]
            cells = []
            for temperature in temperatures:
                subset = [r for r in mine if r['temperature_k'] == temperature]
                failed = sum(r['status'] != 'ok' for r in subset)
                cells.append(f'{failed}/{len(subset)}')
            failed = sum(r['status'] != 'ok' for r in mine)
            rate = failed / len(mine) if mine else float('nan')
            time_s = np.mean([r['wall_time_s'] for r in mine]) if mine else float('nan')
            lines.append(
                f'| {system} | ' + ' | '.join(cells) + f' | {failed}/{len(mine)} | {100 * rate:.1f} % | {time_s:.1f} |'
            )
    return '\n'.join(lines)


def main() -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=12, help='frames per system and temperature')
    parser.add_argument('--temperatures', type=float, nargs='+', default=[300, 600, 1000, 1500])
    parser.add_argument('--settings', nargs='+', default=['protocol', 'plain'])
    parser.add_argument('--plain-temperature', type=float, default=300.0)
    parser.add_argument('--systems', nargs='+', choices=list(SYSTEMS), help='only these systems (default: all)')
    parser.add_argument('--json', help='write every record to this file')
    parser.add_argument('--log', help='append each record to this JSON-lines file as it is made')
    parser.add_argument('--from-log', nargs='+', help='print the tables of records in these JSON-lines files')
    parser.add_argument('--frames-file', help='label the MD frames of this file (xtb_md_frames.py) instead')
    arguments = parser.parse_args()
    settings = parameter_sets(arguments.settings, arguments.plain_temperature)
    if arguments.from_log:
        records = [json.loads(line) for path in arguments.from_log for line in open(path) if line.strip()]
        # The same frame labelled twice with the same settings (by two processes) counts once.
        unique = {}
        for record in records:
            key = (record['settings'], record['system'], record['temperature_k'], record['frame'], record.get('source'))
            unique.setdefault(key, record)
        records = list(unique.values())
        print(table(records, settings, arguments.temperatures))
        return
    load_before = os.getloadavg()
    start = time.perf_counter()
    if arguments.frames_file:
        records = run_frames(arguments.frames_file, settings, arguments.systems, arguments.log)
    else:
        records = run(arguments.frames, arguments.temperatures, settings, arguments.systems, arguments.log)
    elapsed = time.perf_counter() - start
    print(table(records, settings, arguments.temperatures))
    print(
        f'\nload average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; total wall time {elapsed:.0f} s; '
        f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS")}'
    )
    if arguments.json:
        with open(arguments.json, 'w') as handle:
            json.dump(records, handle, indent=1)


if __name__ == '__main__':
    main()
