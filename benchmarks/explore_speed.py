"""MD speed of committee exploration (``aiida_sianode.engines.explore``) on this machine's CPU.

Crystalline Si, 64 atoms (2x2x2 conventional cells) and 216 atoms (3x3x3), NVT Langevin at 300 K, 1 fs, a frame
sampled every 10 steps (deviations, extxyz append) and the physical checks every step, exactly as an exploration
runs. The committees are untrained MACE models (random weights, different seeds): the cost of a step depends on the
architecture and the number of neighbours, not on the values of the weights, so these time what trained models of the
same size cost. Sizes:

* ``train-fast``: the ``fast`` protocol of ``sianode.train`` (8 channels, max_L 0, correlation 2, r_max 4 Å,
  2 interactions);
* ``small``: 16 channels, max_L 1, correlation 3, r_max 5 Å, 2 interactions;
* ``train-balanced``: the ``balanced`` protocol of ``sianode.train`` (32 channels, max_L 1, correlation 3, r_max 5 Å,
  2 interactions).

Also timed: a committee of one (to show the committee's cost), and ASE's bare Langevin loop with the same
calculator (to show the engine's own bookkeeping). The load average is printed with every row: the machine is shared.
Besides steps per wall-clock second, every row gives steps per CPU second of the MD loop (``time.process_time``, one
torch thread): on a loaded machine the process waits for a core, so the CPU-time rate estimates the speed on an idle
core. Each case is run ``--repeat`` times and the fastest is kept.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/explore_speed.py [--steps 30] [--sizes small] [--atoms 64 216]
[--dtypes float64 float32] [--json out.json]``.

Before/after the one-member driver (``driver: member``, the engine's default, against ``driver: mean``, every member
at every step) on a trained committee: ``OMP_NUM_THREADS=1 python benchmarks/explore_speed.py --committee
benchmarks/models/si_fast --drivers mean member --atoms 64 216 --dtypes float32 float64`` (the committee of 3 made
by ``benchmarks/train_mlearn_si.py --protocol fast --save-models``; ``--committee`` takes every ``*.model`` in the
folder).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import tempfile
import time

SIZES = {
    'train-fast': {'num_channels': 8, 'max_L': 0, 'correlation': 2, 'r_max': 4.0, 'num_interactions': 2},
    'small': {'num_channels': 16, 'max_L': 1, 'correlation': 3, 'r_max': 5.0, 'num_interactions': 2},
    'train-balanced': {'num_channels': 32, 'max_L': 1, 'correlation': 3, 'r_max': 5.0, 'num_interactions': 2},
}
CELLS = {64: 2, 216: 3}


def silicon(natoms: int):
    """Diamond Si of ``natoms`` atoms (64 or 216), a = 5.43 Å."""
    from ase.build import bulk

    return bulk('Si', 'diamond', a=5.43, cubic=True).repeat(CELLS[natoms])


def engine_speed(
    atoms, models, steps: int, dtype: str, directory: pathlib.Path, driver: str = 'member'
) -> tuple[float, float]:
    """Run the exploration engine for ``steps`` steps with ``driver`` (``member`` or ``mean``); return steps per
    wall-clock second and per CPU second (the first force evaluation excluded)."""
    from aiida_sianode.engines.explore import run_exploration

    parameters = {
        'steps': steps,
        'sample_interval': 10,
        'temperature': 300.0,
        'force_deviation_upper': 1e6,  # time the full run: never stop on uncertainty
        'dtype': dtype,
        'driver': driver,
    }
    results = run_exploration(atoms, models, parameters, directory)
    assert results['stop_reason'] == 'completed', results['message']
    return results['steps_per_second'], results['steps_per_cpu_second']


def bare_ase_speed(atoms, models, steps: int, dtype: str) -> tuple[float, float]:
    """Steps per wall-clock and per CPU second of ASE's Langevin with the same committee calculator, nothing else."""
    import numpy as np
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from aiida_sianode.engines.committee import load_committee_calculator

    atoms = atoms.copy()
    atoms.calc = load_committee_calculator(models, default_dtype=dtype)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dynamics = Langevin(atoms, units.fs, temperature_K=300, friction=0.01 / units.fs, fixcm=False)
    atoms.get_forces()  # warm-up, as the engine does before timing
    start, cpu_start = time.perf_counter(), time.process_time()
    dynamics.run(steps)
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu_start)


def main() -> None:
    """Build the committees, time every combination, print a markdown table (and optionally JSON)."""
    import torch

    from aiida_sianode.engines.committee import save_untrained_mace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=30)
    parser.add_argument('--sizes', nargs='+', default=list(SIZES), choices=list(SIZES))
    parser.add_argument('--atoms', nargs='+', type=int, default=[64, 216], choices=list(CELLS))
    parser.add_argument('--dtypes', nargs='+', default=['float64', 'float32'], choices=['float64', 'float32'])
    parser.add_argument('--members', type=int, default=3)
    parser.add_argument('--repeat', type=int, default=2, help='runs per case; the fastest is reported (shared machine)')
    parser.add_argument('--no-extras', action='store_true', help='skip the committee-of-one and bare-ASE rows')
    parser.add_argument('--json', type=pathlib.Path, default=None)
    parser.add_argument(
        '--committee',
        type=pathlib.Path,
        default=None,
        help='a folder of trained *.model files, used instead of --sizes',
    )
    parser.add_argument('--drivers', nargs='+', default=['member'], choices=['member', 'mean'])
    args = parser.parse_args()
    if args.committee is not None:
        return trained_committee_table(args)

    threads = int(os.environ.get('OMP_NUM_THREADS', '1'))
    torch.set_num_threads(threads)
    print(
        f'# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads {threads}, '
        f'torch {torch.__version__}'
    )
    print(
        '| model | atoms | dtype | case | members | steps/s (wall) | steps/s (CPU) | ps/day (CPU) | '
        'CPU ms/step/member | all runs (wall steps/s) | load |'
    )
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    rows = []
    with tempfile.TemporaryDirectory(prefix='explore-speed-') as scratch:
        scratch = pathlib.Path(scratch)
        for size in args.sizes:
            models = [
                save_untrained_mace(scratch / f'{size}_{seed}.model', [14], seed=seed, **SIZES[size])
                for seed in range(args.members)
            ]
            for natoms in args.atoms:
                atoms = silicon(natoms)
                for dtype in args.dtypes:
                    cases = [('engine', models)]
                    if not args.no_extras and size == 'small' and dtype == 'float64':
                        cases += [('engine, committee of 1', models[:1]), ('bare ASE Langevin', models)]
                    for case, members in cases:
                        load_before = os.getloadavg()[0]
                        speeds = []
                        for repetition in range(args.repeat):
                            run_directory = scratch / f'{size}_{natoms}_{dtype}_{len(rows)}_{repetition}'
                            run_directory.mkdir()
                            if case == 'bare ASE Langevin':
                                speeds.append(bare_ase_speed(atoms, members, args.steps, dtype))
                            else:
                                speeds.append(engine_speed(atoms, members, args.steps, dtype, run_directory))
                        speed = {
                            'steps_per_second': max(wall for wall, _ in speeds),
                            'steps_per_cpu_second': max(cpu for _, cpu in speeds),
                            'all_steps_per_second': [wall for wall, _ in speeds],
                        }
                        row = {
                            'size': size,
                            'natoms': natoms,
                            'dtype': dtype,
                            'case': case,
                            'members': len(members),
                            'steps': args.steps,
                            'steps_per_second': speed['steps_per_second'],
                            'all_steps_per_second': speed['all_steps_per_second'],
                            'steps_per_cpu_second': speed['steps_per_cpu_second'],
                            'ps_per_day': speed['steps_per_second'] * 86400 * 1e-3,  # 1 fs steps
                            'ps_per_day_cpu': speed['steps_per_cpu_second'] * 86400 * 1e-3,
                            'cpu_ms_per_step_per_member': 1000 / speed['steps_per_cpu_second'] / len(members),
                            'load_before': load_before,
                            'load_after': os.getloadavg()[0],
                        }
                        rows.append(row)
                        print(
                            f'| {size} | {natoms} | {dtype} | {case} | {len(members)} | '
                            f'{row["steps_per_second"]:.2f} | {row["steps_per_cpu_second"]:.2f} | '
                            f'{row["ps_per_day_cpu"]:.0f} | {row["cpu_ms_per_step_per_member"]:.0f} | '
                            f'{", ".join(f"{value:.2f}" for value in row["all_steps_per_second"])} | '
                            f'{load_before:.1f} / {row["load_after"]:.1f} |',
                            flush=True,
                        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def trained_committee_table(args) -> None:
    """Time the engine with a trained committee, one row per atoms x dtype x driver; print a markdown table."""
    import torch

    models = sorted(args.committee.glob('*.model'))
    if not models:
        raise SystemExit(f'no *.model files in {args.committee}')
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    print(
        f'# {len(models)} members from {args.committee}, {args.steps} steps, frame every 10, torch {torch.__version__}'
    )
    print('| atoms | dtype | driver | steps/s (wall) | steps/s (CPU) | ps/day (CPU) | all runs (CPU steps/s) | load |')
    print('|---|---|---|---|---|---|---|---|')
    rows = []
    with tempfile.TemporaryDirectory(prefix='explore-speed-') as scratch:
        for natoms in args.atoms:
            for dtype in args.dtypes:
                for driver in args.drivers:
                    load_before = os.getloadavg()[0]
                    speeds = []
                    for repetition in range(args.repeat):
                        directory = pathlib.Path(scratch) / f'{natoms}_{dtype}_{driver}_{repetition}'
                        directory.mkdir()
                        speeds.append(engine_speed(silicon(natoms), models, args.steps, dtype, directory, driver))
                    row = {
                        'natoms': natoms,
                        'dtype': dtype,
                        'driver': driver,
                        'members': len(models),
                        'steps': args.steps,
                        'steps_per_second': max(wall for wall, _ in speeds),
                        'steps_per_cpu_second': max(cpu for _, cpu in speeds),
                        'all_steps_per_cpu_second': [cpu for _, cpu in speeds],
                        'load_before': load_before,
                        'load_after': os.getloadavg()[0],
                    }
                    rows.append(row)
                    print(
                        f'| {natoms} | {dtype} | {driver} | {row["steps_per_second"]:.2f} | '
                        f'{row["steps_per_cpu_second"]:.2f} | {row["steps_per_cpu_second"] * 86.4:.0f} | '
                        f'{", ".join(f"{value:.2f}" for value in row["all_steps_per_cpu_second"])} | '
                        f'{load_before:.1f} / {row["load_after"]:.1f} |',
                        flush=True,
                    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == '__main__':
    main()
