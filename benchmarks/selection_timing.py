"""Time the frame-selection kernels on 10^4 synthetic frames and the descriptors of a small MACE model.

Run from the repository root (with ``OMP_NUM_THREADS=1`` on a shared machine)::

    python benchmarks/selection_timing.py [--frames 10000] [--atoms 64] [--dim 32] [--repeat 3]

The synthetic pool imitates MD frames from several phases: every frame belongs to one of 20 "phases" (a centre in
descriptor space) and its atoms scatter around it; the training set covers 10 of the phases, so frames of the
other phases extrapolate. Deviations are log-normal so that about a third of the frames are candidates. Prints a
Markdown table (the best of ``--repeat`` runs for each kernel) and the machine's load before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Sequence

import numpy as np


def load() -> str:
    """Return the 1/5/15-minute load averages and the number of CPUs."""
    one, five, fifteen = os.getloadavg()
    return f'load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} CPUs'


def best_of(repeat: int, function, *args, **kwargs):
    """Return ``((best wall time, best CPU time of this process) in s, result of the last call)``.

    On a loaded machine the wall time includes waiting for a core; the CPU time does not."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return (min(walls), min(cpus)), result


def synthetic_pool(n_frames: int, n_atoms: int, dim: int, seed: int = 0):
    """Return per-frame descriptor blocks, phases, deviations and training blocks (see the module docstring)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(20, dim))
    phases = rng.integers(0, 20, size=n_frames)
    blocks = [centres[phase] + rng.normal(size=(n_atoms, dim)) for phase in phases]
    training_phases = rng.integers(0, 10, size=500)
    training = [centres[phase] + rng.normal(size=(n_atoms, dim)) for phase in training_phases]
    deviations = rng.lognormal(mean=np.log(0.04), sigma=0.9, size=n_frames)
    return blocks, phases, deviations, training


KERNELS = ('trust', 'random', 'maxvol', 'maxvol-low', 'maxvol-pool', 'direct', 'dedup')


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def kernel_timings(
    n_frames: int, n_atoms: int, dim: int, repeat: int, only: Sequence[str] = KERNELS
) -> list[tuple[str, float, str]]:
    """Time each selection kernel in ``only`` on the synthetic pool (the peak memory so far is in each note)."""
    import sklearn.cluster
    import sklearn.decomposition  # noqa: F401  (imported here so that no timing includes an import)

    from aiida_sianode.selection.dedup import select_distinct
    from aiida_sianode.selection.descriptors import mean_descriptors
    from aiida_sianode.selection.direct import direct_sample
    from aiida_sianode.selection.maxvol import select_maxvol
    from aiida_sianode.selection.random import random_sample
    from aiida_sianode.selection.trust import select_by_trust

    blocks, phases, deviations, training = synthetic_pool(n_frames, n_atoms, dim)
    runs = np.array_split(deviations, 10)
    rows = [('synthetic pool (made, not timed)', (0.0, 0.0), f'peak RSS {peak_rss_mb():.0f} MB')]

    if 'trust' in only:
        seconds, trust = best_of(repeat, select_by_trust, runs, 0.05, 0.25, max_per_run=20, max_total=100)
        fractions = trust.total_fractions
        rows.append(
            (
                'trust (10 runs, cap 20/run, 100 total)',
                seconds,
                f'{sum(len(s) for s in trust.selected)} picked; accurate/candidate/failed '
                f'{fractions["accurate"]:.2f}/{fractions["candidate"]:.2f}/{fractions["failed"]:.2f}',
            )
        )
    if 'random' in only:
        seconds, picks = best_of(repeat, random_sample, n_frames, 100, 0)
        rows.append(('random (100)', seconds, f'{len(picks)} picked'))

    if 'maxvol' in only:
        seconds, result = best_of(repeat, select_maxvol, blocks, training, threshold=2.0, max_frames=100)
        novel = np.mean(phases[result.selected] >= 10)
        rows.append(
            (
                'maxvol (500 training frames = 32 000 environments, grade > 2, up to 100)',
                seconds,
                f'peak RSS {peak_rss_mb():.0f} MB; {len(result.selected)} picked, {novel:.0%} from untrained phases, '
                f'{result.n_swaps} swaps, '
                f'max grade {result.grades.max():.1f}',
            )
        )
    if 'maxvol-low' in only:
        seconds, result = best_of(1, select_maxvol, blocks, training, threshold=1.05, max_frames=100)
        rows.append(
            (
                'maxvol, grade > 1.05, up to 100 (forces 100 greedy picks)',
                seconds,
                f'{len(result.selected)} picked, {result.n_swaps} swaps',
            )
        )
    if 'maxvol-pool' in only:
        seconds, result = best_of(1, select_maxvol, blocks, None, threshold=2.0, max_frames=100)
        rows.append(
            (
                'maxvol without a training set (D-optimal in the pool), grade > 2, up to 100',
                seconds,
                f'{len(result.selected)} picked, {result.n_swaps} swaps',
            )
        )

    if 'direct' not in only and 'dedup' not in only:
        return rows
    seconds, features = best_of(repeat, mean_descriptors, blocks)
    rows.append(('mean pooling (frame descriptors)', seconds, f'{features.shape}'))
    if 'direct' in only:
        n_clusters = max(1, round(0.043 * n_frames))
        seconds, result = best_of(repeat, direct_sample, features, n_clusters=n_clusters, k=1)
        covered = len(set(phases[result.selected].tolist()))
        rows.append(
            (
                f'DIRECT ({n_clusters} clusters = 4.3 %, k = 1)',
                seconds,
                f'peak RSS {peak_rss_mb():.0f} MB; {len(result.selected)} picked, '
                f'{result.encoding.n_components} PCs, {covered}/20 phases covered',
            )
        )

    if 'dedup' in only:
        order = np.argsort(-deviations)
        seconds, walk = best_of(repeat, select_distinct, features, 0.5, order=order, max_total=1000)
        rows.append(
            (
                'de-duplication walk (threshold 0.5, until 1000 kept)',
                seconds,
                f'{len(walk.kept)} kept, {len(walk.duplicates)} dropped',
            )
        )
    return rows


def descriptor_timings(n_frames: int) -> list[tuple[str, float, str]]:
    """Time MACE and radial descriptors per 64-atom Si frame."""
    import mace  # noqa: F401  (before e3nn)
    import torch
    from ase.build import bulk
    from e3nn import o3
    from mace import modules
    from mace.calculators import MACECalculator

    from aiida_sianode.selection.descriptors import mace_descriptors, radial_descriptors

    frames = []
    for seed in range(n_frames):
        atoms = bulk('Si', 'diamond', a=5.43, cubic=True).repeat(2)
        atoms.rattle(0.05, seed=seed)
        frames.append(atoms)
    rows = []
    (wall, cpu), _ = best_of(1, radial_descriptors, frames, r_max=5.0, n_bins=12)
    rows.append(('radial descriptor (r_max 5 Å, 12 bins)', (wall / n_frames, cpu / n_frames), '13 per atom'))
    for channels, max_ell, dtype in ((16, 1, 'float64'), (32, 1, 'float64'), (32, 1, 'float32'), (64, 2, 'float64')):
        torch.set_default_dtype(getattr(torch, dtype))
        torch.manual_seed(0)
        model = modules.ScaleShiftMACE(
            r_max=5.0,
            num_bessel=8,
            num_polynomial_cutoff=5,
            max_ell=3,
            interaction_cls=modules.interaction_classes['RealAgnosticResidualInteractionBlock'],
            interaction_cls_first=modules.interaction_classes['RealAgnosticInteractionBlock'],
            num_interactions=2,
            num_elements=2,
            hidden_irreps=o3.Irreps(' + '.join(f'{channels}x{ell}{"eo"[ell % 2]}' for ell in range(max_ell + 1))),
            MLP_irreps=o3.Irreps('16x0e'),
            atomic_energies=np.zeros(2),
            avg_num_neighbors=16.0,
            atomic_numbers=[3, 14],
            correlation=3,
            gate=torch.nn.functional.silu,
            atomic_inter_scale=1.0,
            atomic_inter_shift=0.0,
        )
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, 'model.model')
            torch.save(model, path)
            calculator = MACECalculator(model_paths=path, device='cpu', default_dtype=dtype)
        mace_descriptors(frames[:1], calculator)  # warm-up
        (wall, cpu), blocks = best_of(1, mace_descriptors, frames, calculator)
        rows.append(
            (
                f'MACE {channels} channels, L={max_ell}, 2 layers, r_max 5 Å, {dtype}',
                (wall / n_frames, cpu / n_frames),
                f'{blocks[0].shape[1]} per atom',
            )
        )
    return rows


def main():
    """Run the timings and print them as Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=10_000)
    parser.add_argument('--atoms', type=int, default=64)
    parser.add_argument('--dim', type=int, default=32)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--descriptor-frames', type=int, default=20)
    parser.add_argument('--skip-mace', action='store_true')
    parser.add_argument('--only', nargs='+', choices=KERNELS, default=list(KERNELS), help='kernels to time')
    args = parser.parse_args()

    print(f'machine: {platform.processor() or platform.machine()}, {load()} (before)')
    print(f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS")}\n')
    size = f'{args.frames} frames x {args.atoms} atoms x {args.dim}-dim descriptors'
    print(f'Selection of {size} (best of {args.repeat})\n')
    print('| kernel | wall (s) | CPU (s) | result |\n|---|---:|---:|---|')
    for name, (wall, cpu), note in kernel_timings(args.frames, args.atoms, args.dim, args.repeat, args.only):
        print(f'| {name} | {wall:.3g} | {cpu:.3g} | {note} |')
    if not args.skip_mace:
        print(f'\nDescriptors per 64-atom Si frame (mean of {args.descriptor_frames} frames)\n')
        print('| descriptor | wall per frame (ms) | CPU per frame (ms) | width |\n|---|---:|---:|---|')
        for name, (wall, cpu), note in descriptor_timings(args.descriptor_frames):
            print(f'| {name} | {1000 * wall:.1f} | {1000 * cpu:.1f} | {note} |')
    print(f'\n{load()} (after)')


if __name__ == '__main__':
    main()
