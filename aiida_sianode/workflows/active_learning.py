"""``ActiveLearningWorkChain``: label, train a committee, explore, select, label again, until MD runs clean.

One campaign, one node. Each iteration:

1. train a MACE committee on the current training set (``TrainCommitteeWorkChain``);
2. explore with it (``ExploreWorkChain``: a grid of MD runs, each with per-frame committee deviations);
3. stop when the fraction of accurate frames (max force deviation below the lower trust level) reaches the target,
   or at the iteration cap, or when the label budget is spent;
4. otherwise select frames (``select_frames``: trust levels, maxvol, DIRECT or random), label them with the
   chosen labeler, and grow the training set with the labels that succeeded (``build_dataset(parent=...)``).

Failed labels are recorded in the iteration table and left out; the campaign stops with an exit code only when more
than ``convergence.max_failed_label_fraction`` of one batch of labels fails. The final committee is always the one
trained on the final training set.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, append_, if_, while_
from aiida.plugins import WorkflowFactory

from aiida_sianode.analysis import convergence as criteria
from aiida_sianode.analysis.campaign import summarise_metrics, wall_time
from aiida_sianode.campaign_spec import LABELERS, PROTOCOL_FILE, validate_settings
from aiida_sianode.common.validation import link_label
from aiida_sianode.data.dataset import DatasetData
from aiida_sianode.data.label import split_by_level_of_theory
from aiida_sianode.data.potential import PotentialData
from aiida_sianode.protocols import ProtocolMixin
from aiida_sianode.workflows import calibrate as trust_calibration
from aiida_sianode.workflows.explore import ExploreWorkChain, _as_structure_dict
from aiida_sianode.workflows.select import select_from_exploration
from aiida_sianode.workflows.train import TrainCommitteeWorkChain

LABELER_ENTRY_POINTS = {name: f'sianode.label.{name}' for name in LABELERS}
SECTIONS = ('selection', 'convergence', 'dataset')


def starts_within_elements(starts: dict[str, set[str]], trained: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Split MD starts ``{name: elements}`` into those the committee can drive (every element in ``trained``) and
    ``{name: [missing elements]}`` for the rest: the initial labels of an element can all fail (xTB on a metallic
    LixSi cell), and one such start used to stop the whole campaign with 403."""
    keep = [name for name, elements in starts.items() if elements <= trained]
    skipped = {name: sorted(elements - trained) for name, elements in starts.items() if not elements <= trained}
    return keep, skipped


def _settings_validator(section: str):
    """Return the port validator of one settings section: the campaign protocol's defaults updated with the
    given keys must pass the section's pydantic model (:data:`aiida_sianode.campaign_spec.SETTINGS_MODELS`)."""

    def validator(value, _ctx):
        if value is None:
            return None
        try:
            validate_settings(section, value.get_dict())
        except ValueError as error:
            return str(error)
        return None

    return validator


def _validate_labeler(value, _ctx):
    if value is not None and value.value not in LABELER_ENTRY_POINTS:
        return f'unknown labeler `{value.value}`; choose one of {", ".join(LABELER_ENTRY_POINTS)}'
    return None


class ActiveLearningWorkChain(ProtocolMixin, WorkChain):
    """An active-learning campaign: grow a DFT training set until a MACE committee explores it with confidence."""

    _protocol_file = PROTOCOL_FILE

    @classmethod
    def define(cls, spec):
        """Define inputs, outline, outputs and exit codes."""
        super().define(spec)
        spec.input_namespace(
            'structures',
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            help='Structures to label before the first training.',
        )
        spec.input(
            'training_set',
            valid_type=DatasetData,
            required=False,
            help="Start from this training set (for example a finished campaign's) instead of labeling.",
        )
        spec.input_namespace(
            'potentials',
            valid_type=PotentialData,
            dynamic=True,
            required=False,
            help='A committee trained on `training_set`: the first iteration then skips training.',
        )
        spec.input_namespace(
            'explore_structures',
            valid_type=orm.StructureData,
            dynamic=True,
            help='Starting structures of the explorations.',
        )
        spec.input(
            'test_set',
            valid_type=DatasetData,
            required=False,
            help='Held-out labels: committee RMSEs on it are reported per iteration.',
        )
        spec.input_namespace(
            'test_structures',
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            help='Held-out structures, labelled once before the first training: the test set (instead of `test_set`).',
        )

        spec.input_namespace('label', help='How new structures are labelled.')
        spec.input('label.labeler', valid_type=orm.Str, validator=_validate_labeler, help='gpaw, xtb, vasp or castep.')
        spec.input('label.code', valid_type=orm.AbstractCode)
        spec.input('label.protocol', valid_type=orm.Str, default=lambda: orm.Str('fast'))
        spec.input('label.overrides', valid_type=orm.Dict, required=False)
        spec.input('label.options', valid_type=orm.Dict, required=False)

        spec.expose_inputs(
            TrainCommitteeWorkChain, namespace='train', exclude=('dataset', 'test_dataset', 'init_models')
        )
        spec.expose_inputs(ExploreWorkChain, namespace='explore', exclude=('structures', 'potentials'))

        spec.input(
            'selection',
            valid_type=orm.Dict,
            required=False,
            validator=_settings_validator('selection'),
            help='Selection settings; defaults in protocols/active_learning.yaml.',
        )
        spec.input(
            'convergence',
            valid_type=orm.Dict,
            required=False,
            validator=_settings_validator('convergence'),
            help='Stopping criteria; defaults in protocols/active_learning.yaml.',
        )
        spec.input(
            'dataset',
            valid_type=orm.Dict,
            required=False,
            validator=_settings_validator('dataset'),
            help='Training-set settings; defaults in protocols/active_learning.yaml.',
        )
        spec.inputs.validator = cls.validate_inputs

        spec.outline(
            cls.setup,
            if_(cls.should_label_first)(
                cls.label_initial,
                cls.inspect_test_labels,
                if_(cls.should_label_initial)(
                    cls.inspect_labels,
                    cls.grow_training_set,
                    cls.close_iteration,
                ),
            ),
            while_(cls.should_iterate)(
                cls.start_iteration,
                if_(cls.should_train)(
                    cls.train,
                    cls.inspect_train,
                ),
                cls.explore,
                cls.inspect_explore,
                if_(cls.should_grow)(
                    cls.select,
                    cls.label_selected,
                    cls.calibrate,
                    cls.inspect_labels,
                    cls.grow_training_set,
                ),
                cls.close_iteration,
            ),
            cls.results,
        )

        spec.output('training_set', valid_type=DatasetData, help='The final training set.')
        spec.output(
            'test_set', valid_type=DatasetData, required=False, help='The test set labelled from `test_structures`.'
        )
        spec.output_namespace(
            'committee', valid_type=PotentialData, dynamic=True, help='The committee trained on the final training set.'
        )
        spec.output('iterations', valid_type=orm.List, help='One row per iteration (see the docs for the columns).')
        spec.output(
            'stop_reason', valid_type=orm.Str, help='converged, max_iterations, label_budget or nothing_to_label.'
        )
        spec.output(
            'failed_labels',
            valid_type=orm.List,
            required=False,
            help='Labels that failed: structure UUID, process PK, exit status and message.',
        )

        spec.exit_code(201, 'ERROR_NO_STARTING_DATA', message='Give `structures` to label or a `training_set`.')
        spec.exit_code(
            401,
            'ERROR_TOO_MANY_FAILED_LABELS',
            message='{failed} of {total} labels failed (more than the allowed fraction {allowed}).',
        )
        spec.exit_code(402, 'ERROR_TRAINING_FAILED', message='The committee training failed: {message}')
        spec.exit_code(403, 'ERROR_EXPLORATION_FAILED', message='The exploration failed: {message}')
        spec.exit_code(404, 'ERROR_NO_LABELS', message='No label succeeded, there is nothing to train on.')
        spec.exit_code(405, 'ERROR_NO_TEST_LABELS', message='No label of the `test_structures` succeeded.')

    @classmethod
    def validate_inputs(cls, value, _ctx):
        """Refuse a campaign without starting data, or a committee without the training set it was trained on."""
        if 'structures' not in value and 'training_set' not in value:
            return 'give `structures` to label or a `training_set` to start from'
        if value.get('potentials') and 'training_set' not in value:
            return '`potentials` are only accepted together with the `training_set` they were trained on'
        if value.get('test_structures') and 'test_set' in value:
            return 'give `test_set` (stored labels) or `test_structures` (to label), not both'
        return None

    @classmethod
    def get_builder_from_protocol(
        cls,
        labeler_code: orm.AbstractCode,
        structures,
        *,
        labeler: str,
        train_code: orm.AbstractCode,
        explore_code: orm.AbstractCode,
        protocol: str | None = None,
        train_protocol: str | None = None,
        explore_protocol: str | None = None,
        explore_structures=None,
        label_overrides: dict | None = None,
        train_overrides: dict | None = None,
        explore_overrides: dict | None = None,
        committee_size: int = 3,
        selection: dict | None = None,
        convergence: dict | None = None,
        dataset: dict | None = None,
        training_set: DatasetData | None = None,
        potentials: dict | None = None,
        test_set: DatasetData | None = None,
        test_structures=None,
    ):
        """Return a builder for a campaign.

        :param labeler_code: the code of the labeler (``sianode-label@localhost`` for gpaw and xtb).
        :param structures: ``StructureData`` or ``ase.Atoms`` to label first (a list or a ``{name: structure}`` dict);
            may be empty when ``training_set`` is given.
        :param labeler: ``gpaw``, ``xtb``, ``vasp`` or ``castep``.
        :param protocol: protocol of the labels, and of training and MD unless ``train_protocol`` /
            ``explore_protocol`` say otherwise.
        :param explore_structures: starting structures of the explorations; default ``structures``.
        :param protocol: also the campaign protocol (``protocols/active_learning.yaml``) whose ``selection``,
            ``convergence`` and ``dataset`` settings the given ones update.
        :param selection: selection settings (any key of :class:`aiida_sianode.campaign_spec.SelectionSettings`);
            ``lower`` and ``upper`` are also the trust levels the explorations classify frames with.
        :param training_set: start from this training set (and ``potentials``, its committee) instead of labeling.
        :param test_set: held-out labels the committees are scored on every iteration.
        :param test_structures: held-out structures (as ``structures``) labelled once before the first training and
            stored as the test set; not together with ``test_set``.
        :raises ValueError: unknown labeler, protocol or override key, or impossible settings, before anything runs.
        """
        if labeler not in LABELER_ENTRY_POINTS:
            raise ValueError(f'unknown labeler `{labeler}`; choose one of {", ".join(LABELER_ENTRY_POINTS)}')
        builder = cls.get_builder()
        structures = _as_structure_dict(structures or None)
        if structures:
            builder.structures = structures
        builder.explore_structures = _as_structure_dict(explore_structures) if explore_structures else structures
        if not builder.explore_structures:
            raise ValueError('give `explore_structures` (or `structures`) for the explorations to start from')
        if training_set is not None:
            builder.training_set = training_set
        if potentials:
            builder.potentials = dict(potentials)
        test_structures = _as_structure_dict(test_structures or None)
        if test_structures and test_set is not None:
            raise ValueError('give `test_set` (stored labels) or `test_structures` (to label), not both')
        if test_set is not None:
            builder.test_set = test_set
        if test_structures:
            builder.test_structures = test_structures

        labeler_class = WorkflowFactory(LABELER_ENTRY_POINTS[labeler])
        # Refuse an unknown protocol or override key now, not after the first training.
        labeler_class.get_protocol_inputs(protocol, label_overrides)
        for structure in [*structures.values(), *test_structures.values()]:
            labeler_class.check_structure(structure, check_elements=False)
        builder.label.labeler = orm.Str(labeler)
        builder.label.code = labeler_code
        builder.label.protocol = orm.Str(protocol or labeler_class.get_default_protocol())
        if label_overrides:
            builder.label.overrides = orm.Dict(label_overrides)

        train = TrainCommitteeWorkChain.get_builder_from_protocol(
            train_code,
            None,
            protocol=train_protocol or protocol,
            overrides=train_overrides,
            committee_size=committee_size,
        )
        train.pop('dataset', None)
        train.pop('test_dataset', None)
        train.pop('init_models', None)
        builder.train = train

        settings = {
            section: validate_settings(section, values, protocol)
            for section, values in (('selection', selection), ('convergence', convergence), ('dataset', dataset))
        }
        selection = settings['selection']
        explore = ExploreWorkChain.get_builder_from_protocol(
            explore_code,
            None,
            builder.explore_structures,
            protocol=explore_protocol or protocol,
            overrides={
                **(explore_overrides or {}),
                'lower_trust': selection['lower'],
                'upper_trust': selection['upper'],
            },
        )
        explore.pop('structures', None)
        explore.pop('potentials', None)
        builder.explore = explore
        for section, values in settings.items():
            builder[section] = orm.Dict(values)
        return builder

    # ------------------------------------------------------------------------------------------------- outline steps

    def setup(self):
        """Read the settings into the context and start the iteration table."""
        given = {section: self.inputs[section].get_dict() for section in SECTIONS if section in self.inputs}
        self.ctx.selection = validate_settings('selection', given.get('selection'))
        self.ctx.convergence = validate_settings('convergence', given.get('convergence'))
        self.ctx.dataset_settings = validate_settings('dataset', given.get('dataset'))
        self.ctx.labeler_class = WorkflowFactory(LABELER_ENTRY_POINTS[self.inputs.label.labeler.value])
        self.ctx.training_set = self.inputs.get('training_set')
        self.ctx.test_set = self.inputs.get('test_set')
        self.ctx.potentials = dict(self.inputs.potentials) if self.inputs.get('potentials') else None
        self.ctx.last_committee = self.ctx.potentials
        self.ctx.iteration = 0
        self.ctx.rows = []
        self.ctx.failed_labels = []
        self.ctx.labels_used = 0
        self.ctx.stop_reason = None
        self.ctx.row = self._new_row(0)
        # Trust levels: fixed, or (trust: auto) set from the latest calibration of the committee.
        self.ctx.trust, _ = trust_calibration.split_trust_settings(self.ctx.selection)
        self.ctx.calibration = None
        self.ctx.trust_levels = (self.ctx.selection['lower'], self.ctx.selection['upper'])

    def should_label_first(self):
        """Label before the first iteration: the starting structures, the test structures, or both."""
        return self.should_label_initial() or bool(self.inputs.get('test_structures'))

    def should_label_initial(self):
        """Label the given structures unless a training set was given."""
        return 'training_set' not in self.inputs

    def label_initial(self):
        """Label every given structure and every test structure, all at once."""
        if self.should_label_initial():
            self._submit_labels(list(self.inputs.structures.items()), config_type='initial')
        if self.inputs.get('test_structures'):
            self._submit_labels(list(self.inputs.test_structures.items()), config_type='test', context='test_labels')

    def inspect_test_labels(self):
        """Store the labels of the test structures as the test set; the failed ones are recorded and left out."""
        from aiida_sianode.data.dataset import build_dataset

        processes = self.ctx.get('test_labels', [])
        if not processes:
            return None
        succeeded = [
            process.outputs.label for process in processes if process.is_finished_ok and 'label' in process.outputs
        ]
        for process in processes:
            if not (process.is_finished_ok and 'label' in process.outputs):
                entry = {
                    'iteration': 0,
                    'test_set': True,
                    'structure': process.inputs.structure.uuid,
                    'process': process.pk,
                    'exit_status': process.exit_status,
                    'message': process.exit_message or (process.process_state.value if process.process_state else ''),
                }
                self.ctx.failed_labels.append(entry)
                self.report(f'test label of structure {entry["structure"]} failed (process {entry["process"]})')
        self.ctx.row['test_labels'] = len(succeeded)
        self.ctx.row['test_labels_failed'] = len(processes) - len(succeeded)
        if not succeeded:
            self._store_partial()
            return self.exit_codes.ERROR_NO_TEST_LABELS
        self.ctx.test_set = build_dataset(succeeded, allow_mixed=False, valid_fraction=0.0)
        self.report(f'test set {self.ctx.test_set.pk}: {len(succeeded)} held-out frames')
        return None

    def inspect_labels(self):
        """Record the labels that failed and keep those that succeeded; stop when too many of the batch failed."""
        succeeded, failed = [], []
        for process in self.ctx.get('labels', []):
            if process.is_finished_ok and 'label' in process.outputs:
                succeeded.append(process.outputs.label)
            else:
                failed.append(
                    {
                        'iteration': self.ctx.iteration,
                        'structure': process.inputs.structure.uuid,
                        'process': process.pk,
                        'exit_status': process.exit_status,
                        'message': process.exit_message
                        or (process.process_state.value if process.process_state else ''),
                    }
                )
        total = len(succeeded) + len(failed)
        self.ctx.new_labels = succeeded
        self.ctx.failed_labels.extend(failed)
        self.ctx.labels_used += total
        self.ctx.row['labels_added'] = len(succeeded)
        self.ctx.row['labels_failed'] = len(failed)
        self.ctx.row['wall_time_label_s'] = wall_time(self.ctx.get('labels', []))
        self.ctx.labels = []
        for entry in failed:
            self.report(
                f'label of structure {entry["structure"]} failed (process {entry["process"]}): {entry["message"]}'
            )

        allowed = self.ctx.convergence['max_failed_label_fraction']
        if total and len(failed) / total > allowed:
            self._store_partial()
            return self.exit_codes.ERROR_TOO_MANY_FAILED_LABELS.format(failed=len(failed), total=total, allowed=allowed)
        if not succeeded and self.ctx.training_set is None:
            return self.exit_codes.ERROR_NO_LABELS
        return None

    def grow_training_set(self):
        """Add the new labels to the training set (or create it), leaving out those of another level of theory."""
        from aiida_sianode.data.dataset import build_dataset

        succeeded = self.ctx.new_labels
        if not succeeded:
            return None

        settings = self.ctx.dataset_settings
        if not settings['allow_mixed']:
            succeeded, mismatched = self._split_by_level_of_theory(succeeded)
            self.ctx.failed_labels.extend(mismatched)
            self.ctx.row['labels_added'] = len(succeeded)
            self.ctx.row['labels_set_aside'] = len(mismatched)
            for entry in mismatched:
                self.report(f'label {entry["label"]} set aside: {entry["message"]}')
            if not succeeded:
                return self.exit_codes.ERROR_NO_LABELS if self.ctx.training_set is None else None
        self.ctx.training_set = build_dataset(
            succeeded,
            allow_mixed=settings['allow_mixed'],
            valid_fraction=settings['valid_fraction'],
            seed=settings['seed'] + self.ctx.iteration,
            parent=self.ctx.training_set,
        )
        self.ctx.potentials = None  # the committee must be retrained on the grown set
        self.report(
            f'training set {self.ctx.training_set.pk}: {self.ctx.training_set.base.attributes.get("n_frames")} frames '
            f'(+{len(succeeded)}, {self.ctx.row["labels_failed"]} failed)'
        )
        return None

    def should_iterate(self):
        """Go on until a stop reason is set."""
        return self.ctx.stop_reason is None

    def start_iteration(self):
        """Count the iteration and start its row of the table."""
        self.ctx.iteration += 1
        self.ctx.row = self._new_row(self.ctx.iteration)

    def should_train(self):
        """Train unless a committee for the current training set already exists (a given one, in iteration 1)."""
        return self.ctx.potentials is None

    def train(self):
        """Train the committee on the current training set."""
        inputs = AttributeDict(self.exposed_inputs(TrainCommitteeWorkChain, namespace='train'))
        inputs.dataset = self.ctx.training_set
        if self.ctx.test_set is not None:
            inputs.test_dataset = self.ctx.test_set
        if 'warm_start_epochs' in inputs and self.ctx.get('last_committee'):
            inputs.init_models = self.ctx.last_committee  # warm start from the previous committee's weights
        inputs.metadata = {'call_link_label': f'train_iteration_{self.ctx.iteration:02d}'}
        node = self.submit(TrainCommitteeWorkChain, **inputs)
        self.report(f'iteration {self.ctx.iteration}: training committee <{node.pk}>')
        return ToContext(train=node)

    def inspect_train(self):
        """Take the committee, or stop if the training failed."""
        node = self.ctx.train
        if not node.is_finished_ok:
            self._store_partial()
            return self.exit_codes.ERROR_TRAINING_FAILED.format(message=f'process {node.pk}: {node.exit_message}')
        self.ctx.potentials = dict(node.outputs.potentials)
        self.ctx.last_committee = dict(self.ctx.potentials)
        metrics = node.outputs.metrics.get_dict()
        self.ctx.row['wall_time_train_s'] = wall_time([node])
        self.ctx.row['committee_metrics'] = summarise_metrics(metrics)
        self.ctx.row['test_force_rmse_mev_a'] = criteria.test_force_rmse(metrics)
        test = (metrics.get('committee_prediction') or {}).get('test') or {}
        self.ctx.row['test_energy_rmse_mev_atom'] = test.get('rmse_e_per_atom_mev')
        return None

    def explore(self):
        """Run the exploration grid with the current committee, from the starts whose elements it was trained on."""
        inputs = AttributeDict(self.exposed_inputs(ExploreWorkChain, namespace='explore'))
        trained = set.intersection(*(set(potential.elements or []) for potential in self.ctx.potentials.values()))
        starts, skipped = starts_within_elements(
            {name: set(structure.get_symbols_set()) for name, structure in self.inputs.explore_structures.items()},
            trained,
        )
        if skipped:
            self.ctx.row['skipped_starts'] = skipped
            self.report(
                f'iteration {self.ctx.iteration}: skipping MD starts with elements the committee was not trained on '
                f'({"-".join(sorted(trained))}): '
                + ', '.join(f'{name} ({"-".join(missing)})' for name, missing in skipped.items())
            )
        if not starts:
            self._store_partial()
            return self.exit_codes.ERROR_EXPLORATION_FAILED.format(
                message=f'every MD start holds an element the committee was not trained on: {skipped}'
            )
        inputs.structures = {name: self.inputs.explore_structures[name] for name in starts}
        inputs.potentials = self.ctx.potentials
        self.ctx.trust_levels = trust_calibration.trust_levels(
            self.ctx.trust, self.ctx.calibration, (inputs.lower_trust.value, inputs.upper_trust.value)
        )
        inputs.lower_trust, inputs.upper_trust = (orm.Float(level) for level in self.ctx.trust_levels)
        self.ctx.row['trust_levels'] = list(self.ctx.trust_levels)
        inputs.metadata = {'call_link_label': f'explore_iteration_{self.ctx.iteration:02d}'}
        node = self.submit(ExploreWorkChain, **inputs)
        self.report(f'iteration {self.ctx.iteration}: exploring <{node.pk}>')
        return ToContext(exploration=node)

    def inspect_explore(self):
        """Record the accurate / candidate / failed fractions and decide whether the campaign has converged."""
        node = self.ctx.exploration
        if not node.is_finished_ok:
            self._store_partial()
            return self.exit_codes.ERROR_EXPLORATION_FAILED.format(message=f'process {node.pk}: {node.exit_message}')
        summary = node.outputs.summary.get_dict()
        total = summary['total']
        self.ctx.row.update(
            {
                'accurate_fraction': total['accurate_fraction'],
                'candidate_fraction': total['candidate_fraction'],
                'failed_fraction': total['failed_fraction'],
                'frames': total['frames'],
                'stop_reasons': total.get('stop_reasons', {}),
                'wall_time_explore_s': wall_time([node]),
            }
        )
        unreachable = trust_calibration.unreachable_level_note(node, self.ctx.trust_levels[0])
        if unreachable:
            self.ctx.row['trust_warning'] = unreachable
            self.report(f'iteration {self.ctx.iteration}: {unreachable}')
        convergence = self.ctx.convergence
        if convergence['property']:
            from aiida_sianode.workflows.convergence import exploration_property

            self.ctx.row['property'] = exploration_property(node, convergence['property'])
        converged_by = criteria.convergence_reason([*self.ctx.rows, self.ctx.row], convergence)
        if total['accurate_fraction'] >= convergence['accurate_fraction']:
            self.ctx.stop_reason = 'converged'
            self.ctx.row['converged_by'] = 'accurate_fraction'
        elif converged_by:
            self.ctx.stop_reason = 'converged'
            self.ctx.row['converged_by'] = converged_by
        elif self.ctx.iteration >= convergence['max_iterations']:
            self.ctx.stop_reason = 'max_iterations'
        elif self.ctx.labels_used >= convergence['max_labels']:
            self.ctx.stop_reason = 'label_budget'
        self.report(
            f'iteration {self.ctx.iteration}: accurate {total["accurate_fraction"]:.3f} candidate '
            f'{total["candidate_fraction"]:.3f} failed {total["failed_fraction"]:.3f}'
            + (f' -> stop: {self.ctx.stop_reason}' if self.ctx.stop_reason else '')
        )
        return None

    def should_grow(self):
        """Select and label only while the campaign goes on."""
        return self.ctx.stop_reason is None

    def select(self):
        """Pick the frames to label from the explorations, within the label budget."""
        settings = trust_calibration.split_trust_settings(self.ctx.selection)[1]
        settings['lower'], settings['upper'] = self.ctx.trust_levels
        budget = self.ctx.convergence['max_labels'] - self.ctx.labels_used
        settings['max_total'] = min(settings['max_total'] or budget, budget)
        first_member = self.ctx.potentials[sorted(self.ctx.potentials)[0]]
        structures, report = select_from_exploration(
            self.ctx.exploration,
            settings,
            potential=first_member,
            training_set=self.ctx.training_set,
            call_link_label=f'select_iteration_{self.ctx.iteration:02d}',
        )
        self.ctx.row['selected'] = len(structures)
        self.ctx.selected = structures
        if not structures:
            self.ctx.stop_reason = 'nothing_to_label'
        counts = report.get('counts', report.get('total', {}))
        self.report(
            f'iteration {self.ctx.iteration}: selected {len(structures)} frames with {settings["strategy"]} ({counts})'
        )

    def label_selected(self):
        """Label the selected frames."""
        if not self.ctx.selected:
            return None
        return self._submit_labels(list(self.ctx.selected.items()), config_type='active_learning')

    def calibrate(self):
        """Fit the committee's true max force error against its deviation on the frames just labelled."""
        node = trust_calibration.calibrate_label_processes(
            self.ctx.get('labels', []), call_link_label=f'calibrate_iteration_{self.ctx.iteration:02d}'
        )
        if node is not None:
            self.ctx.calibration = node
            self.ctx.row['calibration'] = trust_calibration.calibration_summary(node)
            self.report(f'iteration {self.ctx.iteration}: calibration <{node.pk}>: {self.ctx.row["calibration"]}')

    def close_iteration(self):
        """Finish the iteration's row of the table."""
        row = self.ctx.row
        row['training_set_frames'] = self.ctx.training_set.base.attributes.get('n_frames')
        row['labels_total'] = self.ctx.labels_used
        self.ctx.rows.append(row)

    def results(self):
        """Attach the final training set, committee, table and stop reason."""
        self.out('training_set', self.ctx.training_set)
        if self.ctx.test_set is not None and 'test_set' not in self.inputs:
            self.out('test_set', self.ctx.test_set)
        self.out('committee', self.ctx.potentials)
        self._store_partial()
        self.report(f'campaign finished after {self.ctx.iteration} iterations: {self.ctx.stop_reason}')

    # ------------------------------------------------------------------------------------------------------ helpers

    def _new_row(self, iteration: int) -> dict:
        return {'iteration': iteration, 'labels_added': 0, 'labels_failed': 0, 'selected': 0}

    def _store_partial(self):
        rows = list(self.ctx.rows)
        if self.ctx.row and (not rows or rows[-1]['iteration'] != self.ctx.row['iteration']):
            rows.append(self.ctx.row)
        self.out('iterations', orm.List(rows).store())
        self.out('stop_reason', orm.Str(self.ctx.stop_reason or 'failed').store())
        if self.ctx.failed_labels:
            self.out('failed_labels', orm.List(self.ctx.failed_labels).store())

    def _split_by_level_of_theory(self, labels: list) -> tuple[list, list]:
        """Return ``(compatible, set_aside)`` against the training set's level of theory (see
        :func:`aiida_sianode.data.label.split_by_level_of_theory`)."""
        reference = None
        if self.ctx.training_set is not None:
            reference = self.ctx.training_set.base.attributes.get('level_of_theory')
        return split_by_level_of_theory(labels, reference, iteration=self.ctx.iteration)

    def _submit_labels(self, structures, config_type: str, context: str = 'labels'):
        label = self.inputs.label
        overrides = label.overrides.get_dict() if 'overrides' in label else None
        options = label.options.get_dict() if 'options' in label else None
        for name, structure in structures:
            builder = self.ctx.labeler_class.get_builder_from_protocol(
                label.code, structure, protocol=label.protocol.value, overrides=overrides, options=options
            )
            builder.metadata.call_link_label = link_label(f'label_{config_type}_{self.ctx.iteration:02d}_{name}')
            node = self.submit(builder)
            self.to_context(**{context: append_(node)})
        return None
