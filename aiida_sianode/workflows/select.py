"""Frame selection as a calcfunction: which MD frames of an exploration get labelled.

:func:`select_frames` takes the ``trajectory`` and ``deviations`` of one or more exploration runs, classifies every
frame by the committee's trust levels, drops the failed ones, and picks frames with one strategy:

* ``trust``: candidates (``lower <= deviation < upper``), most uncertain first (DP-GEN);
* ``maxvol``: D-optimality, the frames whose atomic environments extend the training set's active set most (MTP);
* ``direct``: DIRECT, stratified picks from BIRCH clusters of the encoded frame descriptors;
* ``random``: a seeded random baseline.

Then near-duplicates are removed (optional) and the caps ``max_per_run`` / ``max_total`` applied, walking the
strategy's order. Only the picked frames become ``StructureData`` nodes; each records its source.

Python users call :func:`run_select`; the active-learning work chain calls :func:`select_from_exploration`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from aiida import orm
from aiida.engine import ExitCode, calcfunction
from pydantic import ValidationError

from aiida_sianode.campaign_spec import SelectionSettings, format_errors
from aiida_sianode.selection.report import finite_or_none, frame_key

DEVIATIONS = ('max_force_deviation', 'energy_std_per_atom')

#: Every parameter of :func:`select_frames` and its default (validated by
#: :class:`aiida_sianode.campaign_spec.SelectionSettings`; the trust levels come from the campaign protocol).
#: Units: deviations and trust levels eV/Å for ``max_force_deviation`` (eV/atom for ``energy_std_per_atom``),
#: ``r_max`` Å.
DEFAULT_PARAMETERS = SelectionSettings().model_dump()

EXIT_CODES = {
    'ERROR_INVALID_PARAMETERS': 201,
    'ERROR_INVALID_EXPLORATIONS': 202,
    'ERROR_UNUSABLE_POTENTIAL': 203,
    'ERROR_INVALID_TRAINING_SET': 204,
}

RESERVED_LABELS = ('parameters', 'potential', 'training_set', 'metadata')


def validate_parameters(parameters: Mapping | None) -> dict:
    """Return ``parameters`` merged over :data:`DEFAULT_PARAMETERS`, or raise ``ValueError`` naming the problem."""
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(DEFAULT_PARAMETERS))
    if unknown:
        raise ValueError(f'unknown selection parameters: {", ".join(unknown)}; known: {", ".join(DEFAULT_PARAMETERS)}')
    try:
        return SelectionSettings.model_validate(parameters).model_dump()
    except ValidationError as error:
        raise ValueError('; '.join(line.strip() for line in format_errors(error).splitlines())) from None


def needs_descriptors(settings: Mapping) -> bool:
    """Whether a selection with these (validated) settings describes frames: maxvol, DIRECT, de-duplication."""
    return settings['strategy'] in ('maxvol', 'direct') or settings['dedup_threshold'] is not None


def _validate_explorations(explorations: Mapping) -> list[str]:
    """Check the ``{run: {'trajectory', 'deviations'}}`` namespace; return the run labels, sorted."""
    if not explorations:
        raise ValueError('no exploration runs were given')
    for label, run in explorations.items():
        if not isinstance(run, Mapping) or set(run) != {'trajectory', 'deviations'}:
            keys = sorted(run) if isinstance(run, Mapping) else type(run).__name__
            raise ValueError(f'run `{label}` must hold exactly `trajectory` and `deviations`, got {keys}')
        trajectory, deviations = run['trajectory'], run['deviations']
        if not isinstance(trajectory, orm.TrajectoryData):
            raise ValueError(f'run `{label}`: `trajectory` must be a TrajectoryData, got {type(trajectory).__name__}')
        if not isinstance(deviations, orm.ArrayData):
            raise ValueError(f'run `{label}`: `deviations` must be an ArrayData, got {type(deviations).__name__}')
        names = deviations.get_arraynames()
        for name in DEVIATIONS:
            if name not in names:
                raise ValueError(f'run `{label}`: the deviations have no `{name}` array (arrays: {sorted(names)})')
            shape = deviations.get_shape(name)
            if shape != (trajectory.numsteps,):
                raise ValueError(
                    f'run `{label}`: `{name}` has shape {shape} but the trajectory has {trajectory.numsteps} frames'
                )
    return sorted(explorations)


class _Run:
    """One exploration run's frames, read once from its TrajectoryData."""

    def __init__(self, label: str, trajectory: orm.TrajectoryData, deviations: orm.ArrayData):
        self.label = label
        self.trajectory = trajectory
        self.positions = trajectory.get_positions()
        self.cells = trajectory.get_cells()
        self.symbols = list(trajectory.symbols)
        pbc = trajectory.base.attributes.get('pbc', None)
        self.pbc = [bool(flag) for flag in pbc] if pbc is not None else [self.cells is not None] * 3
        self.stepids = trajectory.get_stepids()
        self.deviations = {name: np.array(deviations.get_array(name), dtype=float) for name in DEVIATIONS}
        self.n_frames = trajectory.numsteps
        # A frame that physically broke its run counts as failed, whatever the committee said about it.
        if 'physically_broken' in deviations.get_arraynames():
            broken = np.asarray(deviations.get_array('physically_broken'), dtype=bool)
            for values in self.deviations.values():
                values[broken] = np.inf

    def atoms(self, index: int):
        """Return frame ``index`` as ``ase.Atoms``."""
        from ase import Atoms

        cell = self.cells[index] if self.cells is not None else None
        return Atoms(symbols=self.symbols, positions=self.positions[index], cell=cell, pbc=self.pbc)

    def structure(self, frame: int, strategy: str, rank: int, picks, position: int) -> orm.StructureData:
        """Return frame ``frame`` as a ``StructureData`` that records where it came from and why it was picked."""
        structure = orm.StructureData(ase=self.atoms(frame))
        attributes = {
            'source_trajectory_uuid': self.trajectory.uuid,
            'source_run': self.label,
            'source_frame_index': frame,
            'source_step': int(self.stepids[frame]) if self.stepids is not None else frame,
            'selection_strategy': strategy,
            'selection_rank': rank,
            'max_force_deviation': finite_or_none(self.deviations['max_force_deviation'][frame]),
            'energy_std_per_atom': finite_or_none(self.deviations['energy_std_per_atom'][frame]),
        }
        if picks.grades is not None:
            attributes['extrapolation_grade'] = finite_or_none(picks.grades[position])
        if picks.clusters is not None:
            attributes['cluster'] = int(picks.clusters[position])
        structure.base.attributes.set_many(attributes)
        return structure


class _Describer:
    """Per-atom descriptors of frames (MACE features or the radial fallback), computed once per frame."""

    def __init__(self, kind: str, parameters: dict, potential, elements: list[str]):
        self.kind = kind
        self.parameters = parameters
        self.elements = elements
        self.potential = potential
        self.calculator = None  # loaded on first use: trust and random need no model unless they de-duplicate
        self.cache: dict = {}

    def per_atom(self, atoms_list) -> list[np.ndarray]:
        from aiida_sianode.selection.descriptors import mace_descriptors, radial_descriptors

        if self.kind == 'mace':
            if self.calculator is None:
                self.calculator = self.potential.get_calculator(device=self.parameters['device'])
            return mace_descriptors(atoms_list, self.calculator)
        return radial_descriptors(
            atoms_list, r_max=self.parameters['r_max'], n_bins=self.parameters['n_bins'], elements=self.elements
        )

    def frames(self, keys: Sequence, atoms_of) -> list[np.ndarray]:
        """Return the per-atom descriptors of the frames ``keys`` (``atoms_of(key)`` builds a frame)."""
        missing = [key for key in keys if key not in self.cache]
        for key, values in zip(missing, self.per_atom([atoms_of(key) for key in missing]), strict=True):
            self.cache[key] = values
        return [self.cache[key] for key in keys]

    def frame_vector(self, key, atoms) -> np.ndarray:
        """Return one frame's pooled descriptor (mean over atoms, per element with ``per_element``)."""
        from aiida_sianode.selection.descriptors import mean_descriptors

        (per_atom,) = self.frames([key], lambda _: atoms)
        numbers = [atoms.numbers] if self.parameters['per_element'] else None
        elements = self.element_numbers() if self.parameters['per_element'] else None
        return mean_descriptors([per_atom], numbers=numbers, elements=elements)[0]

    def element_numbers(self) -> list[int]:
        """The atomic numbers of all elements of the runs and the training set, sorted."""
        from ase.data import atomic_numbers

        return sorted(atomic_numbers[symbol] for symbol in self.elements)


def _elements_unknown_to(potential, explorations: Mapping) -> list[str]:
    """Return the elements of the explorations' trajectories that the potential was not made for (sorted)."""
    known = potential.base.attributes.get('elements', None)
    if not known:
        return []
    present = {symbol for run in explorations.values() for symbol in run['trajectory'].symbols}
    return sorted(present - set(known))


@calcfunction
def select_frames(
    parameters: orm.Dict,
    potential: orm.SinglefileData | None = None,
    training_set: orm.SinglefileData | None = None,
    **explorations,
):
    """Select the frames to label from exploration runs; return ``structures`` and a ``report``.

    :param parameters: the selection settings (see :data:`DEFAULT_PARAMETERS`; unknown keys are refused).
    :param potential: a ``PotentialData`` whose MACE features describe the frames (``maxvol``, ``direct`` and
        de-duplication); without one, a model-free radial descriptor is used.
    :param training_set: the ``DatasetData`` the potential was trained on; ``maxvol`` builds its active set from
        its ``train`` frames (without it, the active set is built from the candidates alone).
    :param explorations: one namespace per run, ``{run_label: {'trajectory': TrajectoryData, 'deviations':
        ArrayData}}``, as the exploration calculation outputs them.
    :returns: ``structures`` (``{'<run>_<frame>': StructureData}``) and ``report`` (``Dict``).
    """
    try:
        settings = validate_parameters(parameters.get_dict())
    except ValueError as exception:
        return ExitCode(EXIT_CODES['ERROR_INVALID_PARAMETERS'], f'invalid selection parameters: {exception}')
    try:
        labels = _validate_explorations(explorations)
    except ValueError as exception:
        return ExitCode(EXIT_CODES['ERROR_INVALID_EXPLORATIONS'], f'invalid explorations: {exception}')
    descriptor = settings['descriptor']
    if descriptor == 'auto':
        descriptor = 'mace' if potential is not None else 'radial'
    if descriptor == 'mace' and (potential is None or not hasattr(potential, 'get_calculator')):
        return ExitCode(
            EXIT_CODES['ERROR_UNUSABLE_POTENTIAL'], 'the mace descriptor needs a `potential` input (a PotentialData)'
        )
    if descriptor == 'mace' and needs_descriptors(settings):
        unknown = _elements_unknown_to(potential, explorations)
        if unknown:
            return ExitCode(
                EXIT_CODES['ERROR_UNUSABLE_POTENTIAL'],
                f'the potential has no parameters for the elements {unknown} of the explorations',
            )
    if training_set is not None and not hasattr(training_set, 'get_frames'):
        return ExitCode(
            EXIT_CODES['ERROR_INVALID_TRAINING_SET'],
            f'`training_set` must be a DatasetData, got {type(training_set).__name__}',
        )
    runs = [_Run(label, explorations[label]['trajectory'], explorations[label]['deviations']) for label in labels]
    try:
        structures, report = _select(runs, settings, descriptor, potential, training_set)
    except ValueError as exception:
        return ExitCode(EXIT_CODES['ERROR_INVALID_PARAMETERS'], f'selection refused: {exception}')
    return {'structures': structures, 'report': orm.Dict(report)}


def _select(runs: list[_Run], settings: dict, descriptor: str, potential, training_set):
    """The work of :func:`select_frames` on plain objects; returns ``(structures, report)``.

    Classify every frame, pool the pickable ones, let the strategy order them
    (:data:`aiida_sianode.selection.strategies.STRATEGIES`), walk that order under the caps (and without near
    copies), then store the kept frames and write the report (:func:`aiida_sianode.selection.report.selection_report`).
    """
    from aiida_sianode.selection.report import RunRecord, selection_report
    from aiida_sianode.selection.strategies import Pool, pick
    from aiida_sianode.selection.trust import ACCURATE, CANDIDATE, classify_frames

    strategy, deviation = settings['strategy'], settings['deviation']
    classes = [classify_frames(run.deviations[deviation], settings['lower'], settings['upper']) for run in runs]
    allowed = (CANDIDATE,) if strategy == 'trust' or not settings['include_accurate'] else (ACCURATE, CANDIDATE)
    pool_frames = [np.flatnonzero(np.isin(run_classes, allowed)) for run_classes in classes]
    pool_run = np.concatenate([np.full(len(frames), index) for index, frames in enumerate(pool_frames)]).astype(int)
    pool_frame = np.concatenate(pool_frames).astype(int)

    elements = sorted({symbol for run in runs for symbol in run.symbols})
    training_frames = []
    if training_set is not None and strategy == 'maxvol':
        training_frames = training_set.get_frames(split='train')
        elements = sorted(set(elements) | {s for atoms in training_frames for s in atoms.get_chemical_symbols()})
    describer = _Describer(descriptor, settings, potential, elements)

    def atoms_of(position):
        return runs[pool_run[position]].atoms(int(pool_frame[position]))

    positions = list(range(len(pool_frame)))
    pool = Pool(
        deviation=np.array([runs[r].deviations[deviation][f] for r, f in zip(pool_run, pool_frame)], dtype=float),
        groups=pool_run,
        per_atom=lambda: describer.frames(positions, atoms_of),
        numbers=lambda: [atoms_of(position).numbers for position in positions],
        element_numbers=describer.element_numbers(),
        training_per_atom=lambda: describer.per_atom(training_frames) if training_frames else [],
    )
    picks = pick(strategy, pool, settings)
    kept, duplicates = _walk(picks, pool_run, settings, describer, atoms_of)

    structures = {}
    for rank, position in enumerate(kept):
        run, frame = runs[pool_run[position]], int(pool_frame[position])
        structures[frame_key(run.label, frame)] = run.structure(frame, strategy, rank, picks, position)
    records = [
        RunRecord(run.label, run.trajectory.uuid, run.n_frames, run.deviations, run_classes)
        for run, run_classes in zip(runs, classes, strict=True)
    ]
    header = {
        'descriptor': descriptor,
        'potential_uuid': potential.uuid if potential is not None else None,
        'training_set_uuid': training_set.uuid if training_set is not None else None,
    }
    report = selection_report(records, pool_run, pool_frame, picks, kept, duplicates, settings, header)
    return structures, report


def _walk(picks, pool_run: np.ndarray, settings: dict, describer: _Describer, atoms_of) -> tuple[list, dict]:
    """Walk the strategy's order under the caps; with ``dedup_threshold``, skip frames too close to a kept one.

    Returns ``(kept positions, {duplicate position: kept position})``.
    """
    from aiida_sianode.selection.dedup import select_distinct
    from aiida_sianode.selection.trust import cap_selection

    if settings['dedup_threshold'] is None:
        kept = cap_selection(picks.order, pool_run, settings['max_per_run'], settings['max_total'])
        return [int(position) for position in kept], {}
    if picks.features is not None:
        describe = picks.features.__getitem__
    else:  # per-atom descriptors are cached: maxvol's are reused, trust/random describe frames as reached

        def describe(position):
            return describer.frame_vector(position, atoms_of(position))

    walk = select_distinct(
        describe,
        settings['dedup_threshold'],
        order=picks.order,
        groups=pool_run,
        max_per_group=settings['max_per_run'],
        max_total=settings['max_total'],
    )
    return list(walk.kept), dict(walk.duplicates)


class SelectionResult(NamedTuple):
    """What :func:`run_select` returns."""

    structures: dict
    """``{'<run>_<frame>': StructureData}``, stored, in selection order."""
    report: dict
    """The ``report`` output as a plain dict."""
    node: orm.CalcFunctionNode
    """The ``select_frames`` calculation (its inputs and outputs are the provenance)."""


def _sanitise_label(label) -> str:
    text = re.sub(r'[^A-Za-z0-9_]', '_', str(label)).strip('_')
    text = re.sub(r'_+', '_', text)
    if not text or not text[0].isalpha():
        text = f'run_{text}'
    return text


def exploration_runs(node) -> dict[str, dict[str, orm.Data]]:
    """Return ``{run_label: {'trajectory', 'deviations'}}`` of an exploration process node.

    Understands the layouts of the exploration processes:

    * a calculation with outputs ``trajectory`` and ``deviations``: one run, labelled ``run_<pk>``;
    * a work chain with output namespaces ``trajectories.<run>`` and ``deviations.<run>`` (``ExploreWorkChain``);
    * any process whose (nested) output namespaces ``<run>`` hold ``trajectory`` and ``deviations``.
    """
    from aiida.common.links import LinkType

    if not isinstance(node, orm.ProcessNode):
        raise ValueError(f'node {getattr(node, "pk", node)} is a {type(node).__name__}, not an exploration process')
    links = node.base.links.get_outgoing(link_type=(LinkType.CREATE, LinkType.RETURN)).all()
    pairs: dict[str, dict] = {}
    for link in links:
        parts = link.link_label.split('__')
        if parts[-1] in ('trajectory', 'deviations'):
            pairs.setdefault('__'.join(parts[:-1]), {})[parts[-1]] = link.node
        elif len(parts) > 1 and parts[0] in ('trajectories', 'deviations'):
            name = 'trajectory' if parts[0] == 'trajectories' else 'deviations'
            pairs.setdefault('__'.join(parts[1:]), {})[name] = link.node
    runs = {}
    for prefix, pair in sorted(pairs.items()):
        if set(pair) != {'trajectory', 'deviations'}:
            continue
        label = _sanitise_label(prefix.replace('__', '_')) if prefix else f'run_{node.pk}'
        runs[label] = pair
    if not runs:
        raise ValueError(f'process {node.pk} has no `trajectory` + `deviations` outputs: is it an exploration?')
    return runs


def _collect_explorations(explorations) -> dict[str, dict]:
    """Turn what a user passes into the ``{run_label: {'trajectory', 'deviations'}}`` namespace."""
    if isinstance(explorations, orm.Node):
        return exploration_runs(explorations)
    if isinstance(explorations, Mapping):
        items = list(explorations.items())
    elif isinstance(explorations, Sequence) and not isinstance(explorations, str):
        items = [(None, value) for value in explorations]
    else:
        raise ValueError(f'explorations must be process nodes or a mapping of run labels, got {explorations!r}')
    if not items:
        raise ValueError('no exploration runs were given')
    runs: dict[str, dict] = {}
    for label, value in items:
        if isinstance(value, int | str) and not isinstance(value, bool):
            value = orm.load_node(value)
        if isinstance(value, orm.Node):
            found = exploration_runs(value)
            if label is not None and len(found) == 1:
                found = {_sanitise_label(label): next(iter(found.values()))}
            elif label is not None:
                found = {_sanitise_label(f'{label}_{inner}'): pair for inner, pair in found.items()}
        elif isinstance(value, Mapping):
            if label is None:
                raise ValueError('a trajectory/deviations pair needs a run label: pass a mapping {label: pair}')
            found = {
                _sanitise_label(label): {'trajectory': value.get('trajectory'), 'deviations': value.get('deviations')}
            }
        else:
            raise ValueError(f'run {label!r}: expected a process node or {{"trajectory", "deviations"}}, got {value!r}')
        for key, pair in found.items():
            if key in runs or key in RESERVED_LABELS:
                raise ValueError(f'run label `{key}` is used twice or is reserved ({", ".join(RESERVED_LABELS)})')
            runs[key] = pair
    return runs


def run_select(
    explorations,
    strategy: str = 'trust',
    potential: orm.SinglefileData | None = None,
    training_set: orm.SinglefileData | None = None,
    call_link_label: str | None = None,
    **params,
) -> SelectionResult:
    """Run :func:`select_frames` on explorations and return its structures, report and node.

    :param explorations: an exploration process node (calculation or work chain), a list of them or of their pks,
        or a mapping ``{run_label: node}`` or ``{run_label: {'trajectory': ..., 'deviations': ...}}``.
    :param strategy: ``trust``, ``maxvol``, ``direct`` or ``random``.
    :param potential: the ``PotentialData`` for MACE descriptors (``maxvol``, ``direct``, de-duplication).
    :param training_set: the ``DatasetData`` behind the potential for ``maxvol``; by default the one named by the
        potential's ``training_set_uuid``, when that node exists.
    :param call_link_label: the link label when called from inside a work chain.
    :param params: any of :data:`DEFAULT_PARAMETERS` (``lower``, ``upper``, ``max_per_run``, ``max_total``,
        ``seed``, ``dedup_threshold``, ...).
    :raises ValueError: bad parameters or explorations, before anything is computed.
    """
    from aiida.common.exceptions import NotExistent
    from aiida.engine import run_get_node

    settings = validate_parameters({**params, 'strategy': strategy})
    runs = _collect_explorations(explorations)
    _validate_explorations(runs)
    if settings['descriptor'] == 'mace' and potential is None:
        raise ValueError('the mace descriptor needs a potential')
    if potential is not None and not hasattr(potential, 'get_calculator'):
        raise ValueError(f'potential must be a PotentialData, got {type(potential).__name__}')
    if training_set is not None and not hasattr(training_set, 'get_frames'):
        raise ValueError(f'training_set must be a DatasetData, got {type(training_set).__name__}')
    if potential is not None and settings['descriptor'] in ('auto', 'mace') and needs_descriptors(settings):
        unknown = _elements_unknown_to(potential, runs)
        if unknown:
            raise ValueError(f'the potential has no parameters for the elements {unknown} of the explorations')
    if training_set is None and strategy == 'maxvol' and potential is not None:
        uuid = potential.base.attributes.get('training_set_uuid', None)
        if uuid:
            try:
                training_set = orm.load_node(uuid)
            except NotExistent:
                training_set = None
    inputs = {'parameters': orm.Dict({**params, 'strategy': strategy}), **runs}
    if potential is not None:
        inputs['potential'] = potential
    if training_set is not None:
        inputs['training_set'] = training_set
    if call_link_label:
        inputs['metadata'] = {'call_link_label': call_link_label}
    outputs, node = run_get_node(select_frames, **inputs)
    if not node.is_finished_ok:
        raise ValueError(f'select_frames<{node.pk}> failed [{node.exit_status}]: {node.exit_message}')
    structures = dict(outputs.get('structures', {}))
    report = outputs['report'].get_dict()
    ordered = {key: structures[key] for key in report['selection']}
    return SelectionResult(structures=ordered, report=report, node=node)


def select_from_exploration(
    exploration,
    settings: Mapping,
    potential: orm.SinglefileData | None = None,
    training_set: orm.SinglefileData | None = None,
    call_link_label: str | None = None,
) -> tuple[dict, dict]:
    """Select frames from an exploration node with ``settings`` (a dict of :data:`DEFAULT_PARAMETERS` keys).

    For work chains: returns ``(structures, report)`` as :func:`run_select` does.
    """
    settings = dict(settings)
    strategy = settings.pop('strategy', DEFAULT_PARAMETERS['strategy'])
    result = run_select(
        exploration,
        strategy=strategy,
        potential=potential,
        training_set=training_set,
        call_link_label=call_link_label,
        **settings,
    )
    return result.structures, result.report
