"""Warm starts against training from scratch, on the training sets of a finished campaign.

For every iteration n+1 of campaign PK whose committee was warm-started from iteration n's (``init_models``), each
member is trained twice on iteration n+1's training set with the training engine in a subprocess of its own
(``python -m aiida_sianode.engines.train``, one thread; all trainings of an iteration at once, as a campaign runs its
members):

* **warm**: from iteration n's member of the same index, for the committee's ``warm_start_epochs`` (what the
  campaign does, :func:`aiida_sianode.workflows.train.warm_start_parameters`);
* **scratch**: from random weights, for the protocol's ``max_num_epochs`` (what the campaign did before warm starts);
* **warm_full**: from iteration n's member for ``max_num_epochs``, as long as from scratch.

Both use the member's seed and bootstrap sample, and are scored on the campaign's test set: the members' force RMSE
and the committee-mean force RMSE (the campaign's convergence criterion). CPU seconds (each subprocess's own user +
system time, from ``wait4``) are the fair cost on a shared machine; wall seconds are reported beside them.

Usage (in a checkout with the campaign's profile, ``AIIDA_PATH=$PWD/.aiida``)::

    python benchmarks/warm_start.py PK [--json benchmarks/warm_start.json] [--members 3]
    python benchmarks/warm_start.py --from-json benchmarks/warm_start.json     # print the tables again
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ENGINE = [sys.executable, '-m', 'aiida_sianode.engines.train', 'config.json']
#: scratch: random weights, max_num_epochs; warm: the previous member's weights, warm_start_epochs (what a campaign
#: does); warm_full: the previous member's weights for max_num_epochs (no time saved: does the start help accuracy?)
MODES = ('scratch', 'warm', 'warm_full')


def run_engines(directories: list[pathlib.Path]) -> list[dict]:
    """Run the training engine in every directory (its ``config.json`` written) at once; return per directory the
    metrics, the test predictions and the process's CPU and wall seconds."""
    environment = {**os.environ, 'OMP_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
    started = time.time()
    processes = {}
    for directory in directories:
        log = (directory / 'engine.log').open('w')
        process = subprocess.Popen(ENGINE, cwd=directory, env=environment, stdout=log, stderr=subprocess.STDOUT)
        processes[process.pid] = (directory, process, log)
    timings = {}
    while len(timings) < len(processes):
        pid, status, usage = os.wait4(-1, 0)
        if pid not in processes:
            continue
        directory, process, log = processes[pid]
        process.returncode = os.waitstatus_to_exitcode(status)
        log.close()
        timings[directory] = (usage.ru_utime + usage.ru_stime, time.time() - started, process.returncode)
    return [_result(directory, *timings[directory]) for directory in directories]


def _result(directory: pathlib.Path, cpu: float, wall: float, returncode: int) -> dict:
    metrics_path = directory / 'metrics.json'
    if returncode != 0 or not metrics_path.is_file():
        tail = (directory / 'engine.log').read_text()[-2000:]
        raise RuntimeError(f'training in {directory} failed ({returncode}): {tail}')
    metrics = json.loads(metrics_path.read_text())
    if metrics.get('status') != 'ok':
        raise RuntimeError(f'training in {directory} ended with status {metrics.get("status")}: {metrics}')
    predictions = dict(np.load(directory / 'test_predictions.npz'))
    return {'metrics': metrics, 'predictions': predictions, 'cpu_s': cpu, 'wall_s': wall}


def committee_force_rmse(predictions: list[dict]) -> float:
    """Return the force RMSE (meV/Å) of the members' mean prediction on the test frames."""
    from aiida_sianode.workflows.train import summarise_committee_metrics

    members = {f'member_{index:02d}': {} for index in range(len(predictions))}
    summary = summarise_committee_metrics(members, dict(zip(members, predictions)))
    return float(summary['committee_prediction']['test']['rmse_f_mev_a'])


def warm_started_trainings(campaign) -> list[tuple[int, object, object]]:
    """Return ``(iteration, training, previous training)`` for each warm-started committee training of ``campaign``."""
    trainings = {}
    for link in campaign.base.links.get_outgoing().all():
        if link.link_label.startswith('train_iteration_'):
            trainings[int(link.link_label.rsplit('_', 1)[1])] = link.node
    pairs = []
    for iteration, node in sorted(trainings.items()):
        if 'init_models' in node.inputs and iteration - 1 in trainings:
            pairs.append((iteration, node, trainings[iteration - 1]))
    return pairs


def measure(pk: int, members: int | None, iterations: list[int] | None = None) -> dict:
    """Train warm and from scratch for every warm-started iteration of campaign ``pk``; return the records."""
    from aiida import load_profile, orm
    from ase.io import write

    from aiida_sianode.workflows.train import member_parameters, warm_start_parameters

    load_profile()
    campaign = orm.load_node(pk)
    records = {'campaign': pk, 'machine_load_start': os.getloadavg(), 'iterations': []}
    for iteration, node, previous in warm_started_trainings(campaign):
        if iterations and iteration not in iterations:
            continue
        base = node.inputs.member.train.parameters.get_dict()
        epochs = node.inputs.warm_start_epochs.value
        labels = sorted(node.inputs.init_models)[:members]
        entry = {
            'iteration': iteration,
            'train_frames': node.inputs.dataset.base.attributes.get('n_frames'),
            'test_frames': node.inputs.test_dataset.base.attributes.get('n_frames'),
            'scratch_epochs': base['max_num_epochs'],
            'warm_epochs': epochs,
            'members': {},
        }
        predictions = {mode: [] for mode in MODES}
        with tempfile.TemporaryDirectory(prefix='warm_start_') as work:
            jobs = []
            for label in labels:
                index = int(label.rsplit('_', 1)[1])
                cold = member_parameters(base, index)
                for mode in MODES:
                    directory = pathlib.Path(work) / f'{label}_{mode}'
                    directory.mkdir()
                    paths = node.inputs.dataset.write_training_files(directory)
                    frames = node.inputs.test_dataset.get_frames()
                    for atoms in frames:
                        atoms.calc = None
                    write(directory / 'test.extxyz', frames, format='extxyz')
                    config = {
                        'parameters': cold,
                        'train_file': pathlib.Path(paths['train']).name,
                        'valid_file': pathlib.Path(paths['valid']).name,
                        'test_file': 'test.extxyz',
                    }
                    if mode != 'scratch':
                        previous.outputs.potentials[label].copy_model_file(directory / 'init.model')
                        config['init_model'] = 'init.model'
                    if mode == 'warm':
                        config['parameters'] = warm_start_parameters(cold, epochs)
                    (directory / 'config.json').write_text(json.dumps(config, indent=2))
                    jobs.append((label, mode, directory))
            load = os.getloadavg()[0]
            results = run_engines([directory for _, _, directory in jobs])
        for (label, mode, _), result in zip(jobs, results):
            metrics = result['metrics']
            record = {
                'cpu_s': round(result['cpu_s'], 1),
                'wall_s': round(result['wall_s'], 1),
                'epochs_run': metrics.get('epochs_run'),
                'test_rmse_f_mev_a': metrics['test']['rmse_f_mev_a'],
                'test_rmse_e_mev': metrics['test']['rmse_e_per_atom_mev'],
                'load_at_start': load,
            }
            entry['members'].setdefault(label, {})[mode] = record
            predictions[mode].append(result['predictions'])
            print(f'iteration {iteration} {label} {mode}: {record}', flush=True)
        entry['committee_test_rmse_f_mev_a'] = {
            mode: committee_force_rmse(values) for mode, values in predictions.items()
        }
        records['iterations'].append(entry)
    records['machine_load_end'] = os.getloadavg()
    return records


def tables(records: dict) -> str:
    """Return the Markdown tables of ``records``."""
    lines = [
        f'Campaign <{records["campaign"]}>.',
        '',
        '| iteration | train frames | mode | epochs | CPU s (sum of members) | wall s (sum) | member F RMSE (meV/Å) '
        '| committee F RMSE (meV/Å) |',
        '|---|---:|---|---:|---:|---:|---:|---:|',
    ]
    for entry in records['iterations']:
        for mode in MODES:
            members = [record[mode] for record in entry['members'].values() if mode in record]
            if not members:
                continue
            rmse = [member['test_rmse_f_mev_a'] for member in members]
            lines.append(
                f'| {entry["iteration"]} | {entry["train_frames"]} | {mode} | '
                f'{"/".join(str(member["epochs_run"]) for member in members)} | '
                f'{sum(member["cpu_s"] for member in members):.0f} | '
                f'{sum(member["wall_s"] for member in members):.0f} | '
                f'{np.mean(rmse):.0f} ± {np.std(rmse):.0f} | {entry["committee_test_rmse_f_mev_a"][mode]:.0f} |'
            )
    scratch = sum(r['scratch']['cpu_s'] for e in records['iterations'] for r in e['members'].values())
    warm = sum(r['warm']['cpu_s'] for e in records['iterations'] for r in e['members'].values())
    if scratch:
        lines += [
            '',
            f'CPU time of the warm starts / from scratch, all iterations: {warm:.0f} / {scratch:.0f} s '
            f'= {warm / scratch:.2f}.',
        ]
    return '\n'.join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('pk', nargs='?', type=int, help='PK of a finished campaign with warm-started trainings.')
    parser.add_argument('--members', type=int, default=None, help='Only the first N members of each committee.')
    parser.add_argument('--iterations', type=int, nargs='+', default=None, help='Only these iterations.')
    parser.add_argument('--json', type=pathlib.Path, default=None, help='Write the records here.')
    parser.add_argument('--from-json', type=pathlib.Path, default=None, help='Print the tables of stored records.')
    arguments = parser.parse_args(argv)
    if arguments.from_json:
        records = json.loads(arguments.from_json.read_text())
    elif arguments.pk is None:
        parser.error('give a campaign PK or --from-json')
    else:
        records = measure(arguments.pk, arguments.members, arguments.iterations)
        if not records['iterations']:
            raise SystemExit(f'campaign {arguments.pk} has no warm-started training')
        if arguments.json:
            arguments.json.write_text(json.dumps(records, indent=2))
    print(tables(records))


if __name__ == '__main__':
    main()
