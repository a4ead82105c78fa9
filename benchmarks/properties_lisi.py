"""Benchmark: Li-Si properties with the GPAW-trained `fast` committee, through AiiDA as shipped (the CLI).

Cases (each runs ``aiida-sianode property run KIND ... --json`` in the worktree's AiiDA profile, with the three
members of the committee trained by ``benchmarks/train_lisi_gpaw.py --train --profile <profile>`` as PotentialData):

* ``lithiation``: the ``fast`` lithiation protocol on the phases with a DFT energy in the shared fixtures (bcc Li,
  diamond Si, LiSi, Li12Si7, Li7Si3, Li13Si4, Li15Si4), each relaxed per member, with c-Si given as the structure;
  with ``--amorphous`` also the protocol's three annealed amorphous cells;
* ``diffusion-x1``, ``diffusion-x3.5``: Li diffusion in a ``lixsi`` cell (random a-Si host, x = 1 and 3.5) at
  600, 900 and 1200 K, short runs (``--length-ps``);
* ``neb``: Li hopping between neighbouring tetrahedral sites of c-Si (Si8 conventional cell at the PBE lattice
  constant), ``fast`` NEB protocol, with ``--reference gpaw`` at the ``fast`` label protocol on the IDPP images.

The CLI's JSON document of each case goes to ``benchmarks/properties_lisi/<case>.json`` with the wall and CPU time of
the command (children included) and the load average; the plots beside it. Usage (repository root)::

    export AIIDA_PATH=$PWD/.aiida
    OMP_NUM_THREADS=1 python benchmarks/properties_lisi.py --potentials 101,102,103 --case lithiation
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / 'properties_lisi'
PBE_SI_A = 5.47
CLI = str(pathlib.Path(sys.executable).with_name('aiida-sianode'))


def structures(directory: pathlib.Path) -> dict[str, list[pathlib.Path]]:
    """Write the input structures of every case to ``directory``; return case -> files."""
    from ase.build import bulk
    from ase.io import write

    from aiida_sianode.structures.lithiation import lixsi
    from aiida_sianode.structures.silicon import diamond_silicon, interstitial_sites

    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    write(directory / 'c_Si.xyz', bulk('Si', 'diamond', a=PBE_SI_A, cubic=True), format='extxyz')
    files['lithiation'] = [directory / 'c_Si.xyz']
    for x, n_si in ((1.0, 16), (3.5, 8)):
        atoms = lixsi(x=x, host_kind='random', n_si=n_si, seed=0, min_distance=2.0)
        atoms.info = {}
        path = directory / f'a_Li{x:g}Si.xyz'
        write(path, atoms, format='extxyz')
        files[f'diffusion-x{x:g}'] = [path]
    host = diamond_silicon((1, 1, 1), PBE_SI_A)
    sites = interstitial_sites((1, 1, 1), PBE_SI_A, 'tetrahedral')
    start = sites[0]
    # the nearest other tetrahedral site (minimum image): the hop crosses the hexagonal site half way
    vectors = sites - start
    vectors -= np.round(vectors @ np.linalg.inv(host.cell.array)) @ host.cell.array
    distances = np.linalg.norm(vectors, axis=1)
    distances[0] = np.inf
    end = start + vectors[int(np.argmin(distances))]
    for name, position in (('neb_T0', start), ('neb_T1', end)):
        atoms = host.copy()
        atoms.append('Li')
        atoms.positions[-1] = position
        write(directory / f'{name}.xyz', atoms, format='extxyz')
    files['neb'] = [directory / 'neb_T0.xyz', directory / 'neb_T1.xyz']
    return files


def command(case: str, files: list[pathlib.Path], potentials: str, args) -> list[str]:
    base = [CLI, 'property', 'run']
    if case == 'lithiation':
        # the phases with a DFT energy in fixtures/structures/DFTB_LiSi_crystal (Li17Si4 has none); amorphous cells
        # only with --amorphous (their anneal is most of the cost)
        settings = ['phases=[Li,Si,LiSi,Li12Si7,Li7Si3,Li13Si4,Li15Si4]']
        if not args.amorphous:
            settings.append('amorphous.x_values=[]')
        return [
            *base,
            'lithiation',
            *map(str, files),
            '--potentials',
            potentials,
            '--protocol',
            'fast',
            *[item for setting in settings for item in ('-p', setting)],
        ]
    if case.startswith('diffusion'):
        settings = [
            'temperatures_k=[600,900,1200]',
            f'md.length_ps={args.length_ps}',
            f'md.equilibration_ps={args.equilibration_ps}',
            'n_blocks=4',
            'md.trajectory_interval=10',
        ]
        return [
            *base,
            'diffusion',
            *map(str, files),
            '--potentials',
            potentials,
            '--protocol',
            'fast',
            *[item for setting in settings for item in ('-p', setting)],
        ]
    if case == 'neb':
        reference = ['--reference', 'gpaw', '--reference-protocol', 'fast'] if args.reference else []
        return [*base, 'neb', *map(str, files), '--potentials', potentials, '--protocol', 'fast', *reference]
    raise ValueError(case)


def run_cli(argv: list[str], name: str, head: dict, out: pathlib.Path = OUT, hold=None) -> dict:
    """Run a CLI command line, timed (wall, CPU of the children, load), its JSON document in the record; write the
    record to ``out/<name>.json`` (``head`` first) and return it. ``hold``: a context manager held around the run."""
    from train_mlearn_si import LoadSampler

    print(' '.join(argv), flush=True)
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with LoadSampler() as sampler, hold or contextlib.nullcontext():
        process = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    record = {
        **head,
        'command': ' '.join(argv[1:]),
        'exit_code': process.returncode,
        'wall_time_s': wall,
        'cpu_time_s': (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        'load_before_after': [load_before, os.getloadavg()[0]],
        'load_average': sampler.summary() if sampler.samples else None,
        'date': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()),
    }
    try:
        record['document'] = json.loads(process.stdout)
    except json.JSONDecodeError:
        record['stdout'] = process.stdout[-4000:]
    record['stderr'] = process.stderr[-4000:]
    (out / f'{name}.json').write_text(json.dumps(record, indent=2))
    print(f'{name}: exit {process.returncode}, {wall:.0f} s wall, {record["cpu_time_s"]:.0f} s CPU', flush=True)
    return record


def run_case(case: str, potentials: str, args) -> dict:
    files = structures(OUT / 'structures')[case]
    argv = [*command(case, files, potentials, args), '--json', '--png', str(OUT / f'{case}.png')]
    return run_cli(argv, case, {'case': case})


def table(case: str) -> str:
    """The scalars of a finished case as a Markdown table: committee mean ± std, the members, the reference."""
    record = json.loads((OUT / f'{case}.json').read_text())
    document = record.get('document') or {}
    results = document.get('results') or {}
    reference = (document.get('reference') or {}).get('scalars', {})
    lines = ['| quantity | mean ± std | members | reference |', '|---|---|---|---|']
    for name, stats in results.get('scalars', {}).items():
        members = ', '.join('–' if value is None else f'{value:.4g}' for value in stats['members'])
        lines.append(
            f'| {name} | {stats["mean"]:.4g} ± {stats["std"]:.2g} | {members} | '
            f'{"" if reference.get(name) is None else f"{reference[name]:.4g}"} |'
        )
    lines.append(
        f'\n{document.get("process_label")}<{document.get("process_pk")}> exit {document.get("exit_status")}; '
        f'command wall {record["wall_time_s"]:.0f} s, CPU {record["cpu_time_s"]:.0f} s, load '
        f'{record["load_before_after"][0]:.1f} / {record["load_before_after"][1]:.1f} ({record["date"]})'
    )
    return '\n'.join(lines)


def crystal_hull(case: str = 'lithiation') -> str:
    """Each member's hull, voltage steps and average voltage from its relaxed crystals alone (the amorphous cells of
    a ``--amorphous`` run left out), recomputed by ``lithiation_analysis`` from the saved JSON: one collapsed
    amorphous cell otherwise decides a member's whole hull."""
    from aiida_sianode.properties.lithiation import lithiation_analysis

    record = json.loads((OUT / f'{case}.json').read_text())
    keys = ('name', 'kind', 'formula', 'n_li', 'n_si', 'energy_ev', 'volume_a3')
    lines = ['| member | stable phases | voltage steps (V, to phase) | average voltage (V) | Li-richest stable x |']
    lines.append('|---|---|---|---|---|')
    for member in record['document']['results']['members']:
        entries = [
            {key: entry[key] for key in keys} for entry in member['extra']['entries'] if entry['kind'] == 'crystal'
        ]
        result = lithiation_analysis(entries)
        steps = ', '.join(f'{step["voltage_v"]:.3f} ({step["to"]})' for step in result['extra']['voltage_steps'])
        lines.append(
            f'| {member["index"]} | {", ".join(result["extra"]["stable_phases"])} | {steps} | '
            f'{result["scalars"]["average_voltage_v"]:.3f} | {result["scalars"]["x_max_stable"]:.3g} |'
        )
    return '\n'.join(lines)


def lithiation_comparison(old: pathlib.Path, case: str = 'lithiation') -> str:
    """The lithiation case's per-phase numbers, an older record (``old``, the same case's JSON) beside the saved one:
    formation energy, energy above the hull per member, expansion; then voltages and unconverged relaxations."""

    def load(path: pathlib.Path) -> dict:
        return json.loads(path.read_text())['document']['results']

    before, after = load(old), load(OUT / f'{case}.json')

    def stat(results: dict, key: str, scale: float = 1.0, digits: int = 3) -> str:
        item = results['scalars'].get(key)
        if item is None:
            return '–'
        return f'{scale * item["mean"]:.{digits}f} ± {scale * item["std"]:.{digits}f}'

    def members(results: dict, key: str, scale: float = 1.0, digits: int = 0) -> str:
        item = results['scalars'].get(key)
        if item is None:
            return '–'
        return ', '.join('–' if value is None else f'{scale * value:.{digits}f}' for value in item['members'])

    names = [
        key[len('formation_energy_') : -len('_ev_atom')]
        for key in after['scalars']
        if key.startswith('formation_energy_') and not key.startswith('formation_energy_structure')
    ]
    lines = [
        '| phase | E_f before (eV/atom) | E_f after | E_f after, members | above hull before, members (meV/atom) | '
        'above hull after, members | expansion before (%) | expansion after (%) | expansion after, members |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for name in names:
        if name in ('Li', 'Si'):
            continue
        lines.append(
            f'| {name} | {stat(before, f"formation_energy_{name}_ev_atom")} | '
            f'{stat(after, f"formation_energy_{name}_ev_atom")} | '
            f'{members(after, f"formation_energy_{name}_ev_atom", digits=3)} | '
            f'{members(before, f"e_above_hull_{name}_ev_atom", 1000)} | '
            f'{members(after, f"e_above_hull_{name}_ev_atom", 1000)} | '
            f'{stat(before, f"expansion_{name}_percent", digits=0)} | '
            f'{stat(after, f"expansion_{name}_percent", digits=0)} | '
            f'{members(after, f"expansion_{name}_percent", digits=1)} |'
        )
    for label, results in (('before', before), ('after', after)):
        lines.append('')
        lines.append(
            f'{label}: average voltage {stat(results, "average_voltage_v")} V (members '
            f'{members(results, "average_voltage_v", digits=3)}), first step {stat(results, "max_voltage_v")} V; '
            f'unconverged relaxations: '
            + ', '.join(
                f'member {member["index"]}: {", ".join(member["extra"]["unconverged"]) or "none"}'
                for member in results['members']
            )
        )
        for member in results['members']:
            steps = ', '.join(f'{step["voltage_v"]:.3f} ({step["to"]})' for step in member['extra']['voltage_steps'])
            lines.append(f'- member {member["index"]}: hull {", ".join(member["extra"]["stable_phases"])}; {steps}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--potentials', help='PotentialData PKs of the members, comma separated.')
    parser.add_argument(
        '--case', action='append', required=True, choices=['lithiation', 'diffusion-x1', 'diffusion-x3.5', 'neb']
    )
    parser.add_argument('--table', action='store_true', help='Print the saved cases as Markdown tables; run nothing.')
    parser.add_argument(
        '--compare-with',
        type=pathlib.Path,
        default=None,
        help='With --table --case lithiation: an older lithiation JSON to set beside the saved one.',
    )
    parser.add_argument('--length-ps', type=float, default=2.0, help='Production MD per temperature (diffusion).')
    parser.add_argument('--equilibration-ps', type=float, default=0.5)
    parser.add_argument('--amorphous', action='store_true', help='Lithiation with the fast amorphous cells too.')
    parser.add_argument('--no-reference', dest='reference', action='store_false', help='NEB without GPAW images.')
    args = parser.parse_args(argv)
    if args.table:
        for case in args.case:
            print(f'### {case}\n\n{table(case)}\n')
            if case == 'lithiation':
                print(f'Crystals only:\n\n{crystal_hull(case)}\n')
                if args.compare_with:
                    print(f'Against {args.compare_with}:\n\n{lithiation_comparison(args.compare_with, case)}\n')
        return 0
    if not args.potentials:
        parser.error('--potentials is required to run a case')
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    OUT.mkdir(exist_ok=True)
    for case in args.case:
        run_case(case, args.potentials, args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
