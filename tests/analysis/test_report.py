"""Tests of the campaign report's plain parts; the whole page is tested on a real campaign in
``tests/workflows/test_active_learning.py``."""

import shutil

import numpy as np
import pytest

from aiida_sianode.analysis import report


def test_table_lifts_calibration_and_test_rmse():
    rows = report.table_rows(
        [
            {
                'iteration': 1,
                'trust_levels': [0.05, 0.5],
                'calibration': {'scale': 2.5, 'mean_predicted_error': 0.4, 'mean_true_error': 0.45},
                'test_rmse_f_mev_a': 120.0,
            }
        ]
    )
    assert rows[0]['calibration_scale'] == 2.5
    assert rows[0]['calibration_true'] == 0.45
    assert rows[0]['test_force_rmse_mev_a'] == 120.0
    table = report.html_table(rows)
    assert '<td>0.05 / 0.5</td>' in table and '<td>2.5</td>' in table and '<td>&ndash;</td>' in table


def test_figures_are_written(tmp_path):
    histogram = report.plot_deviation_histogram(
        np.array([0.01, 0.03, 0.2, np.nan]), [0.05, 0.5], tmp_path / 'h.png', 'test'
    )
    calibration = report.plot_calibration(
        {1: {'deviations': np.array([0.1, 0.2, 0.3]), 'errors': np.array([0.2, 0.5, 0.6]), 'scale': 2.1}},
        tmp_path / 'c.png',
    )
    for path in (histogram, calibration):
        assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert report.image_references('<p><img src="a.png" alt="x"><img src="b/c.png"></p>') == ['a.png', 'b/c.png']


def chromium_binary():
    """Debian's chromium, if installed."""
    return shutil.which('chromium') or shutil.which('chromium-browser')


@pytest.mark.skipif(chromium_binary() is None, reason='chromium is not installed (apt-get install chromium)')
def test_headless_browser_loads_every_image(tmp_path):
    report.plot_deviation_histogram(np.array([0.01, 0.03, 0.2]), [0.05, 0.5], tmp_path / 'h.png', 'test')
    page = tmp_path / 'index.html'
    page.write_text('<html><body><img src="h.png"><img src="missing.png"></body></html>')
    images = report.images_in_browser(page, chromium_binary())
    assert images[0] == 'ok'
    assert images[1].startswith('broken:') and images[1].endswith('missing.png')


def test_campaign_table_shows_the_committee_mean_test_rmse():
    """The iteration table's RMSE columns are the committee-mean test-set RMSEs the campaign records per row."""
    from aiida_sianode.analysis.campaign import _flatten

    row = {'iteration': 4, 'committee_metrics': {}, 'test_force_rmse_mev_a': 132.0, 'test_energy_rmse_mev_atom': 21.5}
    flat = _flatten(row)
    assert (flat['test_rmse_f_mev_a'], flat['test_rmse_e_mev']) == (132.0, 21.5)
    assert 'test_rmse_f_mev_a' not in _flatten({'iteration': 0, 'test_force_rmse_mev_a': None})
