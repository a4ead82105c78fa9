"""``PropertyCalculation`` (``sianode.property``): one property computed by every committee member, in one job.

The code is a Python interpreter of an environment with aiida-sianode and mace-torch (the ``sianode-property`` code
made by ``aiida-sianode setup``). The calculation writes the structures as ``structure_<i>.extxyz``, copies the
members' model files as ``member_<i>.model`` and runs ``<python> -m aiida_sianode.engines.property input.json``
(:mod:`aiida_sianode.engines.property`). With ``parent_folder`` (the remote folder of an interrupted run) the
finished members' ``member_<i>.json`` and their work folders are copied in first, so the run continues.
"""

from __future__ import annotations

import io
import json

from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob
from aiida.plugins import DataFactory

from aiida_sianode.engines import property as engine

PotentialData = DataFactory('sianode.potential')

LOG_FILENAME = 'property.log'


def validate_kind(value: orm.Str, _) -> str | None:
    """Refuse a property kind that does not exist."""
    from aiida_sianode.properties import KINDS

    if value is not None and value.value not in KINDS:
        return f'unknown property `{value.value}`; choose one of: {", ".join(sorted(KINDS))}'
    return None


def committee_problem(potentials) -> str | None:
    """Return why ``potentials`` are not one committee (different training sets, cutoffs or elements), else
    ``None``."""
    if not potentials:
        return 'the committee needs at least one potential in `potentials`'
    attributes = {key: potential.base.attributes for key, potential in potentials.items()}
    training_sets = {key: value.get('training_set_uuid', None) for key, value in attributes.items()}
    if len(set(training_sets.values())) > 1:
        listed = ', '.join(f'{key}: {value}' for key, value in sorted(training_sets.items()))
        return f'the members were trained on different training sets, so they are not one committee ({listed})'
    cutoffs = {key: value.get('r_max', None) for key, value in attributes.items()}
    if len(set(cutoffs.values())) > 1:
        listed = ', '.join(f'{key}: {value} Å' for key, value in sorted(cutoffs.items()))
        return f'the members have different cutoffs r_max, so they are not one committee ({listed})'
    elements = {key: tuple(sorted(value.get('elements', ()) or ())) for key, value in attributes.items()}
    if len(set(elements.values())) > 1:
        listed = ', '.join(f'{key}: {"/".join(value)}' for key, value in sorted(elements.items()))
        return f'the members know different elements, so they are not one committee ({listed})'
    return None


def validate_potentials(value, _) -> str | None:
    """Refuse an empty committee and members that are not one committee."""
    return committee_problem(value)


def structures_problem(structures, potentials) -> str | None:
    """Return why ``structures`` cannot be computed with ``potentials`` (an element the committee was not trained on,
    atoms closer than 0.5 Å, no atoms), else ``None``."""
    from aiida_sianode.properties.common import InvalidPropertyInput, check_min_distance

    known = set()
    if potentials:
        known = set(next(iter(potentials.values())).base.attributes.get('elements', ()) or ())
    for key, structure in sorted(structures.items()):
        if len(structure.sites) == 0:
            return f'the structure `{key}` has no atoms'
        symbols = {kind.symbol for kind in structure.kinds}
        if known and not symbols <= known:
            missing = ', '.join(sorted(symbols - known))
            return (
                f'the structure `{key}` contains {missing}, an element the committee was not trained on '
                f'(it knows {", ".join(sorted(known))})'
            )
        try:
            check_min_distance(structure.get_ase(), name=f'the structure `{key}`')
        except InvalidPropertyInput as exception:
            return str(exception)
    return None


def settings_problem(kind: str, settings: dict, structures) -> str | None:
    """Return the kernel's refusal of ``settings`` for ``structures`` (and the engine's own checks), else ``None``."""
    from aiida_sianode.properties import load_kind
    from aiida_sianode.properties.common import InvalidPropertyInput, split_settings

    try:
        module = load_kind(kind)
        engine_settings, kernel_settings = split_settings(settings)
        if engine_settings['dtype'] not in ('float32', 'float64'):
            return f'`dtype` must be float32 or float64, got {engine_settings["dtype"]!r}'
        if not isinstance(engine_settings['device'], str) or not engine_settings['device']:
            return f'`device` must be auto or a torch device name (cpu, cuda), got {engine_settings["device"]!r}'
        module.validate_settings(kernel_settings, [structures[key].get_ase() for key in sorted(structures)])
    except InvalidPropertyInput as exception:
        return str(exception)
    except ImportError as exception:
        return f'the property {kind} cannot be loaded: {exception}'
    except KeyError as exception:
        return (
            f'the settings of the property {kind} lack {exception}: start from a protocol (get_builder_from_protocol)'
        )
    except (TypeError, ValueError) as exception:
        return f'invalid settings for the property {kind}: {exception}'
    return None


def validate_inputs(inputs, ctx) -> str | None:
    """Check structures against the committee and the kind's settings before anything runs.

    Inside a work chain that exposes these inputs without ``structures`` (it passes its own), nothing is checked
    here: the work chain's validator does the same checks.
    """
    if ctx is not None and 'structures' not in ctx:
        return None
    structures = inputs.get('structures') or {}
    if not structures:
        return 'give at least one structure in `structures`'
    problem = structures_problem(structures, inputs.get('potentials') or {})
    if problem:
        return problem
    from aiida_sianode.properties import KINDS

    kind = inputs.get('kind')
    if kind is None or kind.value not in KINDS:
        return None
    settings = inputs['settings'].get_dict() if 'settings' in inputs else {}
    return settings_problem(kind.value, settings, structures)


class PropertyCalculation(CalcJob):
    """Compute one property with every member of a committee (each on its own), and its committee statistics.

    Outputs ``results`` (Dict: status, kind, per-member scalars with mean / std, model hashes, device, wall and CPU
    time; every number's unit in its key), ``curves`` (one XyData per curve: x, committee mean and std, every member)
    and ``plots`` (one PNG per curve). A run that was interrupted exits with 302 and can be restarted with its remote
    folder as ``parent_folder``: finished members are not recomputed.
    """

    _INPUT_FILENAME = 'input.json'

    @classmethod
    def define(cls, spec):
        """Define the inputs, the outputs and the exit codes."""
        super().define(spec)
        spec.input('kind', valid_type=orm.Str, validator=validate_kind, help='The property: eos, elastic, ...')
        spec.input_namespace(
            'structures',
            valid_type=orm.StructureData,
            dynamic=True,
            help='The structure(s), passed to the kernel in the order of their sorted keys.',
        )
        spec.input_namespace(
            'potentials',
            valid_type=PotentialData,
            dynamic=True,
            validator=validate_potentials,
            help='The committee: PotentialData trained on the same training set, with the same elements and r_max; '
            'each member computes the property on its own.',
        )
        spec.input(
            'settings',
            valid_type=orm.Dict,
            required=False,
            help='Merged protocol settings of the kind (see protocols/properties/<kind>.yaml), plus `device` '
            '(auto, cpu, cuda) and `dtype` (float32, float64).',
        )
        spec.input(
            'parent_folder',
            valid_type=orm.RemoteData,
            required=False,
            help='The remote folder of an interrupted run: its finished members are kept.',
        )
        spec.inputs.validator = validate_inputs
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['withmpi'].default = False
        spec.inputs['metadata']['options']['parser_name'].default = 'sianode.property'
        spec.inputs['metadata']['options']['input_filename'].default = cls._INPUT_FILENAME
        spec.inputs['metadata']['options']['output_filename'].default = LOG_FILENAME

        spec.output('results', valid_type=orm.Dict, help='Committee statistics and per-member values, units in keys.')
        spec.output_namespace(
            'curves', valid_type=orm.XyData, dynamic=True, help='Each curve: x, mean, std and one y per member.'
        )
        spec.output_namespace(
            'plots', valid_type=orm.SinglefileData, dynamic=True, help='A PNG of each curve with the committee band.'
        )
        spec.default_output_node = 'results'

        spec.exit_code(
            202,
            'ERROR_INVALID_INPUT',
            message='The property engine refused the input: {message}',
            invalidates_cache=True,
        )
        spec.exit_code(
            301, 'ERROR_UNREADABLE_RESULTS', message='results.json could not be read: {message}', invalidates_cache=True
        )
        spec.exit_code(
            302,
            'ERROR_INTERRUPTED',
            message='The engine stopped without writing results.json (killed, out of time or memory?); '
            '{n_finished} member(s) had finished and are kept for a restart.',
            invalidates_cache=True,
        )
        spec.exit_code(
            400, 'ERROR_ENGINE_FAILED', message='The property engine failed: {message}', invalidates_cache=True
        )
        spec.exit_code(
            401, 'ERROR_MODEL', message='A committee model could not be loaded: {message}', invalidates_cache=True
        )
        spec.exit_code(
            402,
            'ERROR_MEMBER_FAILED',
            message='Some members failed ({message}); the results of the others are in the outputs.',
            invalidates_cache=True,
        )
        spec.exit_code(
            403,
            'ERROR_ALL_MEMBERS_FAILED',
            message='No member finished the property: {message}',
            invalidates_cache=True,
        )

    def prepare_for_submission(self, folder):
        """Write the structures and ``input.json``, copy the models (and a parent's finished members); run the
        engine."""
        import ase.io

        structure_names = []
        for index, key in enumerate(sorted(self.inputs.structures)):
            name = f'structure_{index}.extxyz'
            buffer = io.StringIO()
            ase.io.write(buffer, self.inputs.structures[key].get_ase(), format='extxyz')
            folder.create_file_from_filelike(io.StringIO(buffer.getvalue()), name, mode='w')
            structure_names.append(name)

        local_copy_list, models = [], []
        for index, key in enumerate(sorted(self.inputs.potentials)):
            potential = self.inputs.potentials[key]
            target = f'member_{index}.model'
            local_copy_list.append((potential.uuid, potential.filename, target))
            models.append(target)

        remote_copy_list = []
        if 'parent_folder' in self.inputs:
            parent = self.inputs.parent_folder
            # finished members (member_<i>.json) and each member's work folder with its checkpoints (the pattern also
            # matches the model files, always present, so it never comes up empty)
            remote_copy_list.append((parent.computer.uuid, f'{parent.get_remote_path()}/member_*', '.'))

        settings = self.inputs.settings.get_dict() if 'settings' in self.inputs else {}
        request = {
            'kind': self.inputs.kind.value,
            'structures': structure_names,
            'models': models,
            'settings': settings,
        }
        folder.create_file_from_filelike(
            io.StringIO(json.dumps(request, indent=1)), self.metadata.options.input_filename, mode='w'
        )

        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = ['-m', 'aiida_sianode.engines.property', self.metadata.options.input_filename]
        codeinfo.stdout_name = self.metadata.options.output_filename
        codeinfo.join_files = True

        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = local_copy_list
        calcinfo.remote_copy_list = remote_copy_list
        calcinfo.retrieve_list = [
            engine.RESULTS_FILENAME,
            'member_*.json',
            '*.png',
            self.metadata.options.output_filename,
        ]
        return calcinfo
