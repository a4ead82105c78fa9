"""Benchmark: Li vacancy hops in Li2CO3 by NEB with the GPAW-trained `fast` committee, through AiiDA as shipped.

For each hop of ``train_li2co3_gpaw.HOPS`` the two end points (the 24-atom zabuyelite cell with one Li removed, and
the neighbouring Li moved onto the vacant site: 23 atoms, the vacancy and its periodic images 5-8 Å apart) are
written to ``benchmarks/properties_li2co3/structures/`` and ``aiida-sianode property run neb A.xyz B.xyz --potentials
... --protocol fast --reference gpaw --reference-protocol fast --json`` runs in the worktree's AiiDA profile, with the
members of the committee that ``benchmarks/train_li2co3_gpaw.py --train --profile <profile>`` stored as
PotentialData. The command line is the one of ``properties_lisi.py``'s ``neb`` case. While it runs, the computer's
jobs wait for one another (``train_mlearn_si.one_job_at_a_time``): the committee's calculation and the five GPAW
labels run one after the other, one process at a time on the shared machine.

The CLI's JSON document of each hop goes to ``benchmarks/properties_li2co3/<hop>.json`` with the wall and CPU time of
the command (children included) and the load average; the plot beside it. Usage (repository root)::

    export AIIDA_PATH=$PWD/.aiida
    OMP_NUM_THREADS=1 python benchmarks/properties_li2co3.py --potentials 101,102,103 --hop hop_2.70
    python benchmarks/properties_li2co3.py --table --hop hop_2.70
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / 'properties_li2co3'
sys.path.insert(0, str(HERE))

from properties_lisi import command, run_cli  # noqa: E402  (sibling benchmark scripts, not a package)
from train_li2co3_gpaw import HOPS, hop_endpoints  # noqa: E402
from train_mlearn_si import one_job_at_a_time  # noqa: E402


def structures(hop: str, directory: pathlib.Path = OUT / 'structures') -> list[pathlib.Path]:
    """Write the end points of ``hop`` (extxyz) to ``directory``; return the two files."""
    from ase.io import write

    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for name, atoms in zip(('A', 'B'), hop_endpoints(hop)):
        path = directory / f'{hop}_{name}.xyz'
        write(path, atoms, format='extxyz')
        files.append(path)
    return files


def run_hop(hop: str, potentials: str, reference: bool, profile: str | None) -> dict:
    """Run the NEB of ``hop`` through the CLI, the computer's jobs one at a time; save and return the record."""
    from aiida import load_profile, orm

    load_profile(profile, allow_switch=True)
    computer = orm.load_computer('localhost')
    files = structures(hop)
    argv = [
        *command('neb', files, potentials, argparse.Namespace(reference=reference)),
        '--json',
        '--png',
        str(OUT / f'{hop}.png'),
    ]
    head = {'hop': hop, 'vacant_site': HOPS[hop][0], 'mover': HOPS[hop][1], 'hop_length_a': HOPS[hop][2]}
    return run_cli(argv, hop, head, OUT, one_job_at_a_time(computer, True))


def table(hop: str) -> str:
    """A saved hop as Markdown: the barrier per member, mean ± std, the GPAW path; per member the band's convergence,
    its largest force deviation and the flagged images."""
    record = json.loads((OUT / f'{hop}.json').read_text())
    document = record.get('document') or {}
    results = document.get('results') or {}
    reference = document.get('reference') or {}
    lines = ['| quantity | mean ± std | members | GPAW, IDPP images |', '|---|---|---|---|']
    for name, stats in results.get('scalars', {}).items():
        members = ', '.join('–' if value is None else f'{value:.3f}' for value in stats['members'])
        value = reference.get('scalars', {}).get(name)
        lines.append(
            f'| {name} | {stats["mean"]:.3f} ± {stats["std"]:.3f} | {members} | '
            f'{"" if value is None else f"{value:.3f}"} |'
        )
    lines += [
        '',
        '| member | converged (steps) | E along the band - E(A) (eV) | max force deviation per image (eV/Å) |',
    ]
    lines.append('|---|---|---|---|')
    for member in results.get('members', []):
        extra = member['extra']
        energies = [value - extra['energies_ev'][0] for value in extra['energies_ev']]
        deviations = extra.get('max_force_deviation') or []
        flagged = extra.get('candidate_images') or []
        lines.append(
            f'| {member["index"]} | {extra["converged"]} ({extra["optimizer_steps"]}) | '
            f'{", ".join(f"{value:.3f}" for value in energies)} | '
            f'{", ".join(f"{value:.2f}" for value in deviations)}'
            + (f' (flagged: images {", ".join(map(str, flagged))})' if flagged else '')
            + ' |'
        )
    if reference:
        energies = reference.get('extra', {}).get('energies_ev', [])
        lines.append(
            f'\nGPAW path (IDPP images, unrelaxed): {", ".join(f"{value - energies[0]:.3f}" for value in energies)} eV'
        )
    load = record.get('load_average') or {}
    lines.append(
        f'\n{document.get("process_label")}<{document.get("process_pk")}> exit {document.get("exit_status")}; '
        f'command wall {record["wall_time_s"]:.0f} s, CPU {record["cpu_time_s"]:.0f} s (children), load '
        f'{load.get("mean", float("nan")):.1f} mean / {load.get("max", float("nan")):.1f} max ({record["date"]}); '
        f'committee calculation {results.get("wall_time_s", float("nan")):.0f} s wall, '
        f'{results.get("cpu_time_s", float("nan")):.0f} s CPU'
    )
    return '\n'.join(lines)


def plot(hop: str) -> pathlib.Path:
    """The converged members' relaxed paths beside the GPAW energies of the IDPP images, E - E(first image), against
    the fraction of each path; an unconverged member's band is left out (its energies say nothing of a barrier)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    document = json.loads((OUT / f'{hop}.json').read_text())['document']
    figure, axis = plt.subplots(figsize=(5.2, 3.6), dpi=100)
    for member in document['results']['members']:
        extra = member['extra']
        if not extra['converged']:
            continue
        coordinate, energies = extra['path_coordinate_a'], extra['energies_ev']
        axis.plot(
            [value / coordinate[-1] for value in coordinate],
            [value - energies[0] for value in energies],
            'o-',
            label=f'member {member["index"]} (relaxed band)',
        )
    reference = (document.get('reference') or {}).get('curves', {}).get('mep')
    if reference:
        axis.plot(reference['x'], reference['y'], 's--k', label='GPAW PBE, IDPP images (unrelaxed)')
    axis.axhspan(0.23, 0.49, color='0.85', label='DFT literature (charged V$_{Li}$)')
    axis.set_xlabel('reaction coordinate (fraction of the path)')
    axis.set_ylabel('E - E$_{initial}$ (eV)')
    axis.set_title(f'Li vacancy {hop.replace("_", " ")} Å in Li$_2$CO$_3$')
    axis.legend(fontsize=7)
    figure.tight_layout()
    path = OUT / f'{hop}_vs_gpaw.png'
    figure.savefig(path)
    plt.close(figure)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--potentials', help='PotentialData PKs of the members, comma separated.')
    parser.add_argument('--hop', action='append', required=True, choices=sorted(HOPS))
    parser.add_argument('--profile', default=None, help='AiiDA profile (default: the default one).')
    parser.add_argument('--table', action='store_true', help='Print the saved hops as Markdown tables; run nothing.')
    parser.add_argument('--no-reference', dest='reference', action='store_false', help='NEB without GPAW images.')
    args = parser.parse_args(argv)
    if args.table:
        for hop in args.hop:
            print(f'### {hop}\n\n{table(hop)}\n\nplot: {plot(hop).relative_to(HERE.parent)}\n')
        return 0
    if not args.potentials:
        parser.error('--potentials is required to run a hop')
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    OUT.mkdir(exist_ok=True)
    for hop in args.hop:
        run_hop(hop, args.potentials, args.reference, args.profile)
    return 0


if __name__ == '__main__':
    sys.exit(main())
