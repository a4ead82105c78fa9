"""``CommonLabelWorkChain``: the interface every labeler (gpaw, xtb, vasp, castep) implements.

In the manner of aiida-common-workflows, one interface over many codes:

* input ``structure`` (``StructureData``), checked by :func:`aiida_sianode.common.validation.validate_structure`
  in the spec's input validator, so a bad structure is refused before anything runs, even from a hand-made builder;
* output ``label`` (``LabelData``), made by a calculation's parser or by a calcfunction of its outputs;
* ``get_builder_from_protocol(code, structure, protocol=None, overrides=None, options=None, **kwargs)``: checks the
  geometry, loads the protocol (unknown protocols and override keys are refused by
  :class:`~aiida_sianode.protocols.ProtocolMixin`), hands the merged protocol inputs to the subclass's
  :meth:`CommonLabelWorkChain.get_builder_from_protocol_inputs` and checks the elements against the builder;
* exit codes shared by all labelers (300, 410, 420).

A subclass sets ``labeler``, ``_protocol_file`` and (for codes that take molecules) ``needs_periodic = False``,
implements ``define`` (calling ``super().define(spec)``) and ``get_builder_from_protocol_inputs``, and overrides
``get_supported_elements`` when the element set depends on its inputs (a pseudopotential mapping).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.engine import WorkChain
from ase.data import chemical_symbols

from aiida_sianode.common.validation import (
    DEFAULT_MIN_DISTANCE,
    StructureValidationError,
    labeler_elements,
    validate_structure,
)
from aiida_sianode.data.label import LabelData
from aiida_sianode.protocols import ProtocolMixin

__all__ = ('CommonLabelWorkChain', 'StructureValidationError')


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
