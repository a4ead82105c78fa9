"""One run of an engine per calculation folder, even when its job is started twice.

aiida-core cannot make a job's submission fully idempotent (aiida-core issue 3183): when the daemon is killed after
the scheduler accepted a job but before the job id was stored, the restarted daemon submits the same folder again.
The loopback cluster test saw exactly that (a training submitted as Slurm jobs 140 and 141). So every engine's
command-line entry point goes through :func:`once`: it takes an exclusive lock on ``.engine.lock`` in the folder
(a second job of the same folder waits for the first), and when the engine's results file is already there it does
nothing and exits 0, leaving the first run's results for the parser. Each start is appended to ``engine-runs.log``
with the scheduler's job id, so a duplicate job is visible. Where the file system refuses locks (some parallel file
systems), the check of the results file still holds for jobs that do not overlap.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import os
import pathlib
import sys
from collections.abc import Callable, Sequence

LOCK_FILENAME = '.engine.lock'
RUNS_LOG_FILENAME = 'engine-runs.log'


def _job_id() -> str:
    for variable in ('SLURM_JOB_ID', 'PBS_JOBID', 'LSB_JOBID', 'JOB_ID'):
        if os.environ.get(variable):
            return f'job {os.environ[variable]}'
    return f'pid {os.getpid()}'


def _log(directory: pathlib.Path, engine: str, message: str) -> None:
    stamp = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')
    with open(directory / RUNS_LOG_FILENAME, 'a', encoding='utf8') as handle:
        handle.write(f'{stamp} {engine} {_job_id()}: {message}\n')


@contextlib.contextmanager
def run_once(directory: str | pathlib.Path, results_filename: str, engine: str):
    """Hold the folder's engine lock; yield ``True`` when this run must compute, ``False`` when an earlier run of
    the same folder already wrote ``results_filename``."""
    directory = pathlib.Path(directory)
    with open(directory / LOCK_FILENAME, 'a', encoding='utf8') as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError as error:  # a file system without locks: go on without one
            _log(directory, engine, f'no lock ({error}); checking for results only')
        done = (directory / results_filename).is_file()
        _log(directory, engine, f'{results_filename} already present: nothing to do' if done else 'running')
        yield not done


def once(results_filename: str, engine: str) -> Callable:
    """Decorate an engine's ``main(argv)`` (one argument: its input file) so that it runs once per folder."""

    def decorate(main: Callable[[Sequence[str] | None], int]) -> Callable[[Sequence[str] | None], int]:
        @functools.wraps(main)
        def wrapper(argv: Sequence[str] | None = None) -> int:
            arguments = list(sys.argv[1:] if argv is None else argv)
            if len(arguments) != 1 or not pathlib.Path(arguments[0]).is_file():
                return main(arguments)  # usage errors and a missing input are the engine's to report
            directory = pathlib.Path(arguments[0]).resolve().parent
            with run_once(directory, results_filename, engine) as first:
                if not first:
                    print(f'{results_filename} is already in {directory}: an earlier job of this folder ran the engine')
                    return 0
                return main(arguments)

        return wrapper

    return decorate
