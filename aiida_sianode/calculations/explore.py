"""``ExploreCalculation``: one committee MD exploration through :mod:`aiida_sianode.engines.explore`.

The code is a Python interpreter of an environment with aiida-sianode and mace-torch (the ``sianode-explore`` code
made by ``aiida-sianode setup``); the calculation copies the committee's model files next to the structure and runs
``<python> -m aiida_sianode.engines.explore input.json`` in its working folder.
"""

from __future__ import annotations

import io
import json

from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob
from aiida.plugins import DataFactory

from aiida_sianode.engines import explore as engine

PotentialData = DataFactory('sianode.potential')

STRUCTURE_FILENAME = 'structure.extxyz'


def validate_parameters(value: orm.Dict, _) -> str | None:
    """Refuse parameters with unknown keys, an unknown ensemble, T <= 0, \\|P\\| > 10 GPa (100 kbar), ..."""
    if value is None:
        return None
    try:
        engine.validate_parameters(value.get_dict())
    except engine.InvalidInputError as exception:
        return str(exception)
    return None


def validate_potentials(value, _) -> str | None:
    """Refuse an empty committee and members that disagree on elements or cutoff."""
    if not value:
        return 'the committee needs at least one potential in `potentials`'
    elements = {tuple(potential.base.attributes.get('elements', ())) for potential in value.values()}
    if len(elements) > 1:
        return f'the committee members know different elements: {sorted(elements)}'
    cutoffs = {potential.base.attributes.get('r_max', None) for potential in value.values()}
    if len(cutoffs) > 1:
        return f'the committee members have different cutoffs r_max: {sorted(map(str, cutoffs))} Å'
    return None


def validate_inputs(inputs, _) -> str | None:
    """Check the structure against the committee (elements) and the ensemble (NPT needs a periodic cell)."""
    structure = inputs.get('structure')
    potentials = inputs.get('potentials') or {}
    if structure is None or not potentials:
        return None
    if len(structure.sites) == 0:
        return 'the structure has no atoms'
    known = set(next(iter(potentials.values())).base.attributes.get('elements', ()) or ())
    symbols = {kind.symbol for kind in structure.kinds}
    if known and not symbols <= known:
        return (
            f'the committee knows {", ".join(sorted(known))} but the structure also has '
            f'{", ".join(sorted(symbols - known))}'
        )
    parameters = inputs.get('parameters')
    if parameters is not None:
        try:
            engine.validate_parameters(parameters.get_dict(), pbc=structure.pbc)
        except engine.InvalidInputError as exception:
            return str(exception)
    return None


class ExploreCalculation(CalcJob):
    """MD driven by the mean of a MACE committee, recording the committee's disagreement at every sampled frame.

    Outputs one ``trajectory`` (all sampled frames), one ``deviations`` ArrayData (per-frame uncertainty and
    thermodynamics), the ``stop_reason`` and a ``summary``. Stopping on uncertainty is a normal finish; a physically
    broken run (atoms too close, NaN, runaway temperature) or a crash keeps its frames as outputs and exits with a
    code naming the problem.
    """

    _INPUT_FILENAME = 'input.json'
    _LOG_FILENAME = 'explore.log'

    @classmethod
    def define(cls, spec):
        """Define the inputs (structure, potentials, parameters), the outputs and the exit codes."""
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The starting structure.')
        spec.input_namespace(
            'potentials',
            valid_type=PotentialData,
            dynamic=True,
            validator=validate_potentials,
            help='The committee: one or more PotentialData with the same elements and cutoff; MD follows their mean.',
        )
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            validator=validate_parameters,
            help='MD settings, see `aiida_sianode.engines.explore.DEFAULT_PARAMETERS` (ensemble, temperature K, '
            'temperature_end K, pressure_gpa, timestep_fs, steps, sample_interval, seed, trust levels eV/Å, ...).',
        )
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['withmpi'].default = False
        spec.inputs['metadata']['options']['parser_name'].default = 'sianode.explore'
        spec.inputs['metadata']['options']['input_filename'].default = cls._INPUT_FILENAME
        spec.inputs['metadata']['options']['output_filename'].default = cls._LOG_FILENAME

        spec.output(
            'trajectory',
            valid_type=orm.TrajectoryData,
            help='Every sampled frame: positions, cells, symbols, stepids, times (fs), and the committee-mean '
            '`energy` (eV) and `forces` (eV/Å), and the per-atom `atomic_force_deviation` (eV/Å).',
        )
        spec.output(
            'deviations',
            valid_type=orm.ArrayData,
            help='Per sampled frame: max_force_deviation (eV/Å), energy_std_per_atom (eV/atom), temperature (K), '
            'pressure_gpa, volume (Å^3), time_fs, step.',
        )
        spec.output('stop_reason', valid_type=orm.Str, help='completed, uncertainty, min_distance, nan, temperature.')
        spec.output('summary', valid_type=orm.Dict, help='Counts per trust level, speed, volumes, the stop message.')
        spec.default_output_node = 'summary'

        spec.exit_code(
            202, 'ERROR_INVALID_INPUT', message='The engine refused the input: {message}', invalidates_cache=True
        )
        spec.exit_code(
            300,
            'ERROR_NO_FRAMES',
            message='The engine wrote no frames ({message}); see explore.log.',
            invalidates_cache=True,
        )
        spec.exit_code(
            301, 'ERROR_UNREADABLE_RESULTS', message='results.json could not be read: {message}', invalidates_cache=True
        )
        spec.exit_code(
            302,
            'ERROR_INTERRUPTED',
            message='The engine stopped without writing results.json (killed, out of time or memory?) after '
            '{n_frames} frames; those frames are in the outputs.',
            invalidates_cache=True,
        )
        spec.exit_code(
            400,
            'ERROR_ENGINE_FAILED',
            message='The engine failed: {message}; the {n_frames} frames written before are in the outputs.',
            invalidates_cache=True,
        )
        spec.exit_code(
            410,
            'ERROR_MIN_DISTANCE',
            message='The run broke physically: {message}. The frames up to there are in the outputs.',
        )
        spec.exit_code(
            411,
            'ERROR_NAN',
            message='The run broke physically: {message}. The frames up to there are in the outputs.',
        )
        spec.exit_code(
            412,
            'ERROR_TEMPERATURE',
            message='The run broke physically: {message}. The frames up to there are in the outputs.',
        )

    def prepare_for_submission(self, folder):
        """Write ``structure.extxyz`` and ``input.json``, copy the models as ``member_<i>.model``; run the engine."""
        import ase.io

        buffer = io.StringIO()
        ase.io.write(buffer, self.inputs.structure.get_ase(), format='extxyz')
        folder.create_file_from_filelike(io.StringIO(buffer.getvalue()), STRUCTURE_FILENAME, mode='w')

        local_copy_list = []
        models = []
        for index, key in enumerate(sorted(self.inputs.potentials)):
            potential = self.inputs.potentials[key]
            target = f'member_{index}.model'
            local_copy_list.append((potential.uuid, potential.filename, target))
            models.append(target)

        parameters = self.inputs.parameters.get_dict() if 'parameters' in self.inputs else {}
        request = {'structure': STRUCTURE_FILENAME, 'models': models, 'parameters': parameters}
        folder.create_file_from_filelike(
            io.StringIO(json.dumps(request, indent=1)), self.metadata.options.input_filename, mode='w'
        )

        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = ['-m', 'aiida_sianode.engines.explore', self.metadata.options.input_filename]
        codeinfo.stdout_name = self.metadata.options.output_filename
        codeinfo.join_files = True

        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = local_copy_list
        calcinfo.retrieve_list = [engine.RESULTS_FILENAME, self.metadata.options.output_filename]
        # the frames become the `trajectory` node; keeping the raw file too would store them twice
        calcinfo.retrieve_temporary_list = [engine.FRAMES_FILENAME]
        return calcinfo
