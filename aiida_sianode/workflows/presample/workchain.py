"""Classical pre-sampling: melt-quench amorphous structures with LAMMPS through aiida-lammps.

:class:`PresampleWorkChain` (``sianode.presample``) makes amorphous starting structures for the DFT labels: it
melts a structure (a crystal supercell, or a random cell of Si or C of a given size and density), quenches the
liquid at a chosen rate, anneals it and relaxes it, each stage one ``lammps.base`` calculation of aiida-lammps
that continues from the previous one's restart file (positions, velocities, thermostat state). It returns the
quenched structure, optionally snapshots along the quench, and the measured density and coordination numbers.

The schedule (all stages LAMMPS ``metal`` units, Nosé-Hoover thermostat and barostat):

1. ``melt``: NVT at the starting volume and ``melt.temperature`` for ``melt.time``; velocities drawn from a
   Maxwell-Boltzmann distribution with ``seed``. The mean square displacement must pass
   :data:`~aiida_sianode.structures.melt_quench.MIN_MELT_MSD`, or the work chain stops with
   ``ERROR_NOT_MELTED``: a superheated 64-atom crystal can survive several ps at twice its melting point.
2. ``quench``: the target temperature falls linearly from ``melt.temperature`` to ``quench.final_temperature``
   at ``quench.rate`` (K/ps); NPT at ``pressure`` (``ensemble: npt``) or NVT (``ensemble: nvt``).
3. ``anneal``: ``anneal.time`` at ``anneal.temperature`` (default: the final temperature), same ensemble;
   skipped when the time is 0.
4. ``relax``: energy minimisation (conjugate gradients) of the positions, and of the cell (``fix box/relax
   iso``) under ``npt``; skipped when ``relax`` is false.

Units at the interface: timestep fs, times ps, temperatures K, quench rate K/ps (1 K/ps = 10^12 K/s),
pressure GPa, density g/cm^3, distances Å.

Layers: the schedule, random cell and cutoffs are plain functions in :mod:`aiida_sianode.structures.melt_quench`;
the LAMMPS inputs of each stage are plain functions in :mod:`.lammps`; the calcfunctions in :mod:`.calcfunctions`;
this module holds the work chain and its input validators.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_
from aiida_lammps.calculations.base import LammpsBaseCalculation
from aiida_lammps.data.potential import LammpsPotentialData
from aiida_lammps.data.trajectory import LammpsTrajectory

from aiida_sianode.protocols import ProtocolMixin, recursive_merge
from aiida_sianode.structures.common import minimum_distance
from aiida_sianode.structures.melt_quench import (
    DEFAULT_COORDINATION_CUTOFFS,
    MIN_MELT_MSD,
    check_random_cell,
    cutoffs_for_elements,
    melt_quench_schedule,
    parse_cutoffs,
    random_cell_request,
)
from aiida_sianode.workflows.presample import lammps
from aiida_sianode.workflows.presample.calcfunctions import analyse_presampled_structure, extract_snapshots

_MAX_SEED = 900_000_000
_MAX_TIMESTEP_FS = 5.0


def _validate_positive(node, _):
    if node.value <= 0:
        return f'must be positive, got {node.value}'
    return None


def _validate_not_negative(node, _):
    if node.value < 0:
        return f'cannot be negative, got {node.value}'
    return None


def _validate_timestep(node, _):
    if not 0 < node.value <= _MAX_TIMESTEP_FS:
        return f'the timestep must be in (0, {_MAX_TIMESTEP_FS}] fs, got {node.value} fs'
    return None


def _validate_ensemble(node, _):
    if node.value not in ('npt', 'nvt'):
        return f'the ensemble is `npt` or `nvt`, got `{node.value}`'
    return None


def _validate_seed(node, _):
    if not 1 <= node.value <= _MAX_SEED:
        return f'the seed must be an integer in [1, {_MAX_SEED}] (LAMMPS needs a positive seed), got {node.value}'
    return None


def _validate_random_cell(node, _):
    try:
        random_cell_request(node.get_dict())
    except ValueError as exception:
        return str(exception)
    return None


def _validate_cutoffs(node, _):
    try:
        parse_cutoffs(node.get_dict())
    except ValueError as exception:
        return str(exception)
    return None


def _validate_structure(structure, _):
    if len(structure.sites) == 0:
        return 'the structure has no atoms'
    if not all(structure.pbc):
        return f'the structure must be periodic in three directions for a bulk melt-quench, got pbc={structure.pbc}'
    if structure.get_cell_volume() < 1e-6:
        return 'the structure has a cell of zero volume'
    closest = minimum_distance(structure.get_ase(), cutoff=0.5)
    if closest < 0.5:
        return f'two atoms of the structure are {closest:.3f} Å apart (under 0.5 Å): a broken structure'
    return None


def validate_inputs(inputs, _):
    """Validate the top-level namespace: one starting structure, elements covered by the potential, temperatures."""
    has_structure = 'structure' in inputs
    has_random_cell = 'random_cell' in inputs
    if has_structure == has_random_cell:
        return 'give exactly one of `structure` and `random_cell`'
    if has_structure:
        elements = {kind.symbol for kind in inputs['structure'].kinds}
    else:
        elements = {inputs['random_cell'].get_dict()['element']}
    potential = inputs['potential']
    missing = sorted(elements - set(potential.species))
    if missing:
        return (
            f'the potential ({potential.pair_style}, {potential.filename}) has no parameters for {", ".join(missing)};'
            f' it covers {", ".join(potential.species)}'
        )
    melt = inputs['melt']['temperature'].value
    final = inputs['quench']['final_temperature'].value
    if not final < melt:
        return f'the final temperature ({final} K) must be below the melt temperature ({melt} K)'
    if 'temperature' in inputs.get('anneal', {}) and inputs['anneal']['temperature'].value >= melt:
        return f'the anneal temperature must be below the melt temperature ({melt} K)'
    if has_random_cell:
        try:
            check_random_cell(inputs['random_cell'].get_dict(), inputs['seed'].value)
        except ValueError as exception:
            return f'cannot build the random cell: {exception}'
    if 'coordination_cutoffs' in inputs:
        try:
            cutoffs_for_elements(elements, inputs['coordination_cutoffs'].get_dict())
        except ValueError as exception:
            return str(exception)
    else:
        try:
            cutoffs_for_elements(elements)
        except ValueError as exception:
            return f'{exception}: this pair has no default cutoff, give `coordination_cutoffs`'
    return None


class PresampleWorkChain(ProtocolMixin, WorkChain):
    """Melt, quench, anneal and relax a structure with a classical potential in LAMMPS; measure the result."""

    _protocol_file = 'presample'

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.expose_inputs(
            LammpsBaseCalculation,
            namespace='lammps',
            exclude=('structure', 'potential', 'parameters', 'input_restartfile', 'parent_folder', 'settings'),
            namespace_options={'help': 'Inputs of the LAMMPS calculations: the `code` and `metadata.options`.'},
        )
        spec.input(
            'structure',
            valid_type=orm.StructureData,
            required=False,
            validator=_validate_structure,
            help='Starting structure (for example a crystal supercell); or give `random_cell`.',
        )
        spec.input(
            'random_cell',
            valid_type=orm.Dict,
            required=False,
            validator=_validate_random_cell,
            help='Start from a random cubic cell: `{"element": "C", "natoms": 64, "density": 2.5}` (g/cm^3), '
            'optional `min_distance` (Å), built by `si-random` or `amorphous-carbon` with `seed`.',
        )
        spec.input(
            'potential',
            valid_type=LammpsPotentialData,
            help='The classical potential (see `aiida_sianode.potentials.get_potential_data`).',
        )
        spec.input('timestep', valid_type=orm.Float, validator=_validate_timestep, help='MD timestep in fs.')
        spec.input(
            'melt.temperature', valid_type=orm.Float, validator=_validate_positive, help='Melt temperature in K.'
        )
        spec.input('melt.time', valid_type=orm.Float, validator=_validate_positive, help='Melt time in ps.')
        spec.input(
            'quench.rate',
            valid_type=orm.Float,
            validator=_validate_positive,
            help='Quench rate in K/ps (1 K/ps = 10^12 K/s).',
        )
        spec.input(
            'quench.final_temperature',
            valid_type=orm.Float,
            validator=_validate_positive,
            help='Temperature at the end of the quench, in K.',
        )
        spec.input(
            'anneal.time',
            valid_type=orm.Float,
            default=lambda: orm.Float(0.0),
            validator=_validate_not_negative,
            help='Anneal time in ps after the quench; 0 skips it.',
        )
        spec.input(
            'anneal.temperature',
            valid_type=orm.Float,
            required=False,
            validator=_validate_positive,
            help='Anneal temperature in K; default the final temperature of the quench.',
        )
        spec.input(
            'ensemble',
            valid_type=orm.Str,
            default=lambda: orm.Str('npt'),
            validator=_validate_ensemble,
            help='`npt`: quench, anneal and relax at `pressure` (the density is a result); `nvt`: keep the '
            'volume of the starting structure (the density is an input).',
        )
        spec.input(
            'pressure',
            valid_type=orm.Float,
            default=lambda: orm.Float(0.0),
            help='Pressure in GPa for the `npt` ensemble.',
        )
        spec.input(
            'relax',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(True),
            help='Minimise the energy at the end (and the cell under `npt`).',
        )
        spec.input(
            'snapshots',
            valid_type=orm.Int,
            default=lambda: orm.Int(0),
            validator=_validate_not_negative,
            help='Number of structures to return along the quench, evenly spaced in temperature.',
        )
        spec.input(
            'seed',
            valid_type=orm.Int,
            default=lambda: orm.Int(12345),
            validator=_validate_seed,
            help='Seed of the initial velocities (and of the random cell unless it has its own).',
        )
        spec.input(
            'coordination_cutoffs',
            valid_type=orm.Dict,
            required=False,
            validator=_validate_cutoffs,
            help=f'Neighbour cutoffs in Å per pair, `{{"Si-Si": 2.85}}`; defaults: {DEFAULT_COORDINATION_CUTOFFS}.',
        )
        spec.inputs.validator = validate_inputs

        spec.outline(
            cls.setup,
            if_(cls.should_build_random_cell)(
                cls.build_random_cell,
            ),
            cls.run_melt,
            cls.inspect_melt,
            cls.run_quench,
            cls.inspect_quench,
            if_(cls.should_anneal)(
                cls.run_anneal,
                cls.inspect_anneal,
            ),
            if_(cls.should_relax)(
                cls.run_relax,
                cls.inspect_relax,
            ),
            cls.results,
        )

        spec.output('structure', valid_type=orm.StructureData, help='The melt-quenched (and relaxed) structure.')
        spec.output(
            'properties',
            valid_type=orm.Dict,
            help='Density (g/cm^3), mean coordination and coordination fractions (per element too), final '
            'potential energy per atom (eV), temperature (K) and pressure (GPa), the schedule run.',
        )
        spec.output('quench_trajectory', valid_type=LammpsTrajectory, help='Frames dumped along the quench.')
        spec.output_namespace(
            'snapshots',
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            help='Structures along the quench, `snapshot_00` hottest; labels give temperatures.',
        )

        spec.exit_code(201, 'ERROR_RANDOM_CELL', message='the random starting cell could not be built: {message}')
        spec.exit_code(
            301, 'ERROR_MISSING_OUTPUT', message='the {stage} calculation finished without its `{output}` output.'
        )
        spec.exit_code(
            401, 'ERROR_STAGE_FAILED', message='the {stage} calculation failed with exit status {status}: {message}'
        )
        spec.exit_code(
            402,
            'ERROR_NOT_MELTED',
            message='the structure did not melt: atoms moved on average only {msd:.2f} Å^2 (mean square '
            'displacement) during the melt, a liquid moves more than {threshold} Å^2; raise '
            '`melt.temperature` or `melt.time`.',
        )

    # ---------------------------------------------------------------------------------------------- protocols

    @classmethod
    def get_builder_for_material(
        cls,
        code: orm.AbstractCode,
        material: str,
        *,
        seed: int,
        natoms: int = 64,
        density: float | None = None,
        protocol: str | None = None,
        quench_rate: float | None = None,
        potential: str | None = None,
        snapshots: int = 0,
    ):
        """Return the builder of a melt-quench of ``material`` (``a-si`` or ``a-c``) from its random cell.

        The material's element, default density, distance floor and potential are those of
        :data:`aiida_sianode.structures.melt_quench.PRESAMPLE_MATERIALS`; ``quench_rate`` (K/ps) and ``snapshots``
        go over the protocol's. Used by ``aiida-sianode presample`` and by the ``presample`` entries of a campaign.
        """
        from aiida_sianode.structures.melt_quench import PRESAMPLE_MATERIALS, presample_random_cell

        overrides: dict = {'seed': seed, 'snapshots': snapshots}
        if quench_rate is not None:
            overrides['quench'] = {'rate': quench_rate}
        return cls.get_builder_from_protocol(
            code,
            protocol=protocol,
            overrides=overrides,
            potential=potential or PRESAMPLE_MATERIALS[material]['potential'],
            random_cell=presample_random_cell(material, natoms, density),
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        structure: orm.StructureData | None = None,
        protocol: str | None = None,
        overrides: dict | None = None,
        potential: str | None = None,
        random_cell: dict | None = None,
        options: dict | None = None,
    ):
        """Return a builder filled from ``protocol`` for ``structure`` (or for a ``random_cell``).

        :param code: the LAMMPS code (``lammps.base``), e.g. ``lammps@localhost``.
        :param structure: the starting structure; or ``None`` with ``random_cell``.
        :param protocol: ``fast``, ``balanced`` (default) or ``stringent``.
        :param overrides: merged over the protocol's inputs for the potential, e.g.
            ``{'quench': {'rate': 50.0}, 'seed': 7}``; unknown keys are refused.
        :param potential: ``sw``, ``sw-vbwm`` or ``tersoff`` (:mod:`aiida_sianode.potentials`); by default
            ``sw-vbwm`` for Si and ``tersoff`` for C and Si-C.
        :param random_cell: ``{'element': 'C', 'natoms': 64, 'density': 2.5}`` (g/cm^3), optional
            ``min_distance`` (Å), instead of ``structure``: a random cell built with the work chain's seed.
        :param options: merged over ``metadata.options`` of the LAMMPS calculations.
        """
        from aiida_sianode import potentials

        if (structure is None) == (random_cell is None):
            raise ValueError('give exactly one of `structure` and `random_cell`')
        if structure is not None:
            elements = {kind.symbol for kind in structure.kinds}
        else:
            random_cell_request(random_cell)
            elements = {random_cell['element']}
        name = potential or potentials.potential_for_elements(elements)
        info = potentials.get_potential_info(name)
        missing = sorted(elements - set(info.species))
        if missing:
            raise ValueError(f'the potential `{name}` has no parameters for {", ".join(missing)}')

        all_inputs = cls.get_protocol_inputs(protocol)
        if name not in all_inputs:
            raise ValueError(f'the protocol file has no inputs for the potential `{name}`')
        inputs = all_inputs[name]
        if overrides:
            inputs = recursive_merge(inputs, overrides, strict=True)

        builder = cls.get_builder()
        builder.lammps.code = code
        builder.lammps.metadata.options = recursive_merge(
            {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 3600},
            options or {},
        )
        if structure is not None:
            builder.structure = structure
        else:
            check_random_cell(random_cell, int(inputs['seed']))
            builder.random_cell = orm.Dict(dict(random_cell))
        builder.potential = potentials.get_potential_data(name)
        builder.timestep = orm.Float(inputs['timestep'])
        builder.melt.temperature = orm.Float(inputs['melt']['temperature'])
        builder.melt.time = orm.Float(inputs['melt']['time'])
        builder.quench.rate = orm.Float(inputs['quench']['rate'])
        builder.quench.final_temperature = orm.Float(inputs['quench']['final_temperature'])
        builder.anneal.time = orm.Float(inputs['anneal']['time'])
        if inputs['anneal'].get('temperature') is not None:
            builder.anneal.temperature = orm.Float(inputs['anneal']['temperature'])
        builder.ensemble = orm.Str(inputs['ensemble'])
        builder.pressure = orm.Float(inputs['pressure'])
        builder.relax = orm.Bool(inputs['relax'])
        builder.snapshots = orm.Int(inputs['snapshots'])
        builder.seed = orm.Int(inputs['seed'])
        if inputs.get('coordination_cutoffs'):
            builder.coordination_cutoffs = orm.Dict(inputs['coordination_cutoffs'])
        return builder

    # ---------------------------------------------------------------------------------------------- outline

    def setup(self):
        """Work out the number of steps of each stage and the analysis cutoffs."""
        anneal_temperature = self.inputs.anneal.get('temperature')
        self.ctx.final_temperature = self.inputs.quench.final_temperature.value
        self.ctx.anneal_temperature = (
            anneal_temperature.value if anneal_temperature is not None else self.ctx.final_temperature
        )
        self.ctx.schedule = melt_quench_schedule(
            timestep=self.inputs.timestep.value,
            melt_temperature=self.inputs.melt.temperature.value,
            melt_time=self.inputs.melt.time.value,
            quench_rate=self.inputs.quench.rate.value,
            final_temperature=self.ctx.final_temperature,
            anneal_time=self.inputs.anneal.time.value,
            snapshots=self.inputs.snapshots.value,
        )
        self.ctx.structure = self.inputs.get('structure')
        if 'random_cell' in self.inputs:
            elements = {self.inputs.random_cell.get_dict()['element']}
        else:
            elements = {kind.symbol for kind in self.inputs.structure.kinds}
        given = self.inputs.coordination_cutoffs.get_dict() if 'coordination_cutoffs' in self.inputs else None
        self.ctx.cutoffs = cutoffs_for_elements(elements, given)
        self.ctx.last = None

    def should_build_random_cell(self):
        """Return whether the starting structure is a random cell to build."""
        return 'random_cell' in self.inputs

    def build_random_cell(self):
        """Build the random starting cell with the project's structure builders (a calcfunction: linked)."""
        from aiida.engine import run_get_node

        from aiida_sianode.structures.calcfunctions import build_structure

        kind, parameters = random_cell_request(self.inputs.random_cell.get_dict())
        inputs = {'kind': orm.Str(kind), 'parameters': orm.Dict(parameters), 'seed': orm.Int(self.inputs.seed.value)}
        inputs['metadata'] = {'call_link_label': 'random_cell'}
        result, node = run_get_node(build_structure, **inputs)
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_RANDOM_CELL.format(message=node.exit_message)
        self.ctx.structure = result
        self.report(f'built a random cell ({kind}) of {len(self.ctx.structure.sites)} atoms')
        return None

    def run_melt(self):
        """Melt the starting structure at fixed volume."""
        parameters = lammps.melt_parameters(
            self.inputs.timestep.value,
            self.inputs.melt.temperature.value,
            self.ctx.schedule['melt_steps'],
            self.inputs.seed.value,
        )
        return self._submit('melt', parameters)

    def inspect_melt(self):
        """Check that the melt finished and that the atoms diffused like a liquid."""
        exit_code = self._inspect('melt', restart=True)
        if exit_code:
            return exit_code
        msd = self.ctx.melt.outputs.results.get_dict().get(lammps.MELT_MSD_RESULT_KEY)
        if msd is None:
            return self.exit_codes.ERROR_MISSING_OUTPUT.format(stage='melt', output='mean square displacement')
        self.ctx.melt_msd = float(msd)
        if self.ctx.melt_msd < MIN_MELT_MSD:
            return self.exit_codes.ERROR_NOT_MELTED.format(msd=self.ctx.melt_msd, threshold=MIN_MELT_MSD)
        self.report(f'melted: mean square displacement {self.ctx.melt_msd:.1f} Å^2')
        return None

    def run_quench(self):
        """Cool the liquid linearly from the melt temperature to the final temperature."""
        parameters = self._md(
            self.inputs.ensemble.value,
            self.inputs.melt.temperature.value,
            self.ctx.final_temperature,
            steps=self.ctx.schedule['quench_steps'],
            dump_interval=self.ctx.schedule['quench_dump_interval'],
        )
        return self._submit('quench', parameters)

    def inspect_quench(self):
        """Check the quench and keep its trajectory."""
        exit_code = self._inspect('quench', restart=True)
        if exit_code:
            return exit_code
        if 'trajectories' not in self.ctx.quench.outputs:
            return self.exit_codes.ERROR_MISSING_OUTPUT.format(stage='quench', output='trajectories')
        return None

    def should_anneal(self):
        """Return whether an anneal was asked for."""
        return self.ctx.schedule['anneal_steps'] > 0

    def run_anneal(self):
        """Hold the quenched structure at the anneal temperature."""
        temperature = self.ctx.anneal_temperature
        parameters = self._md(
            self.inputs.ensemble.value,
            temperature,
            temperature,
            steps=self.ctx.schedule['anneal_steps'],
            dump_interval=self.ctx.schedule['anneal_steps'],
        )
        return self._submit('anneal', parameters)

    def inspect_anneal(self):
        """Check the anneal."""
        return self._inspect('anneal', restart=True)

    def should_relax(self):
        """Return whether the final energy minimisation was asked for."""
        return self.inputs.relax.value

    def run_relax(self):
        """Minimise the energy of the last structure (and relax the cell under ``npt``)."""
        parameters = lammps.relax_parameters(
            self.inputs.timestep.value, self.inputs.ensemble.value, self.inputs.pressure.value
        )
        return self._submit('relax', parameters, restart=False)

    def inspect_relax(self):
        """Check the minimisation."""
        return self._inspect('relax', restart=False)

    def results(self):
        """Analyse the final structure and attach the outputs."""
        last = self.ctx[self.ctx.last]
        structure = last.outputs.structure
        schedule = {
            **self.ctx.schedule,
            'timestep_fs': self.inputs.timestep.value,
            'melt_temperature_k': self.inputs.melt.temperature.value,
            'final_temperature_k': self.ctx.final_temperature,
            'anneal_temperature_k': self.ctx.anneal_temperature,
            'ensemble': self.inputs.ensemble.value,
            'pressure_gpa': self.inputs.pressure.value,
            'melt_msd_a2': self.ctx.melt_msd,
            'potential': self.inputs.potential.filename,
            'stages': [stage for stage in ('melt', 'quench', 'anneal', 'relax') if stage in self.ctx],
        }
        properties = analyse_presampled_structure(
            structure, orm.Dict(self.ctx.cutoffs), last.outputs.results, orm.Dict(schedule)
        )
        summary = properties.get_dict()
        self.report(
            f'{summary["formula"]}: density {summary["density_g_cm3"]:.3f} g/cm^3, mean coordination '
            f'{summary["mean_coordination"]:.3f}'
        )
        self.out('structure', structure)
        self.out('properties', properties)
        self.out('quench_trajectory', self.ctx.quench.outputs.trajectories)
        if self.inputs.snapshots.value > 0:
            trajectory = self.ctx.quench.outputs.trajectories
            melt = self.inputs.melt.temperature.value
            total = self.ctx.schedule['quench_steps']
            nominal = [
                melt + (self.ctx.final_temperature - melt) * min(step, total) / total for step in trajectory.time_steps
            ]
            self.out_many({'snapshots': extract_snapshots(trajectory, orm.List(nominal))})

    # ---------------------------------------------------------------------------------------------- helpers

    def _md(self, ensemble: str, start: float, stop: float, steps: int, dump_interval: int) -> dict:
        """Return the LAMMPS parameters of an MD stage from ``start`` to ``stop`` K in ``ensemble``."""
        timestep = self.inputs.timestep.value
        block = lammps.integration(ensemble, start, stop, timestep, self.inputs.pressure.value)
        return lammps.md_parameters(timestep, block, steps, dump_interval)

    def _submit(self, stage: str, parameters: dict, restart: bool = True):
        """Submit one ``lammps.base`` calculation continuing from the previous stage."""
        inputs = AttributeDict(self.exposed_inputs(LammpsBaseCalculation, namespace='lammps'))
        inputs.potential = self.inputs.potential
        inputs.parameters = orm.Dict(parameters)
        inputs.settings = orm.Dict({'store_restart': restart})
        previous = self.ctx[self.ctx.last] if self.ctx.last else None
        if previous is None:
            inputs.structure = self.ctx.structure
        else:
            inputs.structure = previous.outputs.structure
            if restart:
                # Positions, velocities, cell and thermostat state continue from the previous stage.
                inputs.input_restartfile = previous.outputs.restartfile
        inputs['metadata'] = {**inputs.get('metadata', {}), 'call_link_label': stage}
        calculation = self.submit(LammpsBaseCalculation, **inputs)
        self.report(f'launched the {stage} stage: LammpsBaseCalculation<{calculation.pk}>')
        return ToContext(**{stage: calculation})

    def _inspect(self, stage: str, restart: bool):
        """Return an exit code if the ``stage`` calculation failed or lacks an output the next stage needs."""
        calculation = self.ctx[stage]
        if not calculation.is_finished_ok:
            return self.exit_codes.ERROR_STAGE_FAILED.format(
                stage=stage, status=calculation.exit_status, message=calculation.exit_message
            )
        needed = ['structure', 'results'] + (['restartfile'] if restart else [])
        for output in needed:
            if output not in calculation.outputs:
                return self.exit_codes.ERROR_MISSING_OUTPUT.format(stage=stage, output=output)
        self.ctx.last = stage
        return None
