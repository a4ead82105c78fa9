"""An engine started twice on one calculation folder (a job submitted twice) computes once."""

from __future__ import annotations

import json
import threading
import time

from ase.build import molecule

from aiida_sianode.engines import label as label_engine
from aiida_sianode.engines.once import LOCK_FILENAME, RUNS_LOG_FILENAME, run_once


def test_a_second_start_of_the_label_engine_leaves_the_first_results(tmp_path, monkeypatch):
    import ase.io

    ase.io.write(tmp_path / 'structure.extxyz', molecule('H2O'), format='extxyz')
    (tmp_path / 'input.json').write_text(json.dumps({'labeler': 'xtb', 'parameters': {'accuracy': 0.1}}))
    monkeypatch.setenv('SLURM_JOB_ID', '140')
    assert label_engine.main([str(tmp_path / 'input.json')]) == 0
    first = (tmp_path / 'results.json').read_text()
    assert json.loads(first)['status'] == 'ok'

    monkeypatch.setenv('SLURM_JOB_ID', '141')
    called = []
    monkeypatch.setattr(label_engine, 'label', lambda *args, **kwargs: called.append(args))
    assert label_engine.main([str(tmp_path / 'input.json')]) == 0
    assert called == []  # nothing computed the second time
    assert (tmp_path / 'results.json').read_text() == first
    lines = (tmp_path / RUNS_LOG_FILENAME).read_text().splitlines()
    assert [line.split(' ', 1)[1] for line in lines] == [
        'label job 140: running',
        'label job 141: results.json already present: nothing to do',
    ]


def test_a_concurrent_start_waits_for_the_first_and_then_does_nothing(tmp_path):
    order = []

    def first():
        with run_once(tmp_path, 'results.json', 'test') as needed:
            order.append(('first', needed))
            time.sleep(0.5)
            (tmp_path / 'results.json').write_text('{}')
        order.append(('first done', None))

    thread = threading.Thread(target=first)
    thread.start()
    time.sleep(0.1)  # the first holds the lock now
    with run_once(tmp_path, 'results.json', 'test') as needed:
        order.append(('second', needed))
    thread.join()
    assert order == [('first', True), ('first done', None), ('second', False)]
    assert (tmp_path / LOCK_FILENAME).exists()
