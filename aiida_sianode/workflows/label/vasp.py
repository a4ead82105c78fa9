"""``VaspLabelWorkChain`` (``sianode.label.vasp``): one VASP single point through aiida-vasp, normalised to a label.

The work chain runs aiida-vasp's own ``vasp.vasp`` work chain (:class:`aiida_vasp.workchains.v2.vasp.VaspWorkChain`,
a ``BaseRestartWorkChain`` with VASP's error handlers), whose inputs it exposes in the ``vasp`` namespace, and turns
its ``misc`` output into a :class:`~aiida_sianode.data.label.LabelData` with the calcfunction
:func:`~aiida_sianode.workflows.label.normalise.normalise_vasp_outputs`.

The protocols (``label_vasp.yaml``) follow the seed paper's settings: PBE (PAW, ``GGA = PE``), ENCUT 520 eV, a
Γ-centred k-point mesh of spacing 0.35 Å^-1 (the 2π included, VASP's KSPACING convention:
``N_i = max(1, ceil(|b_i| / 0.35))`` with ``|b_i|`` the length of the reciprocal vector including 2π), Gaussian
smearing of 0.05 eV, EDIFF 1e-6 eV, one ionic step (``NSW = 0``, ``IBRION = -1``) with the stress (``ISIF = 2``), no
WAVECAR/CHGCAR. The POTCAR family and the element -> POTCAR mapping (``Li_sv``, ``Na_pv``...) are inputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.engine import ToContext
from aiida.plugins import WorkflowFactory
from ase.data import chemical_symbols

from aiida_sianode.data.importers import vasp_level_of_theory
from aiida_sianode.protocols import recursive_merge
from aiida_sianode.workflows.label.base import CommonLabelWorkChain
from aiida_sianode.workflows.label.normalise import LabelRefusal, check_vasp_misc, normalise_vasp_outputs

VaspWorkChain = WorkflowFactory('vasp.vasp')

__all__ = ('VaspLabelWorkChain', 'kpoints_from_spacing')


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


def _lookup(inputs: Mapping[str, Any] | None, *keys: str):
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


class VaspLabelWorkChain(CommonLabelWorkChain):
    """Label one structure with a VASP single point (energy, forces, stress) through aiida-vasp."""

    labeler = 'vasp'
    _protocol_file = 'label_vasp'

    @classmethod
    def define(cls, spec):
        """Define the inputs (aiida-vasp's in ``vasp``), the outline and the exit codes."""
        super().define(spec)
        spec.expose_inputs(VaspWorkChain, namespace='vasp', exclude=('structure', 'kpoints_spacing'))
        spec.input(
            'kpoint_spacing',
            valid_type=orm.Float,
            required=False,
            help='k-point spacing in 1/Å, 2π included (VASP KSPACING convention). Without `vasp.kpoints` the mesh is '
            'made from it; with `vasp.kpoints` that mesh must be the one this spacing gives. It is recorded in the '
            'level of theory.',
        )
        spec.outline(
            cls.setup,
            cls.run_vasp,
            cls.inspect_vasp,
            cls.results,
        )
        spec.exit_code(
            301, 'ERROR_INCOMPLETE_OUTPUT', message='The VASP output is incomplete, no label was made: {reason}'
        )
        spec.exit_code(
            430, 'ERROR_NOT_A_SINGLE_POINT', message='The VASP run was not a single point, no label was made: {reason}'
        )

    @classmethod
    def validate_inputs(cls, value, ctx) -> str | None:
        """Refuse a bad structure (base class), no k-points, or a k-point mesh that contradicts ``kpoint_spacing``."""
        message = super().validate_inputs(value, ctx)
        if message:
            return message
        if 'structure' not in value:
            return None
        kpoints = _lookup(value, 'vasp', 'kpoints')
        spacing = value.get('kpoint_spacing')
        if kpoints is None and spacing is None:
            return 'give `kpoint_spacing` (1/Å, 2π included) or a k-point mesh in `vasp.kpoints`'
        if kpoints is not None and spacing is not None:
            try:
                given = list(kpoints.get_kpoints_mesh()[0])
            except AttributeError:
                return '`vasp.kpoints` must be a mesh when `kpoint_spacing` is given'
            expected = list(kpoints_from_spacing(value['structure'], spacing.value).get_kpoints_mesh()[0])
            if given != expected:
                return (
                    f'the mesh {given} in `vasp.kpoints` is not the mesh {expected} of kpoint_spacing '
                    f'{spacing.value} 1/Å for this cell'
                )
        return None

    @classmethod
    def get_supported_elements(cls, inputs: Mapping[str, Any] | None = None) -> frozenset[str] | None:
        """Return the elements with a POTCAR in ``vasp.potential_mapping`` (keys are elements or kind names)."""
        mapping = _lookup(inputs, 'vasp', 'potential_mapping')
        if mapping is None:
            return super().get_supported_elements(inputs)
        mapping = mapping.get_dict() if isinstance(mapping, orm.Dict) else dict(mapping)
        supported = {key for key in mapping if key in chemical_symbols[1:]}
        structure = _lookup(inputs, 'structure')
        if isinstance(structure, orm.StructureData):
            supported |= {kind.symbol for kind in structure.kinds if kind.name in mapping}
        return frozenset(supported)

    @classmethod
    def get_builder_from_protocol_inputs(
        cls,
        code: orm.Code,
        structure: orm.StructureData,
        inputs: dict,
        options: dict | None = None,
        potential_mapping: Mapping[str, str] | None = None,
        **kwargs,
    ):
        """Return a builder from the merged protocol ``inputs`` (see ``protocols/label_vasp.yaml``).

        The INCAR is ``inputs['incar']``; the POTCARs are ``inputs['potential_family']`` with
        ``inputs['potential_mapping']`` restricted to the structure's kinds; the k-points are the Γ-centred mesh of
        ``inputs['kpoint_spacing']`` for this cell. ``options`` are merged over the protocol's calculation options.

        :param potential_mapping: ``{element: POTCAR symbol}`` merged over the protocol's mapping, to add elements
            the protocol does not list (overrides only change keys that exist) or choose another POTCAR.
        """
        from aiida_vasp.data.potcar import PotcarData

        if kwargs:
            raise ValueError(f'unexpected arguments for {cls.__name__}: {", ".join(sorted(kwargs))}')
        family = inputs['potential_family']
        if PotcarData.get_potcar_group(family) is None:
            raise ValueError(
                f'the POTCAR family `{family}` is not in this AiiDA profile: upload it with `aiida-vasp potcar '
                'uploadfamily --path <folder of POTCARs> --name <family>`, or choose another with '
                "overrides={'potential_family': ...}"
            )
        mapping = dict(inputs['potential_mapping'])
        mapping.update(potential_mapping or {})
        kinds = {kind.name: kind.symbol for kind in structure.kinds}
        restricted = {name: mapping[symbol] for name, symbol in kinds.items() if symbol in mapping}

        builder = cls.get_builder()
        builder.structure = structure
        builder.kpoint_spacing = orm.Float(inputs['kpoint_spacing'])
        builder.vasp.code = code
        builder.vasp.parameters = orm.Dict({'incar': dict(inputs['incar'])})
        builder.vasp.potential_family = orm.Str(family)
        builder.vasp.potential_mapping = orm.Dict(restricted)
        builder.vasp.kpoints = kpoints_from_spacing(structure, inputs['kpoint_spacing'])
        builder.vasp.max_iterations = orm.Int(inputs['max_iterations'])
        builder.vasp.clean_workdir = orm.Bool(inputs['clean_workdir'])
        calc_options = recursive_merge(inputs.get('options', {}), options or {})
        builder.vasp.calc.metadata.options = calc_options
        return builder

    def setup(self):
        """Build the inputs of the aiida-vasp work chain, the k-point mesh included when only a spacing is given."""
        inputs = self.exposed_inputs(VaspWorkChain, namespace='vasp')
        inputs['structure'] = self.inputs.structure
        if 'kpoints' not in inputs:
            inputs['kpoints'] = kpoints_from_spacing(self.inputs.structure, self.inputs.kpoint_spacing.value)
        self.ctx.inputs = inputs

    def run_vasp(self):
        """Run aiida-vasp's ``vasp.vasp`` work chain (it restarts VASP on the errors it knows)."""
        inputs = dict(self.ctx.inputs)
        inputs['metadata'] = {'call_link_label': 'vasp'}
        node = self.submit(VaspWorkChain, **inputs)
        self.report(f'launched VaspWorkChain<{node.pk}>')
        return ToContext(workchain=node)

    def _refuse(self, refusal: LabelRefusal):
        """Return the exit code of ``refusal``, with its reason in the message or in the report."""
        exit_code = self.exit_codes[refusal.exit_code]
        if '{reason}' in exit_code.message:
            return exit_code.format(reason=refusal.reason)
        self.report(refusal.reason)
        return exit_code

    def inspect_vasp(self):
        """Check that aiida-vasp's work chain finished and that its outputs make a single-point label."""
        node = self.ctx.workchain
        if not node.is_finished_ok:
            electronic = VaspWorkChain.exit_codes.ERROR_ELECTRONIC_STRUCTURE_NOT_CONVERGED.status
            self.report(f'VaspWorkChain<{node.pk}> failed with exit status {node.exit_status}: {node.exit_message}')
            if node.exit_status == electronic:
                return self.exit_codes.ERROR_SCF_NOT_CONVERGED
            return self.exit_codes.ERROR_CODE_FAILED
        if 'misc' not in node.outputs:
            self.report(f'VaspWorkChain<{node.pk}> finished without the `misc` output')
            return self.exit_codes.ERROR_MISSING_OUTPUTS
        try:
            check_vasp_misc(node.outputs.misc.get_dict(), natoms=len(self.inputs.structure.sites), require_stress=True)
        except LabelRefusal as refusal:
            return self._refuse(refusal)
        return None

    def _potcar_titles(self) -> dict[str, str]:
        """Return ``{element: POTCAR title}`` of the POTCARs the last VASP calculation used."""
        calculations = [node for node in self.ctx.workchain.called if isinstance(node, orm.CalcJobNode)]
        titles = {}
        if calculations:
            last = sorted(calculations, key=lambda node: node.ctime)[-1]
            for link in last.base.links.get_incoming(link_label_filter='potential__%').all():
                potcar = link.node
                element = potcar.base.attributes.get('element', None) or re.sub(r'\d+$', '', link.link_label[11:])
                titles[element] = potcar.base.attributes.get('title', '')
        if not titles:
            family = self.ctx.inputs['potential_family'].value
            mapping = self.ctx.inputs['potential_mapping'].get_dict()
            kinds = {kind.name: kind.symbol for kind in self.inputs.structure.kinds}
            titles = {kinds.get(name, name): f'{family}/{symbol}' for name, symbol in mapping.items()}
        return titles

    def results(self):
        """Make the label with a calcfunction of aiida-vasp's ``misc`` output, and attach it."""
        misc = self.ctx.workchain.outputs.misc
        incar = self.ctx.inputs['parameters'].get_dict().get('incar', {})
        spacing = self.inputs.kpoint_spacing.value if 'kpoint_spacing' in self.inputs else None
        record = vasp_level_of_theory(
            incar,
            potcar_titles=self._potcar_titles(),
            kpoint_spacing=spacing,
            kpoints_mesh=self.ctx.inputs['kpoints'].get_kpoints_mesh()[0],
            version=misc.get('version'),
        )
        label = normalise_vasp_outputs(
            self.inputs.structure, misc, orm.Dict(record), metadata={'call_link_label': 'normalise'}
        )
        self.out('label', label)
        self.report(f'labelled {label}')
