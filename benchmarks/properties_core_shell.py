"""Benchmark: how large a Si@C core-shell particle (``sianode.properties.core_shell``) runs on this machine, and how
long the ``fast`` protocol takes for it.

No Li-Si-C committee exists yet, so the cost is measured with an untrained MACE model over Li, C and Si of the size
the project trains at the ``fast`` protocol (8 channels, max_L 0, correlation 2, r_max 4 Å, 2 interactions, float32,
as ``benchmarks/models/si_fast``): the cost of a force call depends on the architecture and the neighbour count, not
on the weights. For each core radius the script builds the particles the ``fast`` protocol builds (every shell
thickness of the protocol, unlithiated and with the core lithiated to its x), times a force call (CPU seconds of this
process, best of ``--calls`` after a warm-up) and estimates the protocol's cost per member as the number of force calls
it makes at most (two relaxations of ``relax.max_steps`` steps and the anneal's steps, per particle) times the time of
one call. ``--run-smallest`` also runs the whole ``fast`` protocol (``run_member``) for the smallest radius with that
model, to check the estimate against a measured run.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/properties_core_shell.py --radii 0.5 1.0 1.5 2.0 [--run-smallest]
[--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import tempfile
import time


def force_call_cpu_seconds(atoms, calculator, calls: int) -> float:
    """Best CPU time (s) of one energy+forces evaluation of ``atoms`` over ``calls`` calls, after one warm-up."""
    atoms = atoms.copy()
    atoms.calc = calculator
    atoms.get_forces()
    best = float('inf')
    for _ in range(calls):
        atoms.positions[0, 0] += 1e-4  # a new configuration: no cached result
        start = time.process_time()
        atoms.get_forces()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    """Scan the core radii, print a markdown table (and optionally write JSON)."""
    import resource

    import torch
    from mace.calculators import MACECalculator

    from aiida_sianode.engines.committee import save_untrained_mace
    from aiida_sianode.properties import core_shell
    from aiida_sianode.properties.common import get_settings, split_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--radii', nargs='+', type=float, default=[0.5, 1.0, 1.5, 2.0], help='core radii (nm)')
    parser.add_argument('--calls', type=int, default=3)
    parser.add_argument('--members', type=int, default=3, help='committee size for the committee estimate')
    parser.add_argument('--run-smallest', action='store_true')
    parser.add_argument('--json', type=pathlib.Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))

    _, settings = split_settings(get_settings('core_shell', 'fast', {}))
    relax_steps = int(settings['relax']['max_steps'])
    anneal_steps = int(settings['anneal']['steps'])
    calls_per_particle = 2 * relax_steps + anneal_steps
    rows = []
    with tempfile.TemporaryDirectory(prefix='core-shell-') as scratch:
        model = save_untrained_mace(
            pathlib.Path(scratch) / 'lisic.model',
            [3, 6, 14],
            seed=0,
            num_channels=8,
            max_L=0,
            correlation=2,
            r_max=4.0,
            num_interactions=2,
        )
        calculator = MACECalculator(model_paths=[str(model)], device='cpu', default_dtype='float32')
        print(
            f'# fast protocol: shells {settings["shell_thicknesses_nm"]} nm, x = {settings["x"]}, at most '
            f'{calls_per_particle} force calls per particle; load {os.getloadavg()[0]:.1f}'
        )
        print('| core radius (nm) | shell (nm) | atoms, unlithiated / lithiated | CPU s per force call | load |')
        print('|---|---|---|---|---|')
        for radius in args.radii:
            particle_settings = {**settings, 'core_radius_nm': radius}
            total = 0.0
            for thickness in settings['shell_thicknesses_nm']:
                bare = core_shell.build_particle(float(thickness), particle_settings)
                lithiated = core_shell.lithiate_core(
                    bare,
                    float(settings['x']),
                    min_distance=float(settings['li_min_distance']),
                    seed=int(settings['seed']),
                    vacuum=float(settings['vacuum']),
                )
                seconds = [force_call_cpu_seconds(atoms, calculator, args.calls) for atoms in (bare, lithiated)]
                total += calls_per_particle * sum(seconds)
                row = {
                    'core_radius_nm': radius,
                    'shell_nm': float(thickness),
                    'natoms': [len(bare), len(lithiated)],
                    'cpu_s_per_call': seconds,
                    'load': os.getloadavg()[0],
                }
                rows.append(row)
                print(
                    f'| {radius} | {thickness} | {len(bare)} / {len(lithiated)} | '
                    f'{seconds[0]:.3f} / {seconds[1]:.3f} | {row["load"]:.1f} |',
                    flush=True,
                )
            rows.append({'core_radius_nm': radius, 'estimate_cpu_s_per_member': total})
            print(
                f'| {radius} | fast protocol, estimate | | {total:.0f} s per member, {args.members * total:.0f} s for '
                f'{args.members} | |',
                flush=True,
            )
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f'# peak memory of this process: {peak_mb:.0f} MB')
        rows.append({'peak_memory_mb': peak_mb})
        if args.run_smallest:
            radius = min(args.radii)
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            result = core_shell.run_member(
                [], calculator, {**settings, 'core_radius_nm': radius}, pathlib.Path(scratch) / 'run'
            )
            measured = {
                'core_radius_nm': radius,
                'run_cpu_s': time.process_time() - start_cpu,
                'run_wall_s': time.perf_counter() - start_wall,
                'scalars': result['scalars'],
                'load': os.getloadavg()[0],
            }
            rows.append(measured)
            print(
                f'# measured fast protocol, one member, core {radius} nm: CPU {measured["run_cpu_s"]:.0f} s, wall '
                f'{measured["run_wall_s"]:.0f} s, load {measured["load"]:.1f}'
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))


if __name__ == '__main__':
    main()
