"""``LabelData``: one DFT (or xTB) single point of one structure, in normalised units.

Units and conventions, the same for every labeler:

* energy: eV, the total energy the code reports (for VASP and CASTEP the energy extrapolated to zero smearing,
  ``energy_sigma0`` / "Final free energy (E-0.5TS)" as ASE reads it; for GPAW ASE's ``get_potential_energy``).
* forces: eV/Å, shape ``(natoms, 3)``.
* stress: eV/Å^3, full ``3x3``, ASE's sign convention (positive = tensile, ``stress = -virial / volume``).
  Absent when the code gave none (molecules, xTB without a cell).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
from aiida import orm
from aiida.common.links import LinkType

from aiida_sianode.common import level_of_theory as lot

__all__ = ('LabelData', 'label_contents', 'labelling_calculation_ids')

_CREATE = {'type': LinkType.CREATE.value}
_INPUT_CALC = {'type': LinkType.INPUT_CALC.value}
_CALCFUNCTION_TYPE = 'process.calculation.calcfunction.'


class LabelData(orm.ArrayData):
    """A labelled structure: positions, cell, energy, forces, optional stress and the level of theory.

    The structure and the numbers live in arrays (``positions``, ``cell``, ``numbers``, ``pbc``, ``forces``,
    ``stress``), the scalars and records in attributes, so that ``QueryBuilder`` can filter on ``energy``,
    ``natoms``, ``formula``, ``elements``, ``fingerprint``, ``config_type`` and ``source``.
    """

    def __init__(
        self,
        atoms=None,
        *,
        energy: float | None = None,
        forces=None,
        stress=None,
        level_of_theory: dict | None = None,
        source: dict | None = None,
        config_type: str | None = None,
        **kwargs,
    ):
        """Build a label from ``atoms`` and its energy, forces and (optionally) stress.

        :param atoms: ``ase.Atoms``; when ``energy``/``forces``/``stress`` are not given they are taken from the
            calculator attached to ``atoms`` (for example a ``SinglePointCalculator`` from ``ase.io.read``).
        :param stress: 3x3 or Voigt-6 array in eV/Å^3 (ASE convention), or ``None``.
        :param level_of_theory: see :mod:`aiida_sianode.common.level_of_theory`.
        :param source: where the numbers come from, e.g. ``{'kind': 'file', 'filename': ..., 'sha256': ...,
            'frame': 3}`` or ``{'kind': 'calculation'}``.
        """
        super().__init__(**kwargs)
        if atoms is None:
            return
        attributes, arrays = label_contents(
            atoms,
            energy=energy,
            forces=forces,
            stress=stress,
            level_of_theory=level_of_theory,
            source=source,
            config_type=config_type,
        )
        for name, array in arrays.items():
            self.set_array(name, array)
        self.base.attributes.set_many(attributes)

    @property
    def energy(self) -> float:
        """Total energy in eV."""
        return self.base.attributes.get('energy')

    @property
    def energy_per_atom(self) -> float:
        """Total energy per atom in eV/atom."""
        return self.energy / self.natoms

    @property
    def natoms(self) -> int:
        """Number of atoms."""
        return self.base.attributes.get('natoms')

    @property
    def formula(self) -> str:
        """Hill formula of the structure."""
        return self.base.attributes.get('formula')

    @property
    def elements(self) -> list[str]:
        """Sorted chemical symbols present."""
        return self.base.attributes.get('elements')

    @property
    def forces(self) -> np.ndarray:
        """Forces in eV/Å, shape ``(natoms, 3)``."""
        return self.get_array('forces')

    @property
    def stress(self) -> np.ndarray | None:
        """Stress in eV/Å^3 (3x3, ASE sign convention) or ``None``."""
        return self.get_array('stress') if self.base.attributes.get('has_stress') else None

    @property
    def max_force(self) -> float:
        """Largest atomic force norm in eV/Å."""
        return self.base.attributes.get('max_force')

    @property
    def level_of_theory(self) -> dict:
        """The normalised level of theory record."""
        return self.base.attributes.get('level_of_theory')

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the level of theory settings, see :func:`aiida_sianode.common.level_of_theory.fingerprint`."""
        return self.base.attributes.get('fingerprint')

    @property
    def source(self) -> dict[str, Any]:
        """Where the label comes from (a calculation, or a file with its SHA-256 and frame index)."""
        return self.base.attributes.get('source')

    @property
    def config_type(self) -> str:
        """A free tag of the kind of structure (``crystal``, ``md``, ``active_learning``...)."""
        return self.base.attributes.get('config_type')

    def get_atoms(self):
        """Return an ``ase.Atoms`` with a ``SinglePointCalculator`` holding energy, forces and stress."""
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator
        from ase.stress import full_3x3_to_voigt_6_stress

        atoms = Atoms(
            numbers=self.get_array('numbers'),
            positions=self.get_array('positions'),
            cell=self.get_array('cell'),
            pbc=self.get_array('pbc').astype(bool),
        )
        results = {'energy': self.energy, 'free_energy': self.energy, 'forces': self.forces.copy()}
        if self.stress is not None:
            results['stress'] = full_3x3_to_voigt_6_stress(self.stress)
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info['config_type'] = self.config_type
        return atoms

    def get_structure(self) -> orm.StructureData:
        """Return an unstored ``StructureData`` of the labelled structure."""
        return orm.StructureData(ase=self.get_atoms())

    def __str__(self) -> str:
        return f'{self.formula} ({self.natoms} atoms) E={self.energy:.6f} eV'


def label_contents(
    atoms,
    *,
    energy: float | None = None,
    forces=None,
    stress=None,
    level_of_theory: dict | None = None,
    source: dict | None = None,
    config_type: str | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Return ``(attributes, arrays)`` of the label of ``atoms``: what :class:`LabelData` stores, checked.

    The one place where a label's numbers are validated and its attributes computed, shared by ``LabelData`` and
    the bulk path (:mod:`aiida_sianode.data.bulk`), so both store the same thing. The arguments are those of
    :class:`LabelData`.

    :raises ValueError: no atoms, a missing or non-finite energy, forces or stress of the wrong shape, no level of
        theory.
    """
    if len(atoms) == 0:
        raise ValueError('a label needs at least one atom')
    results = getattr(atoms.calc, 'results', {}) if atoms.calc is not None else {}
    if energy is None:
        energy = results.get('energy', results.get('free_energy'))
    if forces is None:
        forces = results.get('forces')
    if stress is None:
        stress = results.get('stress')
    if energy is None or not np.isfinite(energy):
        raise ValueError(f'a label needs a finite energy, got {energy!r}')
    if forces is None:
        raise ValueError('a label needs forces')
    forces = np.asarray(forces, dtype=float)
    if forces.shape != (len(atoms), 3) or not np.all(np.isfinite(forces)):
        raise ValueError(f'forces must be finite with shape ({len(atoms)}, 3), got {forces.shape}')
    if level_of_theory is None:
        raise ValueError('a label needs a level of theory')

    arrays = {
        'positions': np.asarray(atoms.get_positions(), dtype=float),
        'cell': np.asarray(atoms.get_cell()[:], dtype=float),
        'numbers': np.asarray(atoms.get_atomic_numbers(), dtype=int),
        'pbc': np.asarray(atoms.get_pbc(), dtype=int),
        'forces': forces,
    }
    if stress is not None:
        stress = np.asarray(stress, dtype=float)
        if stress.shape == (6,):
            from ase.stress import voigt_6_to_full_3x3_stress

            stress = voigt_6_to_full_3x3_stress(stress)
        if stress.shape != (3, 3) or not np.all(np.isfinite(stress)):
            raise ValueError(f'stress must be finite, 3x3 or Voigt-6, got shape {stress.shape}')
        arrays['stress'] = stress

    normalised = lot.normalise(level_of_theory)
    attributes = {
        'energy': float(energy),
        'natoms': len(atoms),
        'formula': atoms.get_chemical_formula(mode='hill'),
        'elements': sorted(set(atoms.get_chemical_symbols())),
        'max_force': float(np.linalg.norm(forces, axis=1).max()),
        'has_stress': stress is not None,
        'level_of_theory': normalised,
        'fingerprint': lot.fingerprint(normalised),
        'source': dict(source or {}),
        'config_type': config_type or 'default',
    }
    return attributes, arrays


def labelling_calculation_ids(entries: Iterable[tuple[int, str, dict | None]]) -> dict[str, tuple[int, str] | None]:
    """Return ``{label uuid: (pk, uuid) of the calculation that made it}``, ``None`` for labels imported from files.

    ``entries`` are ``(label pk, label uuid, label source attribute)``. A label created by a CalcJob (its parser)
    maps to that CalcJob. A label created by a calcfunction from a calculation's outputs maps to the CalcJob behind
    the calcfunction; when there is none, to the calcfunction. Two queries for any number of labels.
    """
    entries = list(entries)
    result: dict[str, tuple[int, str] | None] = {uuid: None for _, uuid, _ in entries}
    made = [pk for pk, _, source in entries if (source or {}).get('kind') != 'file']
    if not made:
        return result
    query = orm.QueryBuilder()
    query.append(LabelData, filters={'id': {'in': made}}, project=['uuid'], tag='label')
    query.append(
        orm.ProcessNode,
        with_outgoing='label',
        edge_filters=_CREATE,
        project=['id', 'uuid', 'node_type'],
        tag='creator',
    )
    creators = {uuid: (pk, creator_uuid, node_type) for uuid, pk, creator_uuid, node_type in query.iterall()}

    functions = sorted({pk for pk, _, node_type in creators.values() if node_type.startswith(_CALCFUNCTION_TYPE)})
    behind: dict[int, tuple[int, str]] = {}
    if functions:
        query = orm.QueryBuilder()
        query.append(orm.CalcFunctionNode, filters={'id': {'in': functions}}, project=['id'], tag='function')
        query.append(orm.Data, with_outgoing='function', edge_filters=_INPUT_CALC, tag='data')
        query.append(orm.CalcJobNode, with_outgoing='data', edge_filters=_CREATE, project=['id', 'uuid'], tag='job')
        query.order_by({'job': {'id': 'asc'}})
        for function_pk, job_pk, job_uuid in query.iterall():
            behind.setdefault(function_pk, (job_pk, job_uuid))
    for uuid, (pk, creator_uuid, _) in creators.items():
        result[uuid] = behind.get(pk, (pk, creator_uuid))
    return result


def split_by_level_of_theory(labels: list, reference: dict | None, *, iteration: int = 0) -> tuple[list, list]:
    """Return ``(compatible, set_aside)``: labels whose level of theory differs from ``reference`` (a training set's;
    ``None``: the most common one among ``labels``) are set aside, each as a record naming the differences.

    A label can differ when a labeler's SCF restart had to raise the smearing: the label is valid, but mixing it into
    a training set would mix levels of theory.
    """
    if reference is None:
        counts = Counter(label.fingerprint for label in labels)
        common = counts.most_common(1)[0][0]
        reference = next(label.level_of_theory for label in labels if label.fingerprint == common)
    compatible, set_aside = [], []
    for label in labels:
        found = lot.differences(reference, label.level_of_theory)
        if not found:
            compatible.append(label)
            continue
        creator = label.creator
        structure = creator.inputs.structure.uuid if creator and 'structure' in creator.inputs else None
        set_aside.append(
            {
                'iteration': iteration,
                'label': label.uuid,
                'structure': structure,
                'process': creator.pk if creator else None,
                'exit_status': 0,
                'message': 'level of theory differs from the training set: ' + '; '.join(found),
            }
        )
    return compatible, set_aside
