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
from aiida.plugins import WorkflowFactory
from ase.data import chemical_symbols

from aiida_sianode.common.level_of_theory import vasp_level_of_theory
from aiida_sianode.data.importers.vasp import vasp_file_level_of_theory
from aiida_sianode.protocols import recursive_merge
from aiida_sianode.workflows.label.base import ExternalLabelWorkChain, kpoints_from_spacing, lookup
from aiida_sianode.workflows.label.normalise import LabelRefusal, check_vasp_misc, normalise_vasp_outputs

VaspWorkChain = WorkflowFactory('vasp.vasp')

__all__ = ('VaspLabelWorkChain', 'kpoints_from_spacing')


class VaspLabelWorkChain(ExternalLabelWorkChain):
    """Label one structure with a VASP single point (energy, forces, stress) through aiida-vasp."""

    labeler = 'vasp'
    _protocol_file = 'label_vasp'
    _child_class = VaspWorkChain
    _child_namespace = 'vasp'
    _child_exclude = ('structure', 'kpoints_spacing')
    _child_scf_exit_code = 'ERROR_ELECTRONIC_STRUCTURE_NOT_CONVERGED'
    _code_name = 'VASP'

    @classmethod
    def get_supported_elements(cls, inputs: Mapping[str, Any] | None = None) -> frozenset[str] | None:
        """Return the elements with a POTCAR in ``vasp.potential_mapping`` (keys are elements or kind names)."""
        mapping = lookup(inputs, 'vasp', 'potential_mapping')
        if mapping is None:
            return super().get_supported_elements(inputs)
        mapping = mapping.get_dict() if isinstance(mapping, orm.Dict) else dict(mapping)
        supported = {key for key in mapping if key in chemical_symbols[1:]}
        structure = lookup(inputs, 'structure')
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

    def check_child_outputs(self, node) -> None:
        """Refuse a child without ``misc``, or whose ``misc`` is not a converged single point with a stress."""
        if 'misc' not in node.outputs:
            raise LabelRefusal('ERROR_MISSING_OUTPUTS', f'VaspWorkChain<{node.pk}> finished without the `misc` output')
        check_vasp_misc(node.outputs.misc.get_dict(), natoms=len(self.inputs.structure.sites), require_stress=True)

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

    def level_of_theory(self, node) -> dict:
        """Return the record of the INCAR given, the POTCARs used, the k-points and the version VASP reports."""
        incar = self.ctx.inputs['parameters'].get_dict().get('incar', {})
        spacing = self.inputs.kpoint_spacing.value if 'kpoint_spacing' in self.inputs else None
        return vasp_level_of_theory(
            incar,
            potcar_titles=self._potcar_titles(),
            kpoint_spacing=spacing,
            kpoints_mesh=self.kpoints_mesh(),
            version=node.outputs.misc.get('version'),
        )

    def reported_level_of_theory(self, node) -> dict:
        """Return what the calculation's ``vasprun.xml`` (else its ``OUTCAR``) says VASP ran with."""
        reported = self.read_retrieved(node.outputs.misc, ('vasprun.xml', 'OUTCAR'), vasp_file_level_of_theory)
        if reported is None:
            raise LabelRefusal(
                'ERROR_MISSING_OUTPUTS',
                f'VaspWorkChain<{node.pk}> kept no vasprun.xml or OUTCAR: the level of theory cannot be checked',
            )
        return reported

    def normalise(self, node, level_of_theory: orm.Dict):
        """Return the label of aiida-vasp's ``misc`` output, made by :func:`normalise_vasp_outputs`."""
        return normalise_vasp_outputs(
            self.inputs.structure, node.outputs.misc, level_of_theory, metadata={'call_link_label': 'normalise'}
        )
