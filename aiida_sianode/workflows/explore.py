"""``ExploreWorkChain``: a grid of committee MD explorations run in parallel, summarised by trust level.

Every structure is run in every ensemble at every temperature for every number of steps; NPT ensembles also at every
pressure (NVT runs ignore ``pressures``). Each run is one
:class:`~aiida_sianode.calculations.explore.ExploreCalculation` driven by the same committee. Frames are sorted by
the committee's max force deviation ``d`` (eV/Å):
*accurate* ``d < lower_trust``, *candidate* ``lower_trust <= d < upper_trust``, *failed* ``d >= upper_trust``; the
``summary`` gives the counts and fractions per run and in total, and the stop reason of every run. A run that broke
physically (atoms too close, NaN, runaway temperature) or crashed after writing frames still contributes its frames;
only runs without any frame are left out of the totals (and listed).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import WorkChain, append_, calcfunction
from aiida.plugins import DataFactory

from aiida_sianode.calculations.explore import ExploreCalculation
from aiida_sianode.campaign_spec import default_trust_levels
from aiida_sianode.engines import explore as engine
from aiida_sianode.engines.committee import count_trust_levels
from aiida_sianode.protocols import ProtocolMixin, recursive_merge

PotentialData = DataFactory('sianode.potential')

#: parameters that the grid and the trust levels set for every run; refused in ``parameters``
GRID_KEYS = (
    'ensemble',
    'temperature',
    'temperature_end',
    'pressure_gpa',
    'steps',
    'force_deviation_lower',
    'force_deviation_upper',
)


def _temperature_pair(value) -> tuple[float, float]:
    """Return ``(start, end)`` (K) of a grid temperature: a number, or a ``[start, end]`` ramp."""
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValueError(f'a temperature ramp is [start, end] in K, got {value!r}')
        return float(value[0]), float(value[1])
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f'a temperature is a number in K or a [start, end] ramp, got {value!r}')
    return float(value), float(value)


def build_grid(
    structure_keys: Sequence[str],
    ensembles: Sequence[str],
    temperatures: Sequence,
    pressures: Sequence[float],
    steps: Sequence[int],
) -> list[dict]:
    """Return the grid points, one dict per run: ``key`` (``run_000``...), ``structure``, ``ensemble`` (canonical),
    ``temperature``, ``temperature_end`` (K), ``pressure_gpa`` (``None`` for NVT) and ``steps``.

    :raises ValueError: an unknown ensemble, an empty list, or a badly formed temperature.
    """
    for name, values in (
        ('structures', structure_keys),
        ('ensembles', ensembles),
        ('temperatures', temperatures),
        ('steps', steps),
    ):
        if not values:
            raise ValueError(f'`{name}` must not be empty')
    canonical = []
    for ensemble in ensembles:
        name = engine.normalise_ensemble(ensemble)
        if name not in canonical:
            canonical.append(name)
    grid = []
    for structure in structure_keys:
        for ensemble in canonical:
            run_pressures = list(pressures) if ensemble.startswith('npt') else [None]
            if not run_pressures:
                raise ValueError('`pressures` must not be empty when an NPT ensemble is explored')
            for temperature in temperatures:
                start, end = _temperature_pair(temperature)
                for pressure in run_pressures:
                    for count in steps:
                        grid.append(
                            {
                                'key': f'run_{len(grid):03d}',
                                'structure': structure,
                                'ensemble': ensemble,
                                'temperature': start,
                                'temperature_end': end,
                                'pressure_gpa': None if pressure is None else float(pressure),
                                'steps': int(count),
                            }
                        )
    return grid


def run_parameters(point: Mapping[str, Any], base: Mapping[str, Any], lower: float, upper: float, index: int) -> dict:
    """Return the ``ExploreCalculation`` parameters of one grid point: the shared ``base`` settings, the point's
    ensemble/temperatures/pressure/steps, the trust levels, and the seed ``base seed + index`` (runs differ)."""
    parameters = dict(base)
    parameters.update(
        {
            'ensemble': point['ensemble'],
            'temperature': point['temperature'],
            'temperature_end': point['temperature_end'],
            'steps': point['steps'],
            'force_deviation_lower': lower,
            'force_deviation_upper': upper,
            'seed': int(base.get('seed', engine.DEFAULT_PARAMETERS['seed'])) + index,
        }
    )
    if point['pressure_gpa'] is not None:
        parameters['pressure_gpa'] = point['pressure_gpa']
    return parameters


def summarise_runs(runs: Sequence[Mapping[str, Any]], lower: float, upper: float) -> dict:
    """Return the exploration summary from per-run records.

    Each record has the grid point (``key``, ``structure``, ``ensemble``, ``temperature``, ``temperature_end``,
    ``pressure_gpa``, ``steps``), ``exit_status``, ``stop_reason`` (``None`` for a run without frames), and
    ``max_force_deviation`` (the per-frame values, empty without frames), optionally ``steps_run`` and
    ``steps_per_second``. Returns ``{'runs': {key: {...}}, 'total': {...}, 'lower_trust', 'upper_trust'}`` where
    ``total`` has ``frames``, ``accurate``/``candidate``/``failed`` counts and ``*_fraction``s over all frames,
    ``runs``, ``runs_with_frames``, ``runs_without_frames`` (keys), and ``stop_reasons`` (reason -> count).
    """
    summary_runs = {}
    all_deviations: list[float] = []
    stop_reasons: dict[str, int] = {}
    without = []
    for run in runs:
        deviations = [float(value) for value in run.get('max_force_deviation', [])]
        record = {key: run.get(key) for key in ('structure', 'ensemble', 'temperature', 'temperature_end')}
        record.update(
            {
                'pressure_gpa': run.get('pressure_gpa'),
                'steps': run.get('steps'),
                'steps_run': run.get('steps_run'),
                'steps_per_second': run.get('steps_per_second'),
                'exit_status': run.get('exit_status'),
                'stop_reason': run.get('stop_reason'),
                **count_trust_levels(deviations, lower, upper),
            }
        )
        finite = [value for value in deviations if math.isfinite(value)]
        record['max_force_deviation_max'] = max(finite) if finite else None
        summary_runs[run['key']] = record
        if deviations:
            all_deviations.extend(deviations)
            reason = run.get('stop_reason') or 'unknown'
            stop_reasons[reason] = stop_reasons.get(reason, 0) + 1
        else:
            without.append(run['key'])
    total = count_trust_levels(all_deviations, lower, upper)
    total.update(
        {
            'runs': len(summary_runs),
            'runs_with_frames': len(summary_runs) - len(without),
            'runs_without_frames': without,
            'stop_reasons': stop_reasons,
        }
    )
    return {'runs': summary_runs, 'total': total, 'lower_trust': lower, 'upper_trust': upper}


@calcfunction
def summarise_explorations(lower_trust: orm.Float, upper_trust: orm.Float, runs: orm.Dict, **deviations):
    """Return the ``summary`` Dict of an exploration grid (see :func:`summarise_runs`).

    :param runs: ``{key: grid point + exit_status, stop_reason, steps_run, steps_per_second}`` for every run.
    :param deviations: ``<key>`` -> the run's ``deviations`` ArrayData (runs without frames have none).
    """
    records = []
    for key, run in sorted(runs.get_dict().items()):
        record = dict(run, key=key)
        node = deviations.get(key)
        values = node.get_array('max_force_deviation').astype(float) if node is not None else np.zeros(0)
        if node is not None and 'physically_broken' in node.get_arraynames():
            # the frame that broke a run is failed whatever the committee said
            values[node.get_array('physically_broken').astype(bool)] = np.inf
        record['max_force_deviation'] = values.tolist()
        records.append(record)
    return orm.Dict(summarise_runs(records, lower_trust.value, upper_trust.value))


def _list_of(value, name: str) -> list:
    values = value.get_list() if isinstance(value, orm.List) else list(value)
    if not values:
        raise ValueError(f'`{name}` must not be empty')
    return values


def validate_grid(inputs, ctx) -> str | None:
    """Refuse an ill-formed grid before anything runs: unknown ensemble, T <= 0, \\|P\\| > 10 GPa (100 kbar), steps
    < 0, lower >= upper, grid keys in ``parameters``, unknown parameters, NPT on a non-periodic structure.

    When a wrapping work chain exposes these inputs without ``potentials`` or ``structures`` (it fills them in
    later), their absence is not an error here."""
    try:
        lower = inputs['lower_trust'].value
        upper = inputs['upper_trust'].value
        if not 0 <= lower < upper:
            return f'the trust levels must satisfy 0 <= lower_trust < upper_trust, got {lower} and {upper} eV/Å'
        base = inputs['parameters'].get_dict() if 'parameters' in inputs else {}
        forbidden = sorted(set(base) & set(GRID_KEYS))
        if forbidden:
            return (
                f'`parameters` must not set {", ".join(forbidden)}: the grid inputs (ensembles, temperatures, '
                'pressures, steps) and lower_trust/upper_trust set them'
            )
        if not inputs.get('potentials') and (ctx is None or 'potentials' in ctx):
            return 'the committee needs at least one potential in `potentials`'
        structures = inputs.get('structures') or {}
        if not structures:
            if ctx is not None and 'structures' not in ctx:
                return None
            return 'give at least one starting structure in `structures`'
        keys = sorted(structures)
        grid = build_grid(
            keys,
            _list_of(inputs['ensembles'], 'ensembles'),
            _list_of(inputs['temperatures'], 'temperatures'),
            inputs['pressures'].get_list(),
            _list_of(inputs['steps'], 'steps'),
        )
        for index, point in enumerate(grid):
            structure = structures[point['structure']]
            engine.validate_parameters(run_parameters(point, base, lower, upper, index), pbc=structure.pbc)
    except (ValueError, KeyError) as exception:
        return str(exception)
    return None


class ExploreWorkChain(ProtocolMixin, WorkChain):
    """Run a grid of committee MD explorations in parallel and sort their frames into accurate / candidate / failed."""

    _protocol_file = 'explore'

    @classmethod
    def define(cls, spec):
        """Define the grid inputs, the outline, the per-run output namespaces, the summary and the exit codes."""
        super().define(spec)
        spec.input_namespace(
            'structures', valid_type=orm.StructureData, dynamic=True, help='The starting structures, by name.'
        )
        spec.input_namespace(
            'potentials', valid_type=PotentialData, dynamic=True, help='The committee (one or more PotentialData).'
        )
        spec.expose_inputs(ExploreCalculation, namespace='md', exclude=('structure', 'potentials', 'parameters'))
        spec.input(
            'ensembles',
            valid_type=orm.List,
            default=lambda: orm.List(['nvt_langevin']),
            help=f'Ensembles: {", ".join(engine.ENSEMBLES)} (or nvt = nvt_langevin, npt = npt_isotropic).',
        )
        spec.input(
            'temperatures',
            valid_type=orm.List,
            help='Target temperatures in K; an entry [start, end] is a linear ramp over the run.',
        )
        spec.input(
            'pressures',
            valid_type=orm.List,
            default=lambda: orm.List([0.0]),
            help='Pressures in GPa (|P| <= 10 GPa = 100 kbar), used by the NPT ensembles only.',
        )
        spec.input('steps', valid_type=orm.List, help='Numbers of MD steps; every run is made for each.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help='MD settings shared by every run (timestep_fs, sample_interval, seed, uncertainty_patience, '
            'min_distance, ...; see aiida_sianode.engines.explore.DEFAULT_PARAMETERS, without the grid keys).',
        )
        spec.input(
            'lower_trust',
            valid_type=orm.Float,
            default=lambda: orm.Float(default_trust_levels()[0]),
            help='Lower trust level (eV/Å): frames below are accurate.',
        )
        spec.input(
            'upper_trust',
            valid_type=orm.Float,
            default=lambda: orm.Float(default_trust_levels()[1]),
            help='Upper trust level (eV/Å): frames at or above are failed; runs stop on it.',
        )
        spec.inputs.validator = validate_grid

        spec.outline(
            cls.setup,
            cls.run_explorations,
            cls.inspect_explorations,
            cls.results,
        )

        spec.output_namespace(
            'trajectories', valid_type=orm.TrajectoryData, dynamic=True, help='Sampled frames of every run, by run.'
        )
        spec.output_namespace(
            'deviations', valid_type=orm.ArrayData, dynamic=True, help='Per-frame uncertainty of every run, by run.'
        )
        spec.output(
            'summary',
            valid_type=orm.Dict,
            help='Per run (grid point, stop reason, counts and fractions per trust level) and in total.',
        )
        spec.default_output_node = 'summary'
        spec.exit_code(
            400, 'ERROR_ALL_EXPLORATIONS_FAILED', message='None of the {count} explorations produced a frame: {reasons}'
        )

    @classmethod
    def get_protocol_inputs(cls, protocol: str | None = None, overrides: dict | None = None) -> dict:
        """Return the protocol's inputs, with the trust levels of the campaign protocol unless the protocol sets
        its own, then ``overrides`` merged over them (unknown keys refused)."""
        inputs = super().get_protocol_inputs(protocol)
        lower, upper = default_trust_levels()
        inputs.setdefault('lower_trust', lower)
        inputs.setdefault('upper_trust', upper)
        return recursive_merge(inputs, overrides, strict=True) if overrides else inputs

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        potentials,
        structures,
        protocol: str | None = None,
        overrides: dict | None = None,
        options: dict | None = None,
    ):
        """Return a builder exploring ``structures`` with the committee ``potentials`` at ``protocol``.

        :param code: the ``sianode-explore`` code.
        :param potentials: PotentialData as a list or a ``{name: potential}`` dict (may be empty, to be filled in
            later, e.g. by the active-learning work chain).
        :param structures: ``StructureData`` or ``ase.Atoms``, a single one, a list or a ``{name: structure}`` dict.
        :param protocol: ``fast``, ``balanced`` or ``stringent``; ``None`` for the default (``balanced``).
        :param overrides: merged over the protocol's inputs (``ensembles``, ``temperatures``, ``pressures``,
            ``steps``, ``lower_trust``, ``upper_trust``, ``parameters``, ``options``); unknown keys are refused. A
            single number is accepted where the protocol has a list.
        :param options: calculation ``metadata.options`` merged over the protocol's.
        :raises aiida_sianode.protocols.ProtocolError: unknown protocol or override key.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        for key in ('ensembles', 'temperatures', 'pressures', 'steps'):
            if not isinstance(inputs[key], list | tuple):
                inputs[key] = [inputs[key]]
        builder = cls.get_builder()
        builder.md.code = code
        builder.md.metadata.options = {**inputs['options'], **(options or {})}
        builder.structures = _as_structure_dict(structures)
        potentials = _as_named(potentials, 'member')
        if potentials:
            builder.potentials = potentials
        builder.ensembles = orm.List(list(inputs['ensembles']))
        builder.temperatures = orm.List(list(inputs['temperatures']))
        builder.pressures = orm.List([float(value) for value in inputs['pressures']])
        builder.steps = orm.List([int(value) for value in inputs['steps']])
        builder.lower_trust = orm.Float(inputs['lower_trust'])
        builder.upper_trust = orm.Float(inputs['upper_trust'])
        builder.parameters = orm.Dict(copy.deepcopy(inputs['parameters']))
        return builder

    def setup(self):
        """Build the grid of runs from the inputs."""
        self.ctx.grid = build_grid(
            sorted(self.inputs.structures),
            self.inputs.ensembles.get_list(),
            self.inputs.temperatures.get_list(),
            self.inputs.pressures.get_list(),
            self.inputs.steps.get_list(),
        )
        self.ctx.base_parameters = self.inputs.parameters.get_dict() if 'parameters' in self.inputs else {}

    def run_explorations(self):
        """Launch one ExploreCalculation per grid point, all at once."""
        lower, upper = self.inputs.lower_trust.value, self.inputs.upper_trust.value
        for index, point in enumerate(self.ctx.grid):
            inputs = AttributeDict(self.exposed_inputs(ExploreCalculation, namespace='md'))
            inputs.structure = self.inputs.structures[point['structure']]
            inputs.potentials = dict(self.inputs.potentials)
            inputs.parameters = orm.Dict(run_parameters(point, self.ctx.base_parameters, lower, upper, index))
            inputs.metadata = AttributeDict(dict(inputs.get('metadata', {})))
            inputs.metadata.call_link_label = f'explore_{index:03d}'
            node = self.submit(ExploreCalculation, **inputs)
            pressure = f' {point["pressure_gpa"]} GPa' if point['pressure_gpa'] is not None else ''
            self.report(
                f'{point["key"]}: {point["structure"]} {point["ensemble"]} {point["temperature"]:g}'
                f'-{point["temperature_end"]:g} K{pressure} {point["steps"]} steps <{node.pk}>'
            )
            self.to_context(explorations=append_(node))

    def inspect_explorations(self):
        """Expose every run's frames (also from runs that broke or crashed after writing frames) and report."""
        records = {}
        deviations = {}
        for point, node in zip(self.ctx.grid, self.ctx.explorations):
            key = point['key']
            outputs = node.outputs
            record = {name: value for name, value in point.items() if name != 'key'}
            record['exit_status'] = node.exit_status
            record['stop_reason'] = outputs.stop_reason.value if 'stop_reason' in outputs else None
            summary = outputs.summary.get_dict() if 'summary' in outputs else {}
            record['steps_run'] = summary.get('n_steps', summary.get('last_step'))
            record['steps_per_second'] = summary.get('steps_per_second')
            records[key] = record
            if 'trajectory' in outputs and 'deviations' in outputs:
                self.out(f'trajectories.{key}', outputs.trajectory)
                self.out(f'deviations.{key}', outputs.deviations)
                deviations[key] = outputs.deviations
            if not node.is_finished_ok:
                self.report(f'{key} <{node.pk}> exited {node.exit_status}: {node.exit_message}')
        self.ctx.records = records
        self.ctx.run_deviations = deviations
        if not deviations:
            reasons = '; '.join(
                f'{node.pk}: {node.exit_message or node.process_state.value}' for node in self.ctx.explorations
            )
            return self.exit_codes.ERROR_ALL_EXPLORATIONS_FAILED.format(count=len(self.ctx.grid), reasons=reasons)
        return None

    def results(self):
        """Summarise the frames per run and in total by trust level, with the stop reasons."""
        summary = summarise_explorations(
            lower_trust=self.inputs.lower_trust,
            upper_trust=self.inputs.upper_trust,
            runs=orm.Dict(self.ctx.records),
            metadata={'call_link_label': 'summarise'},
            **self.ctx.run_deviations,
        )
        self.out('summary', summary)
        total = summary['total']
        self.report(
            f'{total["frames"]} frames from {total["runs_with_frames"]} of {total["runs"]} runs: accurate '
            f'{total["accurate_fraction"]:.3f}, candidate {total["candidate_fraction"]:.3f}, failed '
            f'{total["failed_fraction"]:.3f}; stop reasons {total["stop_reasons"]}'
        )


def _as_named(values, prefix: str) -> dict:
    """Return ``values`` (a dict, a list or a single node) as ``{name: node}``."""
    if values is None:
        return {}
    if isinstance(values, Mapping):
        return dict(values)
    if isinstance(values, orm.Data):
        values = [values]
    return {f'{prefix}_{index}': value for index, value in enumerate(values)}


def _as_structure_dict(structures) -> dict:
    """Return ``structures`` (StructureData or ase.Atoms: one, a list, or a dict) as ``{name: StructureData}``."""
    if structures is None:
        return {}
    if not isinstance(structures, Mapping):
        if isinstance(structures, orm.StructureData) or hasattr(structures, 'get_positions'):
            structures = [structures]
        structures = {f'structure_{index}': value for index, value in enumerate(structures)}
    result = {}
    for name, value in structures.items():
        result[str(name)] = value if isinstance(value, orm.StructureData) else orm.StructureData(ase=value)
    return result
