"""Learning efficiency: do the selection strategies beat random picks on a held-out GFN1-xTB test set?

Pool-based active learning, outside AiiDA (the engines' Python APIs directly; the selection and the training are
the project's own code):

1. **Exploration plan, run once.** Si cells (32 atoms with ``--quick``; 32 and 64 atoms otherwise: the diamond
   crystal and a random packing at the a-Si density) in NVT (Langevin) and NPT (MTK, 0 GPa) at 300-1500 K, with
   the project's exploration engine (:func:`aiida_sianode.engines.explore.run_exploration`) driven by one member of
   the ``fast`` mlearn-Si MACE committee (``benchmarks/train_mlearn_si.py --protocol fast --save-models``). The
   sampled frames of these runs are the **candidate pool**. Independent runs at the same conditions (other
   velocity seeds, other random packings) give the **held-out test set**, never seen by any strategy.
2. **One labeler**: GFN1-xTB through the label engine (:func:`aiida_sianode.engines.label.label`, the ``fast``
   protocol of ``label_xtb.yaml``), called lazily when a frame is first selected, with one cache shared by every
   strategy and seed (xTB labels are deterministic). A frame whose SCF fails is dropped and the next one taken.
3. **One starting set**: one frame of every pool run (fixed, the same for every strategy and seed).
4. **Strategies** (``aiida_sianode.selection.strategies``): ``trust`` (committee of two, candidates above the lower
   trust level, most uncertain first; the lower level is calibrated from the labels, as ``trust: auto`` does),
   ``maxvol`` and ``direct`` (on the MACE descriptors of the current model), and ``random``; each with 3 seeds
   (the seed of the model's training, and of random's picks), ``--budget`` labels per iteration and at most
   ``MAX_PER_RUN`` (2, the campaign protocol's ``max_per_run``) from one MD run, so that they differ only in what
   they pick. A strategy's candidates are the pool frames it has not labelled and has not itself seen fail: not the
   shared cache's failures, which depend on the order the strategies and seeds ran in.
5. **Training**: the project's training engine (:func:`aiida_sianode.engines.train.run_training`, the ``fast``
   model of ``train.yaml`` with batch 2 and 40 epochs, so that a model fits its few frames), from scratch after
   every iteration; its test metrics are the test set's RMSEs.

Everything is cached under ``--work-dir`` (MD frames, labels, trained models): a rerun continues where a killed one
stopped. Results go to ``--output`` (JSON) and ``--plot`` (PNG); ``--report-only`` prints the Markdown tables
again. ``--jobs 3`` runs the three seeds as parallel processes once the shared MD, test set and starting labels
exist, and merges their results.

    OMP_NUM_THREADS=1 python benchmarks/learning_efficiency.py --quick --jobs 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import pathlib
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
STRATEGY_NAMES = ('trust', 'maxvol', 'direct', 'random')
SIZES = {
    # name: (builder, supercell or number of atoms)
    'c32': ('crystal', (2, 2, 1)),
    'c64': ('crystal', (2, 2, 2)),
    'r32': ('random', 32),
    'r64': ('random', 64),
}
#: (cell, ensemble, temperature K): the exploration plan
PLAN_QUICK = [
    ('c32', 'nvt', 300),
    ('c32', 'npt', 600),
    ('c32', 'nvt', 900),
    ('c32', 'npt', 1200),
    ('r32', 'nvt', 1500),
]
PLAN_FULL = [
    *PLAN_QUICK,
    ('c32', 'nvt', 1500),
    ('c64', 'nvt', 300),
    ('c64', 'npt', 900),
    ('c64', 'nvt', 1500),
    ('r64', 'npt', 1200),
]
#: the lower trust level until the committee is calibrated (the campaign protocol's fixed level, eV/Å)
FIXED_LOWER = 0.05
#: at most this many picks from one MD run per iteration, for every strategy (the campaign protocol's max_per_run)
MAX_PER_RUN = 2
#: training per label (the engine's batch size and epochs; see learning_efficiency.md, "Training" for the check)
DEFAULT_EPOCHS = 40
DEFAULT_BATCH_SIZE = 2
TEST_SEED_OFFSET = 1000
LOG = logging.getLogger('learning_efficiency')


def settings_for(args) -> dict:
    quick = args.quick
    return {
        'plan': PLAN_QUICK if quick else PLAN_FULL,
        'steps': args.md_steps or (400 if quick else 1000),
        'timestep_fs': 2.0,
        'sample_interval': 20 if quick else 25,
        'equilibration_steps': 40 if quick else 100,
        'test_interval': 100 if quick else 200,
        'budget': args.budget or (5 if quick else 10),
        'iterations': args.iterations or (3 if quick else 6),
        'epochs': args.epochs or DEFAULT_EPOCHS,
        'batch_size': args.batch_size or DEFAULT_BATCH_SIZE,
        'max_per_run': MAX_PER_RUN,
        'seeds': list(range(args.seeds)),
        'strategies': list(args.strategies),
    }


# ---------------------------------------------------------------------------------------------------- exploration
def start_structure(cell: str, seed: int):
    from aiida_sianode.structures.silicon import diamond_silicon, si_random

    builder, size = SIZES[cell]
    if builder == 'crystal':
        return diamond_silicon(size)
    return si_random(n_atoms=size, min_distance=2.2, seed=seed)


def run_md(work: pathlib.Path, name: str, cell: str, ensemble: str, temperature: float, seed: int, cfg, model):
    """Run (or reuse) one MD run of the plan; return its sampled frames."""
    from ase.io import read

    from aiida_sianode.engines.explore import run_exploration

    directory = work / 'md' / name
    done = directory / 'results.json'
    if not done.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        parameters = {
            'ensemble': ensemble,
            'temperature': float(temperature),
            'steps': cfg['steps'],
            'timestep_fs': cfg['timestep_fs'],
            'sample_interval': cfg['sample_interval'],
            'seed': seed,
            # one model drives: its deviation is zero, so the uncertainty stop never fires
            'force_deviation_upper': 10.0,
        }
        start = time.perf_counter()
        results = run_exploration(start_structure(cell, seed), [model], parameters, directory)
        LOG.info(
            'MD %s: %s after %d steps, %.0f s',
            name,
            results['stop_reason'],
            results['n_steps'],
            time.perf_counter() - start,
        )
    results = json.loads(done.read_text())
    frames = read(directory / 'frames.extxyz', ':')
    if results['status'] != 'ok':  # a physically broken run keeps its frames up to the break, not the broken one
        frames = frames[:-1]
    return frames


def build_pool_and_test(work: pathlib.Path, cfg, model):
    """Return ``(pool, test)``: ``{frame_id: atoms}`` of the candidate pool and of the held-out test runs."""
    pool, test = {}, {}
    for index, (cell, ensemble, temperature) in enumerate(cfg['plan']):
        name = f'{cell}_{ensemble}{temperature}'
        for kind, seed in (('pool', index), ('test', TEST_SEED_OFFSET + index)):
            frames = run_md(work, f'{kind}_{name}', cell, ensemble, temperature, seed, cfg, model)
            for atoms in frames:
                step = int(atoms.info['step'])
                if step < cfg['equilibration_steps']:
                    continue
                if kind == 'test' and step % cfg['test_interval']:
                    continue
                clean = atoms.copy()
                clean.calc = None
                clean.info = {'run': f'{kind}_{name}', 'step': step, 'temperature_target': temperature}
                clean.arrays = {key: clean.arrays[key] for key in ('numbers', 'positions')}
                (pool if kind == 'pool' else test)[f'{name}:{step}'] = clean
    return pool, test


# ------------------------------------------------------------------------------------------------------- labelling
class Labels:
    """xTB labels by frame id, cached in a JSON-lines file shared by every strategy and seed."""

    def __init__(self, path: pathlib.Path, parameters: dict):
        self.path = path
        self.parameters = parameters
        self.records: dict[str, dict] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.records[record['id']] = record
        self.computed = 0
        self.seconds = 0.0

    def get(self, key: str, atoms) -> dict:
        if key not in self.records:
            from aiida_sianode.engines.label import label

            result = label(atoms, 'xtb', self.parameters)
            record = {
                'id': key,
                'status': result['status'],
                'energy': result['energy'],
                'forces': result['forces'],
                'wall_time_s': result['wall_time_s'],
                'error': result['error'],
            }
            self.records[key] = record
            self.computed += 1
            self.seconds += result['wall_time_s']
            with self.path.open('a') as handle:
                handle.write(json.dumps(record) + '\n')
            if record['status'] != 'ok':
                LOG.warning('label %s failed: %s %s', key, record['status'], record['error'])
        return self.records[key]

    def ok(self, key: str, atoms) -> bool:
        return self.get(key, atoms)['status'] == 'ok'

    def labelled_atoms(self, key: str, atoms):
        record = self.records[key]
        labelled = atoms.copy()
        labelled.info = {'REF_energy': record['energy'], 'config_type': 'Default', 'frame_id': key}
        labelled.arrays['REF_forces'] = np.asarray(record['forces'], dtype=float)
        return labelled


def xtb_parameters() -> dict:
    from aiida_sianode.protocols import load_protocol_file, recursive_merge

    protocol = load_protocol_file('label_xtb')
    parameters = recursive_merge(
        protocol['default_inputs']['calc']['parameters'], protocol['protocols']['fast']['calc']['parameters']
    )
    parameters.pop('labeler', None)
    parameters['compute_stress'] = False  # energies and forces are what the curves measure
    return parameters


# -------------------------------------------------------------------------------------------------------- training
def train_parameters(epochs: int, batch_size: int) -> dict:
    from aiida_sianode.protocols import load_protocol_file, recursive_merge

    protocol = load_protocol_file('train')
    parameters = recursive_merge(
        protocol['default_inputs']['train']['parameters'], protocol['protocols']['fast']['train']['parameters']
    )
    parameters['max_num_epochs'] = epochs
    parameters['batch_size'] = batch_size
    parameters['patience'] = epochs  # no early stop: the validation frames are the training frames
    return parameters


class Trainer:
    """Trains MACE models with the training engine; a model is cached by its frames, seed and parameters."""

    def __init__(
        self, work: pathlib.Path, labels: Labels, frames: dict, test_file: pathlib.Path, epochs: int, batch_size: int
    ):
        self.work = work / 'train'
        self.labels = labels
        self.frames = frames
        self.test_file = test_file
        self.parameters = train_parameters(epochs, batch_size)
        self.trained = 0
        self.seconds = 0.0

    def train(self, keys: list[str], seed: int) -> dict:
        from ase.io import write

        from aiida_sianode.engines.train import run_training

        parameters = {**self.parameters, 'seed': seed}
        digest = hashlib.sha1(json.dumps([sorted(keys), parameters], sort_keys=True).encode()).hexdigest()[:16]
        directory = self.work / digest
        metrics_file = directory / 'metrics.json'
        if metrics_file.is_file():
            metrics = json.loads(metrics_file.read_text())
            if metrics['status'] == 'ok':
                return {'metrics': metrics, 'model': directory / 'mace.model'}
        directory.mkdir(parents=True, exist_ok=True)
        frames = [self.labels.labelled_atoms(key, self.frames[key]) for key in keys]
        write(directory / 'train.extxyz', frames, format='extxyz')
        config = {
            'parameters': parameters,
            'train_file': 'train.extxyz',
            'valid_file': 'train.extxyz',
            'test_file': str(self.test_file),
        }
        metrics = run_training(config, directory)
        self.trained += 1
        self.seconds += metrics.get('wall_time_s', 0.0)
        if metrics['status'] != 'ok':
            raise RuntimeError(f'training on {len(keys)} frames (seed {seed}) failed: {metrics.get("error")}')
        LOG.info(
            'trained on %d frames, seed %d: test F RMSE %.1f meV/Å, %.0f s',
            len(keys),
            seed,
            metrics['test']['rmse_f_mev_a'],
            metrics['wall_time_s'],
        )
        return {'metrics': metrics, 'model': directory / 'mace.model'}


# ------------------------------------------------------------------------------------------------------- selection
def selection_settings(strategy: str, budget: int, seed: int, lower: float, pool_size: int) -> dict:
    from aiida_sianode.campaign_spec import SelectionSettings

    extra = {}
    if strategy == 'direct':
        # `budget` clusters, and every frame of them in the stratified order (the nearest of each cluster, then the
        # second nearest, ...), so that the per-run cap can pass over a frame and still find `budget` picks
        extra = {'n_clusters': budget, 'k_per_cluster': max(pool_size, 1)}
    return SelectionSettings(
        strategy=strategy,
        max_total=budget,
        max_per_run=MAX_PER_RUN,
        seed=seed,
        lower=lower,
        upper=None,
        order='descending',
        **extra,
    ).model_dump()


def committee_deviations(models: list[pathlib.Path], atoms_list) -> tuple[np.ndarray, list[np.ndarray]]:
    """Max atomic force deviation of the committee on every frame, and its mean forces (float32, as trained)."""
    from aiida_sianode.engines.committee import deviations_from_results, load_committee_calculator

    calculator = load_committee_calculator([str(path) for path in models], default_dtype='float32')
    deviation, mean_forces = [], []
    for atoms in atoms_list:
        atoms = atoms.copy()
        atoms.calc = calculator
        mean_forces.append(np.asarray(atoms.get_forces(), dtype=float))
        deviation.append(deviations_from_results(calculator.results, len(atoms))['max_force_deviation'])
    return np.array(deviation), mean_forces


def descriptors(model: pathlib.Path, atoms_list) -> list[np.ndarray]:
    from aiida_sianode.engines.committee import load_committee_calculator
    from aiida_sianode.selection.descriptors import mace_descriptors

    return mace_descriptors(atoms_list, load_committee_calculator([str(model)], default_dtype='float32'))


def order_frames(strategy, candidates, labelled, frames, models, seed, iteration, budget, lower):
    """Return the pool positions in ``candidates`` to label, best first, plus per-frame deviations (trust only)."""
    from aiida_sianode.selection.strategies import Pool, pick
    from aiida_sianode.selection.trust import CANDIDATE, classify_frames

    atoms_list = [frames[key] for key in candidates]
    runs = sorted({frames[key].info['run'] for key in candidates})
    groups = np.array([runs.index(frames[key].info['run']) for key in candidates], dtype=int)
    element_numbers = [14]
    deviation = np.zeros(len(candidates))
    positions = np.arange(len(candidates))
    if strategy == 'trust':
        deviation, _ = committee_deviations(models, atoms_list)
        positions = np.flatnonzero(classify_frames(deviation, lower, None) == CANDIDATE)
    settings = selection_settings(strategy, budget, 1000 * seed + iteration, lower, len(positions))
    cache: dict = {}

    def per_atom():
        if 'pool' not in cache:
            cache['pool'] = descriptors(models[0], [atoms_list[p] for p in positions])
        return cache['pool']

    pool = Pool(
        deviation=deviation[positions],
        groups=groups[positions],
        per_atom=per_atom,
        numbers=lambda: [atoms_list[p].numbers for p in positions],
        element_numbers=element_numbers,
        training_per_atom=lambda: descriptors(models[0], [frames[key] for key in labelled]),
    )
    picks = pick(strategy, pool, settings)
    return [int(positions[p]) for p in picks.order], deviation, picks.details, groups


def candidate_keys(pool_keys: list[str], labelled: list[str], failed: set[str]) -> list[str]:
    """The pool frames a strategy may pick: those it has neither labelled nor seen fail itself.

    Not the shared label cache's failures: which frames the cache knows depends on what other strategies, seeds and
    earlier (killed) runs happened to label first, and one frame more or less in the pool moves DIRECT's
    standardisation, principal components and clusters, so its picks would depend on the order things ran in.
    """
    taken = set(labelled) | failed
    return [key for key in pool_keys if key not in taken]


def run_strategy(strategy, seed, cfg, start, pool_keys, frames, labels, trainer, initial):
    """One learning curve: the starting model, then ``iterations`` rounds of select, label, train.

    A generator: yields the curve so far (a list of records) after the starting model and after every iteration, so
    that the caller can advance all strategies together and save partial curves.
    """
    from aiida_sianode.selection.calibration import (
        MIN_PAIRS,
        auto_trust_levels,
        fit_calibration,
        true_max_force_error,
    )

    labelled = list(start)
    model = initial['model']
    partner = initial.get('partner')
    history = [record(0, labelled, initial['metrics'], {})]
    yield history
    pairs_d: list[float] = []
    pairs_e: list[float] = []
    failed_keys: set[str] = set()
    for iteration in range(1, cfg['iterations'] + 1):
        tick = time.perf_counter()
        lower, scale = FIXED_LOWER, None
        if strategy == 'trust' and len(pairs_d) >= MIN_PAIRS:
            calibration = fit_calibration(pairs_d, pairs_e)
            lower, _ = auto_trust_levels(calibration, 0.1, 1.0, 'scale')
            scale = calibration.scale
        candidates = candidate_keys(pool_keys, labelled, failed_keys)
        models = [model, partner] if strategy == 'trust' else [model]
        order, deviation, details, groups = order_frames(
            strategy, candidates, labelled, frames, models, seed, iteration, cfg['budget'], lower
        )
        select_seconds = time.perf_counter() - tick
        new, failed, per_run = [], 0, {}
        for position in order:
            if len(new) == cfg['budget']:
                break
            if per_run.get(groups[position], 0) >= cfg['max_per_run']:
                continue
            key = candidates[position]
            if labels.ok(key, frames[key]):
                new.append((key, position))
                per_run[groups[position]] = per_run.get(groups[position], 0) + 1
            else:
                failed += 1
                failed_keys.add(key)
        info = {
            'candidates': len(order),
            'failed_labels': failed,
            'select_seconds': round(select_seconds, 2),
            'n_swaps': details.get('n_swaps'),
            'n_clusters': details.get('n_clusters'),
        }
        if strategy == 'trust':
            info.update(lower=lower, calibration_scale=scale)
            _, mean_forces = committee_deviations(models, [frames[key] for key, _ in new])
            for (key, position), forces in zip(new, mean_forces, strict=True):
                label_forces = np.asarray(labels.records[key]['forces'])
                pairs_d.append(float(deviation[position]))
                pairs_e.append(true_max_force_error(forces, label_forces))
        labelled += [key for key, _ in new]
        trained = trainer.train(labelled, seed)
        model = trained['model']
        if strategy == 'trust' and iteration < cfg['iterations']:
            partner = trainer.train(labelled, seed + 100)['model']
        history.append(record(iteration, labelled, trained['metrics'], info))
        LOG.info(
            '%s seed %d iteration %d: %d labels, test F RMSE %.3f eV/Å',
            strategy,
            seed,
            iteration,
            len(labelled),
            history[-1]['force_rmse'],
        )
        if not new:
            LOG.warning('%s seed %d iteration %d labelled nothing new', strategy, seed, iteration)
        yield history


def record(iteration: int, labelled: list[str], metrics: dict, info: dict) -> dict:
    return {
        'iteration': iteration,
        'n_labels': len(labelled),
        'labels': list(labelled),
        'force_rmse': metrics['test']['rmse_f_mev_a'] / 1000.0,  # eV/Å
        'energy_rmse': metrics['test']['rmse_e_per_atom_mev'],  # meV/atom
        'train_seconds': metrics['wall_time_s'],
        **info,
    }


# ------------------------------------------------------------------------------------------------------- reporting
def summarise(results: dict, target: float | None) -> dict:
    from aiida_sianode.analysis.learning_curves import label_ratio, labels_to_target, mean_curve

    # a run stopped early: every curve is cut to the trainings that every strategy and seed reached
    length = min(len(run) for runs in results['curves'].values() for run in runs.values())
    results = {
        **results,
        'curves': {s: {seed: run[:length] for seed, run in runs.items()} for s, runs in results['curves'].items()},
    }
    curves = {}
    for strategy, runs in results['curves'].items():
        curve = mean_curve([([r['n_labels'] for r in run], [r['force_rmse'] for r in run]) for run in runs.values()])
        energy = mean_curve([([r['n_labels'] for r in run], [r['energy_rmse'] for r in run]) for run in runs.values()])
        curves[strategy] = {'force': curve, 'energy': energy}
    if target is None:
        if 'random' not in curves:
            raise ValueError('without random there is no default target: give --target-force-rmse')
        target = float(curves['random']['force'].mean[-1])
    budget = max(float(c['force'].n_labels[-1]) for c in curves.values())
    needs = {s: labels_to_target(c['force'].n_labels, c['force'].mean, target) for s, c in curves.items()}
    per_seed = {
        s: [
            labels_to_target([r['n_labels'] for r in run], [r['force_rmse'] for r in run], target)
            for run in runs.values()
        ]
        for s, runs in results['curves'].items()
    }
    ratios = {s: label_ratio(needs[s], needs.get('random'), budget) for s in curves if 'random' in needs}
    return {
        'target': target,
        'budget': budget,
        'curves': curves,
        'needs': needs,
        'per_seed': per_seed,
        'ratios': ratios,
        'trainings': length,
    }


def markdown(summary: dict, results: dict) -> str:
    lines = ['| strategy | labels | force RMSE (eV/Å) | energy RMSE (meV/atom) |', '|---|---|---|---|']
    for strategy, curve in summary['curves'].items():
        force, energy = curve['force'], curve['energy']
        for i in range(len(force.n_labels)):
            lines.append(
                f'| {strategy} | {force.n_labels[i]:.0f} | {force.mean[i]:.3f} ± {force.spread[i]:.3f} | '
                f'{energy.mean[i]:.1f} ± {energy.spread[i]:.1f} |'
            )
    lines += [
        '',
        f'Force-RMSE target: {summary["target"]:.3f} eV/Å; budget {summary["budget"]:.0f} labels; '
        f'{summary["trainings"]} trainings per curve.',
        '',
        '| strategy | labels to target (mean curve) | per seed | ratio to random |',
        '|---|---|---|---|',
    ]
    for strategy in summary['curves']:
        need = summary['needs'][strategy]
        seeds = ', '.join(
            '>' + f'{summary["budget"]:.0f}' if n is None else f'{n:.1f}' for n in summary['per_seed'][strategy]
        )
        ratio = summary['ratios'].get(strategy)
        need_text = f'> {summary["budget"]:.0f}' if need is None else f'{need:.1f}'
        lines.append(f'| {strategy} | {need_text} | {seeds} | {ratio if ratio is not None else "n/a"} |')
    return '\n'.join(lines)


def plot(summary: dict, path: pathlib.Path, title: str) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for strategy, curve in summary['curves'].items():
        for axis, kind in zip(axes, ('force', 'energy'), strict=True):
            c = curve[kind]
            axis.errorbar(c.n_labels, c.mean, yerr=c.spread, marker='o', capsize=3, label=strategy)
    axes[0].axhline(summary['target'], color='grey', linestyle='--', linewidth=1, label='target')
    axes[0].set_ylabel('test force RMSE (eV/Å)')
    axes[1].set_ylabel('test energy RMSE (meV/atom)')
    for axis in axes:
        axis.set_xlabel('labels (GFN1-xTB)')
        axis.set_yscale('log')
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


# ------------------------------------------------------------------------------------------------------------ main
def merge_results(paths: list[pathlib.Path]) -> dict:
    """Join the JSON results of single-seed runs (``--only-seed``) into one."""
    merged = None
    for path in paths:
        part = json.loads(path.read_text())
        if merged is None:
            merged = {**part, 'settings': {**part['settings'], 'seeds': []}, 'curves': {}, 'cost': {}}
        merged['settings']['seeds'] += part['settings']['seeds']
        merged['cost'][path.name] = part.get('cost')
        for strategy, runs in part['curves'].items():
            merged['curves'].setdefault(strategy, {}).update(runs)
    return merged


def run_seed_processes(argv: list[str], seeds: list[int], work: pathlib.Path, jobs: int) -> dict:
    """Run every seed as its own process of this script (at most ``jobs`` at once), after the parent has built the
    shared caches (MD, test set, starting labels); return the load averages seen while they ran."""
    import subprocess

    base = [sys.executable, str(pathlib.Path(__file__).resolve()), *argv, '--jobs', '1']
    waiting, running, loads = list(seeds), {}, []
    while waiting or running:
        while waiting and len(running) < jobs:
            seed = waiting.pop(0)
            command = [*base, '--only-seed', str(seed), '--output', str(work / f'results_seed{seed}.json')]
            log = (work / f'seed{seed}.log').open('w')
            running[seed] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log)
            LOG.info('seed %d: process %d, log %s', seed, running[seed][0].pid, log.name)
        time.sleep(30)
        loads.append(os.getloadavg()[0])
        for seed, (process, log) in list(running.items()):
            if process.poll() is not None:
                log.close()
                del running[seed]
                if process.returncode:
                    raise RuntimeError(f'seed {seed} failed with exit status {process.returncode}: see {log.name}')
                LOG.info('seed %d finished', seed)
    return {'load_average_1min': {'min': min(loads), 'mean': float(np.mean(loads)), 'max': max(loads), 'n': len(loads)}}


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='32-atom cells, 5 runs, budget 5 x 3 iterations')
    parser.add_argument('--work-dir', type=pathlib.Path, default=HERE / 'learning_efficiency_work')
    parser.add_argument(
        '--model',
        type=pathlib.Path,
        default=HERE / 'models' / 'member_0.model',
        help='MACE model that drives the exploration MD (default: benchmarks/models/member_0.model)',
    )
    parser.add_argument('--strategies', nargs='+', default=list(STRATEGY_NAMES), choices=STRATEGY_NAMES)
    parser.add_argument('--seeds', type=int, default=3, help='number of seeds (0, 1, ...)')
    parser.add_argument('--budget', type=int, default=None, help='labels per iteration')
    parser.add_argument('--iterations', type=int, default=None)
    parser.add_argument(
        '--epochs', type=int, default=None, help=f'training epochs (default {DEFAULT_EPOCHS}; the fast protocol has 15)'
    )
    parser.add_argument(
        '--batch-size',
        type=int,
        default=None,
        help=f'training batch size (default {DEFAULT_BATCH_SIZE}; the fast protocol has 10)',
    )
    parser.add_argument('--md-steps', type=int, default=None)
    parser.add_argument(
        '--target-force-rmse',
        type=float,
        default=None,
        help="eV/Å; default: random's mean test force RMSE at the full budget",
    )
    parser.add_argument('--output', type=pathlib.Path, default=None, help='JSON results (default: in --work-dir)')
    parser.add_argument('--plot', type=pathlib.Path, default=None, help='PNG learning curves')
    parser.add_argument(
        '--test-set',
        type=pathlib.Path,
        default=None,
        help='where to write the labelled test set (extxyz; default: in --work-dir)',
    )
    parser.add_argument('--report-only', action='store_true', help='only summarise an existing --output')
    parser.add_argument(
        '--only-seed', type=int, default=None, help='run this one seed (to run seeds as parallel processes)'
    )
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='run the seeds as this many parallel processes (after the shared MD, test set and starting labels)',
    )
    parser.add_argument(
        '--merge', type=pathlib.Path, nargs='+', default=None, help='merge the JSON results of --only-seed runs'
    )
    args = parser.parse_args(argv)
    for name in ('seeds', 'budget', 'iterations', 'epochs', 'batch_size', 'md_steps', 'jobs'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    if args.target_force_rmse is not None and not args.target_force_rmse > 0:
        parser.error(f'--target-force-rmse must be > 0, got {args.target_force_rmse}')
    if not args.report_only and not args.model.is_file():
        parser.error(
            f'the exploration model {args.model} does not exist: run benchmarks/train_mlearn_si.py --protocol fast '
            '--save-models and copy member_0.model there, or pass --model'
        )
    return args


def main(argv=None) -> int:
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s', stream=sys.stdout)
    LOG.setLevel(logging.INFO)
    cfg = settings_for(args)
    if args.only_seed is not None:
        cfg['seeds'] = [args.only_seed]
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    output = args.output or work / 'results.json'
    if args.merge:
        output.write_text(json.dumps(merge_results(args.merge), indent=1))
    elif not args.report_only:
        from ase.io import write

        start = time.perf_counter()
        pool, test = build_pool_and_test(work, cfg, str(args.model))
        md_seconds = time.perf_counter() - start
        frames = {**pool, **{f'test/{key}': atoms for key, atoms in test.items()}}
        labels = Labels(work / 'labels.jsonl', xtb_parameters())
        test_keys = [f'test/{key}' for key in test]
        test_ok = [key for key in test_keys if labels.ok(key, frames[key])]
        test_file = args.test_set or work / 'test_set.extxyz'
        if args.only_seed is None or not test_file.is_file():  # seed processes started by --jobs share the parent's
            write(test_file, [labels.labelled_atoms(key, frames[key]) for key in test_ok], format='extxyz')
        LOG.info('test set: %d frames (%d failed SCF) in %s', len(test_ok), len(test_keys) - len(test_ok), test_file)
        pool_keys = list(pool)
        # one frame of every pool run, the middle one, is the starting set of every strategy and seed
        by_run: dict[str, list[str]] = {}
        for key in pool_keys:
            by_run.setdefault(frames[key].info['run'], []).append(key)
        start_keys = []
        for keys in by_run.values():
            for key in keys[len(keys) // 2 :] + keys[: len(keys) // 2]:
                if labels.ok(key, frames[key]):
                    start_keys.append(key)
                    break
        if args.jobs > 1 and args.only_seed is None and len(cfg['seeds']) > 1:
            cost = run_seed_processes(argv if argv is not None else sys.argv[1:], cfg['seeds'], work, args.jobs)
            merged = merge_results([work / f'results_seed{seed}.json' for seed in cfg['seeds']])
            merged['cost']['all'] = {
                'md_seconds': md_seconds,
                'wall_seconds': time.perf_counter() - start,
                'cpu_seconds': cpu_seconds(),
                **cost,
            }
            output.write_text(json.dumps(merged, indent=1))
            return report(args, output)
        trainer = Trainer(work, labels, frames, test_file.resolve(), cfg['epochs'], cfg['batch_size'])
        results = {
            'settings': {**cfg, 'plan': [list(entry) for entry in cfg['plan']]},
            'pool_size': len(pool),
            'test_size': len(test_ok),
            'test_failed': len(test_keys) - len(test_ok),
            'start': start_keys,
            'curves': {strategy: {} for strategy in cfg['strategies']},
        }
        loop_start = time.perf_counter()
        for seed in cfg['seeds']:
            initial = trainer.train(start_keys, seed)
            if 'trust' in cfg['strategies']:
                initial['partner'] = trainer.train(start_keys, seed + 100)['model']
            # all strategies advance iteration by iteration, so that a run stopped early has comparable curves
            runs = {
                strategy: run_strategy(strategy, seed, cfg, start_keys, pool_keys, frames, labels, trainer, initial)
                for strategy in cfg['strategies']
            }
            for _ in range(cfg['iterations'] + 1):
                for strategy, run in runs.items():
                    results['curves'][strategy][str(seed)] = next(run)
                    output.write_text(json.dumps(results, indent=1))
        statuses = [labels.records[key]['status'] for key in labels.records if not key.startswith('test/')]
        results['cost'] = {
            'md_seconds': md_seconds,
            'loop_seconds': time.perf_counter() - loop_start,
            'labels_computed_this_run': labels.computed,
            'label_seconds_this_run': labels.seconds,
            'trainings_this_run': trainer.trained,
            'train_seconds_this_run': trainer.seconds,
            'unique_pool_labels': len(statuses),
            'failed_pool_labels': sum(status != 'ok' for status in statuses),
            'mean_label_seconds': float(np.mean([r['wall_time_s'] for r in labels.records.values()])),
            'cpu_seconds': cpu_seconds(),
            'load_average': os.getloadavg(),
        }
        output.write_text(json.dumps(results, indent=1))
    return report(args, output)


def report(args, output: pathlib.Path) -> int:
    results = json.loads(output.read_text())
    summary = summarise(results, args.target_force_rmse)
    print(markdown(summary, results))
    if args.plot:
        n_seeds = len(results['settings']['seeds'])
        cells = sorted({cell for cell, _, _ in results['settings']['plan']})
        plot(summary, args.plot, f'Si ({", ".join(cells)}), GFN1-xTB labels, mean ± std over {n_seeds} seeds')
    return 0


if __name__ == '__main__':
    sys.exit(main())
