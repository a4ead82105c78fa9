"""NEB kernel: a symmetric adatom hop on Al(100) with EMT, committee candidates, refusals."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest
from ase.build import add_adsorbate, fcc100
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms
from ase.io import read

from aiida_sianode.properties import neb
from aiida_sianode.properties.common import InvalidPropertyInput, aggregate_members

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from test_md import ScaledEMT  # a member that disagrees by a known amount

SETTINGS = {'n_images': 3, 'fmax_ev_a': 0.05, 'endpoint_fmax_ev_a': 0.05}


def adatom_hop():
    """An Au adatom in a hollow of Al(100) (2x2x3 slab, two bottom layers fixed) and in the next hollow."""
    slab = fcc100('Al', size=(2, 2, 3))
    add_adsorbate(slab, 'Au', 1.7, 'hollow')
    slab.center(axis=2, vacuum=4.0)
    slab.set_constraint(FixAtoms(mask=[atom.tag > 1 for atom in slab]))
    final = slab.copy()
    final.positions[-1, 0] += slab.cell[0, 0] / 2
    return slab, final


@pytest.fixture(scope='module')
def hop(tmp_path_factory):
    initial, final = adatom_hop()
    workdir = tmp_path_factory.mktemp('neb')
    return neb.run_neb(initial, final, EMT(), SETTINGS, workdir, others=[ScaledEMT(1.5)]), workdir


def test_symmetric_hop_has_equal_barriers(hop):
    result, workdir = hop
    scalars, extra = result['scalars'], result['extra']
    assert extra['converged']
    energies = np.array(extra['energies_ev'])
    assert len(energies) == 5
    assert energies[-1] == pytest.approx(energies[0], abs=2e-3)  # equivalent hollow sites
    assert scalars['reaction_energy_ev'] == pytest.approx(0.0, abs=2e-3)
    assert scalars['barrier_ev'] == pytest.approx(scalars['barrier_reverse_ev'], abs=2e-3)
    assert 0.1 < scalars['barrier_ev'] < 1.0  # a bridge-site saddle
    assert extra['saddle_image'] == 2  # the middle image climbs to the bridge
    assert scalars['neb_max_force_ev_a'] <= 0.05
    # at the saddle the adatom has gone half of the 2.86 Å hop (either way: both bridges are equivalent)
    hop_length = np.linalg.norm(neb.displacement(*(read(workdir / neb.PATH_FILE, index=i) for i in (0, -1)))[-1])
    assert hop_length == pytest.approx(4.05 * 2**-0.5, abs=0.02)  # Al: a = 4.05 Å
    frames = read(workdir / neb.PATH_FILE, index=':')
    halfway = np.linalg.norm(neb.displacement(frames[0], frames[2])[-1, :2])
    assert halfway == pytest.approx(hop_length / 2, abs=0.05)
    frames = read(workdir / neb.PATH_FILE, index=':')
    assert [frame.info['energy_ev'] for frame in frames] == pytest.approx(energies.tolist())
    assert result['curves']['mep']['x'][0] == 0.0 and result['curves']['mep']['x'][-1] == pytest.approx(1.0)


def test_committee_deviation_marks_candidates(hop):
    """A second member with 1.5x the forces: every image's deviation is max |F| / 4, and the images at or above the
    upper trust level are the candidates."""
    result, workdir = hop
    deviations = result['extra']['max_force_deviation']
    frames = read(workdir / neb.PATH_FILE, index=':')
    for frame, deviation in zip(frames, deviations):
        frame.calc = EMT()
        assert deviation == pytest.approx(
            np.linalg.norm(frame.get_forces(apply_constraint=False), axis=1).max() / 4, rel=1e-5
        )
    upper = neb.DEFAULTS['force_deviation_upper']
    assert result['extra']['candidate_images'] == [i for i, value in enumerate(deviations) if value >= upper]


def test_unconverged_band_gives_no_barrier(tmp_path, hop):
    """A band stopped after 2 FIRE steps is no path: its barrier scalars and `mep` curve are left out (its energies
    stay in `extra`), so the committee's barrier is the converged member's alone, with the other member's place
    empty."""
    initial, final = adatom_hop()
    stopped = neb.run_neb(initial, final, EMT(), {**SETTINGS, 'max_steps': 2}, tmp_path)
    assert stopped['extra']['converged'] is False
    assert stopped['extra']['unconverged'] == ['band']
    assert stopped['scalars']['barrier_ev'] is None and stopped['scalars']['reaction_energy_ev'] is None
    assert 'mep' not in stopped['curves']
    assert len(stopped['extra']['energies_ev']) == 5 and stopped['scalars']['path_length_a'] > 0
    converged, _ = hop
    committee = aggregate_members([converged, stopped])
    barrier = committee['scalars']['barrier_ev']
    assert barrier['members'] == [pytest.approx(converged['scalars']['barrier_ev']), None]
    assert barrier['mean'] == pytest.approx(converged['scalars']['barrier_ev']) and barrier['std'] == 0.0
    assert committee['curves']['mep']['members'][1] is None


def test_refusals():
    initial, final = adatom_hop()
    with pytest.raises(InvalidPropertyInput, match='too few'):
        neb.validate_settings({'n_images': 2}, [initial, final])
    with pytest.raises(InvalidPropertyInput, match='exactly two'):
        neb.validate_settings({}, [initial])
    with pytest.raises(InvalidPropertyInput, match='identical'):
        neb.validate_settings({}, [initial, initial.copy()])
    other = final.copy()
    other[-1].symbol = 'Ag'
    with pytest.raises(InvalidPropertyInput, match='different compositions'):
        neb.validate_settings({}, [initial, other])
    swapped = final.copy()
    order = list(range(len(final)))
    order[0], order[-1] = order[-1], order[0]
    swapped = swapped[order]
    with pytest.raises(InvalidPropertyInput, match='different order'):
        neb.validate_settings({}, [initial, swapped])
    stretched = final.copy()
    stretched.set_cell(stretched.cell * 1.01, scale_atoms=True)
    with pytest.raises(InvalidPropertyInput, match='different cells'):
        neb.validate_settings({}, [initial, stretched])


def test_reference_path_is_the_idpp_band():
    initial, final = adatom_hop()
    images = neb.reference_configurations([initial, final], SETTINGS)
    assert len(images) == 5
    hop_length = np.linalg.norm(neb.displacement(initial, final)[-1])
    assert np.linalg.norm(neb.displacement(initial, images[2])[-1]) == pytest.approx(hop_length / 2, abs=0.05)
    from ase.calculators.singlepoint import SinglePointCalculator

    for image in images:
        image.calc = SinglePointCalculator(image, energy=EMT().get_potential_energy(image))
    reference = neb.reference_result(images, SETTINGS)
    assert reference['scalars']['barrier_ev'] > 0
    assert reference['curves']['mep']['x'][-1] == pytest.approx(1.0)
