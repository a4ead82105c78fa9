"""The campaign explores only from MD starts whose elements the committee was trained on."""

from aiida_sianode.workflows.active_learning import starts_within_elements


def test_starts_with_untrained_elements_are_skipped_and_named():
    starts = {'si8': {'Si'}, 'lisi8': {'Li', 'Si'}, 'li_in_c': {'C', 'Li'}, 'c': {'C'}}
    keep, skipped = starts_within_elements(starts, {'Si', 'C'})
    assert keep == ['si8', 'c']
    assert skipped == {'lisi8': ['Li'], 'li_in_c': ['Li']}
    keep, skipped = starts_within_elements(starts, {'Li', 'Si', 'C'})
    assert keep == list(starts) and skipped == {}
    keep, skipped = starts_within_elements({'na_hc': {'Na', 'C'}}, {'Si'})
    assert keep == [] and skipped == {'na_hc': ['C', 'Na']}
