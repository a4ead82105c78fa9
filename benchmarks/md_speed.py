"""MD speed: the committee mean at every step (exploration today) against one member driving and the committee
evaluated every 10 steps (the production MD kernel, ``aiida_sianode.properties.md``; DP-GEN's scheme).

Crystalline Si of 64, 216 and 1000 atoms, NVT Langevin at 300 K, 1 fs steps, a committee of 3 untrained ``small``
MACE models (16 channels, max_L 1, correlation 3, r_max 5 Å, 2 interactions; the cost of a step does not depend on
the weights' values), float32 as the exploration protocols run them, one torch thread.

* ``mean every step``: ``aiida_sianode.engines.explore.run_exploration``: every step evaluates all 3 members (the
  mean drives), a frame every 10 steps, the physical checks every step.
* ``member + committee/10``: ``aiida_sianode.properties.md.run_md``: member 0 drives, members 1 and 2 evaluate the
  frame every 10 steps; a frame and a thermodynamic record every 10 steps, a checkpoint every 1000.

Both exclude the first (warm-up) evaluation. Rates per wall-clock second and per CPU second of the process (on a
shared machine the CPU-time rate estimates an idle core); the load average is printed with every row.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/md_speed.py [--atoms 64 216 1000] [--steps 40] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import tempfile
import time

SMALL = {'num_channels': 16, 'max_L': 1, 'correlation': 3, 'r_max': 5.0, 'num_interactions': 2}
CELLS = {64: 2, 216: 3, 512: 4, 1000: 5}
DTYPE = 'float32'


def silicon(natoms: int):
    """Diamond Si of ``natoms`` atoms, a = 5.43 Å, slightly rattled."""
    from ase.build import bulk

    atoms = bulk('Si', 'diamond', a=5.43, cubic=True).repeat(CELLS[natoms])
    atoms.rattle(0.02, seed=1)
    return atoms


def mean_every_step(atoms, models, steps: int, directory: pathlib.Path) -> tuple[float, float]:
    """Exploration engine, the committee mean driving; return (steps/s wall, steps/s CPU)."""
    from aiida_sianode.engines.explore import run_exploration

    parameters = {
        'steps': steps,
        'sample_interval': 10,
        'temperature': 300.0,
        'force_deviation_upper': 1e6,
        'dtype': DTYPE,
    }
    results = run_exploration(atoms, models, parameters, directory)
    return results['steps_per_second'], results['steps_per_cpu_second']


def member_driven(atoms, models, steps: int, directory: pathlib.Path) -> tuple[float, float]:
    """Production MD kernel, member 0 driving, the other two every 10 steps; return (steps/s wall, steps/s CPU)."""
    from mace.calculators import MACECalculator

    from aiida_sianode.properties.md import run_md

    driver = MACECalculator(model_paths=[str(models[0])], device='cpu', default_dtype=DTYPE)
    others = MACECalculator(model_paths=[str(path) for path in models[1:]], device='cpu', default_dtype=DTYPE)
    settings = {
        'temperature_k': 300.0,
        'timestep_fs': 1.0,
        'length_ps': steps / 1000,
        'equilibration_ps': 0.0,
        'sample_interval': 10,
        'trajectory_interval': 10,
        'thermo_interval': 10,
        'checkpoint_interval': 1000,
        'force_deviation_upper': 1e6,
        'force_deviation_lower': 1e5,
    }
    summary = run_md(atoms, driver, settings, directory, others=[others])
    assert summary['committee_size'] == 3 and summary['stop_reason'] == 'completed'
    return summary['steps_per_second'], steps / summary['cpu_time_s']


def main() -> None:
    """Time both schemes for every size; print a markdown table (and optionally JSON)."""
    import mace  # noqa: F401
    import torch

    from aiida_sianode.engines.committee import save_untrained_mace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--atoms', nargs='+', type=int, default=[64, 216, 1000], choices=list(CELLS))
    parser.add_argument('--steps', type=int, default=40)
    parser.add_argument('--json', type=pathlib.Path, default=None)
    args = parser.parse_args()
    threads = int(os.environ.get('OMP_NUM_THREADS', '1'))
    torch.set_num_threads(threads)
    print(f'# {platform.machine()}, {os.cpu_count()} CPUs, torch threads {threads}, torch {torch.__version__}')
    print('| atoms | scheme | steps/s (wall) | steps/s (CPU) | ns/day (wall) | ns/day (CPU) | speed-up (CPU) | load |')
    print('|---|---|---|---|---|---|---|---|')
    rows = []
    with tempfile.TemporaryDirectory(prefix='md-speed-') as scratch:
        scratch = pathlib.Path(scratch)
        models = [save_untrained_mace(scratch / f'm{seed}.model', [14], seed=seed, **SMALL) for seed in range(3)]
        for natoms in args.atoms:
            atoms = silicon(natoms)
            steps = args.steps if natoms <= 216 else max(10, args.steps // 2)
            baseline = None
            for scheme, function in (('mean every step', mean_every_step), ('member + committee/10', member_driven)):
                load = os.getloadavg()[0]
                directory = scratch / f'{natoms}_{len(rows)}'
                directory.mkdir()
                start = time.perf_counter()
                wall, cpu = function(atoms, models, steps, directory)
                baseline = baseline or cpu
                row = {
                    'natoms': natoms,
                    'scheme': scheme,
                    'steps': steps,
                    'steps_per_second': wall,
                    'steps_per_cpu_second': cpu,
                    'ns_per_day': wall * 86400 * 1e-6,
                    'ns_per_day_cpu': cpu * 86400 * 1e-6,
                    'speedup_cpu': cpu / baseline,
                    'load_before': load,
                    'load_after': os.getloadavg()[0],
                    'total_s': time.perf_counter() - start,
                }
                rows.append(row)
                print(
                    f'| {natoms} | {scheme} | {wall:.2f} | {cpu:.2f} | {row["ns_per_day"]:.3f} | '
                    f'{row["ns_per_day_cpu"]:.3f} | {row["speedup_cpu"]:.2f} | {load:.1f} / {row["load_after"]:.1f} |',
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == '__main__':
    main()
