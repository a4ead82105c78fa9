"""Campaign reports: the per-iteration table of an ``ActiveLearningWorkChain`` and its learning curve."""

from __future__ import annotations

import pathlib


def campaign_summary(node) -> dict:
    """Return a plain-dict summary of the campaign ``node`` (finished or not) from its outputs and children.

    The iteration rows come from the ``iterations`` output; a campaign still running or one that failed before
    writing it gives an empty table.
    """
    outputs = node.outputs
    rows = outputs.iterations.get_list() if 'iterations' in outputs else []
    failed = outputs.failed_labels.get_list() if 'failed_labels' in outputs else []
    summary = {
        'pk': node.pk,
        'uuid': node.uuid,
        'label': node.label,
        'state': node.process_state.value if node.process_state else None,
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
        'stop_reason': outputs.stop_reason.value if 'stop_reason' in outputs else None,
        'iterations': [_flatten(row) for row in rows],
        'labels_failed': len(failed),
        'failed_labels': failed,
    }
    summary['labels_computed'] = sum(row.get('labels_added', 0) + row.get('labels_failed', 0) for row in rows)
    if 'training_set' in outputs:
        summary['training_set'] = outputs.training_set.pk
        summary['training_set_frames'] = outputs.training_set.base.attributes.get('n_frames', None)
    if 'committee' in outputs:
        summary['committee'] = {name: potential.pk for name, potential in outputs.committee.items()}
    if rows:
        last = rows[-1]
        summary['final_accurate_fraction'] = last.get('accurate_fraction')
    return summary


def _flatten(row: dict) -> dict:
    """Lift the committee's held-out RMSEs into the row, for the table."""
    flat = dict(row)
    metrics = row.get('committee_metrics') or {}
    for source, target in (('test_rmse_e_per_atom_mev', 'test_rmse_e_mev'), ('test_rmse_f_mev_a', 'test_rmse_f_mev_a')):
        if source in metrics:
            flat[target] = metrics[source]
    # The committee-mean prediction's RMSEs on the test set, as the campaign records them (its convergence criterion).
    for source, target in (
        ('test_energy_rmse_mev_atom', 'test_rmse_e_mev'),
        ('test_force_rmse_mev_a', 'test_rmse_f_mev_a'),
    ):
        if row.get(source) is not None:
            flat[target] = row[source]
    return flat


def plot_learning_curve(rows: list[dict], path: str | pathlib.Path, title: str = 'campaign') -> pathlib.Path:
    """Write a PNG: accurate / candidate / failed fractions and training-set size per iteration, and held-out RMSEs
    where the campaign had a test set."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    iterations = [row['iteration'] for row in rows]
    has_rmse = any(row.get('test_rmse_f_mev_a') is not None for row in rows)
    figure, axes = plt.subplots(1, 2 if has_rmse else 1, figsize=(11 if has_rmse else 6, 4), squeeze=False)
    left = axes[0][0]
    for key, colour, name in (
        ('accurate_fraction', 'tab:green', 'accurate'),
        ('candidate_fraction', 'tab:orange', 'candidate'),
        ('failed_fraction', 'tab:red', 'failed'),
    ):
        values = [row.get(key) for row in rows]
        left.plot(iterations, values, 'o-', color=colour, label=name)
    left.set_xlabel('iteration')
    left.set_ylabel('fraction of explored frames')
    left.set_ylim(-0.02, 1.02)
    left.set_xticks(iterations)
    size_axis = left.twinx()
    size_axis.bar(iterations, [row.get('training_set_frames') or 0 for row in rows], alpha=0.15, color='tab:blue')
    size_axis.set_ylabel('training-set frames (bars)')
    left.legend(loc='center left')
    left.set_title(title)
    if has_rmse:
        right = axes[0][1]
        right.plot(iterations, [row.get('test_rmse_e_mev') for row in rows], 'o-', label='energy (meV/atom)')
        right.plot(iterations, [row.get('test_rmse_f_mev_a') for row in rows], 's-', label='forces (meV/Å)')
        right.set_xlabel('iteration')
        right.set_ylabel('committee RMSE on the test set')
        right.set_xticks(iterations)
        right.legend()
    figure.tight_layout()
    path = pathlib.Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def wall_time(processes) -> float:
    """Return seconds from the first process's creation to the last one's last change (0 for none)."""
    processes = list(processes)
    if not processes:
        return 0.0
    start = min(process.ctime for process in processes)
    end = max(process.mtime for process in processes)
    return round((end - start).total_seconds(), 2)


def summarise_metrics(metrics: dict) -> dict:
    """Keep the committee-level numbers of the training metrics for the iteration table."""
    committee = metrics.get('committee', metrics)
    return {key: value for key, value in committee.items() if not isinstance(value, dict | list)}
