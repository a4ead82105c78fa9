"""``PropertyWorkChain``: one property of one or more structures, computed by every member of a committee.

The heavy part is one :class:`~aiida_sianode.calculations.property.PropertyCalculation` (the property engine):
every member relaxes, integrates and fits on its own, and the calculation reports mean, spread and per-member values.
The work chain

* refuses, before anything runs, an element the committee was not trained on, members that are not one committee
  (different training sets or cutoffs), atoms closer than 0.5 Å, unknown protocols or settings, and whatever the
  kind's ``validate_settings`` refuses;
* resubmits an interrupted calculation (out of walltime, killed) with its remote folder as ``parent_folder``, so the
  finished members are kept and the run continues;
* with the optional ``reference`` namespace, labels the kind's ``reference_configurations`` with a DFT labeler
  (``sianode.label.<labeler>``) and computes the kind's ``reference_result`` from those labels, beside the
  committee's result; every curve both have (E(V), the NEB path, the phonon band structure) is drawn with the
  reference beside the committee's band (``reference.plots``), and the arrays drawn are stored
  (``reference.curves``).

A subclass per kind sets ``_kind`` (see :mod:`aiida_sianode.workflows.properties`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import (
    BaseRestartWorkChain,
    ProcessHandlerReport,
    append_,
    calcfunction,
    if_,
    process_handler,
    while_,
)
from aiida.plugins import DataFactory, WorkflowFactory

from aiida_sianode.calculations.property import (
    PropertyCalculation,
    committee_problem,
    settings_problem,
    structures_problem,
)
from aiida_sianode.properties import KINDS, load_kind
from aiida_sianode.properties.common import InvalidPropertyInput, get_settings, load_protocols
from aiida_sianode.protocols import recursive_merge

PotentialData = DataFactory('sianode.potential')
LabelData = DataFactory('sianode.label')

#: labelers a ``reference`` may use (work chains ``sianode.label.<labeler>``)
LABELERS = ('gpaw', 'xtb', 'vasp', 'castep')

#: calculation options used unless ``options`` says otherwise
DEFAULT_OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'withmpi': False}


@calcfunction
def make_reference_configurations(kind: orm.Str, settings: orm.Dict, **structures) -> dict:
    """Return the configurations (``config_000``...) the kind wants a DFT labeler to label, made by its kernel's
    ``reference_configurations`` from the input structures (in the order of their sorted keys)."""
    from aiida_sianode.properties.common import split_settings

    module = load_kind(kind.value)
    _, kernel_settings = split_settings(settings.get_dict())
    atoms = [structures[key].get_ase() for key in sorted(structures)]
    configurations = module.reference_configurations(atoms, kernel_settings)
    return {f'config_{index:03d}': orm.StructureData(ase=item) for index, item in enumerate(configurations)}


@calcfunction
def compute_reference_result(kind: orm.Str, settings: orm.Dict, **labels) -> orm.Dict:
    """Return the kind's ``reference_result`` from the labelled configurations (``config_000``... LabelData)."""
    from aiida_sianode.properties.common import split_settings

    module = load_kind(kind.value)
    _, kernel_settings = split_settings(settings.get_dict())
    configurations = [labels[key].get_atoms() for key in sorted(labels)]
    return orm.Dict(module.reference_result(configurations, kernel_settings))


def _curve_from_xydata(node: orm.XyData) -> dict:
    """An aggregated curve (``x``, ``mean``, ``std``, ``members``, labels) back from the parser's XyData."""
    curve: dict[str, Any] = {'x': node.get_x()[1].tolist(), 'members': []}
    for name, values, _ in node.get_y():
        if name.startswith('member_'):
            curve['members'].append(values.tolist())
        else:
            curve[name] = values.tolist()
    curve['x_label'] = node.base.attributes.get('x_label', 'x')
    curve['y_label'] = node.base.attributes.get('y_label', 'y')
    return curve


def _committee_bands(results: Mapping[str, Any]) -> dict | None:
    """The committee's mean and spread of every phonon branch from the members' band structures (``None`` without
    them, or when the members' paths differ)."""
    import numpy as np

    bands = [member.get('extra', {}).get('band_structure') for member in results.get('members', [])]
    if not bands or any(band is None for band in bands):
        return None
    if any(not np.allclose(band['distances'], bands[0]['distances']) for band in bands):
        return None
    stack = np.array([band['frequencies_cm1'] for band in bands], dtype=float)
    return {
        'distances': bands[0]['distances'],
        'segment_ends': bands[0].get('segment_ends', []),
        'mean': stack.mean(axis=0).tolist(),
        'std': stack.std(axis=0).tolist(),
    }


@calcfunction
def compare_with_reference(kind: orm.Str, results: orm.Dict, reference: orm.Dict, **curves) -> dict:
    """Draw the DFT reference beside the committee for every curve both have and for the phonon band structures:
    ``curve_<name>`` (ArrayData of what is drawn, see :func:`aiida_sianode.properties.common.compare_with_reference`)
    and ``plot_<name>`` (the PNG)."""
    import io
    import tempfile

    from aiida_sianode.properties.common import compare_with_reference as compare

    committee = {name: _curve_from_xydata(node) for name, node in curves.items()}
    outputs: dict[str, orm.Data] = {}
    with tempfile.TemporaryDirectory() as directory:
        compared = compare(kind.value, committee, reference.get_dict(), directory, _committee_bands(results.get_dict()))
        for name, item in compared.items():
            arrays = orm.ArrayData()
            for key, values in item['arrays'].items():
                arrays.set_array(key, values)
            outputs[f'curve_{name}'] = arrays
            content = item['png'].read_bytes()
            outputs[f'plot_{name}'] = orm.SinglefileData(io.BytesIO(content), filename=item['png'].name)
    return outputs


def _as_structure(value) -> orm.StructureData:
    if isinstance(value, orm.StructureData):
        return value
    from ase import Atoms

    if isinstance(value, Atoms):
        return orm.StructureData(ase=value)
    raise TypeError(f'a structure must be a StructureData or ase.Atoms, got {type(value).__name__}')


def _namespace(values, prefix: str, convert=None) -> dict:
    """Return ``values`` (a mapping, or a sequence numbered ``<prefix>_00``...) as a namespace dict."""
    if isinstance(values, Mapping):
        items = dict(values)
    elif isinstance(values, Sequence) and not isinstance(values, str):
        items = {f'{prefix}_{index:02d}': value for index, value in enumerate(values)}
    else:
        items = {f'{prefix}_00': values}
    return {key: convert(value) if convert else value for key, value in items.items()}


class PropertyWorkChain(BaseRestartWorkChain):
    """Compute one property with every member of a committee; mean, spread and per-member values; optional DFT
    reference on the same configurations."""

    _process_class = PropertyCalculation
    #: the property kind (a key of :data:`aiida_sianode.properties.KINDS`), set by each subclass
    _kind: str = ''

    @classmethod
    def define(cls, spec):
        """Define the inputs (structures, potentials, the calculation's settings and options, reference), the
        outline, the outputs and the exit codes."""
        super().define(spec)
        spec.expose_inputs(
            PropertyCalculation, namespace='property', exclude=('kind', 'structures', 'potentials', 'parent_folder')
        )
        spec.input_namespace(
            'structures', valid_type=orm.StructureData, dynamic=True, help='The structure(s), in sorted-key order.'
        )
        spec.input_namespace(
            'potentials',
            valid_type=PotentialData,
            dynamic=True,
            help='The committee; each member computes the whole property on its own.',
        )
        spec.input_namespace(
            'reference',
            required=False,
            populate_defaults=False,
            help='A DFT labeler that labels the kind’s reference configurations, for a side-by-side check.',
        )
        spec.input('reference.labeler', valid_type=orm.Str, help='gpaw, xtb, vasp or castep.')
        spec.input('reference.code', valid_type=orm.AbstractCode, help='The labeler’s code.')
        spec.input('reference.protocol', valid_type=orm.Str, required=False, help='The labeler’s protocol.')
        spec.input('reference.overrides', valid_type=orm.Dict, required=False, help='Labeler protocol overrides.')
        spec.input('reference.options', valid_type=orm.Dict, required=False, help='Labeler calculation options.')
        spec.inputs.validator = cls.validate_inputs

        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            if_(cls.should_run_reference)(
                cls.run_reference,
                cls.inspect_reference,
            ),
            cls.results,
        )
        spec.expose_outputs(PropertyCalculation)
        spec.output_namespace('reference', required=False, help='The DFT reference: result and labels.')
        spec.output('reference.result', valid_type=orm.Dict, required=False, help='The property from the DFT labels.')
        spec.output_namespace(
            'reference.labels', valid_type=LabelData, dynamic=True, required=False, help='The DFT labels.'
        )
        spec.output_namespace(
            'reference.curves',
            valid_type=orm.ArrayData,
            dynamic=True,
            required=False,
            help='Each curve the committee and the reference share: the arrays drawn in reference.plots.',
        )
        spec.output_namespace(
            'reference.plots',
            valid_type=orm.SinglefileData,
            dynamic=True,
            required=False,
            help='A PNG of each shared curve: the reference beside the committee band.',
        )
        spec.exit_code(
            403,
            'ERROR_PROPERTY_REFUSED',
            message='The property engine refused the input; a restart cannot help: {error}',
        )
        spec.exit_code(
            404,
            'ERROR_MEMBERS_FAILED',
            message='Some committee members failed ({error}); the others’ results are in the outputs.',
        )
        spec.exit_code(405, 'ERROR_COMMITTEE_FAILED', message='No committee member finished the property: {error}')
        spec.exit_code(410, 'ERROR_REFERENCE_FAILED', message='The DFT reference failed: {error}')

    # ---------------------------------------------------------------------------------------------------------------
    # protocols and builders

    @classmethod
    def get_available_protocols(cls) -> dict[str, dict]:
        """Return ``{name: {'description': ...}}`` of the kind's protocols."""
        data = load_protocols(cls._kind)
        return {name: {'description': value.get('description', '')} for name, value in data['protocols'].items()}

    @classmethod
    def get_default_protocol(cls) -> str:
        """Return the name of the kind's default protocol."""
        return load_protocols(cls._kind)['default_protocol']

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        structures,
        potentials,
        protocol: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        reference: Mapping[str, Any] | None = None,
    ):
        """Return a builder computing the kind's property of ``structures`` with the committee ``potentials``.

        :param code: a ``sianode.property`` code (``sianode-property@localhost`` from ``aiida-sianode setup``).
        :param structures: a StructureData / ase.Atoms, a list of them, or a mapping ``{key: structure}``.
        :param potentials: a list or mapping of PotentialData (the committee).
        :param protocol: ``fast``, ``balanced`` or ``stringent``; ``None`` for the kind's default.
        :param overrides: settings merged over the protocol's (``device`` and ``dtype`` too); unknown keys are refused.
        :param options: calculation ``metadata.options`` (resources, max_wallclock_seconds, ...).
        :param reference: ``{'labeler': 'gpaw'|'xtb'|'vasp'|'castep', 'code': code, 'protocol': ..., 'overrides':
            {...}, 'options': {...}}``.
        :raises InvalidPropertyInput: (a ``ValueError``) for any input the work chain would refuse.
        """
        if not cls._kind:
            raise InvalidPropertyInput('use the work chain of a property kind, e.g. sianode.properties.eos')
        if not isinstance(code, orm.AbstractCode):
            raise TypeError(f'`code` must be an AiiDA code, got {type(code).__name__}')
        plugin = code.default_calc_job_plugin
        if plugin not in (None, 'sianode.property'):
            raise InvalidPropertyInput(f'code `{code.full_label}` runs `{plugin}`, not `sianode.property`')
        structures = _namespace(structures, 'structure', _as_structure)
        potentials = _namespace(potentials, 'member')
        settings = get_settings(cls._kind, protocol, overrides)
        problem = (
            committee_problem(potentials)
            or structures_problem(structures, potentials)
            or settings_problem(cls._kind, settings, structures)
        )
        if problem:
            raise InvalidPropertyInput(problem)

        builder = cls.get_builder()
        builder.structures = structures
        builder.potentials = potentials
        builder.property.code = code
        builder.property.settings = orm.Dict(settings)
        builder.property.metadata.options = recursive_merge(DEFAULT_OPTIONS, dict(options or {}))
        builder.max_iterations = orm.Int(3)
        if reference:
            reference = dict(reference)
            unknown = sorted(set(reference) - {'labeler', 'code', 'protocol', 'overrides', 'options'})
            if unknown:
                raise InvalidPropertyInput(f'unknown key(s) in `reference`: {", ".join(unknown)}')
            problem = cls._reference_problem(reference.get('labeler'), reference.get('code'))
            if problem:
                raise InvalidPropertyInput(problem)
            builder.reference.labeler = orm.Str(reference['labeler'])
            builder.reference.code = reference['code']
            if reference.get('protocol'):
                builder.reference.protocol = orm.Str(reference['protocol'])
            if reference.get('overrides'):
                builder.reference.overrides = orm.Dict(reference['overrides'])
            if reference.get('options'):
                builder.reference.options = orm.Dict(reference['options'])
        return builder

    # ---------------------------------------------------------------------------------------------------------------
    # validation

    @classmethod
    def _reference_problem(cls, labeler, code) -> str | None:
        labeler = labeler.value if isinstance(labeler, orm.Str) else labeler
        if labeler not in LABELERS:
            return f'unknown reference labeler `{labeler}`; choose one of: {", ".join(LABELERS)}'
        if code is None:
            return f'the reference labeler {labeler} needs a `code`'
        try:
            module = load_kind(cls._kind)
        except ImportError:
            return None
        if not hasattr(module, 'reference_configurations') or not hasattr(module, 'reference_result'):
            return f'the property {cls._kind} has no DFT reference (its kernel defines no reference configurations)'
        return None

    @classmethod
    def validate_inputs(cls, value, ctx) -> str | None:
        """Refuse inputs that cannot give a meaningful property, before anything runs (see the module docstring)."""
        if cls._kind not in KINDS:
            return f'unknown property `{cls._kind}`; choose one of: {", ".join(sorted(KINDS))}'
        potentials = value.get('potentials') or {}
        structures = value.get('structures') or {}
        if not structures:
            return 'give at least one structure in `structures`'
        problem = committee_problem(potentials) or structures_problem(structures, potentials)
        if problem:
            return problem
        calculation = value.get('property') or {}
        settings = calculation['settings'].get_dict() if 'settings' in calculation else {}
        problem = settings_problem(cls._kind, settings, structures)
        if problem:
            return problem
        reference = value.get('reference') or {}
        if reference:
            return cls._reference_problem(reference.get('labeler'), reference.get('code'))
        return None

    # ---------------------------------------------------------------------------------------------------------------
    # outline

    def setup(self):
        """Gather the calculation inputs in the context, where a restart adds ``parent_folder``."""
        super().setup()
        inputs = AttributeDict(self.exposed_inputs(PropertyCalculation, 'property'))
        inputs.kind = orm.Str(self._kind)
        inputs.structures = dict(self.inputs.structures)
        inputs.potentials = dict(self.inputs.potentials)
        self.ctx.inputs = inputs

    @process_handler(priority=600, exit_codes=[PropertyCalculation.exit_codes.ERROR_INVALID_INPUT])
    def handle_refused_input(self, node):
        """The engine refused its input: stop, the same input would be refused again."""
        self.report(f'{node.process_label}<{node.pk}> refused its input: {node.exit_message}')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_PROPERTY_REFUSED.format(error=node.exit_message))

    @process_handler(
        priority=500,
        exit_codes=[
            PropertyCalculation.exit_codes.ERROR_INTERRUPTED,
            PropertyCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME,
            PropertyCalculation.exit_codes.ERROR_SCHEDULER_NODE_FAILURE,
        ],
    )
    def handle_interrupted(self, node):
        """The job stopped before the end (walltime, killed, node failure): continue it from its remote folder, so
        the finished members are kept."""
        self.ctx.inputs.parent_folder = node.outputs.remote_folder
        self.report(f'{node.process_label}<{node.pk}> was interrupted: restarting from its remote folder')
        return ProcessHandlerReport(True)

    @process_handler(priority=400, exit_codes=[PropertyCalculation.exit_codes.ERROR_MEMBER_FAILED])
    def handle_member_failed(self, node):
        """Some members failed: keep the others' results as outputs and stop with an exit code that says so."""
        self._attach_outputs(node)
        return ProcessHandlerReport(True, self.exit_codes.ERROR_MEMBERS_FAILED.format(error=node.exit_message))

    @process_handler(
        priority=300,
        exit_codes=[
            PropertyCalculation.exit_codes.ERROR_ALL_MEMBERS_FAILED,
            PropertyCalculation.exit_codes.ERROR_MODEL,
        ],
    )
    def handle_committee_failed(self, node):
        """No member finished, or a model could not be loaded: stop."""
        return ProcessHandlerReport(True, self.exit_codes.ERROR_COMMITTEE_FAILED.format(error=node.exit_message))

    def should_run_reference(self) -> bool:
        """Whether a DFT reference was asked for."""
        return 'reference' in self.inputs and 'labeler' in self.inputs.reference

    def run_reference(self):
        """Make the kind's reference configurations and label each with the reference labeler."""
        reference = self.inputs.reference
        configurations = make_reference_configurations(
            orm.Str(self._kind),
            self.ctx.inputs.settings,
            **dict(self.inputs.structures),
            metadata={'call_link_label': 'reference_configurations'},
        )
        workchain = WorkflowFactory(f'sianode.label.{reference.labeler.value}')
        protocol = reference.protocol.value if 'protocol' in reference else None
        overrides = reference.overrides.get_dict() if 'overrides' in reference else None
        options = reference.options.get_dict() if 'options' in reference else None
        for key in sorted(configurations):
            builder = workchain.get_builder_from_protocol(
                reference.code, configurations[key], protocol=protocol, overrides=overrides, options=options
            )
            builder.metadata.call_link_label = f'reference_{key}'
            future = self.submit(builder)
            future.base.extras.set('reference_key', key)
            self.to_context(reference_labels=append_(future))
        self.report(f'labelling {len(configurations)} reference configuration(s) with {reference.labeler.value}')

    def inspect_reference(self):
        """Stop when a reference label failed."""
        if not self.ctx.get('reference_labels'):
            return self.exit_codes.ERROR_REFERENCE_FAILED.format(error='the kernel made no reference configuration')
        failed = [node for node in self.ctx.reference_labels if not node.is_finished_ok]
        if failed:
            listed = ', '.join(
                f'{node.process_label}<{node.pk}>: {node.exit_message or node.process_state}' for node in failed
            )
            return self.exit_codes.ERROR_REFERENCE_FAILED.format(error=listed)
        return None

    def results(self):
        """Attach the committee's outputs and, with a reference, the DFT result and labels."""
        super().results()
        if not self.should_run_reference():
            return None
        labels = {node.base.extras.get('reference_key'): node.outputs.label for node in self.ctx.reference_labels}
        result = compute_reference_result(
            orm.Str(self._kind), self.ctx.inputs.settings, **labels, metadata={'call_link_label': 'reference_result'}
        )
        self.out('reference.result', result)
        for key, label in labels.items():
            self.out(f'reference.labels.{key}', label)
        child = self.ctx.children[-1]
        if 'results' in child.outputs:
            curves = dict(child.outputs.curves) if 'curves' in child.outputs else {}
            compared = compare_with_reference(
                orm.Str(self._kind),
                child.outputs.results,
                result,
                **curves,
                metadata={'call_link_label': 'compare_with_reference'},
            )
            for key, node in compared.items():
                namespace, name = key.split('_', 1)
                self.out(f'reference.{namespace}s.{name}', node)
        return None
