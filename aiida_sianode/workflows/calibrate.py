"""Calibration of the committee's trust levels inside a campaign, with provenance.

After frames selected from an exploration are labelled, :func:`calibrate_committee` (a calcfunction) pairs each label
with the committee's prediction on the same frame (the committee-mean forces the exploration stored in its
trajectory, and the max force deviation recorded on the selected structure), computes the true max force error and
fits :func:`aiida_sianode.selection.calibration.fit_calibration`. Its output, an ``ArrayData`` beside the labels,
holds the pairs (``deviations``, ``errors``, eV/Å) and the fit (``isotonic_x``, ``isotonic_y`` arrays; ``scale`` and
``n_pairs`` attributes).

The campaign's selection settings gain (:data:`TRUST_KEYS`; their defaults are the campaign protocol's,
``protocols/active_learning.yaml``, read by :func:`trust_defaults`):

* ``trust``: ``fixed`` (the ``lower`` / ``upper`` levels as given) or ``auto`` (after the first calibration, the
  levels where the predicted true max force error reaches ``target_force_error`` and ``max_force_error``);
* ``target_force_error``, ``max_force_error`` (eV/Å) and ``calibration_method`` (``scale`` or ``isotonic``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_sianode.selection import calibration as kernel

#: The trust-level settings of a campaign's ``selection`` (forces in eV/Å).
TRUST_KEYS = ('trust', 'target_force_error', 'max_force_error', 'calibration_method')
TRUST_MODES = ('fixed', 'auto')


def trust_defaults(protocol: str | None = None) -> dict:
    """Return the defaults of :data:`TRUST_KEYS`: the campaign protocol's ``selection`` (one source for all)."""
    from aiida_sianode.campaign_spec import campaign_defaults

    selection = campaign_defaults(protocol)['selection']
    return {key: selection[key] for key in TRUST_KEYS}


def split_trust_settings(selection: Mapping) -> tuple[dict, dict]:
    """Return ``(trust settings, the other selection settings)`` of a campaign's ``selection``, checked; a trust
    key ``selection`` lacks takes its default from the campaign protocol (:func:`trust_defaults`).

    :raises ValueError: an unknown mode or method, or errors not ordered ``0 < target < max``.
    """
    selection = dict(selection)
    trust = {key: selection.pop(key, default) for key, default in trust_defaults().items()}
    if trust['trust'] not in TRUST_MODES:
        raise ValueError(f'unknown trust mode {trust["trust"]!r}; choose one of: {", ".join(TRUST_MODES)}')
    if trust['calibration_method'] not in kernel.METHODS:
        raise ValueError(
            f'unknown calibration_method {trust["calibration_method"]!r}; choose one of: {", ".join(kernel.METHODS)}'
        )
    target, maximum = trust['target_force_error'], trust['max_force_error']
    for name, value in (('target_force_error', target), ('max_force_error', maximum)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f'`{name}` must be a number in eV/Å, got {value!r}')
    if not 0 < target < maximum:
        raise ValueError(f'need 0 < target_force_error < max_force_error, got {target} and {maximum} eV/Å')
    return trust, selection


def calibration_pairs(labels: Mapping, structures: Mapping, trajectories: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(deviations, errors)`` for the labels whose structure was selected from a stored trajectory.

    ``labels`` and ``structures`` share keys; ``trajectories`` maps a trajectory UUID (with ``-`` as ``_``) to the
    exploration's ``TrajectoryData`` holding the committee-mean ``forces`` per frame. Labels of structures without a
    source frame (the initial ones) are skipped.
    """
    deviations, errors = [], []
    for key, label in labels.items():
        structure = structures.get(key)
        if structure is None:
            continue
        attributes = structure.base.attributes
        source = attributes.get('source_trajectory_uuid', None)
        deviation = attributes.get('max_force_deviation', None)
        if source is None or deviation is None:
            continue
        trajectory = trajectories.get(source.replace('-', '_'))
        if trajectory is None:
            raise ValueError(f'the trajectory {source} that structure {key} was selected from is not among the inputs')
        predicted = trajectory.get_array('forces')[attributes.get('source_frame_index')]
        deviations.append(float(deviation))
        errors.append(kernel.true_max_force_error(predicted, label.forces))
    return np.asarray(deviations, dtype=float), np.asarray(errors, dtype=float)


@calcfunction
def calibrate_committee(**nodes) -> orm.ArrayData:
    """Pair new labels with the committee's predictions on the same frames and fit deviation against true error.

    ``nodes``: ``label_<key>`` (``LabelData``) with ``structure_<key>`` (the selected ``StructureData``), and
    ``trajectory_<uuid>`` (the explorations' ``TrajectoryData``). Returns an ``ArrayData`` with the pairs and, when
    there are at least :data:`~aiida_sianode.selection.calibration.MIN_PAIRS` of them, the fit (``scale`` is
    ``None`` otherwise, with a ``note`` saying why).
    """
    groups = {'label': {}, 'structure': {}, 'trajectory': {}}
    for name, node in nodes.items():
        kind, _, key = name.partition('_')
        if kind not in groups:
            raise ValueError(f'unexpected input `{name}`: names start with label_, structure_ or trajectory_')
        groups[kind][key] = node
    deviations, errors = calibration_pairs(groups['label'], groups['structure'], groups['trajectory'])
    node = orm.ArrayData()
    node.set_array('deviations', deviations)
    node.set_array('errors', errors)
    try:
        fit = kernel.fit_calibration(deviations, errors)
    except ValueError as error:
        node.base.attributes.set_many({'scale': None, 'n_pairs': int(deviations.size), 'note': str(error)})
        node.set_array('isotonic_x', np.zeros(0))
        node.set_array('isotonic_y', np.zeros(0))
        return node
    node.set_array('isotonic_x', fit.isotonic_x)
    node.set_array('isotonic_y', fit.isotonic_y)
    node.base.attributes.set_many({'scale': fit.scale, 'n_pairs': fit.n_pairs})
    return node


def load_calibration(node: orm.ArrayData) -> kernel.Calibration | None:
    """Return the :class:`~aiida_sianode.selection.calibration.Calibration` stored in ``node`` (``None``: no fit)."""
    scale = node.base.attributes.get('scale', None)
    if scale is None:
        return None
    return kernel.Calibration(
        deviations=node.get_array('deviations'),
        errors=node.get_array('errors'),
        scale=float(scale),
        isotonic_x=node.get_array('isotonic_x'),
        isotonic_y=node.get_array('isotonic_y'),
    )


def calibrate_label_processes(processes, call_link_label: str) -> orm.ArrayData | None:
    """Run :func:`calibrate_committee` on the finished label processes whose structure came from an exploration.

    Returns the calibration node, or ``None`` when no label has a source frame.
    """
    nodes = {}
    for index, process in enumerate(processes):
        if not process.is_finished_ok or 'label' not in process.outputs:
            continue
        structure = process.inputs.structure
        source = structure.base.attributes.get('source_trajectory_uuid', None)
        if source is None:
            continue
        nodes[f'label_frame{index:04d}'] = process.outputs.label
        nodes[f'structure_frame{index:04d}'] = structure
        nodes[f'trajectory_{source.replace("-", "_")}'] = orm.load_node(source)
    if not nodes:
        return None
    return calibrate_committee(**nodes, metadata={'call_link_label': call_link_label})


def trust_levels(trust: Mapping, calibration: orm.ArrayData | None, fixed: tuple[float, float]) -> tuple[float, float]:
    """Return the ``(lower, upper)`` trust levels for the next exploration.

    ``fixed`` levels are used with ``trust: fixed`` and, with ``trust: auto``, until a calibration with a fit exists.
    """
    if trust['trust'] != 'auto' or calibration is None:
        return fixed
    fit = load_calibration(calibration)
    if fit is None:
        return fixed
    return kernel.auto_trust_levels(
        fit, trust['target_force_error'], trust['max_force_error'], method=trust['calibration_method']
    )


def calibration_summary(node: orm.ArrayData) -> dict:
    """Return the iteration-table entry of a calibration: pairs, scale, mean predicted and mean true error (eV/Å)."""
    deviations, errors = node.get_array('deviations'), node.get_array('errors')
    scale = node.base.attributes.get('scale', None)
    summary = {'pk': node.pk, 'n_pairs': int(deviations.size), 'scale': scale}
    if deviations.size:
        summary['mean_true_error'] = float(errors.mean())
        summary['max_true_error'] = float(errors.max())
    if scale is not None and deviations.size:
        summary['mean_predicted_error'] = float(scale * deviations.mean())
    return summary


def unreachable_level_note(exploration, lower: float) -> str | None:
    """Return :func:`~aiida_sianode.selection.calibration.unreachable_lower_level`'s note for an exploration node."""
    from aiida_sianode.workflows.select import exploration_runs

    values = [
        run['deviations'].get_array('max_force_deviation')
        for run in exploration_runs(exploration).values()
        if 'deviations' in run
    ]
    if not values:
        return None
    return kernel.unreachable_lower_level(np.concatenate(values), lower)
