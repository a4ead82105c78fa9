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
from aiida.engine import ToContext
from aiida.plugins import WorkflowFactory
from ase.data import chemical_symbols

from aiida_sianode.data.importers import castep_level_of_theory
from aiida_sianode.protocols import recursive_merge
from aiida_sianode.workflows.label.base import CommonLabelWorkChain
from aiida_sianode.workflows.label.normalise import LabelRefusal, check_castep_outputs, normalise_castep_outputs
from aiida_sianode.workflows.label.vasp import _lookup, kpoints_from_spacing

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


class CastepLabelWorkChain(CommonLabelWorkChain):
    """Label one structure with a CASTEP single point (energy, forces, stress) through aiida-castep."""

    labeler = 'castep'
    _protocol_file = 'label_castep'

    @classmethod
    def define(cls, spec):
        """Define the inputs (aiida-castep's in ``castep``), the outline and the exit codes."""
        super().define(spec)
        spec.expose_inputs(CastepBaseWorkChain, namespace='castep', exclude=('calc.structure', 'kpoints_spacing'))
        spec.input(
            'kpoint_spacing',
            valid_type=orm.Float,
            required=False,
            help='k-point spacing in 1/Å, 2π included. Without `castep.calc.kpoints` the mesh is made from it; with '
            'it, that mesh must be the one this spacing gives. It is recorded in the level of theory.',
        )
        spec.outline(
            cls.setup,
            cls.run_castep,
            cls.inspect_castep,
            cls.results,
        )
        spec.exit_code(
            301, 'ERROR_INCOMPLETE_OUTPUT', message='The CASTEP output is incomplete, no label was made: {reason}'
        )
        spec.exit_code(
            430,
            'ERROR_NOT_A_SINGLE_POINT',
            message='The CASTEP run was not a single point, no label was made: {reason}',
        )

    @classmethod
    def validate_inputs(cls, value, ctx) -> str | None:
        """Refuse a bad structure (base class), a task other than a single point, or contradictory k-points."""
        message = super().validate_inputs(value, ctx)
        if message:
            return message
        parameters = _lookup(value, 'castep', 'calc', 'parameters')
        if parameters is not None:
            flat = {key.lower(): item for key, item in cls._flat_parameters(parameters).items()}
            task = str(flat.get('task', 'singlepoint')).replace('_', '').lower()
            if task not in ('singlepoint', 'energy'):
                return f'the CASTEP task is `{flat.get("task")}`: a label is a single point (task: singlepoint)'
        if 'structure' not in value:
            return None
        kpoints = _lookup(value, 'castep', 'calc', 'kpoints')
        spacing = value.get('kpoint_spacing')
        if kpoints is None and spacing is None:
            return 'give `kpoint_spacing` (1/Å, 2π included) or a k-point mesh in `castep.calc.kpoints`'
        if kpoints is not None and spacing is not None:
            try:
                given = list(kpoints.get_kpoints_mesh()[0])
            except AttributeError:
                return '`castep.calc.kpoints` must be a mesh when `kpoint_spacing` is given'
            expected = list(kpoints_from_spacing(value['structure'], spacing.value).get_kpoints_mesh()[0])
            if given != expected:
                return (
                    f'the mesh {given} in `castep.calc.kpoints` is not the mesh {expected} of kpoint_spacing '
                    f'{spacing.value} 1/Å for this cell'
                )
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
        pseudos = _lookup(inputs, 'castep', 'calc', 'pseudos')
        if pseudos:
            names = set(pseudos)
            supported = {name for name in names if name in chemical_symbols[1:]}
            structure = _lookup(inputs, 'structure')
            if isinstance(structure, orm.StructureData):
                supported |= {kind.symbol for kind in structure.kinds if kind.name in names}
            return frozenset(supported)
        family = _lookup(inputs, 'castep', 'pseudos_family')
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
        """Build the inputs of aiida-castep's work chain, the k-point mesh included when only a spacing is given."""
        inputs = self.exposed_inputs(CastepBaseWorkChain, namespace='castep')
        calc = dict(inputs['calc'])
        calc['structure'] = self.inputs.structure
        if 'kpoints' not in calc:
            calc['kpoints'] = kpoints_from_spacing(self.inputs.structure, self.inputs.kpoint_spacing.value)
        inputs['calc'] = calc
        self.ctx.inputs = inputs
        self.ctx.parameters = self._flat_parameters(inputs['calc']['parameters'])

    def run_castep(self):
        """Run aiida-castep's ``castep.base`` work chain (it restarts CASTEP after SCF failures and timeouts)."""
        inputs = dict(self.ctx.inputs)
        inputs['metadata'] = {'call_link_label': 'castep'}
        node = self.submit(CastepBaseWorkChain, **inputs)
        self.report(f'launched CastepBaseWorkChain<{node.pk}>')
        return ToContext(workchain=node)

    def _refuse(self, refusal: LabelRefusal):
        """Return the exit code of ``refusal``, with its reason in the message or in the report."""
        exit_code = self.exit_codes[refusal.exit_code]
        if '{reason}' in exit_code.message:
            return exit_code.format(reason=refusal.reason)
        self.report(refusal.reason)
        return exit_code

    def inspect_castep(self):
        """Check that aiida-castep's work chain finished and that its outputs make a single-point label."""
        node = self.ctx.workchain
        if not node.is_finished_ok:
            self.report(
                f'CastepBaseWorkChain<{node.pk}> failed with exit status {node.exit_status}: {node.exit_message}'
            )
            if node.exit_status == CastepBaseWorkChain.exit_codes.ERROR_SCF_FAILURE.status:
                return self.exit_codes.ERROR_SCF_NOT_CONVERGED
            return self.exit_codes.ERROR_CODE_FAILED
        missing = [name for name in ('output_parameters', 'output_array') if name not in node.outputs]
        if missing:
            if 'output_trajectory' in node.outputs:
                return self._refuse(
                    LabelRefusal('ERROR_NOT_A_SINGLE_POINT', 'CASTEP wrote a trajectory (several configurations)')
                )
            self.report(f'CastepBaseWorkChain<{node.pk}> finished without {", ".join(missing)}')
            return self.exit_codes.ERROR_MISSING_OUTPUTS
        arrays = {
            name: node.outputs.output_array.get_array(name) for name in node.outputs.output_array.get_arraynames()
        }
        calculate_stress = bool(self.ctx.parameters.get('calculate_stress', False))
        try:
            check_castep_outputs(
                node.outputs.output_parameters.get_dict(),
                arrays,
                task=self.ctx.parameters.get('task', 'singlepoint'),
                natoms=len(self.inputs.structure.sites),
                require_stress=calculate_stress,
            )
        except LabelRefusal as refusal:
            return self._refuse(refusal)
        return None

    def _level_of_theory(self, output_parameters: orm.Dict) -> dict:
        """Return the level-of-theory record from the inputs and the pseudopotentials CASTEP reports it used."""
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
            kpoints_mesh=self.ctx.inputs['calc']['kpoints'].get_kpoints_mesh()[0],
            version=output_parameters.get('castep_version'),
        )

    def results(self):
        """Make the label with a calcfunction of aiida-castep's outputs, and attach it."""
        outputs = self.ctx.workchain.outputs
        record = self._level_of_theory(outputs.output_parameters)
        label = normalise_castep_outputs(
            self.inputs.structure,
            outputs.output_parameters,
            outputs.output_array,
            orm.Dict(record),
            metadata={'call_link_label': 'normalise'},
        )
        self.out('label', label)
        self.report(f'labelled {label}')
