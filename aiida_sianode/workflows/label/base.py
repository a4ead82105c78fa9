"""``CommonLabelWorkChain``: the interface every labeler (gpaw, xtb, vasp, castep) implements.

In the manner of aiida-common-workflows, one interface over many codes:

* input ``structure`` (``StructureData``), checked by :func:`aiida_sianode.common.validation.validate_structure`
  in the spec's input validator, so a bad structure is refused before anything runs, even from a hand-made builder;
* output ``label`` (``LabelData``), made by a calculation's parser or by a calcfunction of its outputs;
* ``get_builder_from_protocol(code, structure, protocol=None, overrides=None, options=None, **kwargs)``: checks the
  geometry, loads the protocol (unknown protocols and override keys are refused by
  :class:`~aiida_sianode.protocols.ProtocolMixin`), hands the merged protocol inputs to the subclass's
  :meth:`CommonLabelWorkChain.get_builder_from_protocol_inputs` and checks the elements against the builder;
* exit codes shared by all labelers (300, 410, 420, 440).

A subclass sets ``labeler``, ``_protocol_file`` and (for codes that take molecules) ``needs_periodic = False``,
implements ``define`` (calling ``super().define(spec)``) and ``get_builder_from_protocol_inputs``, and overrides
``get_supported_elements`` when the element set depends on its inputs (a pseudopotential mapping).

:class:`ExternalLabelWorkChain` is the base of the labelers that run another plugin's work chain once (aiida-vasp's
``vasp.vasp``, aiida-castep's ``castep.base``): it owns the k-point input and its check, the outline (``setup``,
``run_child``, ``inspect_child``, ``results``), the refusal helper and the check of the recorded level of theory
against what the code's own output says it ran with. A subclass names the child work chain and where the structure
and the k-points go in its inputs, and implements four hooks: :meth:`~ExternalLabelWorkChain.check_child_outputs`,
:meth:`~ExternalLabelWorkChain.level_of_theory`, :meth:`~ExternalLabelWorkChain.reported_level_of_theory` and
:meth:`~ExternalLabelWorkChain.normalise`.
"""

from __future__ import annotations

import pathlib
import tempfile
from collections.abc import Mapping
from typing import Any, ClassVar

from aiida import orm
from aiida.engine import ToContext, WorkChain
from ase.data import chemical_symbols

from aiida_sianode.common import level_of_theory as lot
from aiida_sianode.common.validation import (
    DEFAULT_MIN_DISTANCE,
    StructureValidationError,
    labeler_elements,
    validate_structure,
)
from aiida_sianode.data.label import LabelData
from aiida_sianode.protocols import ProtocolMixin
from aiida_sianode.workflows.label.normalise import LabelRefusal

__all__ = ('CommonLabelWorkChain', 'ExternalLabelWorkChain', 'StructureValidationError', 'kpoints_from_spacing')


def kpoints_from_spacing(structure: orm.StructureData, spacing: float) -> orm.KpointsData:
    """Return the Γ-centred mesh with at most ``spacing`` (1/Å, 2π included) between k-points along each axis.

    ``N_i = max(1, ceil(|b_i| / spacing))`` with ``|b_i|`` the length of the i-th reciprocal lattice vector including
    the factor 2π, as VASP's KSPACING does (AiiDA's ``set_kpoints_mesh_from_density`` uses the same definition).
    """
    if spacing <= 0:
        raise ValueError(f'the k-point spacing must be positive, got {spacing}')
    kpoints = orm.KpointsData()
    kpoints.set_cell_from_structure(structure)
    kpoints.set_kpoints_mesh_from_density(float(spacing), offset=[0.0, 0.0, 0.0])
    return kpoints


def lookup(inputs: Mapping[str, Any] | None, *keys: str):
    """Return ``inputs[keys[0]][keys[1]]...`` for process inputs or a builder, ``None`` when a key is missing."""
    value = inputs
    for key in keys:
        if value is None:
            return None
        try:
            value = value[key]
        except (KeyError, TypeError, AttributeError):
            return None
    return value


def _with(inputs: Mapping[str, Any], keys: tuple[str, ...], value) -> dict:
    """Return a copy of the nested ``inputs`` with ``value`` at ``keys`` (the namespaces on the way copied too)."""
    result = dict(inputs)
    result[keys[0]] = value if len(keys) == 1 else _with(result.get(keys[0]) or {}, keys[1:], value)
    return result


class CommonLabelWorkChain(ProtocolMixin, WorkChain):
    """Abstract work chain: label one structure (energy, forces, stress, level of theory) with one code."""

    #: Name of the labeler: ``gpaw``, ``xtb``, ``vasp`` or ``castep``.
    labeler: str = ''
    #: Plane-wave codes refuse structures that are not periodic in all directions.
    needs_periodic: bool = True
    #: Smallest interatomic distance in Å (periodic images included) a structure may have.
    min_distance: float = DEFAULT_MIN_DISTANCE

    @classmethod
    def define(cls, spec):
        """Define the common ports: input ``structure``, output ``label``, the shared exit codes."""
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The structure to label.')
        spec.inputs.validator = cls.validate_inputs
        spec.output('label', valid_type=LabelData, help='Energy, forces, stress and the level of theory.')
        spec.exit_code(
            300, 'ERROR_MISSING_OUTPUTS', message='The calculation finished but did not produce a complete label.'
        )
        spec.exit_code(
            410,
            'ERROR_SCF_NOT_CONVERGED',
            message='The electronic self-consistency did not converge, even after all retries.',
        )
        spec.exit_code(420, 'ERROR_CODE_FAILED', message='The code failed and the failure could not be handled.')
        spec.exit_code(
            440,
            'ERROR_LEVEL_OF_THEORY_MISMATCH',
            message='The level of theory recorded for the label contradicts what the code says it ran with: {reason}',
        )

    @classmethod
    def get_supported_elements(cls, inputs: Mapping[str, Any] | None = None) -> frozenset[str] | None:
        """Return the elements this labeler can do given ``inputs`` (process inputs or a builder); ``None``: any.

        The default is :func:`~aiida_sianode.common.validation.labeler_elements` of :attr:`labeler`; labelers whose
        element set depends on a pseudopotential choice read it from ``inputs`` in their override.
        """
        return labeler_elements(cls.labeler)

    @classmethod
    def check_structure(
        cls, structure, inputs: Mapping[str, Any] | None = None, *, check_elements: bool = True
    ) -> None:
        """Raise :class:`StructureValidationError` when ``structure`` cannot be labelled by this labeler.

        :param structure: ``StructureData`` or ``ase.Atoms``.
        :param inputs: the process inputs or builder, passed to :meth:`get_supported_elements`.
        :param check_elements: ``False`` checks only the geometry (atoms present, periodicity, distances).
        """
        atoms = structure.get_ase() if isinstance(structure, orm.StructureData) else structure
        validate_structure(
            atoms,
            labeler=cls.labeler,
            supported_elements=cls.get_supported_elements(inputs) if check_elements else chemical_symbols[1:],
            needs_periodic=cls.needs_periodic,
            min_distance=cls.min_distance,
        )

    @classmethod
    def validate_inputs(cls, value, ctx) -> str | None:
        """Spec validator of the top-level inputs: return the reason the structure is refused, or ``None``."""
        if 'structure' not in ctx or 'structure' not in value:
            return None
        try:
            cls.check_structure(value['structure'], value)
        except StructureValidationError as exception:
            return str(exception)
        return None

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.Code,
        structure: orm.StructureData,
        protocol: str | None = None,
        overrides: dict | None = None,
        options: dict | None = None,
        **kwargs,
    ):
        """Return a builder ready to label ``structure`` with ``code`` at ``protocol``.

        :param code: the code of this labeler.
        :param structure: ``StructureData`` (an ``ase.Atoms`` is converted).
        :param protocol: ``fast``, ``balanced`` or ``stringent``; ``None`` for the default protocol.
        :param overrides: nested dict merged over the protocol's inputs; unknown keys are refused.
        :param options: calculation ``metadata.options`` (resources, walltime, ...).
        :param kwargs: labeler-specific arguments, passed to :meth:`get_builder_from_protocol_inputs`.
        :raises aiida_sianode.protocols.ProtocolError: unknown protocol or override key.
        :raises StructureValidationError: the structure cannot be labelled by this labeler.
        """
        if not isinstance(structure, orm.StructureData):
            structure = orm.StructureData(ase=structure)
        cls.check_structure(structure, check_elements=False)
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder_from_protocol_inputs(code, structure, inputs, options=options, **kwargs)
        cls.check_structure(structure, builder)
        return builder

    @classmethod
    def get_builder_from_protocol_inputs(
        cls, code: orm.Code, structure: orm.StructureData, inputs: dict, options: dict | None = None, **kwargs
    ):
        """Return a builder from the merged protocol ``inputs``; every labeler implements this."""
        raise NotImplementedError(f'{cls.__name__} does not implement `get_builder_from_protocol_inputs`')


class ExternalLabelWorkChain(CommonLabelWorkChain):
    """Abstract: label one structure by running another plugin's work chain once and normalising its outputs."""

    #: The work chain class that runs the code (aiida-vasp's ``vasp.vasp``, aiida-castep's ``castep.base``).
    _child_class: ClassVar[type | None] = None
    #: The namespace its inputs are exposed in, also its call link label (``vasp``, ``castep``).
    _child_namespace: ClassVar[str] = ''
    #: Its inputs this work chain sets itself (the structure, a k-point spacing of its own convention).
    _child_exclude: ClassVar[tuple[str, ...]] = ()
    #: Where the structure and the k-point mesh go in its inputs.
    _structure_path: ClassVar[tuple[str, ...]] = ('structure',)
    _kpoints_path: ClassVar[tuple[str, ...]] = ('kpoints',)
    #: The child's exit code meaning the electronic SCF did not converge after its own restarts.
    _child_scf_exit_code: ClassVar[str] = ''
    #: The keys of the level of theory compared with what the code's output says (see :func:`lot.contradictions`).
    _reported_keys: ClassVar[tuple[str, ...]] = lot.REPORTED_KEYS
    #: The code's name in messages.
    _code_name: ClassVar[str] = ''

    @classmethod
    def define(cls, spec):
        """Define the child's inputs, ``kpoint_spacing``, the outline and the exit codes of a wrapped code."""
        super().define(spec)
        spec.expose_inputs(cls._child_class, namespace=cls._child_namespace, exclude=cls._child_exclude)
        spec.input(
            'kpoint_spacing',
            valid_type=orm.Float,
            required=False,
            help=f'k-point spacing in 1/Å, 2π included (VASP KSPACING convention). Without `{cls._kpoints_port()}` the '
            'mesh is made from it; with it, that mesh must be the one this spacing gives. It is recorded in the '
            'level of theory.',
        )
        spec.outline(cls.setup, cls.run_child, cls.inspect_child, cls.results)
        spec.exit_code(
            301,
            'ERROR_INCOMPLETE_OUTPUT',
            message=f'The {cls._code_name} output is incomplete, no label was made: {{reason}}',
        )
        spec.exit_code(
            430,
            'ERROR_NOT_A_SINGLE_POINT',
            message=f'The {cls._code_name} run was not a single point, no label was made: {{reason}}',
        )

    @classmethod
    def _kpoints_port(cls) -> str:
        """Return the dotted name of the child's k-point input, e.g. ``vasp.kpoints``."""
        return '.'.join((cls._child_namespace, *cls._kpoints_path))

    @classmethod
    def validate_inputs(cls, value, ctx) -> str | None:
        """Refuse a bad structure (base class), no k-points, or a k-point mesh that contradicts ``kpoint_spacing``."""
        message = super().validate_inputs(value, ctx)
        if message or 'structure' not in value:
            return message
        kpoints = lookup(value, cls._child_namespace, *cls._kpoints_path)
        spacing = value.get('kpoint_spacing')
        port = cls._kpoints_port()
        if kpoints is None and spacing is None:
            return f'give `kpoint_spacing` (1/Å, 2π included) or a k-point mesh in `{port}`'
        if kpoints is not None and spacing is not None:
            try:
                given = list(kpoints.get_kpoints_mesh()[0])
            except AttributeError:
                return f'`{port}` must be a mesh when `kpoint_spacing` is given'
            expected = list(kpoints_from_spacing(value['structure'], spacing.value).get_kpoints_mesh()[0])
            if given != expected:
                return (
                    f'the mesh {given} in `{port}` is not the mesh {expected} of kpoint_spacing {spacing.value} 1/Å '
                    'for this cell'
                )
        return None

    def setup(self):
        """Build the child's inputs: the structure, and the k-point mesh of ``kpoint_spacing`` when none is given."""
        inputs = self.exposed_inputs(self._child_class, namespace=self._child_namespace)
        inputs = _with(inputs, self._structure_path, self.inputs.structure)
        if lookup(inputs, *self._kpoints_path) is None:
            mesh = kpoints_from_spacing(self.inputs.structure, self.inputs.kpoint_spacing.value)
            inputs = _with(inputs, self._kpoints_path, mesh)
        self.ctx.inputs = inputs

    def kpoints_mesh(self) -> list[int]:
        """Return the k-point mesh the child is given."""
        return list(lookup(self.ctx.inputs, *self._kpoints_path).get_kpoints_mesh()[0])

    def run_child(self):
        """Run the child work chain (it restarts the code on the errors it knows)."""
        inputs = dict(self.ctx.inputs)
        inputs['metadata'] = {'call_link_label': self._child_namespace}
        node = self.submit(self._child_class, **inputs)
        self.report(f'launched {self._child_class.__name__}<{node.pk}>')
        return ToContext(workchain=node)

    def refuse(self, refusal: LabelRefusal):
        """Return the exit code of ``refusal``, with its reason in the message or in the report."""
        exit_code = self.exit_codes[refusal.exit_code]
        if '{reason}' in exit_code.message:
            return exit_code.format(reason=refusal.reason)
        self.report(refusal.reason)
        return exit_code

    def inspect_child(self):
        """Check that the child finished, that its outputs make a single-point label, and that the level of theory
        to be recorded is the one the code reports it ran with."""
        node = self.ctx.workchain
        if not node.is_finished_ok:
            self.report(
                f'{self._child_class.__name__}<{node.pk}> failed with exit status {node.exit_status}: '
                f'{node.exit_message}'
            )
            if node.exit_status == self._child_class.exit_codes[self._child_scf_exit_code].status:
                return self.exit_codes.ERROR_SCF_NOT_CONVERGED
            return self.exit_codes.ERROR_CODE_FAILED
        try:
            self.check_child_outputs(node)
            self.ctx.level_of_theory = self.level_of_theory(node)
            found = lot.contradictions(
                self.ctx.level_of_theory, self.reported_level_of_theory(node), self._reported_keys
            )
        except LabelRefusal as refusal:
            return self.refuse(refusal)
        if found:
            return self.exit_codes.ERROR_LEVEL_OF_THEORY_MISMATCH.format(reason='; '.join(found))
        return None

    def results(self):
        """Make the label with the subclass's calcfunction of the child's outputs, and attach it."""
        label = self.normalise(self.ctx.workchain, orm.Dict(self.ctx.level_of_theory))
        self.out('label', label)
        self.report(f'labelled {label}')

    @staticmethod
    def read_retrieved(output: orm.Data, suffixes: tuple[str, ...], reader):
        """Return ``reader(path)`` of the first file of the calculation behind ``output`` whose name ends with one of
        ``suffixes`` (tried in order), or ``None`` when there is none.

        The calculation is the ``output``'s creator when it is a ``CalcJob``; for a parser re-run with
        ``parse_from_node``, the ``retrieved`` folder the parse function took.
        """
        creator = output.creator
        retrieved = None
        if isinstance(creator, orm.CalcJobNode):
            retrieved = creator.outputs.retrieved if 'retrieved' in creator.outputs else None
        elif creator is not None and 'retrieved' in creator.inputs:
            retrieved = creator.inputs.retrieved
        if retrieved is None:
            return None
        names = retrieved.base.repository.list_object_names()
        for suffix in suffixes:
            name = next((item for item in sorted(names) if item.endswith(suffix)), None)
            if name is not None:
                with tempfile.TemporaryDirectory() as directory:
                    path = pathlib.Path(directory) / name
                    path.write_bytes(retrieved.base.repository.get_object_content(name, mode='rb'))
                    return reader(path)
        return None

    def check_child_outputs(self, node) -> None:
        """Raise :class:`LabelRefusal` when the outputs of the finished child ``node`` cannot make a label."""
        raise NotImplementedError

    def level_of_theory(self, node) -> dict:
        """Return the level-of-theory record of the label, from the inputs and what the child reports it used."""
        raise NotImplementedError

    def reported_level_of_theory(self, node) -> dict:
        """Return the level of theory the code's own output states; raise :class:`LabelRefusal` when it has none."""
        raise NotImplementedError

    def normalise(self, node, level_of_theory: orm.Dict) -> LabelData:
        """Return the label made by the subclass's calcfunction from the child's outputs."""
        raise NotImplementedError
