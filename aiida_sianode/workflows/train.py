"""Training work chains: one MACE model with error recovery, and a committee of them.

``TrainWorkChain`` (``sianode.train``) runs a :class:`~aiida_sianode.calculations.train.TrainCalculation` and
restarts it when training diverges (the learning rate is halved) or runs out of memory (the batch size is halved),
and continues it from mace's last checkpoint when the job was killed or ran out of walltime (the walltime is doubled
when the interrupted job got no further than the one before it).

``TrainCommitteeWorkChain`` (``sianode.train_committee``) trains ``committee_size`` members in parallel on the same
dataset, each with its own seed (and, with ``bootstrap``, its own bootstrap sample of the training split), and
scores them alone and together: the committee's ``metrics`` hold every member's errors, their mean and standard
deviation over members, and the errors of the committee-mean prediction on the test frames.
"""

from __future__ import annotations

import copy
import itertools

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import (
    BaseRestartWorkChain,
    ProcessHandlerReport,
    ToContext,
    WorkChain,
    calcfunction,
    process_handler,
    while_,
)

from aiida_sianode.analysis.metrics import ERROR_METRIC_KEYS
from aiida_sianode.calculations.train import TrainCalculation, checkpoint_epoch
from aiida_sianode.data.dataset import DatasetData
from aiida_sianode.data.potential import PotentialData
from aiida_sianode.engines import train as engine
from aiida_sianode.protocols import ProtocolMixin, recursive_merge

#: the error metrics that the committee summary averages over members
SUMMARY_KEYS = ERROR_METRIC_KEYS


def _check_code(code) -> None:
    if not isinstance(code, orm.AbstractCode):
        raise TypeError(f'`code` must be an AiiDA code, got {type(code).__name__}')
    plugin = code.default_calc_job_plugin
    if plugin not in (None, 'sianode.train'):
        raise ValueError(f'code `{code.full_label}` runs `{plugin}`, not `sianode.train`')


def _check_dataset(dataset, name: str) -> None:
    if not isinstance(dataset, DatasetData):
        raise TypeError(f'`{name}` must be a DatasetData, got {type(dataset).__name__}')


class TrainWorkChain(ProtocolMixin, BaseRestartWorkChain):
    """Train one MACE potential; recover from a diverging loss and from running out of memory."""

    _process_class = TrainCalculation
    _protocol_file = 'train'

    #: factor applied to the learning rate after a non-finite loss
    LEARNING_RATE_FACTOR = 0.5

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.expose_inputs(TrainCalculation, namespace='train')
        spec.expose_outputs(TrainCalculation)
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )
        spec.exit_code(
            403,
            'ERROR_OUT_OF_MEMORY_AT_BATCH_SIZE_ONE',
            message='training ran out of memory with a batch size of 1: use a machine with more memory or a smaller '
            'model.',
        )
        spec.exit_code(
            404,
            'ERROR_TRAINING_INPUT_REFUSED',
            message='the training engine refused its input; restarting cannot help: {error}',
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        dataset: DatasetData | None,
        protocol: str | None = None,
        overrides: dict | None = None,
        test_dataset: DatasetData | None = None,
        options: dict | None = None,
    ):
        """Return a builder to train one model on ``dataset`` with ``code`` at ``protocol``.

        :param code: a ``sianode.train`` code (``sianode-train@localhost`` from ``aiida-sianode setup``).
        :param dataset: the training set (its ``train`` and ``valid`` splits are used); ``None`` leaves it to be set
            later (the active-learning work chain fills it in each iteration).
        :param protocol: ``fast``, ``balanced`` or ``stringent``; ``None`` for the default (``balanced``).
        :param overrides: nested dict merged over the protocol inputs, for example
            ``{'train': {'parameters': {'lr': 0.005}}}``; keys the protocol does not have are refused.
        :param test_dataset: frames to score the model on.
        :param options: calculation ``metadata.options`` merged over the protocol's (resources, walltime, ...).
        :raises aiida_sianode.protocols.ProtocolError: unknown protocol or override key.
        :raises ValueError: parameters the engine would refuse.
        """
        _check_code(code)
        if dataset is not None:
            _check_dataset(dataset, 'dataset')
        if test_dataset is not None:
            _check_dataset(test_dataset, 'test_dataset')
        inputs = cls.get_protocol_inputs(protocol, overrides)
        problem = engine.check_parameters(inputs['train']['parameters'])
        if problem:
            raise ValueError(f'invalid training parameters: {problem}')
        builder = cls.get_builder()
        builder.train.code = code
        if dataset is not None:
            builder.train.dataset = dataset
        if test_dataset is not None:
            builder.train.test_dataset = test_dataset
        builder.train.parameters = orm.Dict(inputs['train']['parameters'])
        builder.train.metadata.options = recursive_merge(inputs['train']['metadata']['options'], options or {})
        builder.max_iterations = orm.Int(inputs['max_iterations'])
        builder.clean_workdir = orm.Bool(inputs['clean_workdir'])
        return builder

    def setup(self):
        """Take the calculation inputs into the context, where the handlers adjust them between restarts."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(TrainCalculation, 'train'))

    def _parameters(self) -> dict:
        """Return the current full training parameters (engine defaults filled in)."""
        parameters = self.ctx.inputs.parameters.get_dict() if 'parameters' in self.ctx.inputs else {}
        return {**engine.DEFAULT_PARAMETERS, **parameters}

    def _set_parameters(self, updates: dict) -> None:
        parameters = self.ctx.inputs.parameters.get_dict() if 'parameters' in self.ctx.inputs else {}
        parameters.update(updates)
        self.ctx.inputs.parameters = orm.Dict(parameters)

    @process_handler(priority=600, exit_codes=[TrainCalculation.exit_codes.ERROR_INVALID_TRAINING_INPUT])
    def handle_refused_input(self, node):
        """The engine refused its inputs: abort, since the same inputs would be refused again."""
        self.report(f'{node.process_label}<{node.pk}> refused its input: {node.exit_message}')
        error = node.exit_message or 'see the calculation'
        return ProcessHandlerReport(True, self.exit_codes.ERROR_TRAINING_INPUT_REFUSED.format(error=error))

    @process_handler(priority=500, exit_codes=[TrainCalculation.exit_codes.ERROR_NAN_LOSS])
    def handle_nan_loss(self, node):
        """The loss became NaN or infinite: halve the learning rate and train again."""
        old = self._parameters()['lr']
        new = old * self.LEARNING_RATE_FACTOR
        self._set_parameters({'lr': new})
        self.report(f'{node.process_label}<{node.pk}> diverged: lowering the learning rate from {old:g} to {new:g}')
        return ProcessHandlerReport(True)

    @process_handler(
        priority=450,
        exit_codes=[
            TrainCalculation.exit_codes.ERROR_MISSING_METRICS,
            TrainCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME,
            TrainCalculation.exit_codes.ERROR_SCHEDULER_NODE_FAILURE,
        ],
    )
    def handle_interrupted(self, node):
        """The job stopped before the engine finished (killed, out of walltime, node failure): continue from the
        checkpoint it left, if any; double the walltime when it got no further than the previous try."""
        retrieved = node.outputs.retrieved if 'retrieved' in node.outputs else None
        epoch = checkpoint_epoch(retrieved) if retrieved is not None else None
        previous = self.ctx.get('checkpoint_epoch')
        made_progress = epoch is not None and (previous is None or epoch > previous)
        message = f'{node.process_label}<{node.pk}> was interrupted ({node.exit_message})'
        if epoch is not None:
            self.ctx.inputs.parent_checkpoints = retrieved
            self.ctx.checkpoint_epoch = epoch
            message += f': continuing from its checkpoint of epoch {epoch}'
        else:
            message += ' before its first checkpoint: training again from the start'
        if not made_progress:
            options = self.ctx.inputs.metadata.options
            walltime = options.get('max_wallclock_seconds')
            if walltime:
                options['max_wallclock_seconds'] = int(walltime) * 2
                message += f', walltime {walltime} s -> {2 * int(walltime)} s'
        self.report(message)
        return ProcessHandlerReport(True)

    @process_handler(
        priority=400,
        exit_codes=[
            TrainCalculation.exit_codes.ERROR_OUT_OF_MEMORY,
            TrainCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_MEMORY,
        ],
    )
    def handle_out_of_memory(self, node):
        """Training ran out of memory: halve the training and validation batch sizes and train again."""
        parameters = self._parameters()
        batch_size, valid_batch_size = parameters['batch_size'], parameters['valid_batch_size']
        if batch_size == 1:
            self.report(f'{node.process_label}<{node.pk}> ran out of memory with batch size 1: aborting')
            return ProcessHandlerReport(True, self.exit_codes.ERROR_OUT_OF_MEMORY_AT_BATCH_SIZE_ONE)
        updates = {'batch_size': max(1, batch_size // 2), 'valid_batch_size': max(1, valid_batch_size // 2)}
        self._set_parameters(updates)
        self.report(
            f'{node.process_label}<{node.pk}> ran out of memory: batch size {batch_size} -> {updates["batch_size"]}, '
            f'validation batch size {valid_batch_size} -> {updates["valid_batch_size"]}'
        )
        return ProcessHandlerReport(True)


def validate_committee_size(value: orm.Int, _) -> str | None:
    """A committee has at least one member and at most 100."""
    if value is not None and not 1 <= value.value <= 100:
        return f'`committee_size` must be between 1 and 100, got {value.value}'
    return None


def member_label(index: int) -> str:
    """Return the link label of committee member ``index`` (``member_00``, ``member_01``, ...)."""
    return f'member_{index:02d}'


def member_parameters(parameters: dict, index: int) -> dict:
    """Return the training parameters of member ``index``: the seed (and an explicit subsample seed) shifted by it.

    Members share everything else; with ``bootstrap`` each draws its own sample because the subsample seed follows
    the seed unless given.
    """
    parameters = copy.deepcopy(parameters)
    parameters['seed'] = int(parameters.get('seed', engine.DEFAULT_PARAMETERS['seed'])) + index
    if parameters.get('subsample_seed') is not None:
        parameters['subsample_seed'] = int(parameters['subsample_seed']) + index
    return parameters


def _mean_std(values: list[float]) -> dict:
    import numpy as np

    array = np.asarray(values, dtype=float)
    return {
        'mean': float(array.mean()),
        'std': float(array.std()),
        'min': float(array.min()),
        'max': float(array.max()),
    }


def summarise_committee_metrics(member_metrics: dict[str, dict], predictions: dict[str, dict] | None = None) -> dict:
    """Summarise the members' metrics (and, when given, their test predictions) of a committee; plain Python.

    :param member_metrics: ``{member label: the engine's metrics.json}``.
    :param predictions: ``{member label: {array name: numpy array}}`` as the engine's ``test_predictions.npz``.
    :return: ``{'n_members', 'members': {label: {seed, epochs_run, best_epoch, training_wall_time_s, train, valid,
        test}}, 'mean_std': {split: {metric: {mean, std, min, max}}}, 'committee_prediction': {'test': errors of the
        member-mean prediction}, 'test_disagreement': {...}}``; errors in meV/atom, meV/Å, meV/Å^3, the force
        disagreement (DP-GEN's max force deviation per frame, averaged over frames) in eV/Å.
    """
    import numpy as np

    from aiida_sianode.engines.committee import atomic_force_deviation

    labels = sorted(member_metrics)
    summary: dict = {'n_members': len(labels), 'members': {}, 'mean_std': {}}
    for label in labels:
        metrics = member_metrics[label]
        record = {key: metrics.get(key) for key in ('epochs_run', 'best_epoch', 'last_epoch', 'training_wall_time_s')}
        record['seed'] = metrics.get('parameters', {}).get('seed')
        record['n_frames_trained'] = metrics.get('training_subset', {}).get('n_unique_frames')
        for split in ('train', 'valid', 'test'):
            if split in metrics:
                record[split] = metrics[split]
        summary['members'][label] = record
    for split in ('train', 'valid', 'test'):
        present = [member_metrics[label][split] for label in labels if split in member_metrics[label]]
        if len(present) != len(labels):
            continue
        summary['mean_std'][split] = {
            key: _mean_std([values[key] for values in present])
            for key in SUMMARY_KEYS
            if all(values.get(key) is not None for values in present)
        }
    if predictions and set(predictions) == set(labels):
        first = predictions[labels[0]]
        for label in labels[1:]:
            other = predictions[label]
            if not (
                np.array_equal(other['energy_ref'], first['energy_ref'])
                and other['natoms'].tolist() == first['natoms'].tolist()
            ):
                raise ValueError(f'{label} was scored on other test frames than {labels[0]}')
        mean = {
            'natoms': first['natoms'],
            'energy_ref': first['energy_ref'],
            'forces_ref': first['forces_ref'],
            'stress_ref': first['stress_ref'],
            'energy_pred': np.mean([predictions[label]['energy_pred'] for label in labels], axis=0),
            'forces_pred': np.mean([predictions[label]['forces_pred'] for label in labels], axis=0),
            'stress_pred': np.mean([predictions[label]['stress_pred'] for label in labels], axis=0),
        }
        summary['committee_prediction'] = {'test': engine.error_metrics(mean)}
        member_forces = np.array([predictions[label]['forces_pred'] for label in labels])
        bounds = np.concatenate([[0], np.cumsum(first['natoms'])])
        deviations = [
            float(atomic_force_deviation(member_forces[:, start:stop]).max())
            for start, stop in itertools.pairwise(bounds)
        ]
        energies = np.array([predictions[label]['energy_pred'] for label in labels]) / first['natoms']
        summary['test_disagreement'] = {
            'mean_max_force_deviation_ev_a': float(np.mean(deviations)),
            'max_max_force_deviation_ev_a': float(np.max(deviations)),
            'mean_energy_std_mev_per_atom': float(1000 * np.mean(energies.std(axis=0))),
        }
    return summary


def warm_start_parameters(parameters: dict, epochs: int) -> dict:
    """Return member ``parameters`` for a warm start of ``epochs`` epochs, never more than a cold start's
    ``max_num_epochs`` (patience and stage two fitted in)."""
    epochs = min(int(epochs), int(parameters.get('max_num_epochs', epochs)))
    parameters = {
        **parameters,
        'max_num_epochs': int(epochs),
        'patience': min(parameters.get('patience', epochs), epochs),
    }
    start = parameters.get('stage_two_start')
    if parameters.get('stage_two') and start is not None and start >= epochs:
        parameters['stage_two_start'] = None  # the engine then starts stage two at 3/4 of the epochs
    return parameters


@calcfunction
def summarise_committee(failures: orm.Dict, **members) -> orm.Dict:
    """Summarise a trained committee from its members' ``metrics_<label>`` and ``predictions_<label>`` outputs.

    ``failures`` maps the labels of members that did not train to the reason; see
    :func:`summarise_committee_metrics` for the content.
    """
    member_metrics = {
        key.removeprefix('metrics_'): node.get_dict() for key, node in members.items() if key.startswith('metrics_')
    }
    predictions = {
        key.removeprefix('predictions_'): {name: node.get_array(name) for name in node.get_arraynames()}
        for key, node in members.items()
        if key.startswith('predictions_')
    }
    summary = summarise_committee_metrics(member_metrics, predictions or None)
    summary['failed_members'] = failures.get_dict()
    summary['committee_size'] = summary['n_members'] + len(summary['failed_members'])
    return orm.Dict(summary)


class TrainCommitteeWorkChain(ProtocolMixin, WorkChain):
    """Train a committee of MACE potentials in parallel and score the members and their mean."""

    _protocol_file = 'train'

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.input('dataset', valid_type=DatasetData, help='The training set shared by every member.')
        spec.input(
            'test_dataset',
            valid_type=DatasetData,
            required=False,
            help='Frames to score the members and the committee on (else the test split of `dataset`, if any).',
        )
        spec.input(
            'committee_size',
            valid_type=orm.Int,
            default=lambda: orm.Int(3),
            validator=validate_committee_size,
            help='Number of members; member i trains with seed `parameters.seed + i`.',
        )
        spec.expose_inputs(
            TrainWorkChain,
            namespace='member',
            exclude=('train.dataset', 'train.test_dataset', 'train.init_model'),
            namespace_options={'help': 'Inputs of every member TrainWorkChain; the seed is shifted per member.'},
        )
        spec.input_namespace(
            'init_models',
            valid_type=PotentialData,
            dynamic=True,
            required=False,
            help='Warm start: member_XX starts from init_models.member_XX (a previous committee) instead of scratch.',
        )
        spec.input(
            'warm_start_epochs',
            valid_type=orm.Int,
            required=False,
            help='max_num_epochs of a member that starts from an init_models entry (a warm start needs fewer).',
        )
        spec.outline(
            cls.setup,
            cls.run_members,
            cls.inspect_members,
            cls.results,
        )
        spec.output_namespace(
            'potentials', valid_type=PotentialData, dynamic=True, help='The trained members: member_00, member_01...'
        )
        spec.output('metrics', valid_type=orm.Dict, help='Per-member errors, their mean/std and the committee mean.')
        spec.exit_code(400, 'ERROR_ALL_MEMBERS_FAILED', message='no member of the committee trained: {reasons}')

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        dataset: DatasetData | None,
        protocol: str | None = None,
        overrides: dict | None = None,
        committee_size: int = 3,
        test_dataset: DatasetData | None = None,
        options: dict | None = None,
    ):
        """Return a builder to train a committee of ``committee_size`` members on ``dataset`` at ``protocol``.

        ``overrides`` has the layout of the protocol (``{'train': {'parameters': {...}}, 'max_iterations': ...}``)
        and applies to every member; see :meth:`TrainWorkChain.get_builder_from_protocol` for the other arguments.
        Members train on bootstrap samples of the training split (``bootstrap: true``) unless ``overrides`` sets
        ``train.parameters.bootstrap`` itself.
        """
        member = TrainWorkChain.get_builder_from_protocol(
            code, dataset, protocol=protocol, overrides=overrides, options=options
        )
        if isinstance(committee_size, bool) or not isinstance(committee_size, int) or committee_size < 1:
            raise ValueError(f'`committee_size` must be a positive integer, got {committee_size!r}')
        parameters = member.train.parameters.get_dict()
        if 'bootstrap' not in ((overrides or {}).get('train') or {}).get('parameters', {}):
            parameters['bootstrap'] = True
        builder = cls.get_builder()
        if dataset is not None:
            builder.dataset = dataset
        if test_dataset is not None:
            _check_dataset(test_dataset, 'test_dataset')
            builder.test_dataset = test_dataset
        builder.committee_size = orm.Int(committee_size)
        builder.member.train.code = member.train.code
        builder.member.train.parameters = orm.Dict(parameters)
        builder.member.train.metadata.options = member.train.metadata.options
        builder.member.max_iterations = member.max_iterations
        builder.member.clean_workdir = member.clean_workdir
        warm_start_epochs = cls.get_protocol_inputs(protocol, overrides).get('warm_start_epochs')
        if warm_start_epochs:
            builder.warm_start_epochs = orm.Int(warm_start_epochs)
        return builder

    def setup(self):
        """Prepare the member labels and the shared inputs."""
        self.ctx.labels = [member_label(index) for index in range(self.inputs.committee_size.value)]
        parameters = self.inputs.member.train.get('parameters')
        self.ctx.parameters = parameters.get_dict() if parameters is not None else {}

    def run_members(self):
        """Launch one TrainWorkChain per member, all at once."""
        members = {}
        for index, label in enumerate(self.ctx.labels):
            inputs = AttributeDict(self.exposed_inputs(TrainWorkChain, namespace='member'))
            inputs.train = AttributeDict(inputs.train)
            inputs.train.dataset = self.inputs.dataset
            if 'test_dataset' in self.inputs:
                inputs.train.test_dataset = self.inputs.test_dataset
            parameters = member_parameters(self.ctx.parameters, index)
            if label in self.inputs.get('init_models', {}):
                inputs.train.init_model = self.inputs.init_models[label]
                if 'warm_start_epochs' in self.inputs:
                    parameters = warm_start_parameters(parameters, self.inputs.warm_start_epochs.value)
            inputs.train.parameters = orm.Dict(parameters)
            inputs.metadata = {'call_link_label': label}
            node = self.submit(TrainWorkChain, **inputs)
            self.report(f'launched {label}: TrainWorkChain<{node.pk}> with seed {parameters["seed"]}')
            members[label] = node
        return ToContext(**members)

    def inspect_members(self):
        """Keep the members that trained; report the others; fail only when none trained."""
        self.ctx.succeeded, self.ctx.failures = [], {}
        for label in self.ctx.labels:
            node = self.ctx[label]
            if node.is_finished_ok:
                self.ctx.succeeded.append(label)
                continue
            reason = f'{node.process_label}<{node.pk}> exit status {node.exit_status}: {node.exit_message}'
            self.ctx.failures[label] = reason
            self.report(f'{label} failed: {reason}')
        if not self.ctx.succeeded:
            reasons = '; '.join(f'{label}: {reason}' for label, reason in self.ctx.failures.items())
            return self.exit_codes.ERROR_ALL_MEMBERS_FAILED.format(reasons=reasons)
        if self.ctx.failures:
            self.report(
                f'{len(self.ctx.failures)} of {len(self.ctx.labels)} members failed; the committee continues with '
                f'{", ".join(self.ctx.succeeded)}'
            )
        return None

    def results(self):
        """Attach the members' potentials and the committee's metrics."""
        inputs = {'failures': orm.Dict(self.ctx.failures)}
        for label in self.ctx.succeeded:
            outputs = self.ctx[label].outputs
            self.out(f'potentials.{label}', outputs.potential)
            inputs[f'metrics_{label}'] = outputs.metrics
            if 'test_predictions' in outputs:
                inputs[f'predictions_{label}'] = outputs.test_predictions
        metrics = summarise_committee(**inputs, metadata={'call_link_label': 'summarise_committee'})
        self.out('metrics', metrics)
        summary = metrics.get_dict()
        valid = summary['mean_std'].get('valid', {})
        if 'rmse_e_per_atom_mev' in valid:
            self.report(
                f'committee of {summary["n_members"]}: valid RMSE {valid["rmse_e_per_atom_mev"]["mean"]:.2f} '
                f'meV/atom, {valid["rmse_f_mev_a"]["mean"]:.1f} meV/Å (mean over members)'
            )
