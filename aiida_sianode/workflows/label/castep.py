"""``CastepLabelWorkChain`` (``sianode.label.castep``): one CASTEP single point through aiida-castep, as a label.

The work chain runs aiida-castep's ``castep.base`` work chain (:class:`aiida_castep.workflows.base.CastepBaseWorkChain`,
which restarts CASTEP on SCF failures and walltime), whose inputs it exposes in the ``castep`` namespace, and turns
its ``output_parameters`` and ``output_array`` into a :class:`~aiida_sianode.data.label.LabelData` with the
calcfunction :func:`~aiida_sianode.workflows.label.normalise.normalise_castep_outputs`.

The protocols (``label_castep.yaml``): PBE, a cut-off of 600 eV (``balanced``) for CASTEP's on-the-fly ultrasoft
pseudopotentials, a k-point mesh of spacing 0.35 Å^-1 (2π included, ``N_i = max(1, ceil(|b_i| / 0.35))``), Gaussian
smearing of 0.05 eV, ``task: singlepoint`` with ``calculate_stress: true``. The pseudopotential family (an aiida-castep
family, ``C19`` by default) is an input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.plugins import WorkflowFactory
from ase.data import chemical_symbols

from aiida_sianode.common.level_of_theory import castep_hubbard_from_block, castep_level_of_theory
from aiida_sianode.data.importers.castep import castep_file_level_of_theory
from aiida_sianode.protocols import recursive_merge
from aiida_sianode.workflows.label.base import ExternalLabelWorkChain, kpoints_from_spacing, lookup
from aiida_sianode.workflows.label.normalise import LabelRefusal, check_castep_outputs, normalise_castep_outputs

CastepBaseWorkChain = WorkflowFactory('castep.base')

__all__ = ('CastepLabelWorkChain', 'pseudopotential_family_elements')


def pseudopotential_family_elements(family: str) -> frozenset[str] | None:
    """Return the elements of an aiida-castep pseudopotential family; ``None`` for a library (any element).

    :raises ValueError: when no family of that name is in the profile.
    """
    from aiida.common.exceptions import NotExistent
    from aiida.orm.nodes.data.upf import UpfData
    from aiida_castep.data.otfg import OTFGData

    groups = []
    for getter in (OTFGData.get_otfg_group, UpfData.get_upf_group):
        try:
            groups.append(getter(family))
        except NotExistent:
            continue
    if not groups:
        raise ValueError(
            f'the pseudopotential family `{family}` is not in this AiiDA profile: create it once, e.g. '
            f"aiida_castep.data.otfg.upload_otfg_family(['C19'], '{family}', 'CASTEP C19 library'), or choose another "
            "with overrides={'pseudos_family': ...}"
        )
    elements = {node.element for group in groups for node in group.nodes if hasattr(node, 'element')}
    if 'LIBRARY' in elements:
        return None
    return frozenset(elements)


def _cutoff_ev(value) -> float | None:
    """Return CASTEP's ``cut_off_energy`` in eV (a number, or a string such as ``'500 eV'``)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    parts = str(value).split()
    unit = parts[1].lower() if len(parts) > 1 else 'ev'
    if unit != 'ev':
        raise ValueError(f'cut_off_energy `{value}`: give it in eV')
    return float(parts[0])


def _is_on(value) -> bool:
    """Return whether a CASTEP logical keyword value means true (``True``, ``'true'``, ``'T'``)."""
    return str(value).strip().lower() in ('true', 't', '1', '.true.') if isinstance(value, str) else bool(value)


class CastepLabelWorkChain(ExternalLabelWorkChain):
    """Label one structure with a CASTEP single point (energy, forces, stress) through aiida-castep."""

    labeler = 'castep'
    _protocol_file = 'label_castep'
    _child_class = CastepBaseWorkChain
    _child_namespace = 'castep'
    _child_exclude = ('calc.structure', 'kpoints_spacing')
    _structure_path = ('calc', 'structure')
    _kpoints_path = ('calc', 'kpoints')
    _child_scf_exit_code = 'ERROR_SCF_FAILURE'
    #: The .castep header states these; its smearing lines and the pseudopotential strings are not compared.
    _reported_keys = ('method', 'cutoff_ev', 'kpoints_mesh', 'spin', 'dispersion')
    _code_name = 'CASTEP'

    @classmethod
    def validate_inputs(cls, value, ctx) -> str | None:
        """Refuse what the base class refuses (structure, k-points) and a task other than a single point."""
        message = super().validate_inputs(value, ctx)
        if message:
            return message
        parameters = lookup(value, 'castep', 'calc', 'parameters')
        if parameters is not None:
            flat = {key.lower(): item for key, item in cls._flat_parameters(parameters).items()}
            task = str(flat.get('task', 'singlepoint')).replace('_', '').lower()
            if task not in ('singlepoint', 'energy'):
                return f'the CASTEP task is `{flat.get("task")}`: a label is a single point (task: singlepoint)'
        return None

    @staticmethod
    def _flat_parameters(parameters) -> dict:
        """Return CASTEP parameters as one flat dict, from the flat or the ``{'PARAM': ..., 'CELL': ...}`` form."""
        values = parameters.get_dict() if isinstance(parameters, orm.Dict) else dict(parameters)
        flat = {}
        for key, item in values.items():
            if key.upper() in ('PARAM', 'CELL') and isinstance(item, Mapping):
                flat.update(item)
            else:
                flat[key] = item
        return flat

    @classmethod
    def get_supported_elements(cls, inputs: Mapping[str, Any] | None = None) -> frozenset[str] | None:
        """Return the elements of the pseudopotentials given: ``castep.calc.pseudos`` or the family's elements.

        A family holding a library (``LIBRARY``, e.g. C19) generates a pseudopotential for any element: ``None``.
        """
        pseudos = lookup(inputs, 'castep', 'calc', 'pseudos')
        if pseudos:
            names = set(pseudos)
            supported = {name for name in names if name in chemical_symbols[1:]}
            structure = lookup(inputs, 'structure')
            if isinstance(structure, orm.StructureData):
                supported |= {kind.symbol for kind in structure.kinds if kind.name in names}
            return frozenset(supported)
        family = lookup(inputs, 'castep', 'pseudos_family')
        if family is None:
            return None
        try:
            return pseudopotential_family_elements(family.value if isinstance(family, orm.Str) else str(family))
        except ValueError:
            return None  # a missing family is reported by get_builder_from_protocol_inputs / aiida-castep

    @classmethod
    def get_builder_from_protocol_inputs(
        cls, code: orm.Code, structure: orm.StructureData, inputs: dict, options: dict | None = None, **kwargs
    ):
        """Return a builder from the merged protocol ``inputs`` (see ``protocols/label_castep.yaml``).

        ``inputs['parameters']`` are the flat CASTEP keywords (checked against CASTEP's keyword list by aiida-castep);
        the pseudopotentials are the family ``inputs['pseudos_family']``; the k-points are the mesh of
        ``inputs['kpoint_spacing']`` for this cell. ``options`` are merged over the protocol's calculation options.
        """
        from aiida_castep.calculations.helper import CastepHelper

        if kwargs:
            raise ValueError(f'unexpected arguments for {cls.__name__}: {", ".join(sorted(kwargs))}')
        family = inputs['pseudos_family']
        pseudopotential_family_elements(family)  # raises for a family that is not there
        parameters = dict(inputs['parameters'])
        CastepHelper().check_dict(parameters)  # raises for a keyword CASTEP does not know

        builder = cls.get_builder()
        builder.structure = structure
        builder.kpoint_spacing = orm.Float(inputs['kpoint_spacing'])
        builder.castep.calc.code = code
        builder.castep.calc.parameters = orm.Dict(parameters)
        builder.castep.calc.kpoints = kpoints_from_spacing(structure, inputs['kpoint_spacing'])
        builder.castep.pseudos_family = orm.Str(family)
        builder.castep.max_iterations = orm.Int(inputs['max_iterations'])
        builder.castep.calc_options = orm.Dict(recursive_merge(inputs.get('options', {}), options or {}))
        return builder

    def setup(self):
        """Build the inputs of aiida-castep's work chain (see the base class) and keep its parameters at hand."""
        super().setup()
        self.ctx.parameters = self._flat_parameters(self.ctx.inputs['calc']['parameters'])

    def check_child_outputs(self, node) -> None:
        """Refuse a child without parsed results, a trajectory, or outputs that are not one single point."""
        missing = [name for name in ('output_parameters', 'output_array') if name not in node.outputs]
        if missing:
            if 'output_trajectory' in node.outputs:
                raise LabelRefusal('ERROR_NOT_A_SINGLE_POINT', 'CASTEP wrote a trajectory (several configurations)')
            raise LabelRefusal(
                'ERROR_MISSING_OUTPUTS', f'CastepBaseWorkChain<{node.pk}> finished without {", ".join(missing)}'
            )
        arrays = {
            name: node.outputs.output_array.get_array(name) for name in node.outputs.output_array.get_arraynames()
        }
        check_castep_outputs(
            node.outputs.output_parameters.get_dict(),
            arrays,
            task=self.ctx.parameters.get('task', 'singlepoint'),
            natoms=len(self.inputs.structure.sites),
            require_stress=bool(self.ctx.parameters.get('calculate_stress', False)),
        )

    def reported_level_of_theory(self, node) -> dict:
        """Return what the calculation's ``.castep`` file says CASTEP ran with (header: cut-off, functional...)."""
        reported = self.read_retrieved(node.outputs.output_parameters, ('.castep',), castep_file_level_of_theory)
        if reported is None:
            raise LabelRefusal(
                'ERROR_MISSING_OUTPUTS',
                f'CastepBaseWorkChain<{node.pk}> kept no .castep file: the level of theory cannot be checked',
            )
        return reported

    def level_of_theory(self, node) -> dict:
        """Return the level-of-theory record from the inputs and the pseudopotentials CASTEP reports it used."""
        output_parameters = node.outputs.output_parameters
        parameters = {key.lower(): value for key, value in self.ctx.parameters.items()}
        fixed = bool(parameters.get('fix_occupancy', False)) or str(parameters.get('metals_method', 'dm')).lower() in (
            'none',
        )
        smearing = None
        if not fixed:
            smearing = {
                'type': parameters.get('smearing_scheme', 'gaussian'),
                'width_ev': float(parameters.get('smearing_width', 0.2)),
            }
        spacing = self.inputs.kpoint_spacing.value if 'kpoint_spacing' in self.inputs else None
        return castep_level_of_theory(
            cutoff_ev=_cutoff_ev(parameters.get('cut_off_energy')),
            xc_functional=parameters.get('xc_functional', 'LDA'),
            spin=bool(parameters.get('spin_polarized', False)),
            smearing=smearing,
            pseudopotentials=output_parameters.get('pseudo_pots', {}),
            kpoint_spacing=spacing,
            kpoints_mesh=self.kpoints_mesh(),
            version=output_parameters.get('castep_version'),
            hubbard=castep_hubbard_from_block(parameters.get('hubbard_u')),
            dispersion=parameters.get('sedc_scheme', 'TS') if _is_on(parameters.get('sedc_apply', False)) else None,
        )

    def normalise(self, node, level_of_theory: orm.Dict):
        """Return the label of aiida-castep's outputs, made by :func:`normalise_castep_outputs`."""
        outputs = node.outputs
        return normalise_castep_outputs(
            self.inputs.structure,
            outputs.output_parameters,
            outputs.output_array,
            level_of_theory,
            metadata={'call_link_label': 'normalise'},
        )
