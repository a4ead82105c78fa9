"""Benchmark: MACE committees trained by TrainCommitteeWorkChain on the mlearn Si data (Zuo et al. 2020).

The mlearn Si training set (214 VASP PBE frames) becomes a DatasetData (10 % validation, seed 0) and the mlearn Si
test set (25 frames) a second DatasetData; a committee is trained per protocol and scored on the test set. Results go
to ``benchmarks/train_mlearn_si.json`` (appended per protocol, so an interrupted run keeps what finished) and the
report ``benchmarks/train_mlearn_si.md`` is written from that file.

Usage::

    python benchmarks/train_mlearn_si.py --protocol fast --protocol balanced --committee 3
    python benchmarks/train_mlearn_si.py --report-only
    python benchmarks/train_mlearn_si.py --protocol fast --save-models benchmarks/models   # models for properties.py

Without ``--profile`` the benchmark runs in a throw-away AiiDA configuration (SQLite profile, no broker, the
``localhost`` computer and the ``sianode-train`` code), so it needs no set-up and leaves the user's profiles alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO / 'fixtures' / 'datasets' / 'mlearn_Si_Li' / 'Si'
RESULTS = HERE / 'train_mlearn_si.json'
REPORT = HERE / 'train_mlearn_si.md'
LEVEL_OF_THEORY = {'code': 'vasp', 'method': 'PBE', 'description': 'mlearn Si, Zuo et al. 2020'}


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def processor_name() -> str:
    """Return the CPU model from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def import_labels(path: pathlib.Path) -> list:
    """Store every frame of an mlearn extxyz file as a LabelData (energy ``dft_energy``, forces ``dft_forces``).

    The raw mlearn virial is left out: its units and order are not verified (see fixtures/README.md).
    """
    from ase.io import read

    from aiida_sianode.data.label import LabelData

    digest = _sha256(path)
    labels = []
    for index, atoms in enumerate(read(path, index=':', format='extxyz')):
        label = LabelData(
            atoms,
            energy=float(atoms.info['dft_energy']),
            forces=atoms.arrays['dft_forces'],
            level_of_theory=LEVEL_OF_THEORY,
            source={'kind': 'file', 'filename': path.name, 'sha256': digest, 'frame': index},
            config_type=str(atoms.info.get('config_type', 'default')),
        )
        labels.append(label.store())
    return labels


class LoadSampler:
    """Samples the 1-minute load average every ``interval`` seconds in a background thread."""

    def __init__(self, interval: float = 15.0):
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        """Mean and maximum of the sampled load averages."""
        return {'mean': statistics.fmean(self.samples), 'max': max(self.samples), 'n_samples': len(self.samples)}


def setup_environment(profile_name: str | None):
    """Load ``profile_name``, or create a throw-away configuration; return the ``sianode-train`` code."""
    if profile_name is None:
        os.environ['AIIDA_PATH'] = tempfile.mkdtemp(prefix='sianode-benchmark-')
    from aiida_sianode.cli.setup import ensure_codes, ensure_localhost, ensure_profile

    if profile_name is None:
        ensure_profile('benchmark', broker=None)
    else:
        from aiida import load_profile

        load_profile(profile_name)
    computer, _ = ensure_localhost()
    computer.set_minimum_job_poll_interval(2.0)
    ensure_codes(computer)
    from aiida import orm

    return orm.load_code(f'sianode-train@{computer.label}')


def run_protocol(
    code, dataset, test_dataset, protocol: str, committee_size: int, overrides: dict | None, save_models=None
) -> dict:
    """Train one committee at ``protocol``; return its errors on the test set and its timings. With ``save_models`` (a
    folder), the members' model files are copied to ``save_models/<protocol>/member_<i>.model`` for the property
    benchmarks (``benchmarks/properties.py --models``)."""
    from aiida.engine import run_get_node

    from aiida_sianode.workflows.train import TrainCommitteeWorkChain

    builder = TrainCommitteeWorkChain.get_builder_from_protocol(
        code, dataset, protocol=protocol, overrides=overrides, committee_size=committee_size, test_dataset=test_dataset
    )
    parameters = builder.member.train.parameters.get_dict()
    start = time.perf_counter()
    with LoadSampler() as sampler:
        results, node = run_get_node(builder)
    wall = time.perf_counter() - start
    record = {
        'protocol': protocol,
        'committee_size': committee_size,
        'overrides': overrides,
        'parameters': parameters,
        'workchain_pk': node.pk,
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
        'wall_time_s': wall,
        'load_average': sampler.summary(),
        'date': time.strftime('%Y-%m-%d %H:%M:%S'),
    }
    if 'metrics' in results:
        record['metrics'] = results['metrics'].get_dict()
    if save_models is not None and 'potentials' in results:
        target = pathlib.Path(save_models) / protocol
        target.mkdir(parents=True, exist_ok=True)
        for index, key in enumerate(sorted(results['potentials'])):
            potential = results['potentials'][key]
            with potential.open(potential.filename, 'rb') as source:
                (target / f'member_{index}.model').write_bytes(source.read())
        record['saved_models'] = str(target)
    return record


def _fmt(value, digits=3):
    return '–' if value is None else f'{value:.{digits}g}'


PROTOCOL_ORDER = ('fast', 'balanced', 'stringent')


def write_report(results: list[dict], path: pathlib.Path = REPORT) -> None:
    """Write the Markdown report from the benchmark records."""
    results = sorted(results, key=lambda record: PROTOCOL_ORDER.index(record['protocol']))
    lines = [
        '# MACE committees on the mlearn Si data set',
        '',
        'Generated by `benchmarks/train_mlearn_si.py` from `benchmarks/train_mlearn_si.json`.',
        '',
        '**Data.** mlearn Si (Zuo et al., *J. Phys. Chem. A* 124, 731 (2020); materialsvirtuallab/mlearn, BSD-3):',
        '214 training frames (AIMD-NVT, vacancy, elastic, surface; 12-96 atoms, VASP PBE) and 25 test frames.',
        'The training frames become one DatasetData (193 train / 21 valid, seed 0); the 25 test frames a second one.',
        'Energies and forces only: the raw mlearn virial is not used (units unverified). Committee members differ in',
        'seed and in their bootstrap sample of the 193 training frames.',
        '',
        '**Errors.** On the 25 test frames: RMSE / MAE of the energy per atom (meV/atom) and of the force components',
        '(eV/Å), for each member (mean ± std over members) and for the committee-mean prediction.',
        '',
        '| protocol | members | member E RMSE (meV/atom) | member F RMSE (eV/Å) | committee E RMSE / MAE (meV/atom) '
        '| committee F RMSE / MAE (eV/Å) | epochs | wall time of the committee | load (mean / max) |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for record in results:
        metrics = record.get('metrics')
        if not metrics:
            lines.append(
                f'| {record["protocol"]} | failed: {record.get("exit_message")} | | | | | | '
                f'{record["wall_time_s"] / 60:.1f} min | |'
            )
            continue
        test = metrics['mean_std'].get('test', {})
        energy, forces = test.get('rmse_e_per_atom_mev', {}), test.get('rmse_f_mev_a', {})
        committee = metrics.get('committee_prediction', {}).get('test', {})
        epochs = sorted({member.get('epochs_run') for member in metrics['members'].values()})
        load = record['load_average']
        lines.append(
            f'| {record["protocol"]} | {metrics["n_members"]}/{metrics["committee_size"]} '
            f'| {_fmt(energy.get("mean"))} ± {_fmt(energy.get("std"), 2)} '
            f'| {_fmt((forces.get("mean") or 0) / 1000)} ± {_fmt((forces.get("std") or 0) / 1000, 2)} '
            f'| {_fmt(committee.get("rmse_e_per_atom_mev"))} / {_fmt(committee.get("mae_e_per_atom_mev"))} '
            f'| {_fmt(committee.get("rmse_f_mev_a", 0) / 1000)} / {_fmt(committee.get("mae_f_mev_a", 0) / 1000)} '
            f'| {", ".join(str(epoch) for epoch in epochs)} | {record["wall_time_s"] / 60:.1f} min '
            f'| {load["mean"]:.1f} / {load["max"]:.1f} |'
        )
    lines += ['', '## Settings and per-member numbers', '']
    for record in results:
        parameters = record['parameters']
        lines.append(
            f'- **{record["protocol"]}** ({record["date"]}): {parameters["num_channels"]} channels, max_L '
            f'{parameters["max_L"]}, correlation {parameters["correlation"]}, r_max {parameters["r_max"]} Å, '
            f'{parameters["default_dtype"]}, up to {parameters["max_num_epochs"]} epochs (patience '
            f'{parameters["patience"]}), batch {parameters["batch_size"]}, lr {parameters["lr"]}, EMA '
            f'{parameters["ema"]}, bootstrap {parameters["bootstrap"]}'
            + (f'; overrides {record["overrides"]}' if record.get('overrides') else '')
        )
        for label, member in (record.get('metrics') or {}).get('members', {}).items():
            test, valid = member.get('test', {}), member.get('valid', {})
            lines.append(
                f'  - {label}: seed {member["seed"]}, {member["n_frames_trained"]} distinct training frames, '
                f'{member["epochs_run"]} epochs (best {member["best_epoch"]}), {member["training_wall_time_s"]:.0f} s; '
                f'valid {_fmt(valid.get("rmse_e_per_atom_mev"))} meV/atom, '
                f'{_fmt(valid.get("rmse_f_mev_a", 0) / 1000)} eV/Å; test {_fmt(test.get("rmse_e_per_atom_mev"))} '
                f'meV/atom, {_fmt(test.get("rmse_f_mev_a", 0) / 1000)} eV/Å'
            )
        disagreement = (record.get('metrics') or {}).get('test_disagreement')
        if disagreement:
            lines.append(
                f'  - member disagreement on test: mean max force deviation '
                f'{disagreement["mean_max_force_deviation_ev_a"]:.3g} eV/Å, energy std '
                f'{disagreement["mean_energy_std_mev_per_atom"]:.3g} meV/atom'
            )
    notes = []
    for record in results:
        members = (record.get('metrics') or {}).get('members', {}).values()
        if members and all(
            member.get('best_epoch') == member.get('last_epoch', (member.get('epochs_run') or 0) - 1)
            for member in members
        ):
            notes.append(
                f'- **{record["protocol"]}**: every member was still improving at its last epoch; more epochs '
                '(`--override max_num_epochs=...`) would lower the errors further.'
            )
    missing = [protocol for protocol in PROTOCOL_ORDER if protocol not in {record['protocol'] for record in results}]
    if missing:
        notes.append(
            f'- not run here: {", ".join(missing)}. `stringent` (64 equivariant channels, float64, up to 400 epochs) '
            'is meant for a GPU; on this machine one epoch of a 32-channel max_L 1 model already took about four '
            'times as long as one of the `balanced` model.'
        )
    if notes:
        lines += ['', '## Notes', '', *notes]
    machine = results[-1].get('machine', {}) if results else {}
    lines += [
        '',
        '## Machine',
        '',
        f'{machine.get("cpus", "?")} CPU cores ({machine.get("processor") or "unknown model"}), no GPU; every '
        'member runs as its own process with one thread (`OMP_NUM_THREADS=1`), all members of a committee at once. '
        'The machine was shared with other engineers running tests: the load column gives the 1-minute load average '
        'sampled every 15 s during the run (2.0 would mean both cores busy, and a committee of three alone keeps '
        'it near 3); wall times on an idle machine are shorter.',
        '',
        '## Published numbers for this data set',
        '',
        'Zuo et al. (2020) fitted GAP, MTP, NNP, SNAP and qSNAP to exactly these training frames and report their '
        'energy and force errors on this test set in the paper (the comparison figure and tables of errors per '
        'element). They are not copied here because the values could not be checked against the paper while '
        'writing this report; see the paper for them, and check whether a figure quotes MAE or RMSE before '
        'comparing (both are given above for the committee mean).',
        '',
    ]
    path.write_text('\n'.join(lines))


def main(argv=None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--protocol', action='append', choices=['fast', 'balanced', 'stringent'], default=None)
    parser.add_argument('--committee', type=int, default=3)
    parser.add_argument('--profile', default=None, help='An existing AiiDA profile (default: a throw-away one).')
    parser.add_argument('--override', action='append', default=[], help='KEY=VALUE as for `aiida-sianode train`.')
    parser.add_argument('--results', type=pathlib.Path, default=RESULTS)
    parser.add_argument('--report', type=pathlib.Path, default=REPORT)
    parser.add_argument('--report-only', action='store_true', help='Only rewrite the report from the results.')
    parser.add_argument(
        '--save-models', type=pathlib.Path, default=None, help='Copy the members to DIR/<protocol>/member_<i>.model.'
    )
    args = parser.parse_args(argv)

    results = json.loads(args.results.read_text()) if args.results.is_file() else []
    if args.report_only:
        write_report(results, args.report)
        return 0

    os.environ.setdefault('OMP_NUM_THREADS', '1')
    code = setup_environment(args.profile)
    from aiida_sianode.cli.train import parse_overrides
    from aiida_sianode.data.dataset import build_dataset

    overrides = parse_overrides(args.override) or None
    dataset = build_dataset(import_labels(DATA / 'training.extxyz'), valid_fraction=0.1, seed=0)
    test_dataset = build_dataset(import_labels(DATA / 'test.extxyz'), valid_fraction=0.0, seed=0)
    print(
        f'dataset<{dataset.pk}> {dataset.split_counts}, test dataset<{test_dataset.pk}> {test_dataset.n_frames} frames'
    )
    machine = {'cpus': os.cpu_count(), 'processor': processor_name(), 'python': sys.version.split()[0]}
    for protocol in args.protocol or ['fast']:
        print(f'training a committee of {args.committee} with the {protocol} protocol', flush=True)
        record = run_protocol(code, dataset, test_dataset, protocol, args.committee, overrides, args.save_models)
        record['machine'] = machine
        results = [item for item in results if item['protocol'] != protocol] + [record]
        args.results.write_text(json.dumps(results, indent=2))
        write_report(results, args.report)
        print(f'{protocol}: exit status {record["exit_status"]}, {record["wall_time_s"] / 60:.1f} min', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
