"""MD snapshots of c-Si, a-Si and LixSi at 300-1500 K, for ``xtb_convergence.py --frames-file``.

Langevin NVT (ASE, 1 fs, friction 0.02 / fs) driven by the mean of a MACE committee: for c-Si and a-Si the ``fast``
committee trained on mlearn Si (VASP PBE, ``benchmarks/train_mlearn_si.py --protocol fast --save-models``), for
LixSi a committee that knows Li and Si (for example the final committee of the README's main job, GPAW PBE). Each run
starts from the project's builder (seed = run index), equilibrates ``--equilibrate`` steps and then keeps one frame
every ``--every`` steps. A run is cut short when two atoms come closer than 1.5 Å (a collapsing potential), and the
frames kept before that are written; the count per system and temperature is printed.

    python benchmarks/xtb_md_frames.py --si-models M0 M1 M2 --lixsi-models L0 L1 L2 --output frames.extxyz
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

import numpy as np

#: system -> cells (builder kind, parameters) of 32-48 atoms; the runs of a system cycle over its cells, continuing
#: from one temperature to the next, so every cell is heated at more than one temperature.
SYSTEMS = {
    'c-Si': [('si-crystal', {'size': [2, 2, 1]})],  # Si32
    'a-Si': [('si-random', {'n_atoms': 32, 'min_distance': 2.2})],  # Si32, a melt-quench start
    'LixSi': [
        ('lixsi', {'x': 0.5, 'size': [2, 2, 1]}),  # Li16Si32
        ('lixsi-crystal', {'phase': 'LiSi'}),  # Li16Si16, I41/a
        ('lixsi', {'x': 1.0, 'size': [2, 1, 1]}),  # Li16Si16, Li in the voids of an expanded Si host
        ('lixsi-crystal', {'phase': 'Li13Si4'}),  # Li26Si8, Pbam
        ('lixsi', {'x': 2.0, 'size': [2, 1, 1]}),  # Li32Si16
        ('lixsi-crystal', {'phase': 'Li15Si4', 'primitive': True}),  # Li30Si8, I-43d
    ],
}
MIN_DISTANCE = 1.5


def md_frames(atoms, calculator, temperature: float, equilibrate: int, every: int, count: int, seed: int) -> list:
    """Return up to ``count`` frames of Langevin MD at ``temperature`` (stops early when atoms collapse)."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.neighborlist import neighbor_list

    atoms = atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dynamics = Langevin(atoms, 1.0 * units.fs, temperature_K=temperature, friction=0.02 / units.fs, rng=rng)
    frames = []
    for step in range(1, equilibrate + every * count + 1):
        dynamics.run(1)
        if len(neighbor_list('d', atoms, MIN_DISTANCE)):
            break
        if step > equilibrate and (step - equilibrate) % every == 0:
            frame = atoms.copy()
            frame.calc = None
            frames.append(frame)
    return frames


def main() -> None:
    from ase.io import write
    from mace.calculators import MACECalculator

    from aiida_sianode.structures import build

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--si-models', nargs='+', required=True)
    parser.add_argument('--lixsi-models', nargs='+', default=None)
    parser.add_argument('--systems', nargs='+', choices=list(SYSTEMS), help='only these systems (default: all)')
    parser.add_argument('--temperatures', type=float, nargs='+', default=[300, 600, 1000, 1500])
    parser.add_argument('--runs', type=int, default=2, help='MD runs per system and temperature')
    parser.add_argument('--frames', type=int, default=3, help='frames kept per run')
    parser.add_argument('--equilibrate', type=int, default=300)
    parser.add_argument('--every', type=int, default=100)
    parser.add_argument('--output', type=pathlib.Path, required=True)
    arguments = parser.parse_args()
    # One model drives the MD as the campaign's exploration does (``driver: member``); several give their mean.
    calculators = {'si': MACECalculator(model_paths=arguments.si_models, device='cpu', default_dtype='float32')}
    if arguments.lixsi_models:
        calculators['lixsi'] = MACECalculator(model_paths=arguments.lixsi_models, device='cpu', default_dtype='float32')
    frames = []
    began = time.perf_counter()
    for system, cells in SYSTEMS.items():
        if arguments.systems and system not in arguments.systems:
            continue
        calculator = calculators.get('lixsi' if system == 'LixSi' else 'si')
        if calculator is None:
            continue
        for step, temperature in enumerate(arguments.temperatures):
            kept = 0
            for run in range(arguments.runs):
                kind, parameters = cells[(step * arguments.runs + run) % len(cells)]
                start = build(kind, parameters, seed=run)
                new = md_frames(
                    start, calculator, temperature, arguments.equilibrate, arguments.every, arguments.frames, run
                )
                for index, atoms in enumerate(new):
                    atoms.info.update(
                        {'system': system, 'temperature_k': temperature, 'run': run, 'frame': index, 'cell': kind}
                    )
                frames.extend(new)
                kept += len(new)
            print(
                f'{system:6s} {temperature:6.0f} K: {kept} frames; CPU {time.process_time():.0f} s, '
                f'wall {time.perf_counter() - began:.0f} s, load {os.getloadavg()[0]:.1f}',
                flush=True,
            )
            write(arguments.output, frames, format='extxyz')  # after each temperature: a stopped run keeps its frames
    print(f'wrote {len(frames)} frames to {arguments.output}')


if __name__ == '__main__':
    main()
