"""Campaign specs: the YAML files in ``workflows/`` that a user edits and runs with ``aiida-sianode run``.

A spec names the starting structures (built by :mod:`aiida_sianode.structures` builders or read from files), the
labeler, the training, exploration and selection settings and the convergence criteria of one active-learning
campaign. :func:`load_spec` validates it completely before anything is stored or computed: unknown keys, wrong
types and impossible values (a lower trust level above the upper one, a fraction outside 0-1, an unknown builder,
labeler or protocol, a pressure beyond the barostat's range) are refused with the path of the offending key.
:func:`preflight` then builds every structure in memory, without storing anything, and refuses a spec whose builder
cannot reach its packing density or whose structures hold an element the labeler cannot do (the GPAW setups, the
GFN1-xTB parameters, the VASP protocol's POTCAR mapping; CASTEP's on-the-fly C19 library takes any element).

Example (``workflows/si_lixsi_xtb.yaml``)::

    name: si-lixsi-xtb
    structures:
      - builder: si-crystal
        parameters: {repeat: [1, 1, 1], rattle: 0.05}
        seeds: [1, 2]
      - file: my_cells.extxyz
    labeler: {name: xtb, protocol: fast}
    training: {protocol: fast, committee_size: 3}
    exploration: {protocol: fast, ensembles: [nvt], temperatures: [300, 900], steps: 200}
    selection: {strategy: trust, lower: 0.05, upper: 0.5, max_per_run: 2, max_total: 6}
    convergence: {accurate_fraction: 0.99, max_iterations: 3, max_labels: 40}
"""

from __future__ import annotations

import functools
import pathlib
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aiida_sianode.common.validation import LABELERS
from aiida_sianode.common.yaml_models import format_errors, read_yaml, validate_mapping
from aiida_sianode.protocols import load_protocol_file, recursive_merge
from aiida_sianode.selection.strategies import STRATEGIES

#: The campaign's protocol file (``aiida_sianode/protocols/active_learning.yaml``): every campaign default.
PROTOCOL_FILE = 'active_learning'
#: The sections of a campaign whose defaults the protocol file holds.
SETTINGS_SECTIONS = ('selection', 'convergence', 'dataset')


class SpecError(ValueError):
    """A campaign spec that cannot be run; the message lists every problem with the path of its key."""


@functools.cache
def _protocol_data() -> dict:
    return load_protocol_file(PROTOCOL_FILE)


def campaign_defaults(protocol: str | None = None) -> dict:
    """Return ``{'selection': {...}, 'convergence': {...}, 'dataset': {...}}``: the campaign protocol's settings.

    :raises ValueError: for an unknown protocol.
    """
    data = _protocol_data()
    protocol = protocol or data['default_protocol']
    if protocol not in data['protocols']:
        raise ValueError(f'unknown campaign protocol `{protocol}`; choose one of: {", ".join(data["protocols"])}')
    selected = {key: value for key, value in data['protocols'][protocol].items() if key != 'description'}
    return recursive_merge(data['default_inputs'], selected)


def default_trust_levels() -> tuple[float, float]:
    """Return the default ``(lower, upper)`` trust levels in eV/Å, the campaign protocol's (one source for all)."""
    selection = _protocol_data()['default_inputs']['selection']
    return selection['lower'], selection['upper']


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)


class PresampleSource(_Strict):
    """A LAMMPS melt-quench (:class:`~aiida_sianode.workflows.presample.PresampleWorkChain`) per seed.

    ``a-c``: Tersoff, density kept; ``a-si``: Stillinger-Weber (VBWM), NPT quench. The melt-quenched structure is the
    work chain's output, so the campaign's starting structure records how it was made.
    """

    material: Literal['a-si', 'a-c'] = Field(description='a-si (Stillinger-Weber) or a-c (Tersoff).')
    natoms: int = Field(64, ge=2, description='Atoms in the random starting cell.')
    density: float | None = Field(None, gt=0, description='Starting density in g/cm^3 [a-si 2.28, a-c 2.5].')
    protocol: Literal['fast', 'balanced', 'stringent'] = Field(
        'balanced', description='Quench rate: fast 100 K/ps, balanced 10 K/ps, stringent 1 K/ps.'
    )
    quench_rate: float | None = Field(None, gt=0, description="Quench rate in K/ps, over the protocol's.")
    code: str = Field('lammps@localhost', description='The LAMMPS code (`aiida-sianode setup` makes lammps@localhost).')

    def random_cell(self) -> dict:
        from aiida_sianode.structures.melt_quench import presample_random_cell

        return presample_random_cell(self.material, self.natoms, self.density)


class StructureSource(_Strict):
    """One entry of ``structures``: a builder with parameters and seeds, a file (all frames) readable by ASE, or a
    LAMMPS melt-quench (``presample``) per seed."""

    builder: str | None = Field(None, description='Kind of builder in aiida_sianode.structures.BUILDERS.')
    parameters: dict[str, Any] = Field(default_factory=dict, description='Keyword arguments of the builder.')
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description='One structure per seed.')
    file: str | None = Field(None, description='Path of a structure file, relative to the spec file.')
    index: str = Field(':', description='ASE index of the frames to read from `file`.')
    presample: PresampleSource | None = Field(None, description='A melt-quenched a-Si or a-C cell per seed.')

    @model_validator(mode='after')
    def _one_source(self):
        if sum(item is not None for item in (self.builder, self.file, self.presample)) != 1:
            raise ValueError('give exactly one of `builder`, `file` or `presample`')
        if self.presample is not None:
            from aiida_sianode.structures.melt_quench import check_random_cell

            for seed in self.seeds:
                if not 1 <= seed <= 900_000_000:
                    raise ValueError(f"a presample seed seeds LAMMPS's velocities: 1 to 900000000, got {seed}")
                check_random_cell(self.presample.random_cell(), seed)
        if self.builder is not None:
            from aiida_sianode.structures import BUILDERS, resolve_parameters

            if self.builder not in BUILDERS:
                raise ValueError(f'unknown builder `{self.builder}`; known: {", ".join(sorted(BUILDERS))}')
            resolve_parameters(self.builder, self.parameters)
        return self


class LabelerSpec(_Strict):
    """Which labeler makes the DFT labels, at which protocol."""

    name: str = Field(description=f'One of {", ".join(LABELERS)}.')
    protocol: Literal['fast', 'balanced', 'stringent'] = 'fast'
    overrides: dict[str, Any] = Field(default_factory=dict)
    code: str | None = Field(None, description='Code label; default sianode-label@localhost for gpaw and xtb.')

    @field_validator('name')
    @classmethod
    def _known_labeler(cls, value):
        if value not in LABELERS:
            raise ValueError(f'unknown labeler `{value}`; choose one of: {", ".join(LABELERS)}')
        return value


class TrainingSpec(_Strict):
    """Committee training settings."""

    protocol: Literal['fast', 'balanced', 'stringent'] = 'fast'
    committee_size: int = Field(3, ge=2, le=16)
    overrides: dict[str, Any] = Field(default_factory=dict)
    code: str = 'sianode-train@localhost'


class ExplorationSpec(_Strict):
    """Committee MD settings: every structure is run at every temperature (and pressure, for NPT)."""

    protocol: Literal['fast', 'balanced', 'stringent'] = 'fast'
    temperatures: list[float] = Field(default_factory=lambda: [300.0], min_length=1)
    pressures: list[float] | None = Field(None, description='GPa; only for NPT.')
    ensembles: list[
        Literal['nvt', 'npt', 'nvt_langevin', 'nvt_nose_hoover', 'nvt_bussi', 'npt_isotropic', 'npt_anisotropic']
    ] = Field(default_factory=lambda: ['nvt'], min_length=1)
    steps: int | None = Field(None, gt=0)
    overrides: dict[str, Any] = Field(default_factory=dict)
    code: str = 'sianode-explore@localhost'

    @field_validator('temperatures')
    @classmethod
    def _positive_temperatures(cls, value):
        if any(temperature <= 0 for temperature in value):
            raise ValueError('temperatures must be positive (K)')
        return value

    @field_validator('pressures')
    @classmethod
    def _pressure_range(cls, value):
        if value is not None:
            _check_pressures(value)
        return value

    @model_validator(mode='after')
    def _pressures_need_npt(self):
        if self.pressures and not any(ensemble.startswith('npt') for ensemble in self.ensembles):
            raise ValueError('`pressures` are only used by NPT ensembles; add `npt` to `ensembles`')
        pressures = self.overrides.get('pressures')
        if pressures is not None:
            _check_pressures(pressures if isinstance(pressures, list) else [pressures], where='overrides.pressures: ')
        return self


def _check_pressures(pressures: list, where: str = '') -> None:
    """Refuse a pressure the exploration engine's barostat does not take (|P| above its limit, in GPa)."""
    from aiida_sianode.engines.explore import MAX_PRESSURE_GPA

    beyond = [pressure for pressure in pressures if abs(float(pressure)) > MAX_PRESSURE_GPA]
    if beyond:
        raise ValueError(
            f'{where}pressure{"s" if len(beyond) > 1 else ""} {", ".join(f"{p:g}" for p in beyond)} GPa beyond the '
            f"barostat's range: pressures are in GPa and at most {MAX_PRESSURE_GPA:g} GPa "
            f'({MAX_PRESSURE_GPA * 10:g} kbar) in magnitude'
        )


class SelectionSettings(_Strict):
    """Every parameter of frame selection (:func:`aiida_sianode.workflows.select.select_frames`).

    Units: trust levels and deviations eV/Å for ``max_force_deviation`` (eV/atom for ``energy_std_per_atom``),
    ``r_max`` Å. The defaults here are those of a single selection (no caps); a campaign's come from its protocol.
    """

    strategy: str = Field('trust', description='A key of aiida_sianode.selection.strategies.STRATEGIES.')
    deviation: Literal['max_force_deviation', 'energy_std_per_atom'] = 'max_force_deviation'
    lower: float = Field(default_factory=lambda: default_trust_levels()[0], ge=0, allow_inf_nan=False)
    upper: float | None = Field(default_factory=lambda: default_trust_levels()[1], allow_inf_nan=False)
    max_per_run: int | None = Field(None, ge=0, strict=True)
    max_total: int | None = Field(None, ge=0, strict=True)
    include_accurate: bool = Field(True, strict=True)
    order: Literal['descending', 'random'] = 'descending'
    seed: int = Field(0, ge=0, strict=True)
    dedup_threshold: float | None = Field(None, ge=0, allow_inf_nan=False)
    descriptor: Literal['auto', 'mace', 'radial'] = 'auto'
    device: str = Field('cpu', description='A torch device name such as cpu or cuda.')
    per_element: bool = Field(False, strict=True)
    grade_threshold: float = Field(2.0, ge=1, allow_inf_nan=False)
    maxvol_tol: float = Field(0.05, ge=0, allow_inf_nan=False)
    regularization: float = Field(1e-3, gt=0, allow_inf_nan=False)
    n_clusters: int | None = Field(None, ge=1, strict=True)
    birch_threshold: float | None = Field(None, gt=0, allow_inf_nan=False)
    k_per_cluster: int = Field(1, ge=1, strict=True)
    explained_variance: float = Field(0.95, gt=0, le=1)
    r_max: float = Field(5.0, gt=0.5, allow_inf_nan=False)
    n_bins: int = Field(12, ge=1, strict=True)
    # Calibrated trust levels (aiida_sianode.workflows.calibrate): `auto` sets lower / upper from the committee's
    # calibration after the first labelled iteration, where the predicted true max force error (eV/Å) reaches
    # target_force_error / max_force_error.
    trust: Literal['fixed', 'auto'] = 'fixed'
    target_force_error: float = Field(0.1, gt=0, allow_inf_nan=False)
    max_force_error: float = Field(1.0, gt=0, allow_inf_nan=False)
    calibration_method: Literal['scale', 'isotonic'] = 'scale'

    @field_validator('strategy')
    @classmethod
    def _known_strategy(cls, value):
        if value not in STRATEGIES:
            raise ValueError(f'unknown strategy `{value}`; choose one of: {", ".join(STRATEGIES)}')
        return value

    @model_validator(mode='after')
    def _consistent(self):
        if self.upper is not None and not self.lower < self.upper:
            raise ValueError(f'the lower trust level {self.lower} must be below the upper one {self.upper}')
        if self.strategy == 'direct' and not (self.n_clusters or self.birch_threshold or self.max_total):
            raise ValueError('the direct strategy needs n_clusters, birch_threshold or max_total to size its clusters')
        if self.target_force_error >= self.max_force_error:
            raise ValueError(
                f'target_force_error {self.target_force_error} must be below max_force_error {self.max_force_error}'
            )
        return self


class ConvergenceSpec(_Strict):
    """When the campaign stops (defaults in the campaign protocol)."""

    accurate_fraction: float = Field(gt=0, le=1)
    max_iterations: int = Field(gt=0, strict=True)
    max_labels: int = Field(gt=0, strict=True)
    max_failed_label_fraction: float = Field(ge=0, le=1)
    # Criteria beside the accurate fraction (aiida_sianode.analysis.convergence); null switches one off.
    test_force_rmse: float | None = Field(gt=0, description='meV/Å, committee-mean force RMSE on test_set')
    property: Literal['density'] | None
    property_iterations: int = Field(gt=0, strict=True)


class DatasetSpec(_Strict):
    """How the training set is split (defaults in the campaign protocol)."""

    valid_fraction: float = Field(ge=0, lt=1)
    seed: int = Field(ge=0, strict=True)
    allow_mixed: bool = Field(strict=True)


#: The model that validates each section of :data:`SETTINGS_SECTIONS`.
SETTINGS_MODELS: dict[str, type[_Strict]] = {
    'selection': SelectionSettings,
    'convergence': ConvergenceSpec,
    'dataset': DatasetSpec,
}


def validate_settings(section: str, values: dict | None, protocol: str | None = None) -> dict:
    """Return the campaign protocol's ``section`` updated with ``values``, validated by its model.

    :raises ValueError: naming every bad key, e.g. ``selection.upper: ...``.
    """
    merged = {**campaign_defaults(protocol)[section], **(values or {})}
    try:
        return SETTINGS_MODELS[section].model_validate(merged).model_dump()
    except ValidationError as error:
        raise ValueError(
            '; '.join(line.strip() for line in format_errors(error, prefix=section).splitlines())
        ) from None


class CampaignSpec(_Strict):
    """A whole campaign: what to start from and how to iterate."""

    name: str = Field(min_length=1)
    description: str = ''
    structures: list[StructureSource] = Field(min_length=1)
    explore_structures: list[StructureSource] | None = None
    labeler: LabelerSpec
    training: TrainingSpec = TrainingSpec()
    exploration: ExplorationSpec = ExplorationSpec()
    selection: SelectionSettings
    convergence: ConvergenceSpec
    dataset: DatasetSpec
    test_set: int | str | None = Field(None, description='PK or UUID of a DatasetData of held-out labels.')
    test_structures: list[StructureSource] | None = Field(
        None, description='Held-out structures, labelled once by the labeler before the first training: the test set.'
    )

    @model_validator(mode='after')
    def _one_test_set(self):
        if self.test_set is not None and self.test_structures:
            raise ValueError('give `test_set` (a stored dataset) or `test_structures` (to label), not both')
        return self

    @model_validator(mode='before')
    @classmethod
    def _protocol_defaults(cls, data):
        """Fill ``selection``, ``convergence`` and ``dataset`` from the campaign protocol, key by key."""
        if isinstance(data, dict):
            defaults = campaign_defaults()
            data = dict(data)
            for section in SETTINGS_SECTIONS:
                given = data.get(section) or {}
                data[section] = {**defaults[section], **given} if isinstance(given, dict) else given
        return data


def parse_spec(data: Any, source: str = '<spec>') -> CampaignSpec:
    """Validate ``data`` (the YAML's content) and return the :class:`CampaignSpec`.

    :raises SpecError: listing every problem with the path of its key.
    """
    return validate_mapping(data, CampaignSpec, SpecError, source, 'campaign spec')


def load_spec(path: str | pathlib.Path) -> CampaignSpec:
    """Read and validate the campaign spec at ``path``; relative structure files are resolved against its folder."""
    path = pathlib.Path(path)
    spec = parse_spec(read_yaml(path, SpecError, 'campaign spec'), source=str(path))
    for entry in [*spec.structures, *(spec.explore_structures or []), *(spec.test_structures or [])]:
        if entry.file is not None and not (path.parent / entry.file).is_file():
            raise SpecError(f'{path}: structure file `{entry.file}` not found next to the spec')
    return spec


def build_structures(sources: list[StructureSource], base: pathlib.Path) -> dict[str, Any]:
    """Return ``{name: StructureData}`` for the structure entries, stored with provenance.

    Builder entries run the ``build_structure`` calcfunction once per seed (so each structure records its builder,
    parameters and seed); file entries store every frame read by ASE, with the file name and frame as extras.
    """
    from aiida import orm
    from ase.io import read

    from aiida_sianode.structures.calcfunctions import store_structure

    structures = {}
    for number, entry in enumerate(sources):
        if entry.builder is not None:
            for seed in entry.seeds:
                name = f'{entry.builder}_{number:02d}_seed{seed}'.replace('-', '_')
                structures[name] = store_structure(entry.builder, entry.parameters, seed)
        elif entry.presample is not None:
            for seed in entry.seeds:
                structures[_presample_name(entry, number, seed)] = run_presample(entry.presample, seed)
        else:
            frames = read(base / entry.file, index=entry.index)
            frames = frames if isinstance(frames, list) else [frames]
            stem = ''.join(char if char.isalnum() else '_' for char in pathlib.Path(entry.file).stem)
            for index, atoms in enumerate(frames):
                structure = orm.StructureData(ase=atoms).store()
                structure.base.extras.set_many({'sianode_source_file': entry.file, 'sianode_source_frame': index})
                structures[f'{stem}_{index:03d}'] = structure
    return structures


def presample_codes(spec: CampaignSpec) -> list[str]:
    """The LAMMPS codes of the spec's ``presample`` structures, each once, in order."""
    entries = [*spec.structures, *(spec.explore_structures or []), *(spec.test_structures or [])]
    return list(dict.fromkeys(entry.presample.code for entry in entries if entry.presample is not None))


def _presample_name(entry: StructureSource, number: int, seed: int) -> str:
    return f'presample_{entry.presample.material}_{number:02d}_seed{seed}'.replace('-', '_')


def run_presample(source: PresampleSource, seed: int):
    """Run the melt-quench of ``source`` with ``seed`` here (LAMMPS through AiiDA) and return its output structure.

    :raises ValueError: the code is missing, or the work chain failed (its exit status and message).
    """
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent
    from aiida.engine import run_get_node

    from aiida_sianode.workflows.presample import PresampleWorkChain

    try:
        code = orm.load_code(source.code)
    except (NotExistent, MultipleObjectsError, ValueError):
        raise ValueError(
            f'presample: no code `{source.code}` (`aiida-sianode setup` creates lammps@localhost)'
        ) from None
    builder = PresampleWorkChain.get_builder_for_material(
        code,
        source.material,
        seed=seed,
        natoms=source.natoms,
        density=source.density,
        protocol=source.protocol,
        quench_rate=source.quench_rate,
    )
    _, node = run_get_node(builder)
    if not node.is_finished_ok:
        raise ValueError(
            f'presample {source.material} (seed {seed}): PresampleWorkChain<{node.pk}> failed with exit status '
            f'{node.exit_status}: {node.exit_message}'
        )
    return node.outputs.structure


#: The protocol file of each labeler (``aiida_sianode/protocols/label_<name>.yaml``).
LABELER_PROTOCOL_FILES = {'gpaw': 'label_gpaw', 'xtb': 'label_xtb', 'vasp': 'label_vasp', 'castep': 'label_castep'}


def labeler_inputs(labeler: LabelerSpec) -> dict:
    """Return the labeler's protocol inputs with the spec's overrides merged in (unknown override keys refused).

    :raises aiida_sianode.protocols.ProtocolError: for an override key the labeler's protocol does not have.
    """
    from aiida_sianode.protocols import ProtocolMixin

    protocols = type('LabelerProtocol', (ProtocolMixin,), {'_protocol_file': LABELER_PROTOCOL_FILES[labeler.name]})
    return protocols.get_protocol_inputs(labeler.protocol, dict(labeler.overrides) or None)


def spec_labeler_elements(labeler: LabelerSpec) -> frozenset[str] | None:
    """Return the elements the spec's labeler can label, ``None`` when any element goes.

    GPAW: the elements with a PBE PAW setup; xTB: GFN1's H-Rn; VASP: the keys of the protocol's POTCAR mapping
    (``potential_mapping`` of ``protocols/label_vasp.yaml``); CASTEP: ``None`` (the C19 on-the-fly library; a
    family of files is checked against the profile by ``aiida-sianode run --dry-run``).
    """
    from aiida_sianode.common.validation import labeler_elements

    inputs = labeler_inputs(labeler)
    if labeler.name == 'vasp':
        return frozenset(inputs['potential_mapping'])
    return labeler_elements(labeler.name)


@dataclass
class PlannedStructure:
    """One structure a spec will build, built in memory by :func:`preflight` (nothing stored)."""

    section: str
    """``structures`` (labelled first), ``explore_structures`` (MD starts) or ``test_structures`` (held out)."""
    name: str
    """The name :func:`build_structures` gives it."""
    source: str
    """The builder, or the file it comes from."""
    seed: int | None
    atoms: Any

    def summary(self) -> dict:
        """A JSON-friendly row: section, name, source, seed, formula, atom count, elements and density (g/cm^3)."""
        from aiida_sianode.structures.common import mass_density

        periodic = bool(self.atoms.pbc.all()) and self.atoms.get_volume() > 0
        return {
            'section': self.section,
            'name': self.name,
            'source': self.source,
            'seed': self.seed,
            'formula': self.atoms.get_chemical_formula(),
            'natoms': len(self.atoms),
            'elements': sorted(set(self.atoms.get_chemical_symbols())),
            'density_g_cm3': round(mass_density(self.atoms), 3) if periodic else None,
        }


def _planned(sources: list[StructureSource], section: str, base: pathlib.Path, problems: list[str]) -> list:
    """Build every structure of ``sources`` in memory; append the reason of every failure to ``problems``."""
    from ase.io import read

    from aiida_sianode.structures import build
    from aiida_sianode.structures.common import StructureBuildError

    planned = []
    for number, entry in enumerate(sources):
        if entry.builder is not None:
            for seed in entry.seeds:
                name = f'{entry.builder}_{number:02d}_seed{seed}'.replace('-', '_')
                try:
                    atoms = build(entry.builder, entry.parameters, seed)
                except StructureBuildError as error:
                    problems.append(f'{section}[{number}] ({entry.builder}, seed {seed}): {error}')
                    continue
                planned.append(PlannedStructure(section, name, entry.builder, seed, atoms))
        elif entry.presample is not None:
            # the random starting cell, built as the melt-quench builds it: same composition and count, its density
            # (kept through a-C's quench; a-Si's NPT quench finds its own)
            from aiida_sianode.structures.melt_quench import random_cell_request

            kind, parameters = random_cell_request(entry.presample.random_cell())
            for seed in entry.seeds:
                atoms = build(kind, parameters, seed)
                source = f'presample {entry.presample.material}'
                planned.append(PlannedStructure(section, _presample_name(entry, number, seed), source, seed, atoms))
        else:
            try:
                frames = read(base / entry.file, index=entry.index)
            except Exception as error:  # ASE raises many kinds for unreadable files
                problems.append(f'{section}[{number}] (file {entry.file}): cannot be read: {error}')
                continue
            frames = frames if isinstance(frames, list) else [frames]
            stem = ''.join(char if char.isalnum() else '_' for char in pathlib.Path(entry.file).stem)
            planned.extend(
                PlannedStructure(section, f'{stem}_{index:03d}', entry.file, None, atoms)
                for index, atoms in enumerate(frames)
            )
    return planned


def preflight(spec: CampaignSpec, base: str | pathlib.Path = '.') -> list[PlannedStructure]:
    """Build every structure of ``spec`` in memory and check it against the labeler; store and run nothing.

    Refused, all problems at once: a builder that fails (a packing density its distance floor cannot reach, a
    composition that does not fit its box), an override key the labeler's protocol does not have, and for every
    structure, those labelled first, the held-out test structures and the MD starts whose frames get labelled
    later: an element the labeler cannot do, a cell a plane-wave labeler cannot take, atoms closer than 0.5 Å.

    :param base: the folder that ``file`` entries are relative to (the spec's folder).
    :raises SpecError: naming every problem with the entry, builder and seed it comes from.
    """
    from ase.data import chemical_symbols

    from aiida_sianode.common.validation import (
        DEFAULT_MIN_DISTANCE,
        PLANE_WAVE_LABELERS,
        StructureValidationError,
        validate_structure,
    )
    from aiida_sianode.protocols import ProtocolError

    base = pathlib.Path(base)
    problems: list[str] = []
    try:
        elements = spec_labeler_elements(spec.labeler)
    except ProtocolError as error:
        problems.append(f'labeler.overrides: {error}')
        elements = None
    planned = _planned(spec.structures, 'structures', base, problems)
    if spec.explore_structures:
        planned += _planned(spec.explore_structures, 'explore_structures', base, problems)
    if spec.test_structures:
        planned += _planned(spec.test_structures, 'test_structures', base, problems)
    for structure in planned:
        try:
            validate_structure(
                structure.atoms,
                labeler=spec.labeler.name,
                supported_elements=elements if elements is not None else chemical_symbols[1:],
                needs_periodic=spec.labeler.name in PLANE_WAVE_LABELERS,
                min_distance=DEFAULT_MIN_DISTANCE,
            )
        except StructureValidationError as error:
            where = f'{structure.source}, seed {structure.seed}' if structure.seed is not None else structure.source
            problems.append(f'{structure.section} {structure.name} ({where}): {error}')
    if problems:
        raise SpecError(f'{spec.name}: refused before anything runs:\n  ' + '\n  '.join(problems))
    return planned
