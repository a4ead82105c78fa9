"""``LocalLabelCalculation``: one GPAW or GFN1-xTB single point through :mod:`aiida_sianode.engines.label`.

The code is a Python interpreter of an environment with aiida-sianode, GPAW and tblite installed (the
``sianode-label`` code made by ``aiida-sianode setup``); the calculation runs
``<python> -m aiida_sianode.engines.label input.json`` in its working folder.
"""

from __future__ import annotations

import io
import json

from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob

from aiida_sianode.data.label import LabelData
from aiida_sianode.engines import label as engine


def validate_parameters(value: orm.Dict, _) -> str | None:
    """Refuse parameters without a known ``labeler``, with unknown keys, or with values of the wrong type."""
    if value is None:
        return None
    parameters = value.get_dict()
    labeler = parameters.pop('labeler', None)
    if labeler is None:
        return f'the parameters need the key `labeler`, one of: {", ".join(engine.LABELERS)}'
    problems = engine.validate_parameters(labeler, parameters)
    return '; '.join(problems) if problems else None


class LocalLabelCalculation(CalcJob):
    """Label one structure with GPAW (PW-mode PBE) or GFN1-xTB: energy, forces, stress and the level of theory."""

    _INPUT_FILENAME = 'input.json'
    _STRUCTURE_FILENAME = engine.DEFAULT_STRUCTURE_FILENAME
    _LOG_FILENAME = 'engine.log'

    @classmethod
    def define(cls, spec):
        """Define the inputs (structure, parameters), the outputs (label, output_parameters) and the exit codes."""
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The structure to label.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            validator=validate_parameters,
            help="`labeler` (gpaw or xtb) and that labeler's settings, see `aiida_sianode.engines.label.PARAMETERS`.",
        )
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['withmpi'].default = False
        spec.inputs['metadata']['options']['parser_name'].default = 'sianode.label'
        spec.inputs['metadata']['options']['input_filename'].default = cls._INPUT_FILENAME
        spec.inputs['metadata']['options']['output_filename'].default = cls._LOG_FILENAME

        spec.output('label', valid_type=LabelData, help='Energy, forces, stress and the level of theory.')
        spec.output(
            'output_parameters',
            valid_type=orm.Dict,
            help='Status, SCF information (iterations, k-point mesh), wall time, free energy, code version.',
        )

        spec.exit_code(
            202, 'ERROR_INVALID_INPUT', message='The engine refused the input: {message}', invalidates_cache=True
        )
        # A run that left no (readable, complete) results was killed, cancelled or out of walltime: it must never be
        # a cache source, or the rerun of the same inputs is a copy of the lost run instead of a new job.
        spec.exit_code(
            300,
            'ERROR_NO_RESULTS',
            message='The engine wrote no results.json; see the engine log.',
            invalidates_cache=True,
        )
        spec.exit_code(
            301,
            'ERROR_UNREADABLE_RESULTS',
            message='results.json could not be read: {message}',
            invalidates_cache=True,
        )
        spec.exit_code(
            302,
            'ERROR_INCOMPLETE_RESULTS',
            message='results.json reports success but lacks {message}.',
            invalidates_cache=True,
        )
        spec.exit_code(
            410, 'ERROR_SCF_NOT_CONVERGED', message='The SCF did not converge: {message}', invalidates_cache=True
        )
        spec.exit_code(420, 'ERROR_CODE_FAILED', message='The calculation failed: {message}', invalidates_cache=True)
        spec.exit_code(
            440,
            'ERROR_LEVEL_OF_THEORY_MISMATCH',
            message='The level of theory recorded contradicts what the code says it ran with: {message}',
            invalidates_cache=True,
        )

    def prepare_for_submission(self, folder):
        """Write ``structure.extxyz`` and ``input.json``; run the engine module with the code's interpreter."""
        import ase.io

        parameters = self.inputs.parameters.get_dict()
        labeler = parameters.pop('labeler')
        buffer = io.StringIO()
        ase.io.write(buffer, self.inputs.structure.get_ase(), format='extxyz')
        folder.create_file_from_filelike(io.StringIO(buffer.getvalue()), self._STRUCTURE_FILENAME, mode='w')
        request = {'labeler': labeler, 'structure': self._STRUCTURE_FILENAME, 'parameters': parameters}
        folder.create_file_from_filelike(
            io.StringIO(json.dumps(request, indent=1)), self.metadata.options.input_filename, mode='w'
        )

        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = ['-m', 'aiida_sianode.engines.label', self.metadata.options.input_filename]
        codeinfo.stdout_name = self.metadata.options.output_filename
        codeinfo.join_files = True

        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [engine.RESULTS_FILENAME, self.metadata.options.output_filename]
        if labeler == 'gpaw':
            calcinfo.retrieve_list.append(engine.GPAW_LOG_FILENAME)
        return calcinfo
