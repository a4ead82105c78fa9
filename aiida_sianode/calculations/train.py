"""``TrainCalculation`` (``sianode.train``): train one MACE model on a DatasetData with the training engine.

The calculation writes the dataset's ``train.extxyz`` / ``valid.extxyz`` (and a ``test.extxyz``, from the
``test_dataset`` input when given, else from the dataset's own test split) and a ``config.json``, and runs
``python -m aiida_sianode.engines.train config.json`` (see :mod:`aiida_sianode.engines.train`). The parser
(:class:`aiida_sianode.parsers.train.TrainParser`) turns the results into a ``PotentialData`` and a ``metrics`` Dict.

A job killed or out of walltime leaves mace's last checkpoint in its folder; the calculation retrieves it (under
``checkpoints/`` in ``retrieved``; a finished run has removed it, so nothing is kept then), and a new calculation
given that ``retrieved`` folder as ``parent_checkpoints`` continues the training from it
(:mod:`aiida_sianode.engines.train`). ``TrainWorkChain`` does this by itself.
"""

from __future__ import annotations

import json

from aiida import orm
from aiida.common import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_sianode.data.dataset import DatasetData
from aiida_sianode.data.potential import PotentialData
from aiida_sianode.engines import train as engine

#: Folder of mace's checkpoints, inside the engine's mace folder and in ``retrieved``.
CHECKPOINT_FOLDER = 'checkpoints'


def validate_parameters(value: orm.Dict, _) -> str | None:
    """Refuse unknown keys and bad values of the training parameters (see ``engine.PARAMETER_SPECS``)."""
    if value is None:
        return None
    return engine.check_parameters(value.get_dict())


def checkpoint_names(folder: orm.FolderData) -> list[str]:
    """Return the names of the mace checkpoint files (``*.pt``) under ``checkpoints/`` in a retrieved folder."""
    repository = folder.base.repository
    if CHECKPOINT_FOLDER not in repository.list_object_names():
        return []
    return sorted(name for name in repository.list_object_names(CHECKPOINT_FOLDER) if name.endswith('.pt'))


def checkpoint_epoch(folder: orm.FolderData) -> int | None:
    """Return the newest epoch among the checkpoints of a retrieved folder, or ``None`` when it holds none."""
    import re

    epochs = [int(match.group(1)) for name in checkpoint_names(folder) if (match := re.search(r'_epoch-(\d+)', name))]
    return max(epochs) if epochs else None


def validate_inputs(inputs: dict, _) -> str | None:
    """Check that the dataset can train a model and that the test set is compatible with it."""
    dataset = inputs.get('dataset')
    if dataset is None:
        return None
    counts = dataset.split_counts or {}
    if not counts.get('train'):
        return f'the dataset<{dataset.pk}> has no training frames'
    if not counts.get('valid'):
        return (
            f'the dataset<{dataset.pk}> has no validation frames (split counts {counts}); build it with '
            'valid_fraction > 0'
        )
    parameters = inputs.get('parameters')
    e0s = parameters.get_dict().get('E0s') if parameters is not None else None
    if isinstance(e0s, dict):
        missing = sorted(set(dataset.elements) - set(e0s))
        if missing:
            return f'`E0s` gives no isolated-atom energy for {", ".join(missing)}, present in the dataset'
    parent = inputs.get('parent_checkpoints')
    if parent is not None and not checkpoint_names(parent):
        return f'parent_checkpoints<{parent.pk}> holds no mace checkpoint under `{CHECKPOINT_FOLDER}/`'
    test_dataset = inputs.get('test_dataset')
    if test_dataset is not None:
        extra = sorted(set(test_dataset.elements) - set(dataset.elements))
        if extra:
            return f'the test dataset<{test_dataset.pk}> holds elements absent from the training set: {extra}'
        if not dataset.mixed and set(test_dataset.fingerprints) != set(dataset.fingerprints):
            from aiida_sianode.common.level_of_theory import differences

            found = differences(dataset.level_of_theory, test_dataset.level_of_theory)
            return (
                f'the test dataset<{test_dataset.pk}> has another level of theory than the training set'
                f'{": " + "; ".join(found) if found else ""}; its errors would not measure the potential'
            )
    return None


#: File name of the warm-start model in the working folder.
WARM_START_FILENAME = 'init.model'


class TrainCalculation(CalcJob):
    """Train one MACE potential (``mace_run_train``) on a DatasetData and score it on every split."""

    CONFIG_FILENAME = engine.CONFIG_FILENAME
    STDOUT_FILENAME = 'engine.out'
    STDERR_FILENAME = 'engine.err'

    @classmethod
    def define(cls, spec):
        """Define inputs, outputs and exit codes."""
        super().define(spec)
        spec.input('dataset', valid_type=DatasetData, help='The training set; its `train` and `valid` splits are used.')
        spec.input(
            'test_dataset',
            valid_type=DatasetData,
            required=False,
            help='Frames to score the model on (all its frames); replaces the test split of `dataset`.',
        )
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            validator=validate_parameters,
            help='Training parameters (see `aiida_sianode.engines.train.PARAMETER_SPECS`); missing keys take the '
            "engine's defaults, unknown keys are refused.",
        )
        spec.input(
            'init_model',
            valid_type=PotentialData,
            required=False,
            help="Warm start: begin from this model's architecture and weights (mace's --foundation_model).",
        )
        spec.input(
            'parent_checkpoints',
            valid_type=orm.FolderData,
            required=False,
            help='The `retrieved` folder of an interrupted TrainCalculation of the same model: training continues '
            'from the latest checkpoint in its `checkpoints/` folder.',
        )
        spec.inputs.validator = validate_inputs
        options = spec.inputs['metadata']['options']
        options['parser_name'].default = 'sianode.train'
        options['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        options['withmpi'].default = False

        spec.output('potential', valid_type=PotentialData, help='The trained model with its errors per split.')
        spec.output('metrics', valid_type=orm.Dict, help="The engine's metrics.json (errors in meV, epochs, times).")
        spec.output(
            'test_predictions',
            valid_type=orm.ArrayData,
            required=False,
            help='Reference and predicted energies/forces/stresses of the test frames (see the engine).',
        )
        spec.default_output_node = 'metrics'

        spec.exit_code(
            300,
            'ERROR_MISSING_METRICS',
            message='the engine wrote no metrics.json: it crashed or was killed.',
            invalidates_cache=True,
        )
        spec.exit_code(301, 'ERROR_UNREADABLE_METRICS', message='metrics.json could not be read: {error}')
        spec.exit_code(302, 'ERROR_MISSING_MODEL', message='training reported success but no model file came back.')
        spec.exit_code(303, 'ERROR_UNREADABLE_MODEL', message='the model file could not be read: {error}')
        spec.exit_code(
            400,
            'ERROR_NAN_LOSS',
            message='training diverged ({error}); a lower learning rate usually helps.',
        )
        spec.exit_code(
            401,
            'ERROR_OUT_OF_MEMORY',
            message='training ran out of memory ({error}); a smaller batch size usually helps.',
        )
        spec.exit_code(402, 'ERROR_INVALID_TRAINING_INPUT', message='the engine refused its input: {error}')
        spec.exit_code(403, 'ERROR_TRAINING_FAILED', message='mace training failed: {error}')

    def prepare_for_submission(self, folder):
        """Write the training files and ``config.json``; run ``python -m aiida_sianode.engines.train``."""
        import pathlib

        directory = pathlib.Path(folder.abspath)
        paths = self.inputs.dataset.write_training_files(directory)
        test_file = pathlib.Path(paths['test']).name if paths.get('test') else None
        if 'test_dataset' in self.inputs:
            from ase.io import write

            frames = self.inputs.test_dataset.get_frames()
            for atoms in frames:
                atoms.calc = None
            write(directory / 'test.extxyz', frames, format='extxyz')
            test_file = 'test.extxyz'
        parameters = self.inputs.parameters.get_dict() if 'parameters' in self.inputs else {}
        config = {
            'parameters': parameters,
            'train_file': pathlib.Path(paths['train']).name,
            'valid_file': pathlib.Path(paths['valid']).name,
            'test_file': test_file,
        }
        local_copy_list = []
        if 'init_model' in self.inputs:
            model = self.inputs.init_model
            local_copy_list.append((model.uuid, model.filename, WARM_START_FILENAME))
            config['init_model'] = WARM_START_FILENAME
        if 'parent_checkpoints' in self.inputs:
            parent = self.inputs.parent_checkpoints
            folder.get_subfolder(engine.MACE_WORK_DIR, create=True)
            for name in checkpoint_names(parent):
                local_copy_list.append(
                    (parent.uuid, f'{CHECKPOINT_FOLDER}/{name}', f'{engine.MACE_WORK_DIR}/{CHECKPOINT_FOLDER}/{name}')
                )
        with folder.open(self.CONFIG_FILENAME, 'w', encoding='utf8') as handle:
            json.dump(config, handle, indent=2)

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = ['-m', 'aiida_sianode.engines.train', self.CONFIG_FILENAME]
        codeinfo.stdout_name = self.STDOUT_FILENAME
        codeinfo.stderr_name = self.STDERR_FILENAME

        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = local_copy_list
        # mace's checkpoint is left only by a run that did not finish (the engine removes it after saving the model)
        calcinfo.retrieve_list = [
            engine.METRICS_FILENAME,
            engine.LOG_FILENAME,
            self.STDERR_FILENAME,
            (f'{engine.MACE_WORK_DIR}/{CHECKPOINT_FOLDER}/*', '.', 2),
        ]
        # The model and the predictions become output nodes of their own: no second copy in `retrieved`.
        calcinfo.retrieve_temporary_list = [engine.MODEL_FILENAME, engine.PREDICTIONS_FILENAME]
        return calcinfo
