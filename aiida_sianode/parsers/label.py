"""``LocalLabelParser``: turns the engine's ``results.json`` into a ``LabelData`` or an exit code."""

from __future__ import annotations

import json

from aiida import orm
from aiida.parsers import Parser

from aiida_sianode.common import level_of_theory as lot
from aiida_sianode.data.label import LabelData
from aiida_sianode.engines import label as engine

#: Keys of the level of theory that a label of a local code must carry.
REQUIRED_LEVEL_OF_THEORY_KEYS = ('code', 'code_version', 'method', 'basis', 'smearing', 'spin')


class LocalLabelParser(Parser):
    """Parse ``results.json`` of :class:`~aiida_sianode.calculations.label.LocalLabelCalculation`.

    ``status`` ``ok`` gives the ``label`` output; ``scf_not_converged`` exit code 410, ``calculation_failed``
    420, ``invalid_input`` 202, each with the engine's message; a level of theory that contradicts what the code
    says it ran with (``reported_level_of_theory``) 440, both values named. ``output_parameters`` is attached
    whenever the results could be read, so a failed calculation still shows its SCF information.
    """

    def parse(self, **kwargs):
        """Read the retrieved ``results.json`` and create the outputs."""
        retrieved = self.retrieved
        if engine.RESULTS_FILENAME not in retrieved.base.repository.list_object_names():
            return self.exit_codes.ERROR_NO_RESULTS
        try:
            results = json.loads(retrieved.base.repository.get_object_content(engine.RESULTS_FILENAME))
            status = results['status']
        except (ValueError, KeyError, TypeError) as exception:
            return self.exit_codes.ERROR_UNREADABLE_RESULTS.format(message=f'{type(exception).__name__}: {exception}')

        summary = {
            key: results.get(key)
            for key in (
                'status',
                'error',
                'labeler',
                'energy',
                'free_energy',
                'natoms',
                'formula',
                'code_version',
                'scf',
                'wall_time_s',
                'magnetic_moment',
                'parameters',
            )
            if key in results
        }
        self.out('output_parameters', orm.Dict(summary))

        message = results.get('error') or 'no message'
        if status == engine.STATUS_SCF_NOT_CONVERGED:
            return self.exit_codes.ERROR_SCF_NOT_CONVERGED.format(message=message)
        if status == engine.STATUS_INVALID_INPUT:
            return self.exit_codes.ERROR_INVALID_INPUT.format(message=message)
        if status != engine.STATUS_OK:
            return self.exit_codes.ERROR_CODE_FAILED.format(message=f'{status}: {message}')

        missing = [key for key in ('energy', 'forces', 'level_of_theory') if results.get(key) is None]
        level_of_theory = results.get('level_of_theory') or {}
        missing += [f'level_of_theory.{key}' for key in REQUIRED_LEVEL_OF_THEORY_KEYS if key not in level_of_theory]
        if missing:
            return self.exit_codes.ERROR_INCOMPLETE_RESULTS.format(message=', '.join(missing))

        contradictions = lot.contradictions(level_of_theory, results.get('reported_level_of_theory') or {})
        if contradictions:
            return self.exit_codes.ERROR_LEVEL_OF_THEORY_MISMATCH.format(message='; '.join(contradictions))

        atoms = self.node.inputs.structure.get_ase()
        try:
            label = LabelData(
                atoms,
                energy=results['energy'],
                forces=results['forces'],
                stress=results.get('stress'),
                level_of_theory=level_of_theory,
                source={'kind': 'calculation'},
            )
        except ValueError as exception:
            return self.exit_codes.ERROR_INCOMPLETE_RESULTS.format(message=f'a valid label ({exception})')
        self.out('label', label)
        return None
