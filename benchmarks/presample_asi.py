"""Melt-quench a-Si (Stillinger-Weber) and a-C (Tersoff) with PresampleWorkChain; measure density and coordination.

Every case is a full ``PresampleWorkChain`` run through AiiDA (random start, NVT melt, quench, anneal, relax; four
``lammps.base`` calculations), so the wall time includes AiiDA's overhead (upload, polling, retrieval, parsing:
several seconds per stage on the embedded profile); the LAMMPS time is the sum of the calculations' own wall times.

Usage (from the repository root; a throw-away AiiDA profile is made under ``--aiida-path``)::

    OMP_NUM_THREADS=1 python benchmarks/presample_asi.py [--cases asi,asi-sw,ac] [--seeds 1,2,3,4] \
        [--aiida-path /tmp/presample-bench] [--json results.json]

Cases:

``asi``     64 Si, ``sw-vbwm`` (Vink et al. 2001), quench 100 and 10 K/ps, NPT at 0 GPa, one run per seed
``asi-sw``  64 Si, the original ``sw`` (Stillinger-Weber 1985), same schedules: shows why it is not the default
``ac``      64 C, ``tersoff`` (Tersoff 1989), NVT at 2.0, 2.5 and 3.0 g/cm^3, quench 10 K/ps, seed 1

Prints a Markdown table per case, the machine's load before and after; ``--json`` also writes every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

#: Energy per atom of diamond Si with each Si potential (eV/atom; -epsilon * 2.0 for SW, from LAMMPS): a
#: quenched structure far above it has not crystallised.
CRYSTAL_ENERGY = {'sw': -4.3366, 'sw-vbwm': -3.2967}


def load() -> str:
    """Return the 1/5/15-minute load averages and the number of CPUs."""
    one, five, fifteen = os.getloadavg()
    return f'load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} CPUs'


def setup_profile(aiida_path: str):
    """Create (or load) a throw-away profile under ``aiida_path`` with ``localhost`` and ``lammps@localhost``."""
    os.environ['AIIDA_PATH'] = aiida_path
    from aiida_sianode.cli.setup import ensure_codes, ensure_localhost, ensure_profile

    ensure_profile('presample-benchmark')
    computer, _ = ensure_localhost(os.path.join(aiida_path, 'scratch'))
    ensure_codes(computer)
    from aiida import orm

    return orm.load_code('lammps@localhost')


def run_case(code, *, element: str, density: float, potential: str, rate: float, seed: int) -> dict:
    """Run one PresampleWorkChain (balanced protocol, ``rate`` K/ps) and return its measured numbers."""
    from aiida.engine import run_get_node

    from aiida_sianode.workflows.presample import PresampleWorkChain

    random_cell = {'element': element, 'natoms': 64, 'density': density}
    random_cell['min_distance'] = 2.0 if element == 'Si' else 1.3
    builder = PresampleWorkChain.get_builder_from_protocol(
        code,
        protocol='balanced',
        potential=potential,
        random_cell=random_cell,
        overrides={'quench': {'rate': rate}, 'seed': seed},
    )
    start = time.perf_counter()
    _, node = run_get_node(builder)
    wall = time.perf_counter() - start
    if not node.is_finished_ok:
        raise RuntimeError(f'PresampleWorkChain<{node.pk}> failed [{node.exit_status}]: {node.exit_message}')
    properties = node.outputs.properties.get_dict()
    lammps_seconds = sum(
        child.outputs.results.get_dict()['compute_variables'].get('total_wall_time_seconds', 0)
        for child in node.called
        if child.process_label == 'LammpsBaseCalculation'
    )
    fractions = properties['coordination_fractions']
    return {
        'element': element,
        'potential': potential,
        'start_density': density,
        'rate_k_per_ps': rate,
        'seed': seed,
        'pk': node.pk,
        'density_g_cm3': properties['density_g_cm3'],
        'mean_coordination': properties['mean_coordination'],
        'fractions': {int(number): value for number, value in fractions.items()},
        'energy_ev_per_atom': properties['potential_energy_ev_per_atom'],
        'wall_s': wall,
        'lammps_s': lammps_seconds,
    }


def silicon_table(rows: list[dict]) -> str:
    """Return the Markdown table of the a-Si runs, with the mean and spread per (potential, rate)."""
    lines = [
        '| potential | quench (K/ps) | seed | density (g/cm^3) | mean CN (2.85 Å) | 3-fold | 4-fold | 5-fold | '
        'E - E(c-Si) (eV/atom) | wall (s) | LAMMPS (s) |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row['potential'], row['rate_k_per_ps']), []).append(row)
        lines.append(
            f'| {row["potential"]} | {row["rate_k_per_ps"]:g} | {row["seed"]} | {row["density_g_cm3"]:.3f} | '
            f'{row["mean_coordination"]:.3f} | {row["fractions"].get(3, 0):.3f} | {row["fractions"].get(4, 0):.3f} | '
            f'{row["fractions"].get(5, 0):.3f} | {row["energy_ev_per_atom"] - CRYSTAL_ENERGY[row["potential"]]:.3f} | '
            f'{row["wall_s"]:.0f} | {row["lammps_s"]:.0f} |'
        )
    lines.append('')
    lines.append('| potential | quench (K/ps) | runs | density mean ± sd (min-max) | mean CN mean ± sd (min-max) |')
    lines.append('|---|---|---|---|---|')
    for (potential, rate), group in groups.items():
        densities = [row['density_g_cm3'] for row in group]
        cns = [row['mean_coordination'] for row in group]
        lines.append(
            f'| {potential} | {rate:g} | {len(group)} | {statistics.mean(densities):.3f} ± {_spread(densities):.3f} '
            f'({min(densities):.3f}-{max(densities):.3f}) | {statistics.mean(cns):.3f} ± {_spread(cns):.3f} '
            f'({min(cns):.3f}-{max(cns):.3f}) |'
        )
    return '\n'.join(lines)


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def carbon_table(rows: list[dict]) -> str:
    """Return the Markdown table of the a-C runs: sp, sp2, sp3 fractions at 1.85 Å."""
    lines = [
        '| density (g/cm^3) | quench (K/ps) | seed | mean CN (1.85 Å) | sp (2) | sp2 (3) | sp3 (4) | other | '
        'E (eV/atom) | wall (s) | LAMMPS (s) |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for row in rows:
        fractions = row['fractions']
        other = 1.0 - sum(fractions.get(number, 0.0) for number in (2, 3, 4))
        lines.append(
            f'| {row["density_g_cm3"]:.3f} | {row["rate_k_per_ps"]:g} | {row["seed"]} | '
            f'{row["mean_coordination"]:.3f} | {fractions.get(2, 0):.3f} | {fractions.get(3, 0):.3f} | '
            f'{fractions.get(4, 0):.3f} | {other:.3f} | {row["energy_ev_per_atom"]:.3f} | {row["wall_s"]:.0f} | '
            f'{row["lammps_s"]:.0f} |'
        )
    return '\n'.join(lines)


def main(argv=None) -> int:
    """Run the selected cases and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', default='asi,asi-sw,ac', help='comma-separated: asi, asi-sw, ac')
    parser.add_argument('--seeds', default='1,2,3,4', help='seeds of the a-Si runs')
    parser.add_argument('--rates', default='100,10', help='quench rates of the a-Si runs, K/ps')
    parser.add_argument('--aiida-path', default='/tmp/presample-benchmark', help='folder of the throw-away profile')
    parser.add_argument('--json', default=None, help='also write every number to this file')
    arguments = parser.parse_args(argv)
    cases = arguments.cases.split(',')
    seeds = [int(seed) for seed in arguments.seeds.split(',')]
    rates = [float(rate) for rate in arguments.rates.split(',')]

    code = setup_profile(arguments.aiida_path)
    print(
        f'# PresampleWorkChain benchmark\n\n{platform.node()}, {platform.processor() or platform.machine()}, '
        f'Python {sys.version.split()[0]}, OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS")}'
    )
    print(f'before: {load()}\n', flush=True)
    results = {}
    if 'asi' in cases or 'asi-sw' in cases:
        potentials = [name for case, name in (('asi', 'sw-vbwm'), ('asi-sw', 'sw')) if case in cases]
        rows = [
            run_case(code, element='Si', density=2.28, potential=potential, rate=rate, seed=seed)
            for potential in potentials
            for rate in rates
            for seed in (seeds if potential == 'sw-vbwm' else seeds[:1])
        ]
        results['a-Si'] = rows
        print(
            '## a-Si, 64 atoms, random start at 2.28 g/cm^3, NVT melt 3000 K 10 ps, NPT (0 GPa) quench to 300 K, '
            'anneal 10 ps, relax\n'
        )
        print(silicon_table(rows) + '\n', flush=True)
    if 'ac' in cases:
        rows = [
            run_case(code, element='C', density=density, potential='tersoff', rate=10.0, seed=seeds[0])
            for density in (2.0, 2.5, 3.0)
        ]
        results['a-C'] = rows
        print('## a-C, 64 atoms, Tersoff, NVT melt 5000 K 5 ps, NVT quench to 300 K, anneal 5 ps, relax\n')
        print(carbon_table(rows) + '\n', flush=True)
    print(f'after: {load()}')
    if arguments.json:
        with open(arguments.json, 'w') as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
