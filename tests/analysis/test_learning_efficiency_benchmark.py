"""benchmarks/learning_efficiency.py: the candidate pool and settings that keep its strategies comparable."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / 'benchmarks' / 'learning_efficiency.py'


@pytest.fixture(scope='module')
def benchmark():
    spec = importlib.util.spec_from_file_location('learning_efficiency', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_candidates_depend_only_on_the_strategys_own_history(benchmark):
    pool = [f'run{r}:{s}' for r in range(3) for s in (40, 60, 80)]
    # a frame another strategy or seed saw fail in the shared cache stays a candidate, so that DIRECT's pool (and
    # with it its standardisation and clusters) does not depend on which strategy happened to label it first
    candidates = benchmark.candidate_keys(pool, ['run0:40', 'run2:80'], set())
    assert candidates == ['run0:60', 'run0:80', 'run1:40', 'run1:60', 'run1:80', 'run2:40', 'run2:60']
    # one this strategy picked and saw fail itself is dropped
    assert 'run1:60' not in benchmark.candidate_keys(pool, ['run0:40'], {'run1:60'})
    assert len(benchmark.candidate_keys(pool, ['run0:40'], {'run1:60'})) == 7


def test_quick_settings_cap_every_strategy_and_train_per_label(benchmark, tmp_path):
    model = tmp_path / 'member_0.model'
    model.write_text('')
    args = benchmark.parse_arguments(['--quick', '--model', str(model)])
    cfg = benchmark.settings_for(args)
    assert (cfg['budget'], cfg['iterations'], cfg['seeds']) == (5, 3, [0, 1, 2])
    assert cfg['max_per_run'] == 2
    assert (cfg['epochs'], cfg['batch_size']) == (benchmark.DEFAULT_EPOCHS, benchmark.DEFAULT_BATCH_SIZE)
    parameters = benchmark.train_parameters(cfg['epochs'], cfg['batch_size'])
    assert parameters['max_num_epochs'] == cfg['epochs'] and parameters['patience'] == cfg['epochs']
    assert parameters['batch_size'] == cfg['batch_size']
    for strategy in ('trust', 'maxvol', 'direct', 'random'):
        settings = benchmark.selection_settings(strategy, 5, 1001, 0.05, 40)
        assert settings['max_per_run'] == 2 and settings['max_total'] == 5
    assert benchmark.selection_settings('direct', 5, 0, 0.05, 40)['n_clusters'] == 5


def test_bad_arguments_are_refused(benchmark, tmp_path, capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_arguments(['--quick', '--batch-size', '0', '--report-only'])
    assert '--batch-size must be >= 1, got 0' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark.parse_arguments(['--quick', '--model', str(tmp_path / 'missing.model')])
    assert 'does not exist' in capsys.readouterr().err
