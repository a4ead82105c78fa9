"""End-to-end tests of the active-learning campaign on GFN1-xTB labels and tiny MACE committees.

One campaign (two iterations) is run once per module and shared by the tests that inspect it; an extension of it is
run once more. A deliberately failing label (a metallic Li4Si8 cell whose xTB SCF does not converge at 300 K
electronic temperature within 250 cycles, with SCF restarts switched off) checks that a failed label is recorded and
the loop goes on.
"""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_sianode.data.label import LabelData
from aiida_sianode.structures import build
from aiida_sianode.workflows.active_learning import ActiveLearningWorkChain

pytestmark = pytest.mark.slow

#: tiny models: the fast protocol with fewer epochs
TRAIN_OVERRIDES = {'train': {'parameters': {'max_num_epochs': 6, 'patience': 6}}}
EXPLORE_OVERRIDES = {'temperatures': [300.0, 600.0], 'steps': [60], 'parameters': {'min_distance': 1.6}}
#: no SCF restarts: the metallic Li4Si8 cell fails at once, the Si8 cells converge in a few cycles
LABEL_OVERRIDES = {'scf_restarts': 0, 'max_iterations': 2}
SELECTION = {'strategy': 'trust', 'lower': 0.02, 'upper': 2.0, 'max_per_run': 2, 'max_total': 3, 'seed': 0}


def _initial_structures():
    structures = {
        f'si8_{seed}': orm.StructureData(ase=build('si-crystal', {'size': [1, 1, 1], 'rattle': 0.05}, seed=seed))
        for seed in (1, 2, 3)
    }
    structures['li4si8_failing'] = orm.StructureData(ase=build('lixsi', {'x': 0.5, 'size': [1, 1, 1]}, seed=1))
    return structures


def _test_structures():
    """Two held-out Si8 cells, hotter than the starting ones: the campaign labels them once as its test set."""
    return {
        f'si8_test_{seed}': orm.StructureData(ase=build('si-crystal', {'size': [1, 1, 1], 'rattle': 0.1}, seed=seed))
        for seed in (21, 22)
    }


def _builder(label_code, train_code, explore_code, structures, **kwargs):
    explore = {'si8_md': orm.StructureData(ase=build('si-crystal', {'size': [1, 1, 1], 'rattle': 0.02}, seed=11))}
    return ActiveLearningWorkChain.get_builder_from_protocol(
        label_code,
        structures,
        labeler='xtb',
        train_code=train_code,
        explore_code=explore_code,
        protocol='fast',
        explore_structures=explore,
        label_overrides=LABEL_OVERRIDES,
        train_overrides=TRAIN_OVERRIDES,
        explore_overrides=EXPLORE_OVERRIDES,
        committee_size=2,
        **{'selection': SELECTION, **kwargs},
    )


@pytest.fixture(scope='module')
def campaign(engine_codes):
    """Run a two-iteration campaign once for the module."""
    label_code, train_code, explore_code = engine_codes
    builder = _builder(
        label_code,
        train_code,
        explore_code,
        _initial_structures(),
        convergence={'accurate_fraction': 1.0, 'max_iterations': 2, 'max_labels': 20, 'max_failed_label_fraction': 0.5},
        test_structures=_test_structures(),
    )
    _, node = run_get_node(builder)
    return node, engine_codes


def test_campaign_finishes_with_outputs(campaign):
    node, _ = campaign
    assert node.is_finished_ok, node.exit_message
    assert node.outputs.stop_reason.value == 'max_iterations'
    assert len(node.outputs.committee) == 2
    rows = node.outputs.iterations.get_list()
    assert [row['iteration'] for row in rows] == [0, 1, 2]


def test_failed_label_is_recorded_and_the_loop_goes_on(campaign):
    node, _ = campaign
    failed = node.outputs.failed_labels.get_list()
    assert len(failed) == 1
    assert failed[0]['iteration'] == 0
    assert failed[0]['exit_status'] == 410
    assert 'SCF' in failed[0]['message'] or 'self-consistency' in failed[0]['message']
    structure = orm.load_node(failed[0]['structure'])
    assert structure.get_formula() == 'Li4Si8'
    rows = node.outputs.iterations.get_list()
    assert rows[0]['labels_added'] == 3
    assert rows[0]['labels_failed'] == 1


def test_training_set_grows_by_the_selected_frames(campaign):
    node, _ = campaign
    rows = node.outputs.iterations.get_list()
    training_set = node.outputs.training_set
    # iteration 1 selected frames and labelled them all; iteration 2 stopped at the cap before selecting
    assert rows[1]['selected'] >= 1
    assert rows[1]['labels_added'] + rows[1]['labels_failed'] == rows[1]['selected']
    assert rows[2]['selected'] == 0
    assert training_set.base.attributes.get('n_frames') == 3 + rows[1]['labels_added']
    assert rows[1]['training_set_frames'] == 3 + rows[1]['labels_added']
    assert rows[-1]['labels_total'] == sum(row['labels_added'] + row['labels_failed'] for row in rows)
    # the labels selected from MD record the exploration frame they come from
    selected_labels = [
        label
        for label in _labels_of(training_set)
        if label.creator.inputs.structure.base.attributes.get('source_trajectory_uuid', None)
    ]
    assert len(selected_labels) == rows[1]['labels_added']


def test_iteration_table_is_consistent(campaign):
    node, _ = campaign
    for row in node.outputs.iterations.get_list()[1:]:
        fractions = row['accurate_fraction'] + row['candidate_fraction'] + row['failed_fraction']
        assert fractions == pytest.approx(1.0)
        assert row['frames'] > 0
        assert row['wall_time_explore_s'] > 0
        assert row['wall_time_train_s'] > 0
        assert row['committee_metrics']


def test_test_structures_are_labelled_once_and_score_every_committee(campaign):
    node, _ = campaign
    test_set = node.outputs.test_set
    assert test_set.base.attributes.get('n_frames') == 2
    assert test_set.split_counts['valid'] == 0
    test_labels = set(test_set.base.attributes.get('label_uuids'))
    assert not test_labels & set(node.outputs.training_set.base.attributes.get('label_uuids'))  # never trained on
    labelled = {label.creator.inputs.structure.uuid for label in _labels_of(test_set)}
    assert labelled == {structure.uuid for structure in node.inputs.test_structures.values()}
    rows = node.outputs.iterations.get_list()
    assert (rows[0]['test_labels'], rows[0]['test_labels_failed']) == (2, 0)
    assert rows[0]['labels_total'] == 4  # the test labels are not spent from the training-label budget
    trainings = [called for called in node.called if called.process_label == 'TrainCommitteeWorkChain']
    assert len(trainings) == 2
    for training, row in zip(trainings, rows[1:]):
        assert training.inputs.test_dataset.uuid == test_set.uuid
        assert 0 < row['test_force_rmse_mev_a'] < 5000
        metrics = training.outputs.metrics.get_dict()
        assert row['test_force_rmse_mev_a'] == metrics['committee_prediction']['test']['rmse_f_mev_a']


def test_provenance_returns_exactly_the_labels_of_the_final_set(campaign):
    from aiida_sianode.provenance import labels_behind_potential

    node, _ = campaign
    training_set = node.outputs.training_set
    expected = set(training_set.base.attributes.get('label_uuids'))
    for potential in node.outputs.committee.values():
        found = labels_behind_potential(potential)
        assert {label.uuid for label in found} == expected
        assert len(found) == len(expected)


def test_extending_a_campaign_labels_nothing_twice(campaign):
    node, codes = campaign
    first_labels = set(node.outputs.training_set.base.attributes.get('label_uuids'))
    first_structures = {label.creator.inputs.structure.uuid for label in _labels_of(node.outputs.training_set)}
    builder = _builder(
        *codes,
        None,
        training_set=node.outputs.training_set,
        potentials=dict(node.outputs.committee),
        convergence={'accurate_fraction': 1.0, 'max_iterations': 1, 'max_labels': 20, 'max_failed_label_fraction': 0.5},
        selection={**SELECTION, 'seed': 1},
    )
    _, extension = run_get_node(builder)
    assert extension.is_finished_ok, extension.exit_message
    rows = extension.outputs.iterations.get_list()
    # the given committee is used as it is: no initial labels (no row 0), no training in the first iteration
    assert [row['iteration'] for row in rows] == [1]
    assert 'wall_time_train_s' not in rows[0]
    calls = [called for called in extension.called_descendants if called.process_label == 'LocalLabelCalculation']
    assert calls == []  # max_iterations 1: explore, stop; nothing labelled and nothing recomputed
    assert set(extension.outputs.training_set.base.attributes.get('label_uuids')) == first_labels
    assert {label.creator.inputs.structure.uuid for label in _labels_of(extension.outputs.training_set)} == (
        first_structures
    )


def test_bad_campaign_inputs_are_refused_before_anything_runs(aiida_profile, label_code, train_code, explore_code):
    structures = _initial_structures()
    with pytest.raises(ValueError, match='must be below the upper one'):
        _builder(label_code, train_code, explore_code, structures, selection={'lower': 0.5, 'upper': 0.1})
    with pytest.raises(ValueError, match='unknown labeler'):
        ActiveLearningWorkChain.get_builder_from_protocol(
            label_code, structures, labeler='siesta', train_code=train_code, explore_code=explore_code
        )
    with pytest.raises(ValueError, match='accurate_fraction'):
        _builder(label_code, train_code, explore_code, structures, convergence={'accurate_fraction': 1.5})
    with pytest.raises(ValueError, match=r'`test_set` .* or `test_structures` .*, not both'):
        _builder(
            label_code, train_code, explore_code, structures, test_set=object(), test_structures=_test_structures()
        )
    with pytest.raises(ValueError, match='does not exist'):
        ActiveLearningWorkChain.get_builder_from_protocol(
            label_code,
            structures,
            labeler='xtb',
            train_code=train_code,
            explore_code=explore_code,
            label_overrides={'calc': {'parameters': {'no_such_key': 1}}},
        )


def _labels_of(dataset) -> list[LabelData]:
    from aiida_sianode.provenance import labels_of_dataset

    return labels_of_dataset(dataset)


def test_campaign_summary_is_recomputed_from_the_deviation_arrays(campaign):
    """`campaign show`'s table (campaign_summary) equals counts recomputed here from every exploration run's raw
    per-frame max force deviations and the campaign's trust levels, iteration by iteration."""
    from aiida.common.links import LinkType

    from aiida_sianode.analysis.campaign import campaign_summary

    node, _ = campaign
    selection = node.inputs.selection.get_dict()
    lower, upper = selection['lower'], selection['upper']
    summary = campaign_summary(node)
    explorations = {
        link.link_label: link.node
        for link in node.base.links.get_outgoing(link_type=LinkType.CALL_WORK).all()
        if link.link_label.startswith('explore_iteration_')
    }
    rows = [row for row in summary['iterations'] if row['iteration'] > 0]
    assert len(rows) == len(explorations) == 2
    for row in rows:
        exploration = explorations[f'explore_iteration_{row["iteration"]:02d}']
        per_run = []
        for array in exploration.outputs.deviations.values():
            values = array.get_array('max_force_deviation').astype(float)
            if 'physically_broken' in array.get_arraynames():  # a frame that broke its run counts as failed
                values[array.get_array('physically_broken').astype(bool)] = np.inf
            per_run.append(values)
        deviations = np.concatenate(per_run)
        finite = np.isfinite(deviations)
        accurate = np.count_nonzero(finite & (deviations < lower))
        failed = np.count_nonzero(~finite | (deviations >= upper))
        assert row['frames'] == len(deviations)
        assert row['accurate_fraction'] == pytest.approx(accurate / len(deviations))
        assert row['failed_fraction'] == pytest.approx(failed / len(deviations))
        assert row['candidate_fraction'] == pytest.approx((len(deviations) - accurate - failed) / len(deviations))
    assert summary['final_accurate_fraction'] == rows[-1]['accurate_fraction']
    assert summary['labels_computed'] == sum(
        row['labels_added'] + row['labels_failed'] for row in summary['iterations']
    )


def test_campaign_report_page_and_its_images(campaign, tmp_path):
    """``campaign report``: one page whose every image exists, with the calibration and per-iteration figures."""
    from aiida_sianode.analysis.report import image_references, write_report

    node, _ = campaign
    page = write_report(node, tmp_path / 'report')
    text = page.read_text()
    images = image_references(text)
    assert images, 'the report has no figures'
    for name in images:
        assert (page.parent / name).is_file(), f'{name} is referenced but missing'
    iterations = [row['iteration'] for row in node.outputs.iterations.get_list() if row['iteration'] > 0]
    for iteration in iterations:
        assert f'deviations_iteration_{iteration:02d}.png' in images
    assert 'calibration.png' in images  # the frames labelled in iteration 1 were calibrated
    assert 'Cost per stage' in text and 'level_of_theory' in text
    calibration = next(row['calibration'] for row in node.outputs.iterations.get_list() if row.get('calibration'))
    assert calibration['n_pairs'] >= 1
    import shutil

    browser = shutil.which('chromium') or shutil.which('chromium-browser')
    if browser is not None:  # Debian's chromium: the page opens and every image decodes
        from aiida_sianode.analysis.report import images_in_browser

        assert images_in_browser(page, browser) == ['ok'] * len(images)
