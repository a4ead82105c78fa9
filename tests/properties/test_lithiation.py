"""Lithiation thermodynamics: the hull, voltage and expansion on DFT energies, refusals, and per-member runs."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read

from aiida_sianode.properties import lithiation
from aiida_sianode.properties.common import InvalidPropertyInput, aggregate_members, get_settings, split_settings
from aiida_sianode.properties.lithiation import lithiation_analysis, run_member, validate_settings
from aiida_sianode.structures.lithiation import lixsi_crystal

DFT_PHASES = ('Li', 'Si', 'LiSi', 'Li12Si7', 'Li7Si3', 'Li13Si4', 'Li15Si4')


def entry_of(name, atoms, energy=None):
    symbols = atoms.get_chemical_symbols()
    return {
        'name': name,
        'n_li': symbols.count('Li'),
        'n_si': symbols.count('Si'),
        'energy_ev': atoms.get_potential_energy() if energy is None else energy,
        'volume_a3': atoms.get_volume(),
    }


@pytest.fixture(scope='module')
def dft_cells(fixtures_path):
    """The DFT-relaxed cells of the DFTB_LiSi set with their DFT total energies (eV per cell)."""
    return {name: read(fixtures_path / f'structures/DFTB_LiSi_crystal/{name}.xyz') for name in DFT_PHASES}


@pytest.fixture(scope='module')
def dft_result(dft_cells):
    return lithiation_analysis([entry_of(name, atoms) for name, atoms in dft_cells.items()])


def test_formation_energies_and_hull_from_the_dft_energies(dft_result):
    scalars = dft_result['scalars']
    expected = {'LiSi': -0.206, 'Li12Si7': -0.258, 'Li7Si3': -0.264, 'Li13Si4': -0.256, 'Li15Si4': -0.243}
    for phase, energy in expected.items():
        assert scalars[f'formation_energy_{phase}_ev_atom'] == pytest.approx(energy, abs=1e-3)
        assert scalars[f'e_above_hull_{phase}_ev_atom'] == pytest.approx(0.0, abs=1e-9)
    assert scalars['formation_energy_Li_ev_atom'] == scalars['formation_energy_Si_ev_atom'] == 0.0
    assert dft_result['extra']['stable_phases'] == sorted(DFT_PHASES)
    hull = dft_result['curves']['hull']
    assert hull['x'][50] == pytest.approx(0.5)
    assert hull['y'][50] == pytest.approx(scalars['formation_energy_LiSi_ev_atom'])
    assert hull['y'][0] == hull['y'][-1] == pytest.approx(0.0, abs=1e-12)
    assert max(hull['y']) <= 1e-12


def test_voltage_profile_from_the_dft_energies(dft_cells, dft_result):
    steps = dft_result['extra']['voltage_steps']
    assert [(step['from'], step['to']) for step in steps] == [
        ('Si', 'LiSi'), ('LiSi', 'Li12Si7'), ('Li12Si7', 'Li7Si3'), ('Li7Si3', 'Li13Si4'), ('Li13Si4', 'Li15Si4'),
    ]  # fmt: skip
    # each step from the energies directly: V = -[E(Li_x2 Si) - E(Li_x1 Si) - (x2 - x1) mu_Li] / (x2 - x1)
    mu_li = dft_cells['Li'].get_potential_energy() / len(dft_cells['Li'])
    per_si = {name: atoms.get_potential_energy() / atoms.get_chemical_symbols().count('Si') for name, atoms in
              dft_cells.items() if name != 'Li'}  # fmt: skip
    x = {'Si': 0, 'LiSi': 1, 'Li12Si7': 12 / 7, 'Li7Si3': 7 / 3, 'Li13Si4': 3.25, 'Li15Si4': 3.75}
    for step in steps:
        low, high = step['from'], step['to']
        voltage = -(per_si[high] - per_si[low] - (x[high] - x[low]) * mu_li) / (x[high] - x[low])
        assert step['voltage_v'] == pytest.approx(voltage, abs=1e-9)
        assert (step['x_low'], step['x_high']) == pytest.approx((x[low], x[high]))
    voltages = [step['voltage_v'] for step in steps]
    # pymatgen's InsertionElectrode (its own hull without Li metal) agrees here, where every phase is on the hull
    from pymatgen.apps.battery.insertion_battery import InsertionElectrode
    from pymatgen.entries.computed_entries import ComputedEntry

    computed = {name: ComputedEntry(atoms.get_chemical_formula(), atoms.get_potential_energy()) for name, atoms in
                dft_cells.items()}  # fmt: skip
    electrode = InsertionElectrode.from_entries([e for n, e in computed.items() if n != 'Li'], computed['Li'])
    assert [pair.voltage for pair in electrode.voltage_pairs] == pytest.approx(voltages, abs=1e-9)
    assert all(0 < voltage < 0.6 for voltage in voltages)
    assert voltages == sorted(voltages, reverse=True)
    scalars = dft_result['scalars']
    assert scalars['average_voltage_v'] == pytest.approx(0.3075, abs=1e-3)
    assert scalars['max_voltage_v'] == pytest.approx(0.4114, abs=1e-3)
    assert scalars['x_max_stable'] == pytest.approx(3.75)
    assert scalars['capacity_mah_per_g_si'] == pytest.approx(3579, abs=1)  # Li15Si4: the known 3579 mAh/g
    curve = dft_result['curves']['voltage']
    assert curve['x'][0] == 0.0 and curve['x'][-1] == pytest.approx(3.75)
    assert curve['y'][np.searchsorted(curve['x'], 0.5)] == voltages[0]
    assert curve['y'][np.searchsorted(curve['x'], 3.5)] == voltages[-1]


def test_volume_expansion_from_the_dft_cells_and_from_measured_cells(dft_cells, dft_result):
    scalars = dft_result['scalars']
    assert scalars['volume_per_si_Si_a3'] == pytest.approx(5.468728**3 / 8, rel=1e-5)
    # These DFT cells give Li15Si4 a = 10.566 Å, 0.6 % below the measured 10.632 Å: +260.6 %, not +275 %.
    assert scalars['expansion_Li15Si4_percent'] == pytest.approx(260.62, abs=0.05)
    expansion = dft_result['curves']['expansion']
    assert expansion['x'] == pytest.approx([0, 1, 12 / 7, 7 / 3, 3.25, 3.75])
    assert np.all(np.diff(expansion['y']) > 0)
    # measured cells (c-Si a = 5.431 Å at room temperature, Li15Si4 a = 10.6322 Å at 123 K): +275 %
    measured = lithiation_analysis(
        [
            entry_of('Li', dft_cells['Li']),
            entry_of('Si', bulk('Si', 'diamond', a=5.431, cubic=True), energy=-5.39853 * 8),
            entry_of('Li15Si4', lixsi_crystal('Li15Si4'), energy=dft_cells['Li15Si4'].get_potential_energy()),
        ]
    )
    assert 270 < measured['scalars']['expansion_Li15Si4_percent'] < 280
    assert measured['scalars']['expansion_Li15Si4_percent'] == pytest.approx(275.1, abs=0.1)


def test_reference_result_on_dft_labels_of_the_reference_configurations(dft_cells, dft_result):
    settings = {'phases': list(DFT_PHASES), 'primitive': True}
    configurations = lithiation.reference_configurations([], settings)
    assert [atoms.info['lithiation_name'] for atoms in configurations] == list(DFT_PHASES)
    assert len(configurations[DFT_PHASES.index('LiSi')]) == 16
    labelled = []
    for atoms in configurations:  # stand-ins for DFT labels: the DFT cells with their energies
        dft = dft_cells[atoms.info['lithiation_name']].copy()
        dft.calc = dft_cells[atoms.info['lithiation_name']].calc
        labelled.append(dft)
    result = lithiation.reference_result(labelled, settings)
    # for a Gamma-only labeler the cells are repeated to at least the width asked for
    wide = lithiation.reference_configurations([], {'phases': ['Li', 'Si', 'LiSi'], 'reference_min_width_a': 9.0})
    assert [len(atoms) for atoms in wide] == [2 * 27, 8 * 8, 32 * 2]  # conventional cells 3x3x3, 2x2x2, 1x1x2
    for atoms in wide:
        widths = atoms.cell.volume / np.linalg.norm(np.cross(atoms.cell[[1, 2, 0]], atoms.cell[[2, 0, 1]]), axis=1)
        assert widths.min() >= 9.0
    for phase in DFT_PHASES:
        key = f'formation_energy_{phase}_ev_atom'
        assert result['scalars'][key] == pytest.approx(dft_result['scalars'][key], abs=1e-12)


# ------------------------------------------------------------------------------------------------------- refusals


def kernel_settings(protocol='fast', overrides=None):
    return split_settings(get_settings('lithiation', protocol, overrides))[1]


@pytest.mark.parametrize('protocol', ['fast', 'balanced', 'stringent'])
def test_every_protocol_is_valid(protocol):
    settings = kernel_settings(protocol)
    validate_settings(settings, [])
    assert settings['phases'] == ['Li', 'Si', 'LiSi', 'Li12Si7', 'Li7Si3', 'Li13Si4', 'Li15Si4', 'Li17Si4']
    assert settings['amorphous']['x_values'] == sorted(settings['amorphous']['x_values'])


@pytest.mark.parametrize(
    ('settings', 'structures', 'message'),
    [
        ({'phases': ['Si', 'LiSi']}, [], 'a hull without both end members: no pure Li'),
        ({'phases': ['Li', 'LiSi']}, [], 'a hull without both end members: no pure Si'),
        ({'phases': ['LiSi']}, [], 'no pure Li and Si'),
        ({'phases': ['Li', 'Si']}, [], 'nothing between the end members'),
        ({'phases': ['Li', 'Si', 'Li22Si5']}, [], 'unknown Li-Si phase'),
        ({'phases': ['Li', 'Si', 'LiSi', 'LiSi']}, [], 'twice'),
        ({'phases': ['Li', 'Si', 'LiSi'], 'tempreature': 300}, [], 'unknown setting.*tempreature'),
        ({'phases': ['Li', 'Si'], 'amorphous': {'x_values': [5.0]}}, [], r'x_values must lie in \(0, 4.4\]'),
        ({'phases': ['Li', 'Si'], 'amorphous': {'x_values': [1.0], 'n_si': 1}}, [], 'n_si must be at least 2'),
        ({'phases': ['Li', 'Si', 'LiSi'], 'relax': {'fmax_ev_a': 0}}, [], 'relax.fmax_ev_a must be positive'),
        ({'phases': ['Li', 'Si', 'LiSi'], 'relax': {'fmax': 0.1}}, [], 'unknown setting.*fmax'),
        ({'phases': ['Li', 'Si', 'LiSi']}, [bulk('C', 'diamond', a=3.57)], 'contains C'),
        ({'phases': ['Li', 'Si', 'LiSi']}, [bulk('Si', 'diamond', a=5.43, cubic=True) * (1, 1, 1)], None),
    ],
)
def test_refusals_before_anything_runs(settings, structures, message):
    if message is None:
        validate_settings(settings, structures)  # a given c-Si is a valid end member
        return
    with pytest.raises(InvalidPropertyInput, match=message):
        validate_settings(settings, structures)


def test_curves_keep_the_lowest_energy_at_a_repeated_composition(dft_cells):
    entries = [entry_of(name, atoms) for name, atoms in dft_cells.items() if name in ('Li', 'Si', 'LiSi')]
    strained = bulk('Si', 'diamond', a=5.6, cubic=True)  # a given c-Si, 0.1 eV/atom above the DFT one
    entries.append(entry_of('structure0_Si8', strained, energy=8 * (entries[1]['energy_ev'] / 64 + 0.1)))
    result = lithiation_analysis(entries)
    assert result['curves']['formation_energy']['x'] == [0.0, 0.5, 1.0]
    assert result['curves']['volume_per_si']['y'][0] == pytest.approx(dft_cells['Si'].get_volume() / 64)
    assert result['scalars']['e_above_hull_structure0_Si8_ev_atom'] == pytest.approx(0.1)


def test_structures_too_close_or_not_periodic_are_refused():
    squeezed = bulk('Si', 'diamond', a=5.43, cubic=True)
    squeezed.positions[1] = squeezed.positions[0] + [0.3, 0, 0]
    with pytest.raises(InvalidPropertyInput, match=r'closer than 0\.5'):
        validate_settings({'phases': ['Li', 'LiSi']}, [squeezed])
    molecule = bulk('Si', 'diamond', a=5.43)
    molecule.pbc = False
    with pytest.raises(InvalidPropertyInput, match='not periodic'):
        validate_settings({'phases': ['Li', 'Si', 'LiSi']}, [molecule])
    with pytest.raises(InvalidPropertyInput, match='without both end members'):
        lithiation_analysis([{'name': 'LiSi', 'n_li': 1, 'n_si': 1, 'energy_ev': -7.0, 'volume_a3': 30.0}])


# ---------------------------------------------------------------------------------------------- per-member runs


def pair_member(strength: float):
    """A Lennard-Jones member (matscipy): Li-Si bonds ``strength`` times stronger than Li-Li, so Li-Si compounds
    form; two strengths are two members that disagree."""
    from matscipy.calculators.pair_potential import LennardJonesCut, PairPotential

    return PairPotential(
        {
            (3, 3): LennardJonesCut(0.1, 2.7, 6.0),
            (3, 14): LennardJonesCut(0.1 * strength, 2.4, 6.0),
            (14, 14): LennardJonesCut(0.4, 2.1, 6.0),
        }
    )


SMALL = {
    'phases': ['Li', 'Si', 'LiSi'],
    'primitive': True,
    'voltage_grid_step': 0.25,
    'relax': {'fmax_ev_a': 0.05, 'stress_tol_gpa': 0.1, 'max_steps': 25},
    'amorphous': {'x_values': [1.0, 2.0], 'n_si': 4, 'anneal_steps': 5, 'anneal_temperature_k': 600, 'seed': 1},
}


@pytest.fixture(scope='module')
def two_members(tmp_path_factory):
    given = [lixsi_crystal('Li13Si4')]  # a structure given by the user joins the hull
    return [
        run_member(given, pair_member(strength), SMALL, tmp_path_factory.mktemp(f'member{index}'))
        for index, strength in enumerate((3.0, 4.0))
    ] + [tmp_path_factory.getbasetemp()]


def test_per_member_run_gives_a_consistent_hull(two_members):
    for result in two_members[:2]:
        scalars, curves = result['scalars'], result['curves']
        assert scalars['formation_energy_Li_ev_atom'] == scalars['formation_energy_Si_ev_atom'] == 0.0
        for name in ('LiSi', 'structure0_Li13Si4', 'a_LiSi', 'a_Li2Si'):
            assert scalars[f'formation_energy_{name}_ev_atom'] < 0
            assert scalars[f'e_above_hull_{name}_ev_atom'] >= -1e-9
        for curve in curves.values():
            assert np.all(np.diff(curve['x']) > 0)
            assert len(curve['x']) == len(curve['y'])
        assert curves['formation_energy']['x'] == pytest.approx([0, 0.5, 13 / 17, 1])
        assert curves['expansion_amorphous']['x'] == [1.0, 2.0]
        assert curves['voltage']['x'] == pytest.approx(np.arange(0, 3.26, 0.25))
        voltage = np.array(curves['voltage']['y'])
        assert np.all(voltage >= 0) and np.all(np.diff(voltage) <= 1e-12)  # a convex hull: voltage never rises
        assert np.all(np.array(curves['hull']['y']) <= 1e-12)
        entries = {entry['name']: entry for entry in result['extra']['entries']}
        assert [entries[name]['kind'] for name in ('Li', 'LiSi', 'structure0_Li13Si4', 'a_Li2Si')] == [
            'crystal', 'crystal', 'given', 'amorphous',
        ]  # fmt: skip
        assert all(1 <= entry['steps'] <= 26 for entry in entries.values() if not entry['converged'])


def test_members_differ_and_aggregate_to_their_mean_and_spread(two_members):
    first, second, _ = two_members
    key = 'formation_energy_LiSi_ev_atom'
    assert first['scalars'][key] != pytest.approx(second['scalars'][key], abs=1e-3)
    aggregate = aggregate_members([first, second])
    assert aggregate['scalars'][key]['mean'] == pytest.approx((first['scalars'][key] + second['scalars'][key]) / 2)
    assert aggregate['scalars'][key]['std'] == pytest.approx(abs(first['scalars'][key] - second['scalars'][key]) / 2)
    assert aggregate['curves']['voltage']['x'] == first['curves']['voltage']['x']


def test_relaxed_cells_are_written_and_match_the_reported_energy(two_members):
    base = two_members[2]
    relaxed = read(next(base.glob('member0*')) / 'LiSi.extxyz')
    entry = next(entry for entry in two_members[0]['extra']['entries'] if entry['name'] == 'LiSi')
    assert len(relaxed) == 16
    assert relaxed.get_volume() == pytest.approx(entry['volume_a3'])
    relaxed.calc = pair_member(3.0)
    assert relaxed.get_potential_energy() == pytest.approx(entry['energy_ev'], abs=1e-6)


def test_a_mace_member_runs_the_kernel(tmp_path):
    """An untrained MACE (with ZBL repulsion, so cells do not collapse) stands in for a trained member."""
    from aiida_sianode.engines.committee import load_committee_calculator, save_untrained_mace

    small = {'num_channels': 8, 'max_L': 0, 'r_max': 4.0, 'num_interactions': 1, 'pair_repulsion': True}
    model = save_untrained_mace(tmp_path / 'member.model', [3, 14], seed=0, **small)
    calculator = load_committee_calculator([str(model)])
    settings = {'phases': ['Li', 'Si', 'LiSi'], 'relax': {'max_steps': 3}, 'voltage_grid_step': 0.5}
    result = run_member([], calculator, settings, tmp_path / 'work')
    entries = {entry['name']: entry for entry in result['extra']['entries']}
    assert set(entries) == {'Li', 'Si', 'LiSi'}
    relaxed = read(tmp_path / 'work' / 'LiSi.extxyz')
    relaxed.calc = calculator
    assert relaxed.get_potential_energy() == pytest.approx(entries['LiSi']['energy_ev'], abs=1e-6)
    mu = {name: entries[name]['energy_ev'] / (entries[name]['n_li'] + entries[name]['n_si']) for name in ('Li', 'Si')}
    formation = entries['LiSi']['energy_ev'] / 16 - (mu['Li'] + mu['Si']) / 2
    assert result['scalars']['formation_energy_LiSi_ev_atom'] == pytest.approx(formation, abs=1e-12)
