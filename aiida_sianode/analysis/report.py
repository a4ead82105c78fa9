"""One HTML page (plus its PNGs) that tells what a campaign did: ``aiida-sianode campaign report PK``.

:func:`write_report` reads an ``ActiveLearningWorkChain`` node and its descendants and writes into one folder:

* ``index.html``: the iteration table (with trust levels, calibration and test-set RMSE), the figures below, the cost
  per stage and the provenance summary; it references the PNGs beside it by relative name and needs nothing else;
* ``learning_curve.png``: fractions of accurate / candidate / failed frames, training-set size and test-set RMSEs;
* ``parity_iteration_XX.png``: the committee-mean prediction against the labels of the test set (campaigns with a
  ``test_set``), from the members' own test predictions;
* ``deviations_iteration_XX.png``: histogram of the max force deviation of every explored frame, with the trust
  levels the exploration used;
* ``calibration.png``: true max force error against committee deviation of the labelled frames, per iteration, with
  the fitted scale factor.

Cost per stage is the CPU-side wall time the calculations recorded themselves: the label engine's ``wall_time_s``,
the training engine's ``training_wall_time_s`` and, for explorations, the CalcJob's own run time (last change minus
creation of the node).
"""

from __future__ import annotations

import html
import json
import pathlib
import re
from collections import defaultdict

import numpy as np

REPORT_FILENAME = 'index.html'

TABLE_COLUMNS = [
    ('iteration', 'iter'),
    ('labels_added', '+labels'),
    ('labels_failed', 'failed labels'),
    ('training_set_frames', 'train set'),
    ('test_force_rmse_mev_a', 'test F RMSE (meV/Å)'),
    ('accurate_fraction', 'accurate'),
    ('candidate_fraction', 'candidate'),
    ('failed_fraction', 'failed frames'),
    ('trust_levels', 'trust levels (eV/Å)'),
    ('selected', 'selected'),
    ('calibration_scale', 'calibration scale'),
    ('calibration_predicted', 'predicted error (eV/Å)'),
    ('calibration_true', 'true error (eV/Å)'),
    ('converged_by', 'converged by'),
]


def _iteration_of(link_label: str) -> int | None:
    match = re.search(r'iteration_(\d+)', link_label)
    return int(match.group(1)) if match else None


def _called_by_label(node, prefix: str) -> dict[int, object]:
    """Return ``{iteration: process}`` of the processes ``node`` called with a link label starting with ``prefix``."""
    from aiida.common.links import LinkType

    found = {}
    for link in node.base.links.get_outgoing(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).all():
        if link.link_label.startswith(prefix):
            iteration = _iteration_of(link.link_label)
            if iteration is not None:
                found[iteration] = link.node
    return dict(sorted(found.items()))


def table_rows(rows: list[dict]) -> list[dict]:
    """Return the iteration rows with the nested entries lifted into the table's columns."""
    flat = []
    for row in rows:
        entry = dict(row)
        calibration = row.get('calibration') or {}
        entry['calibration_scale'] = calibration.get('scale')
        entry['calibration_predicted'] = calibration.get('mean_predicted_error')
        entry['calibration_true'] = calibration.get('mean_true_error')
        if entry.get('test_force_rmse_mev_a') is None:
            entry['test_force_rmse_mev_a'] = row.get('test_rmse_f_mev_a')
        flat.append(entry)
    return flat


def _format(value) -> str:
    if value is None:
        return '&ndash;'
    if isinstance(value, float):
        return f'{value:.4g}'
    if isinstance(value, list | tuple):
        return ' / '.join(_format(item) for item in value)
    return html.escape(str(value))


def html_table(rows: list[dict], columns=TABLE_COLUMNS) -> str:
    """Return an HTML table of ``rows`` with ``columns`` (``[(key, header)]``)."""
    head = ''.join(f'<th>{html.escape(header)}</th>' for _, header in columns)
    body = ''.join(
        '<tr>' + ''.join(f'<td>{_format(row.get(key))}</td>' for key, _ in columns) + '</tr>' for row in rows
    )
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _pyplot():
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def plot_deviation_histogram(deviations: np.ndarray, levels, path: pathlib.Path, title: str) -> pathlib.Path:
    """Write a histogram of max force deviations (eV/Å, log-spaced bins) with the trust levels as vertical lines."""
    plt = _pyplot()
    values = np.asarray(deviations, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    if values.size:
        bins = np.logspace(np.log10(values.min()) - 0.05, np.log10(values.max()) + 0.05, 30)
        axis.hist(values, bins=bins, color='tab:blue', alpha=0.7)
        axis.set_xscale('log')
    for level, name, colour in zip(levels or (), ('lower', 'upper'), ('tab:green', 'tab:red')):
        if level is not None:
            axis.axvline(level, color=colour, linestyle='--', label=f'{name} trust level {level:.3g} eV/Å')
    axis.set_xlabel('committee max force deviation (eV/Å)')
    axis.set_ylabel('explored frames')
    axis.set_title(title)
    if levels:
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_calibration(calibrations: dict[int, dict], path: pathlib.Path) -> pathlib.Path:
    """Write true max force error against committee deviation, one colour per iteration, with each scale fit."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    high = 0.0
    for iteration, data in calibrations.items():
        deviations, errors = data['deviations'], data['errors']
        if not deviations.size:
            continue
        points = axis.scatter(deviations, errors, s=18, label=f'iteration {iteration}')
        high = max(high, float(deviations.max()), float(errors.max()))
        if data['scale'] is not None:
            grid = np.linspace(0, deviations.max() * 1.1, 20)
            axis.plot(grid, data['scale'] * grid, color=points.get_facecolor()[0], label=f'scale {data["scale"]:.3g}')
    axis.plot([0, high], [0, high], color='0.6', linestyle=':', label='error = deviation')
    axis.set_xlabel('committee max force deviation (eV/Å)')
    axis.set_ylabel('true max force error (eV/Å)')
    axis.set_title('calibration of the committee on new labels')
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def committee_test_predictions(train_node) -> dict | None:
    """Return the committee-mean test predictions of a ``TrainCommitteeWorkChain`` from its members' outputs."""
    members = []
    for called in train_node.called_descendants:
        outputs = called.outputs if hasattr(called, 'outputs') else {}
        if 'test_predictions' in outputs and called.is_finished_ok:
            members.append(outputs.test_predictions)
    if not members:
        return None
    arrays = [{name: member.get_array(name) for name in member.get_arraynames()} for member in members]
    first = arrays[0]
    return {
        'natoms': first['natoms'],
        'energy_ref': first['energy_ref'],
        'forces_ref': first['forces_ref'],
        'energy_pred': np.mean([a['energy_pred'] for a in arrays], axis=0),
        'forces_pred': np.mean([a['forces_pred'] for a in arrays], axis=0),
    }


def cost_per_stage(node) -> dict[str, dict]:
    """Return ``{stage: {'count', 'total_s', 'per_item_s'}}`` for label, train and explore calculations."""
    from aiida import orm

    costs: dict[str, list[float]] = defaultdict(list)
    for called in node.called_descendants:
        if not isinstance(called, orm.CalcJobNode):
            continue
        process_type = called.process_type or ''
        outputs = called.outputs
        if 'label' in process_type:
            stage, seconds = 'label', None
            if 'output_parameters' in outputs:
                seconds = outputs.output_parameters.get_dict().get('wall_time_s')
        elif 'train' in process_type:
            stage, seconds = 'train', None
            if 'metrics' in outputs:
                seconds = outputs.metrics.get_dict().get('training_wall_time_s')
        elif 'explore' in process_type or 'lammps' in process_type:
            stage, seconds = 'explore', None
        else:
            continue
        if seconds is None:
            seconds = (called.mtime - called.ctime).total_seconds()
        costs[stage].append(float(seconds))
    return {
        stage: {'count': len(values), 'total_s': float(np.sum(values)), 'per_item_s': float(np.mean(values))}
        for stage, values in sorted(costs.items())
    }


def _find_code(namespace):
    """Return the first code in an input namespace (searched depth first), or ``None``."""
    from collections.abc import Mapping

    from aiida import orm

    for value in namespace.values():
        if isinstance(value, orm.AbstractCode):
            return value
        if isinstance(value, Mapping):
            found = _find_code(value)
            if found is not None:
                return found
    return None


def provenance_summary(node) -> dict:
    """Return codes, package versions, level of theory and potentials of a campaign."""
    from aiida_sianode import __version__

    summary: dict = {'aiida-sianode': __version__, 'codes': {}, 'potentials': {}}
    inputs = node.inputs
    for namespace in ('label', 'train', 'explore'):
        code = _find_code(inputs[namespace]) if namespace in inputs else None
        if code is not None:
            summary['codes'][namespace] = f'{code.full_label} (pk {code.pk})'
    outputs = node.outputs
    if 'training_set' in outputs:
        attributes = outputs.training_set.base.attributes
        summary['level_of_theory'] = attributes.get('level_of_theory', None)
        summary['training_set'] = f'pk {outputs.training_set.pk}, {attributes.get("n_frames", None)} frames'
    if 'committee' in outputs:
        for name, potential in outputs.committee.items():
            summary['potentials'][name] = {
                'pk': potential.pk,
                'sha256': potential.base.attributes.get('sha256', None),
                'architecture': potential.base.attributes.get('architecture', None),
            }
    from importlib import metadata

    for package in ('aiida-core', 'mace-torch', 'torch', 'ase', 'tblite', 'gpaw'):
        try:
            summary.setdefault('versions', {})[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return summary


def write_report(node, directory: str | pathlib.Path) -> pathlib.Path:
    """Write the campaign report of ``node`` into ``directory``; return the path of ``index.html``."""
    from aiida_sianode.analysis.campaign import campaign_summary, plot_learning_curve
    from aiida_sianode.analysis.parity import parity_plot
    from aiida_sianode.workflows.select import exploration_runs

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    summary = campaign_summary(node)
    rows = table_rows(summary['iterations'])
    sections = []
    figures = []

    if rows:
        curve_rows = [{**row, 'test_rmse_f_mev_a': row.get('test_force_rmse_mev_a')} for row in rows]
        plot_learning_curve(curve_rows, directory / 'learning_curve.png', title=f'campaign <{node.pk}>')
        figures.append(('Learning curve', 'learning_curve.png'))

    for iteration, train in _called_by_label(node, 'train_iteration').items():
        predictions = committee_test_predictions(train)
        if predictions is None:
            continue
        name = f'parity_iteration_{iteration:02d}.png'
        natoms = np.asarray(predictions['natoms'], dtype=float)
        parity_plot(
            {'e_per_atom': predictions['energy_ref'] / natoms, 'forces': np.ravel(predictions['forces_ref'])},
            {'e_per_atom': predictions['energy_pred'] / natoms, 'forces': np.ravel(predictions['forces_pred'])},
            directory / name,
            title=f'iteration {iteration}: committee mean on the test set',
            name='committee mean',
        )
        figures.append((f'Parity on the test set, iteration {iteration}', name))

    trust_by_iteration = {row['iteration']: row.get('trust_levels') for row in rows}
    for iteration, exploration in _called_by_label(node, 'explore_iteration').items():
        try:
            runs = exploration_runs(exploration)
        except ValueError:
            continue
        values = np.concatenate([run['deviations'].get_array('max_force_deviation') for run in runs.values()])
        levels = trust_by_iteration.get(iteration)
        if levels is None and 'lower_trust' in exploration.inputs:
            levels = [exploration.inputs.lower_trust.value, exploration.inputs.upper_trust.value]
        name = f'deviations_iteration_{iteration:02d}.png'
        plot_deviation_histogram(values, levels, directory / name, f'iteration {iteration}: {values.size} frames')
        figures.append((f'Committee deviations, iteration {iteration}', name))

    calibrations = {
        iteration: {
            'deviations': process.outputs.result.get_array('deviations'),
            'errors': process.outputs.result.get_array('errors'),
            'scale': process.outputs.result.base.attributes.get('scale', None),
        }
        for iteration, process in _called_by_label(node, 'calibrate_iteration').items()
        if 'result' in process.outputs
    }
    if calibrations:
        plot_calibration(calibrations, directory / 'calibration.png')
        figures.append(('Calibration: true error against committee deviation', 'calibration.png'))

    warnings = [f'iteration {row["iteration"]}: {row["trust_warning"]}' for row in rows if row.get('trust_warning')]
    costs = cost_per_stage(node)
    provenance = provenance_summary(node)

    sections.append(
        f'<p>State {html.escape(str(summary["state"]))}, exit status {summary["exit_status"]}, stop reason '
        f'<b>{html.escape(str(summary["stop_reason"]))}</b>; labels computed {summary["labels_computed"]}, failed '
        f'{summary["labels_failed"]}; final training set {summary.get("training_set_frames")} frames.</p>'
    )
    sections.append('<h2>Iterations</h2>' + html_table(rows))
    if warnings:
        sections.append('<h2>Trust-level warnings</h2><ul>' + ''.join(f'<li>{html.escape(w)}</li>' for w in warnings))
        sections[-1] += '</ul>'
    for caption, name in figures:
        sections.append(f'<figure><img src="{name}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}')
        sections[-1] += '</figcaption></figure>'
    cost_rows = [{'stage': stage, **values} for stage, values in costs.items()]
    sections.append(
        '<h2>Cost per stage</h2><p>Wall time the calculations recorded (label and training engines), else the '
        "CalcJob node's run time.</p>"
        + html_table(
            cost_rows,
            [('stage', 'stage'), ('count', 'calculations'), ('total_s', 'total (s)'), ('per_item_s', 'each (s)')],
        )
    )
    sections.append('<h2>Provenance</h2><pre>' + html.escape(json.dumps(provenance, indent=1, default=str)) + '</pre>')
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<title>campaign {node.pk}</title><style>'
        'body{font-family:sans-serif;margin:2em;max-width:75em}table{border-collapse:collapse;font-size:90%}'
        'td,th{border:1px solid #bbb;padding:3px 6px;text-align:right}figure{display:inline-block;margin:1em}'
        'img{max-width:36em}pre{background:#f4f4f4;padding:1em;font-size:85%}'
        f'</style></head><body><h1>Campaign &lt;{node.pk}&gt; {html.escape(node.label or "")}</h1>'
        + '\n'.join(sections)
        + '</body></html>'
    )
    path = directory / REPORT_FILENAME
    path.write_text(page)
    return path


def image_references(page: str) -> list[str]:
    """Return the ``src`` of every ``<img>`` of an HTML ``page``."""
    return re.findall(r'<img src="([^"]+)"', page)


#: Injected into a copy of a page: after loading, the body says whether every image decoded.
IMAGE_CHECK = (
    '<script>window.addEventListener("load", () => {document.body.setAttribute("data-images", '
    '[...document.images].map(i => i.complete && i.naturalWidth > 0 ? "ok" : "broken:" + i.src).join(","));});'
    '</script></body>'
)


def images_in_browser(page: pathlib.Path, browser: str) -> list[str]:
    """Open ``page`` in headless chromium (``browser``: its executable); return ``ok`` or ``broken:<src>`` per image.

    A copy of the page with a small script beside it records, once loaded, whether each image decoded.
    """
    import subprocess

    probe = page.with_name('_image_check.html')
    probe.write_text(page.read_text().replace('</body>', IMAGE_CHECK))
    try:
        result = subprocess.run(
            [
                browser,
                '--headless',
                '--no-sandbox',
                '--disable-gpu',
                '--virtual-time-budget=10000',
                '--dump-dom',
                probe.as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
    finally:
        probe.unlink(missing_ok=True)
    if result.returncode != 0:
        raise RuntimeError(f'{browser} failed: {result.stderr.decode()[-2000:]}')
    match = re.search(r'data-images="([^"]*)"', result.stdout.decode())
    if match is None:
        raise RuntimeError(f'{page} did not finish loading in {browser}')
    return match.group(1).split(',') if match.group(1) else []
