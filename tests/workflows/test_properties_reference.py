"""The ``reference`` path of the property work chains: the committee and a DFT-level reference (GFN1-xTB here, the
labeler that runs in seconds) computed on the same E(V) volumes, side by side in the outputs, and the comparison
curves drawn from them; plus the comparison drawing of NEB paths and phonon bands on known arrays."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase import units
from ase.build import bulk
from ase.eos import EquationOfState

from aiida_sianode.properties.common import compare_with_reference
from aiida_sianode.workflows.properties import EosPropertyWorkChain

MODELS = pathlib.Path(__file__).resolve().parents[2] / 'fixtures' / 'models' / 'si_fast'
TRAINING_SET = '464c382a-1d52-4ff6-a231-b6e60d3bbe60'


@pytest.fixture
def committee(aiida_profile):
    """The two trained members as stored PotentialData (same training set)."""
    from aiida_sianode.data.potential import PotentialData

    return [
        PotentialData.from_model_file(path, training_set_uuid=TRAINING_SET, seed=index).store()
        for index, path in enumerate(sorted(MODELS.glob('member_*.model')))
    ]


def test_eos_with_an_xtb_reference_side_by_side(property_code, label_code, committee):
    """Si8 at the fast protocol with 5 volumes: the committee's bulk modulus (per member, mean and spread) and the
    xTB one, fitted from the 5 labels the work chain stored, are both in the outputs; the comparison arrays hold the
    reference points at the volumes the reference labelled and the committee band, each shifted to its minimum."""
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    builder = EosPropertyWorkChain.get_builder_from_protocol(
        property_code,
        orm.StructureData(ase=atoms),
        committee,
        protocol='fast',
        overrides={'n_points': 5, 'device': 'cpu'},
        reference={'labeler': 'xtb', 'code': label_code, 'protocol': 'fast'},
    )
    outputs, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message

    committee_b = outputs['results']['scalars']['bulk_modulus_gpa']
    first, second = committee_b['members']
    assert committee_b['mean'] == pytest.approx((first + second) / 2)
    assert 40 < first < 120 and 40 < second < 120  # GPa; PBE c-Si is 88

    labels = outputs['reference']['labels']
    assert sorted(labels) == [f'config_{index:03d}' for index in range(5)]
    volumes = np.array([labels[key].get_atoms().get_volume() / 8 for key in sorted(labels)])
    energies = np.array([labels[key].energy / 8 for key in sorted(labels)])
    expected_volumes = atoms.get_volume() / 8 * (1 + np.linspace(-0.05, 0.05, 5))
    np.testing.assert_allclose(np.sort(volumes), expected_volumes, rtol=1e-8)  # the input cell, scaled: not relaxed
    fitted = EquationOfState(volumes, energies, eos='birchmurnaghan')
    v0, _, b = fitted.fit()
    reference = outputs['reference']['result']['scalars']
    assert reference['bulk_modulus_gpa'] == pytest.approx(b / units.GPa, rel=1e-3)
    assert reference['equilibrium_volume_a3_per_atom'] == pytest.approx(v0, rel=1e-4)
    assert reference['bulk_modulus_gpa'] > 0 and abs(reference['bulk_modulus_gpa'] - committee_b['mean']) > 1.0

    compared = outputs['reference']['curves']['energy_volume']
    np.testing.assert_allclose(compared.get_array('reference_x'), np.sort(volumes), rtol=1e-8)
    order = np.argsort(volumes)
    np.testing.assert_allclose(compared.get_array('reference_y'), energies[order] - energies.min(), atol=1e-9)
    committee_curve = outputs['curves']['energy_volume']
    mean = dict((name, values) for name, values, _ in committee_curve.get_y())['mean']
    np.testing.assert_allclose(compared.get_array('committee_x'), committee_curve.get_x()[1])
    np.testing.assert_allclose(compared.get_array('committee_mean'), mean - mean.min(), atol=1e-9)
    assert compared.get_array('committee_mean').min() == 0.0 and compared.get_array('reference_y').min() == 0.0
    plot = outputs['reference']['plots']['energy_volume']
    assert plot.get_content(mode='rb')[:4] == b'\x89PNG'


def test_neb_and_band_structure_comparisons_hold_both_curves(tmp_path):
    """A NEB path is compared as it is (energies relative to the initial image, no shift); the phonon band structure
    keeps the committee's mean and spread per branch and the reference's branches."""
    mep = {'x': [0.0, 0.5, 1.0], 'mean': [0.0, 0.6, 0.1], 'std': [0.0, 0.05, 0.02], 'members': [[0.0, 0.55, 0.08]]}
    reference = {
        'curves': {'mep': {'x': [0.0, 0.25, 0.5, 0.75, 1.0], 'y': [0.0, 0.3, 0.58, 0.3, 0.12]}},
        'extra': {'band_structure': {'distances': [0.0, 0.1, 0.2], 'frequencies_cm1': [[0, 100, 150], [0, 300, 500]]}},
    }
    bands = {'distances': [0.0, 0.1, 0.2], 'mean': [[0, 90, 140], [0, 280, 470]], 'std': [[0, 5, 5], [0, 10, 9]]}
    compared = compare_with_reference('neb', {'mep': mep}, reference, tmp_path, committee_bands=bands)
    assert sorted(compared) == ['band_structure', 'mep']
    arrays = compared['mep']['arrays']
    np.testing.assert_allclose(arrays['committee_mean'], mep['mean'])
    np.testing.assert_allclose(arrays['reference_y'], reference['curves']['mep']['y'])
    np.testing.assert_allclose(arrays['reference_x'], reference['curves']['mep']['x'])
    assert 'committee_shift' not in arrays
    band_arrays = compared['band_structure']['arrays']
    np.testing.assert_allclose(band_arrays['committee_mean'], bands['mean'])
    np.testing.assert_allclose(band_arrays['reference_frequencies'], [[0, 100, 150], [0, 300, 500]])
    for item in compared.values():
        assert item['png'].read_bytes()[:4] == b'\x89PNG'
