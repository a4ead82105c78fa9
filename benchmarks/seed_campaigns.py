"""Run the small GFN1-xTB campaigns of every seed system end to end and tabulate what each one did.

One campaign per spec (default: every ``workflows/*_xtb.yaml`` of issue 16: SEI, a-C and Si/a-C, Si@C core-shell, Na
/ Li in hard carbon, Si + LixSi + a-C), each with ``aiida-sianode run SPEC --json`` in the profile of
``$AIIDA_PATH`` (run ``aiida-sianode setup`` once), one after the other. For each campaign it records the wall time
and CPU time (the campaign process and its children), the exit status and stop reason, the labels per iteration
(added, failed), the final training set's frame count and elements, the frames per element (so the table shows that
the training set grew with labels of the campaign's own chemistry) and the machine's load average before and after.
Records are appended to ``benchmarks/seed_campaigns.jsonl``; ``--from-log`` prints the Markdown table of the latest
record of each spec.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/seed_campaigns.py [workflows/sei_xtb.yaml ...]
    python benchmarks/seed_campaigns.py --from-log
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import resource
import subprocess
import sys
import threading
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
LOG = REPO / 'benchmarks' / 'seed_campaigns.jsonl'
SPECS = ('sei_xtb.yaml', 'ac_si_xtb.yaml', 'core_shell_xtb.yaml', 'hard_carbon_xtb.yaml', 'si_lixsi_ac_xtb.yaml')


def training_set_summary(pk: int) -> dict:
    """Frames, elements and frames containing each element of the final training set of campaign ``pk``."""
    from aiida import load_profile, orm

    load_profile()
    node = orm.load_node(pk)
    if 'training_set' not in node.outputs:
        return {}
    dataset = node.outputs.training_set
    frames = dataset.get_frames()
    per_element = collections.Counter(symbol for atoms in frames for symbol in set(atoms.get_chemical_symbols()))
    config_types = collections.Counter(atoms.info.get('config_type', '') for atoms in frames)
    return {
        'training_set_pk': dataset.pk,
        'n_frames': len(frames),
        'elements': sorted(per_element),
        'frames_per_element': dict(sorted(per_element.items())),
        'config_types': dict(sorted(config_types.items())),
        'atoms_per_frame': sorted({len(atoms) for atoms in frames}),
    }


class JobCpuWatcher(threading.Thread):
    """Sums the CPU time of the campaign's calculation jobs: processes ``python -m aiida_sianode.engines.*`` of this
    interpreter (the label, explore and train jobs that AiiDA's local transport starts detached, so that they are no
    children of the campaign process) and their children, polled every ``interval`` s; each process counts with the
    last CPU time seen (up to ``interval`` s of a job's end is missed). Each job is kept with its working directory,
    so that :meth:`total` counts only the jobs of one campaign when two run at the same time."""

    def __init__(self, interval: float = 1.0):
        super().__init__(daemon=True)
        self.interval = interval
        self.seen: dict[tuple[int, float], tuple[float, str]] = {}
        self.done = threading.Event()

    def poll(self) -> None:
        import psutil

        for process in psutil.process_iter(['cmdline', 'create_time']):
            cmdline = process.info['cmdline'] or []
            if not (cmdline and cmdline[0] == sys.executable and any('aiida_sianode.engines' in a for a in cmdline)):
                continue
            try:
                workdir = process.cwd()
                family = [process, *process.children(recursive=True)]
                for member in family:
                    times = member.cpu_times()
                    self.seen[(member.pid, member.create_time())] = (
                        times.user + times.system + times.children_user + times.children_system,
                        workdir,
                    )
            except psutil.Error:
                continue

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.poll()

    def total(self, campaign_pk: int | None) -> float | None:
        """CPU time (s) of the jobs whose working directory is that of a calculation called by campaign
        ``campaign_pk`` (at any depth)."""
        if campaign_pk is None:
            return None
        from aiida import load_profile, orm

        load_profile()
        workdirs = {workdir for _, workdir in self.seen.values()}
        filters = {'attributes.remote_workdir': {'in': list(workdirs)}}
        query = orm.QueryBuilder().append(orm.CalcJobNode, filters=filters)
        ours = set()
        for (node,) in query.iterall():
            caller = node.caller
            while caller is not None and caller.pk != campaign_pk:
                caller = caller.caller
            if caller is not None:
                ours.add(node.get_remote_workdir())
        return sum(cpu for cpu, workdir in self.seen.values() if workdir in ours)


def run_spec(spec: pathlib.Path, output: pathlib.Path) -> dict:
    """Run one campaign and return its record."""
    load_before = os.getloadavg()[0]
    started = time.time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    watcher = JobCpuWatcher()
    watcher.start()
    command = [str(pathlib.Path(sys.executable).parent / 'aiida-sianode'), 'run', str(spec), '--json']
    process = subprocess.run([*command, '--output-dir', str(output)], capture_output=True, text=True, check=False)
    watcher.done.set()
    try:
        summary = json.loads(process.stdout)
    except json.JSONDecodeError:
        summary = {'error': (process.stderr or process.stdout)[-2000:]}
    wall = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    record = make_record(spec, summary, wall, process.returncode, load_before, cpu)
    job_cpu = watcher.total(record.get('pk'))
    record['job_cpu_time_s'] = None if job_cpu is None else round(job_cpu, 1)
    return record


def watch(pid: int, spec: str) -> dict:
    """For a campaign benchmark already running as process ``pid`` (started without the job watcher): sum its jobs'
    CPU time until it ends, then return a copy of the record it wrote for ``spec`` with ``job_cpu_time_s`` added."""
    import psutil

    since = time.strftime('%H:%M', time.gmtime())
    watcher = JobCpuWatcher()
    watcher.start()
    psutil.Process(pid).wait()
    watcher.done.set()
    records = [json.loads(line) for line in LOG.read_text().splitlines() if line.strip()]
    record = next(record for record in reversed(records) if record['spec'] == spec)
    job_cpu = watcher.total(record.get('pk'))
    return {**record, 'job_cpu_time_s': None if job_cpu is None else round(job_cpu, 1), 'job_cpu_watched_from': since}


def make_record(
    spec: pathlib.Path, summary: dict, wall: float, exit_code: int, load_before: float, cpu: float | None = None
) -> dict:
    """The record of one campaign from the JSON summary that ``aiida-sianode run --json`` printed; ``cpu`` is the
    CPU time (user + system, s) of the campaign's process and its children."""
    record = {
        'spec': spec.name,
        'date': time.strftime('%Y-%m-%d %H:%M', time.gmtime()),
        'wall_time_s': round(wall, 1),
        'cpu_time_s': None if cpu is None else round(cpu, 1),
        'exit_code': exit_code,
        'load_before': round(load_before, 1),
        'load_after': round(os.getloadavg()[0], 1),
    }
    if 'error' in summary:
        record['error'] = summary['error']
        return record
    record.update(
        {
            'pk': summary.get('pk'),
            'exit_status': summary.get('exit_status'),
            'stop_reason': summary.get('stop_reason'),
            'labels_computed': summary.get('labels_computed'),
            'labels_failed': summary.get('labels_failed'),
            'iterations': [
                {key: row.get(key) for key in ('iteration', 'labels_added', 'labels_failed', 'training_set_frames')}
                for row in summary.get('iterations', [])
            ],
            'final_accurate_fraction': summary.get('final_accurate_fraction'),
        }
    )
    if summary.get('pk') is not None:
        record['training_set'] = training_set_summary(summary['pk'])
    return record


def table(records: list[dict]) -> str:
    """The Markdown table of the latest record of each spec."""
    latest = {}
    for record in records:
        latest[record['spec']] = record
    lines = [
        '| spec | wall time (s) | CPU time (s): run, jobs | load | exit | stop | labels (failed) | '
        'frames per iteration | training set: frames with each element |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for spec, record in latest.items():
        growth = ' → '.join(str(row['training_set_frames']) for row in record.get('iterations', []))
        elements = ', '.join(
            f'{element} {count}'
            for element, count in record.get('training_set', {}).get('frames_per_element', {}).items()
        )
        cpu = ', '.join(
            '' if record.get(key) is None else f'{record[key]:.0f}' for key in ('cpu_time_s', 'job_cpu_time_s')
        )
        lines.append(
            f'| {spec} | {record["wall_time_s"]:.0f} | {cpu if cpu != ", " else ""} | '
            f'{record["load_before"]}-{record["load_after"]} | '
            f'{record.get("exit_status", record["exit_code"])} | {record.get("stop_reason", "error")} | '
            f'{record.get("labels_computed")} ({record.get("labels_failed")}) | {growth} | {elements} |'
        )
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('specs', nargs='*', type=pathlib.Path, help='campaign specs (default: the five xTB seeds)')
    parser.add_argument('--from-log', action='store_true', help='print the table of the records in the log')
    parser.add_argument('--output', type=pathlib.Path, default=REPO / 'runs' / 'seed_campaigns')
    parser.add_argument(
        '--record',
        nargs=2,
        metavar=('SPEC', 'SUMMARY'),
        help='record a campaign already run by hand: its spec and the JSON that `run --json` printed',
    )
    parser.add_argument(
        '--watch',
        nargs=2,
        metavar=('PID', 'SPEC'),
        help="sum the jobs' CPU time of the benchmark process PID running SPEC (a spec file name) until it ends",
    )
    args = parser.parse_args(argv)
    if args.watch:
        record = watch(int(args.watch[0]), args.watch[1])
        with LOG.open('a') as handle:
            handle.write(json.dumps(record) + '\n')
    elif args.record:
        summary = json.loads(pathlib.Path(args.record[1]).read_text())
        exit_code = 0 if summary.get('exit_status') == 0 else 1
        record = make_record(
            pathlib.Path(args.record[0]), summary, summary['wall_time_s'], exit_code, os.getloadavg()[0]
        )
        with LOG.open('a') as handle:
            handle.write(json.dumps(record) + '\n')
    elif not args.from_log:
        specs = args.specs or [REPO / 'workflows' / name for name in SPECS]
        for spec in specs:
            record = run_spec(spec, args.output / spec.stem)
            with LOG.open('a') as handle:
                handle.write(json.dumps(record) + '\n')
            print(json.dumps(record), flush=True)
    records = [json.loads(line) for line in LOG.read_text().splitlines() if line.strip()] if LOG.exists() else []
    print(table(records))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
