"""Campaign specs: the YAML files in ``workflows/`` that a user edits and runs with ``aiida-sianode run``.

A spec names the starting structures (built by :mod:`aiida_sianode.structures` builders or read from files), the
labeler, the training, exploration and selection settings and the convergence criteria of one active-learning
campaign. :func:`load_spec` validates it completely before anything is stored or computed: unknown keys, wrong
types and impossible values (a lower trust level above the upper one, a fraction outside 0-1, an unknown builder,
labeler or protocol) are refused with the path of the offending key.

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

import pathlib
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROTOCOLS = ('fast', 'balanced', 'stringent')
LABELERS = ('gpaw', 'xtb', 'vasp', 'castep')
STRATEGIES = ('trust', 'maxvol', 'direct', 'random')


class SpecError(ValueError):
    """A campaign spec that cannot be run; the message lists every problem with the path of its key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)


class StructureSource(_Strict):
    """One entry of ``structures``: a builder with parameters and seeds, or a file (all frames) readable by ASE."""

    builder: str | None = Field(None, description='Kind of builder in aiida_sianode.structures.BUILDERS.')
    parameters: dict[str, Any] = Field(default_factory=dict, description='Keyword arguments of the builder.')
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description='One structure per seed.')
    file: str | None = Field(None, description='Path of a structure file, relative to the spec file.')
    index: str = Field(':', description='ASE index of the frames to read from `file`.')

    @model_validator(mode='after')
    def _one_source(self):
        if (self.builder is None) == (self.file is None):
            raise ValueError('give exactly one of `builder` or `file`')
        if self.builder is not None:
            from aiida_sianode.structures import BUILDERS, resolve_parameters

            if self.builder not in BUILDERS:
                raise ValueError(f'unknown builder `{self.builder}`; known: {", ".join(sorted(BUILDERS))}')
            resolve_parameters(self.builder, self.parameters)
        return self


class LabelerSpec(_Strict):
    """Which labeler makes the DFT labels, at which protocol."""

    name: Literal['gpaw', 'xtb', 'vasp', 'castep']
    protocol: Literal['fast', 'balanced', 'stringent'] = 'fast'
    overrides: dict[str, Any] = Field(default_factory=dict)
    code: str | None = Field(None, description='Code label; default sianode-label@localhost for gpaw and xtb.')


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
        if value is not None and any(abs(pressure) > 10.0 for pressure in value):
            raise ValueError('pressures are in GPa and at most 10 GPa (100 kbar) in magnitude')
        return value

    @model_validator(mode='after')
    def _pressures_need_npt(self):
        if self.pressures and not any(ensemble.startswith('npt') for ensemble in self.ensembles):
            raise ValueError('`pressures` are only used by NPT ensembles; add `npt` to `ensembles`')
        return self


class SelectionSpec(_Strict):
    """How frames are picked for labeling: trust levels on the committee's max force deviation (eV/Å)."""

    strategy: Literal['trust', 'maxvol', 'direct', 'random'] = 'trust'
    lower: float = Field(0.05, gt=0)
    upper: float = Field(0.5, gt=0)
    max_per_run: int = Field(2, gt=0)
    max_total: int = Field(10, gt=0)
    seed: int = 0
    # Calibrated trust levels (aiida_sianode.workflows.calibrate): `auto` sets lower / upper from the committee's
    # calibration after the first labelled iteration, where the predicted true max force error (eV/Å) reaches
    # target_force_error / max_force_error.
    trust: Literal['fixed', 'auto'] = 'fixed'
    target_force_error: float = Field(0.1, gt=0)
    max_force_error: float = Field(1.0, gt=0)
    calibration_method: Literal['scale', 'isotonic'] = 'scale'

    @model_validator(mode='after')
    def _ordered_levels(self):
        if self.lower >= self.upper:
            raise ValueError(f'lower trust level {self.lower} must be below the upper one {self.upper}')
        if self.target_force_error >= self.max_force_error:
            raise ValueError(
                f'target_force_error {self.target_force_error} must be below max_force_error {self.max_force_error}'
            )
        return self


class ConvergenceSpec(_Strict):
    """When the campaign stops."""

    accurate_fraction: float = Field(0.99, gt=0, le=1)
    max_iterations: int = Field(3, gt=0)
    max_labels: int = Field(100, gt=0)
    max_failed_label_fraction: float = Field(0.5, ge=0, le=1)
    # Criteria beside the accurate fraction (aiida_sianode.analysis.convergence); null switches one off.
    test_force_rmse: float | None = Field(None, gt=0, description='meV/Å, committee-mean force RMSE on test_set')
    property: Literal['density'] | None = None
    property_iterations: int = Field(2, gt=0)


class DatasetSpec(_Strict):
    """How the training set is split."""

    valid_fraction: float = Field(0.1, ge=0, lt=1)
    seed: int = 0
    allow_mixed: bool = False


class CampaignSpec(_Strict):
    """A whole campaign: what to start from and how to iterate."""

    name: str = Field(min_length=1)
    description: str = ''
    structures: list[StructureSource] = Field(min_length=1)
    explore_structures: list[StructureSource] | None = None
    labeler: LabelerSpec
    training: TrainingSpec = TrainingSpec()
    exploration: ExplorationSpec = ExplorationSpec()
    selection: SelectionSpec = SelectionSpec()
    convergence: ConvergenceSpec = ConvergenceSpec()
    dataset: DatasetSpec = DatasetSpec()
    test_set: int | str | None = Field(None, description='PK or UUID of a DatasetData of held-out labels.')


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = '.'.join(str(part) for part in item['loc']) or '<top>'
        message = item['msg'].removeprefix('Value error, ')
        if item['type'] == 'extra_forbidden':
            message = 'unknown key'
        lines.append(f'  {where}: {message}')
    return '\n'.join(lines)


def parse_spec(data: Any, source: str = '<spec>') -> CampaignSpec:
    """Validate ``data`` (the YAML's content) and return the :class:`CampaignSpec`.

    :raises SpecError: listing every problem with the path of its key.
    """
    if not isinstance(data, dict):
        raise SpecError(f'{source}: a campaign spec is a mapping of keys, got {type(data).__name__}')
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(f'{source} is not a valid campaign spec:\n{_format_errors(error)}') from None


def load_spec(path: str | pathlib.Path) -> CampaignSpec:
    """Read and validate the campaign spec at ``path``; relative structure files are resolved against its folder."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise SpecError(f'campaign spec `{path}` does not exist')
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SpecError(f'{path} is not valid YAML: {error}') from None
    spec = parse_spec(data, source=str(path))
    for entry in [*spec.structures, *(spec.explore_structures or [])]:
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
        else:
            frames = read(base / entry.file, index=entry.index)
            frames = frames if isinstance(frames, list) else [frames]
            stem = ''.join(char if char.isalnum() else '_' for char in pathlib.Path(entry.file).stem)
            for index, atoms in enumerate(frames):
                structure = orm.StructureData(ase=atoms).store()
                structure.base.extras.set_many({'sianode_source_file': entry.file, 'sianode_source_frame': index})
                structures[f'{stem}_{index:03d}'] = structure
    return structures
