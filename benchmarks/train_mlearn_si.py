"""Benchmark: MACE committees trained by TrainCommitteeWorkChain on the mlearn Si data (Zuo et al. 2020).

The mlearn Si training set (214 VASP PBE frames) becomes a DatasetData (10 % validation, seed 0) and the mlearn Si
test set (25 frames) a second DatasetData; a committee is trained per protocol and scored on the test set. Results go
to ``benchmarks/train_mlearn_si.json`` (appended per protocol, so an interrupted run keeps what finished) and the
report ``benchmarks/train_mlearn_si.md`` is written from that file.

Usage::

    python benchmarks/train_mlearn_si.py --protocol fast --protocol balanced --committee 3
    python benchmarks/train_mlearn_si.py --report-only
    python benchmarks/train_mlearn_si.py --protocol fast --save-models benchmarks/models   # models for properties.py
    python benchmarks/train_mlearn_si.py --protocol fast --with-stress --serial --name fast-stress \
        --override stress_weight=1000 --save-models benchmarks/models

``--with-stress`` trains on the stresses too. mlearn stores each frame's virial stress as VASP prints it (kB, order
xx yy zz xy yz zx, positive under compression); :func:`mlearn_stress` turns it into ASE's stress (eV/Å^3, Voigt order
xx yy zz yz xz xy, positive under tension), and :func:`check_mlearn_virial` proves that reading on the data itself
before anything is trained: on the strained and sheared c-Si frames of the set, the stress is the derivative of the
DFT energy with respect to the strain, and the two must agree.

Without ``--profile`` the benchmark runs in a throw-away AiiDA configuration (SQLite profile, no broker, the
``localhost`` computer and the ``sianode-train`` code), so it needs no set-up and leaves the user's profiles alone.
"""

from __future__ import annotations

import argparse
import contextlib
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

import numpy as np

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


def mlearn_stress(raw) -> np.ndarray:
    """ASE stress (Voigt xx yy zz yz xz xy, eV/Å^3, positive under tension) of an mlearn ``virial_stress``.

    mlearn keeps VASP's ``in kB`` line: kilobar, order xx yy zz xy yz zx, positive under compression.
    """
    from ase.units import GPa

    xx, yy, zz, xy, yz, zx = (float(value) for value in raw)
    return -0.1 * GPa * np.array([xx, yy, zz, yz, zx, xy])


#: The strain families of the mlearn ``Elastic`` frames: (row, column) of the cell entry that is strained, and the
#: ASE Voigt index of the stress it produces. A cell entry (i, i) stretches axis i; (i, j) shears it (the mlearn
#: frames turn cell vector i towards axis j at constant length, so (i, i) changes with it).
STRAIN_FAMILIES = ((0, 0, 0), (1, 1, 1), (2, 2, 2), (2, 1, 3), (2, 0, 4), (1, 0, 5))


def check_mlearn_virial(path: pathlib.Path, tolerance: float = 0.05) -> dict:
    """Check :func:`mlearn_stress` against the energies of the strained c-Si frames of an mlearn file.

    For each family of ``Elastic`` frames strained in one cell entry only, the stress component that entry produces is
    ``(1/V) dE/d(strain)`` (logarithmic strain for a stretch, ``cell[i, j] / cell[i, i]`` for a shear); second-order
    finite differences of the DFT energies over the family give it at each interior frame. Returns the largest relative
    difference over frames with more than 1 GPa of stress by either reckoning, the number of frames compared, and per
    family the pairs. Raises ``ValueError`` when it exceeds ``tolerance``: the reading of the virial would be wrong.
    """
    from ase.io import read
    from ase.units import GPa

    frames = [atoms for atoms in read(path, index=':', format='extxyz') if atoms.info.get('config_type') == 'Elastic']
    if not frames:
        raise ValueError(f'{path} has no Elastic frames to check the virial reading on')
    unstrained = min(frames, key=lambda atoms: np.abs(mlearn_stress(atoms.info['mlearn_virial_stress_raw'])).max())
    reference = np.diag(np.diag(unstrained.cell.array))
    worst, compared, families = 0.0, 0, {}
    for row, column, voigt in STRAIN_FAMILIES:
        mask = np.zeros((3, 3), dtype=bool)
        mask[row, column] = mask[row, row] = True  # a shear here turns the cell vector: its length stays
        family = [atoms for atoms in frames if np.allclose(atoms.cell.array[~mask], reference[~mask], atol=1e-3)]
        if row != column:  # the sheared frames, not the stretched ones along the same axis
            family = [atoms for atoms in family if abs(atoms.cell.lengths()[row] - reference[row, row]) < 1e-3]
        if row == column:
            strain = [np.log(atoms.cell[row, row]) for atoms in family]
        else:
            strain = [atoms.cell[row, column] / atoms.cell[row, row] for atoms in family]
        order = np.argsort(strain)
        strain = np.asarray(strain)[order]
        family = [family[index] for index in order]
        if len(family) < 3:
            continue
        energy = np.array([atoms.info['dft_energy'] for atoms in family])
        volume = np.array([atoms.get_volume() for atoms in family])
        slopes = np.gradient(energy, strain)  # second order on the uneven strain steps
        pairs = []
        for index in range(1, len(family) - 1):
            from_energy = slopes[index] / volume[index] / GPa
            from_virial = mlearn_stress(family[index].info['mlearn_virial_stress_raw'])[voigt] / GPa
            pairs.append((round(from_energy, 3), round(from_virial, 3)))
            scale = max(abs(from_energy), abs(from_virial))
            if scale > 1.0:
                worst = max(worst, abs(from_energy - from_virial) / scale)
                compared += 1
        families[f'cell[{row},{column}] -> stress[{voigt}]'] = pairs
    if compared == 0:
        raise ValueError(f'{path}: no strained Elastic frame family to check the virial reading on')
    if worst > tolerance:
        raise ValueError(
            f'{path}: the mlearn virial read as VASP kB (xx yy zz xy yz zx) differs from the energy derivative by '
            f'{worst:.1%} (tolerance {tolerance:.0%}): not that convention'
        )
    return {'max_relative_difference': worst, 'frames_compared': compared, 'families_gpa': families}


def import_labels(path: pathlib.Path, with_stress: bool = False) -> list:
    """Store every frame of an mlearn extxyz file as a LabelData (energy ``dft_energy``, forces ``dft_forces``, and
    with ``with_stress`` the stress from ``mlearn_virial_stress_raw``, see :func:`mlearn_stress`)."""
    from ase.io import read

    from aiida_sianode.data.label import LabelData

    digest = _sha256(path)
    labels = []
    for index, atoms in enumerate(read(path, index=':', format='extxyz')):
        label = LabelData(
            atoms,
            energy=float(atoms.info['dft_energy']),
            forces=atoms.arrays['dft_forces'],
            stress=mlearn_stress(atoms.info['mlearn_virial_stress_raw']) if with_stress else None,
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
    code,
    dataset,
    test_dataset,
    protocol: str,
    committee_size: int,
    overrides: dict | None,
    save_models=None,
    name: str | None = None,
) -> dict:
    """Train one committee at ``protocol``; return its errors on the test set and its timings. With ``save_models`` (a
    folder), the members' model files are copied to ``save_models/<name>/member_<i>.model`` (``name``: the protocol
    unless given) for the property benchmarks (``benchmarks/properties.py --models``)."""
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
        'name': name or protocol,
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
        target = pathlib.Path(save_models) / (name or protocol)
        target.mkdir(parents=True, exist_ok=True)
        for index, key in enumerate(sorted(results['potentials'])):
            potential = results['potentials'][key]
            with potential.open(potential.filename, 'rb') as source:
                (target / f'member_{index}.model').write_bytes(source.read())
        record['saved_models'] = str(target)
    return record


def record_name(record: dict) -> str:
    """A record's name: ``name`` where given, else its protocol (records older than ``--name``)."""
    return record.get('name') or record['protocol']


@contextlib.contextmanager
def one_job_at_a_time(computer, serial: bool):
    """With ``serial``, make the computer's jobs wait for one another (a ``flock`` on a file in the AiiDA
    configuration, prepended to every job script) while the block runs, so that the committee's members, which
    TrainCommitteeWorkChain submits all at once, train one after the other on a shared machine; the computer's own
    prepend text is restored afterwards."""
    if not serial:
        yield
        return
    lock = pathlib.Path(os.environ.get('AIIDA_PATH', tempfile.gettempdir())) / 'sianode-benchmark-train.lock'
    previous = computer.get_prepend_text()
    computer.set_prepend_text('\n'.join(filter(None, [previous, f'exec 9>"{lock}"', 'flock 9'])))
    try:
        yield
    finally:
        computer.set_prepend_text(previous)


def _fmt(value, digits=3):
    return '–' if value is None else f'{value:.{digits}g}'


PROTOCOL_ORDER = ('fast', 'balanced', 'stringent')
#: 1 meV/Å^3 in GPa
MEV_A3_IN_GPA = 0.160217662


def write_report(results: list[dict], path: pathlib.Path = REPORT) -> None:
    """Write the Markdown report from the benchmark records."""
    results = sorted(results, key=lambda record: (PROTOCOL_ORDER.index(record['protocol']), record_name(record)))
    lines = [
        '# MACE committees on the mlearn Si data set',
        '',
        'Generated by `benchmarks/train_mlearn_si.py` from `benchmarks/train_mlearn_si.json`.',
        '',
        '**Data.** mlearn Si (Zuo et al., *J. Phys. Chem. A* 124, 731 (2020); materialsvirtuallab/mlearn, BSD-3):',
        '214 training frames (AIMD-NVT, vacancy, elastic, surface; 12-96 atoms, VASP PBE) and 25 test frames.',
        'The training frames become one DatasetData (193 train / 21 valid, seed 0); the 25 test frames a second one.',
        'Committees named after their protocol train on energies and forces only; those named *-stress*',
        "(`--with-stress`) on the stresses too: mlearn keeps VASP's virial line (kB, xx yy zz xy yz zx, positive under",
        'compression), which the script converts and first checks against the set itself (on the strained c-Si frames',
        'the stress is the strain derivative of the DFT energy; the record gives the largest difference). Committee',
        'members differ in seed and in their bootstrap sample of the 193 training frames.',
        '',
        '**Errors.** On the 25 test frames: RMSE / MAE of the energy per atom (meV/atom) and of the force components',
        '(eV/Å), for each member (mean ± std over members) and for the committee-mean prediction; for a committee',
        "trained on stresses, the members' RMSE of the stress components (GPa; 1 GPa = 6.24 meV/Å³).",
        '',
        '| committee | members | member E RMSE (meV/atom) | member F RMSE (eV/Å) | member stress RMSE (GPa) '
        '| committee E RMSE / MAE (meV/atom) | committee F RMSE / MAE (eV/Å) | epochs | wall time of the committee '
        '| load (mean / max) |',
        '|---|---|---|---|---|---|---|---|---|---|',
    ]
    for record in results:
        metrics = record.get('metrics')
        if not metrics:
            lines.append(
                f'| {record_name(record)} | failed: {record.get("exit_message")} | | | | | | | '
                f'{record["wall_time_s"] / 60:.1f} min | |'
            )
            continue
        test = metrics['mean_std'].get('test', {})
        energy, forces = test.get('rmse_e_per_atom_mev', {}), test.get('rmse_f_mev_a', {})
        stress = test.get('rmse_stress_mev_a3')
        stress_cell = (
            f'{stress["mean"] * MEV_A3_IN_GPA:.3g} ± {stress["std"] * MEV_A3_IN_GPA:.2g}'
            if record.get('with_stress') and stress
            else '–'
        )
        committee = metrics.get('committee_prediction', {}).get('test', {})
        epochs = sorted({member.get('epochs_run') for member in metrics['members'].values()})
        load = record['load_average']
        lines.append(
            f'| {record_name(record)} | {metrics["n_members"]}/{metrics["committee_size"]} '
            f'| {_fmt(energy.get("mean"))} ± {_fmt(energy.get("std"), 2)} '
            f'| {_fmt((forces.get("mean") or 0) / 1000)} ± {_fmt((forces.get("std") or 0) / 1000, 2)} '
            f'| {stress_cell} '
            f'| {_fmt(committee.get("rmse_e_per_atom_mev"))} / {_fmt(committee.get("mae_e_per_atom_mev"))} '
            f'| {_fmt(committee.get("rmse_f_mev_a", 0) / 1000)} / {_fmt(committee.get("mae_f_mev_a", 0) / 1000)} '
            f'| {", ".join(str(epoch) for epoch in epochs)} | {record["wall_time_s"] / 60:.1f} min '
            f'| {load["mean"]:.1f} / {load["max"]:.1f} |'
        )
    lines += ['', '## Settings and per-member numbers', '']
    for record in results:
        parameters = record['parameters']
        lines.append(
            f'- **{record_name(record)}** ({record["date"]}): {parameters["num_channels"]} channels, max_L '
            f'{parameters["max_L"]}, correlation {parameters["correlation"]}, r_max {parameters["r_max"]} Å, '
            f'{parameters["default_dtype"]}, up to {parameters["max_num_epochs"]} epochs (patience '
            f'{parameters["patience"]}), batch {parameters["batch_size"]}, lr {parameters["lr"]}, EMA '
            f'{parameters["ema"]}, bootstrap {parameters["bootstrap"]}'
            + (f'; overrides {record["overrides"]}' if record.get('overrides') else '')
            + (
                f'; stresses on (stress weight {parameters["stress_weight"]}; the virial reading differs from the '
                f'energy derivative by at most {record["virial_check"]["max_relative_difference"]:.1%} over '
                f'{record["virial_check"]["frames_compared"]} strained frames)'
                if record.get('with_stress')
                else '; energies and forces only'
            )
            + ('; members trained one after the other' if record.get('serial_members') else '')
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
                f'- **{record_name(record)}**: every member was still improving at its last epoch; more epochs '
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
        '--save-models', type=pathlib.Path, default=None, help='Copy the members to DIR/<name>/member_<i>.model.'
    )
    parser.add_argument(
        '--with-stress', action='store_true', help='Train on the stresses too (the mlearn virial, checked first).'
    )
    parser.add_argument(
        '--name', default=None, help='Name of the record and of the model folder (default: the protocol).'
    )
    parser.add_argument(
        '--serial', action='store_true', help='Train the members one after the other (one job at a time).'
    )
    args = parser.parse_args(argv)
    if args.name and args.protocol and len(args.protocol) > 1:
        parser.error('--name names one committee: give one --protocol with it')

    results = json.loads(args.results.read_text()) if args.results.is_file() else []
    if args.report_only:
        write_report(results, args.report)
        return 0

    os.environ.setdefault('OMP_NUM_THREADS', '1')
    code = setup_environment(args.profile)
    from aiida_sianode.cli.train import parse_overrides
    from aiida_sianode.data.dataset import build_dataset

    overrides = parse_overrides(args.override) or None
    virial_check = check_mlearn_virial(DATA / 'training.extxyz') if args.with_stress else None
    if virial_check:
        print(
            f'mlearn virial reading checked on {virial_check["frames_compared"]} strained frames: largest difference '
            f'from the energy derivative {virial_check["max_relative_difference"]:.1%}'
        )
    dataset = build_dataset(import_labels(DATA / 'training.extxyz', args.with_stress), valid_fraction=0.1, seed=0)
    test_dataset = build_dataset(import_labels(DATA / 'test.extxyz', args.with_stress), valid_fraction=0.0, seed=0)
    print(
        f'dataset<{dataset.pk}> {dataset.split_counts}, test dataset<{test_dataset.pk}> {test_dataset.n_frames} frames'
    )
    machine = {'cpus': os.cpu_count(), 'processor': processor_name(), 'python': sys.version.split()[0]}
    for protocol in args.protocol or ['fast']:
        name = args.name or protocol
        print(f'training a committee of {args.committee} with the {protocol} protocol ({name})', flush=True)
        with one_job_at_a_time(code.computer, args.serial):
            record = run_protocol(
                code, dataset, test_dataset, protocol, args.committee, overrides, args.save_models, name=name
            )
        record.update(machine=machine, with_stress=args.with_stress, serial_members=args.serial)
        if virial_check:
            record['virial_check'] = virial_check
        results = [item for item in results if record_name(item) != name] + [record]
        args.results.write_text(json.dumps(results, indent=2))
        write_report(results, args.report)
        print(f'{name}: exit status {record["exit_status"]}, {record["wall_time_s"] / 60:.1f} min', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
