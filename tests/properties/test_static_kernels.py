"""Property kernels of the static kinds (structure, eos, elastic) and the common frame, on exact cases.

Cheap calculators only (ASE's EMT): the kernels take any ASE calculator, a MACE member is one of them.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.lattice.hexagonal import Graphite

from aiida_sianode.properties import KINDS, common, elastic, eos, load_kind, structure
from aiida_sianode.properties.common import InvalidPropertyInput, get_settings, split_settings


def kernel_settings(kind: str, protocol: str = 'fast', overrides: dict | None = None) -> dict:
    return split_settings(get_settings(kind, protocol, overrides))[1]


# ---------------------------------------------------------------------------------------------------- the frame


def test_registry_names_every_kind_and_refuses_unknown():
    assert set(KINDS) == {
        'structure', 'amorphous', 'eos', 'elastic', 'lithiation', 'core_shell', 'md', 'diffusion', 'phonons',
        'vdos', 'neb',
    }  # fmt: skip
    assert load_kind('eos') is eos
    with pytest.raises(InvalidPropertyInput, match='unknown property `bandgap`'):
        load_kind('bandgap')


def test_aggregate_members_scalars_and_curves_on_a_common_x():
    members = [
        {'scalars': {'b_gpa': 90.0}, 'curves': {'e': {'x': [0.0, 1.0, 2.0], 'y': [0.0, 1.0, 2.0]}}},
        {'scalars': {'b_gpa': 86.0}, 'curves': {'e': {'x': [0.5, 1.5, 2.5], 'y': [1.5, 2.5, 3.5]}}},
    ]
    aggregate = common.aggregate_members(members)
    assert aggregate['scalars']['b_gpa'] == {'mean': 88.0, 'std': 2.0, 'members': [90.0, 86.0]}
    curve = aggregate['curves']['e']
    # the common x is the overlap [0.5, 2.0], where member 0 is y = x and member 1 is y = x + 1
    np.testing.assert_allclose(curve['x'], [0.5, 1.25, 2.0])
    np.testing.assert_allclose(curve['members'][0], [0.5, 1.25, 2.0])
    np.testing.assert_allclose(curve['members'][1], [1.5, 2.25, 3.0])
    np.testing.assert_allclose(curve['mean'], [1.0, 1.75, 2.5])
    np.testing.assert_allclose(curve['std'], [0.5, 0.5, 0.5])


def test_settings_strict_overrides_and_protocols():
    assert get_settings('eos', 'fast')['n_points'] == 7
    assert get_settings('eos', 'fast', {'relax': {'fmax_ev_a': 0.05}})['relax']['fmax_ev_a'] == 0.05
    assert get_settings('eos')['device'] == 'auto'
    with pytest.raises(InvalidPropertyInput, match='override `n_pionts` does not exist'):
        get_settings('eos', 'fast', {'n_pionts': 9})
    with pytest.raises(InvalidPropertyInput, match='unknown protocol `precise`'):
        get_settings('eos', 'precise')


def test_min_distance_refused_with_the_pair_named():
    atoms = Atoms('Si2', positions=[[0, 0, 0], [0.3, 0, 0]], cell=[5, 5, 5], pbc=True)
    with pytest.raises(InvalidPropertyInput, match=r'atoms 0 \(Si\) and 1 \(Si\) are 0.300 Å apart'):
        common.check_min_distance(atoms)
    common.check_min_distance(bulk('Si', 'diamond', a=5.43))


@pytest.mark.parametrize('values', [[0.25], [0.0], []])
def test_strain_and_volume_ranges_empty_or_over_20_percent_refused(values):
    with pytest.raises(InvalidPropertyInput, match=r'empty|more than the 20 %'):
        common.check_fraction_range('strain', values)


def test_relax_converges_cell_and_forces_with_emt():
    atoms = bulk('Cu', 'fcc', a=3.7, cubic=True)
    atoms.rattle(0.03, seed=3)
    atoms.calc = EMT()
    result = common.relax(atoms, fmax=0.005, stress_tol_gpa=0.01, max_steps=500)
    assert result['converged']
    assert result['max_force_ev_a'] <= 0.005
    assert result['max_stress_gpa'] <= 0.01
    assert atoms.cell.lengths() == pytest.approx([3.59] * 3, abs=0.01)  # EMT Cu


def test_hydrostatic_relax_converges_on_the_pressure_and_keeps_the_shear():
    """A scaled cell cannot lose its shear stress: a hydrostatic relaxation of sheared copper converges when the
    pressure is within tolerance, with the shear still there (before, it ran to max_steps)."""
    from ase.units import GPa

    atoms = bulk('Cu', 'fcc', a=3.7, cubic=True)
    cell = atoms.cell.array.copy()
    cell[0, 1] += 0.1  # a 2.7 % shear
    atoms.set_cell(cell, scale_atoms=True)
    atoms.calc = EMT()
    result = common.relax(atoms, fmax=0.01, stress_tol_gpa=0.02, max_steps=300, hydrostatic=True)
    stress = atoms.get_stress(voigt=True) / GPa
    assert result['converged'] and result['steps'] < 300
    assert abs(stress[:3].mean()) <= 0.02
    assert result['max_stress_gpa'] == pytest.approx(abs(stress[:3].mean()), abs=1e-9)
    assert abs(stress[5]) > 0.5  # the xy shear stress (GPa) a scaling cannot remove
    assert atoms.cell.array[0, 1] / atoms.cell.array[0, 0] == pytest.approx(0.1 / 3.7, rel=1e-9)


# ---------------------------------------------------------------------------------------------------- structure


def test_structure_diamond_si_coordination_4_only_6_rings_2_per_atom(tmp_path):
    settings = kernel_settings('structure')
    atoms = bulk('Si', 'diamond', a=5.431, cubic=True)
    structure.validate_settings(settings, [atoms])
    result = structure.run_member([atoms], None, settings, tmp_path)
    scalars, curves = result['scalars'], result['curves']
    assert scalars['mean_coordination'] == 4.0
    assert curves['coordination_Si']['y'][4] == 1.0
    rings = dict(zip(curves['ring_statistics']['x'], curves['ring_statistics']['y']))
    assert rings[6] == pytest.approx(2.0)
    assert sum(value for size, value in rings.items() if size != 6) == 0.0
    assert scalars['rings_per_atom'] == pytest.approx(2.0)
    assert scalars['mean_bond_angle_deg'] == pytest.approx(109.4712, abs=1e-3)
    assert scalars['density_g_cm3'] == pytest.approx(2.329, abs=1e-3)
    # g(r): nothing below the bond length 2.352 Å, the first shell in its bin, then zero up to the second shell
    r, g = np.array(curves['rdf_total']['x']), np.array(curves['rdf_total']['y'])
    assert r[np.flatnonzero(g)[0]] == pytest.approx(2.352, abs=0.05)
    assert g[(r > 2.45) & (r < 3.75)].max() == 0.0


def test_structure_graphite_coordination_3_all_sp2(tmp_path):
    settings = kernel_settings('structure')
    atoms = Graphite('C', latticeconstant={'a': 2.46, 'c': 6.70})
    result = structure.run_member([atoms], None, settings, tmp_path)
    scalars = result['scalars']
    assert scalars['mean_coordination_C'] == 3.0
    assert scalars['sp2_fraction_c'] == 1.0
    assert scalars['sp3_fraction_c'] == scalars['sp_fraction_c'] == 0.0
    assert scalars['mean_bond_angle_deg'] == pytest.approx(120.0)
    assert scalars['rings_per_atom'] == pytest.approx(0.5)  # every atom in three hexagons of six atoms


def test_structure_partial_rdf_and_coordination_of_two_elements(tmp_path):
    settings = kernel_settings('structure', overrides={'rings': {'enabled': False}})
    atoms = bulk('SiC', 'zincblende', a=4.36, cubic=True)
    result = structure.run_member([atoms], None, settings, tmp_path)
    assert result['scalars']['coordination_Si_C'] == 4.0
    assert result['scalars']['coordination_C_Si'] == 4.0
    assert result['scalars']['coordination_Si_Si'] == 0.0
    assert {'rdf_total', 'rdf_C_C', 'rdf_C_Si', 'rdf_Si_Si'} <= set(result['curves'])
    assert 'ring_statistics' not in result['curves']


def test_structure_refusals():
    atoms = bulk('Si', 'diamond', a=5.43)
    settings = kernel_settings('structure')
    with pytest.raises(InvalidPropertyInput, match='two element symbols'):
        structure.validate_settings({**settings, 'cutoffs': {'SiSi': 2.8}}, [atoms])
    with pytest.raises(InvalidPropertyInput, match='bonds none of their pairs'):
        structure.validate_settings({**settings, 'cutoffs': {'C-C': 1.85}}, [atoms])
    with pytest.raises(InvalidPropertyInput, match='unknown setting'):
        structure.validate_settings({**settings, 'bins': 3}, [atoms])


# ---------------------------------------------------------------------------------------------------- eos, elastic


@pytest.fixture(scope='module')
def emt_copper(tmp_path_factory):
    """EOS and elastic constants of EMT copper (fast protocols)."""
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    results = {}
    for kind, module in (('eos', eos), ('elastic', elastic)):
        settings = kernel_settings(kind)
        module.validate_settings(settings, [atoms])
        results[kind] = module.run_member([atoms], EMT(), settings, tmp_path_factory.mktemp(kind))
    return results


def test_eos_of_emt_copper(emt_copper):
    scalars = emt_copper['eos']['scalars']
    assert scalars['lattice_a_a'] == pytest.approx(3.590, abs=0.002)
    assert scalars['lattice_a_eos_a'] == pytest.approx(scalars['lattice_a_a'], abs=0.002)
    assert scalars['bulk_modulus_gpa'] == pytest.approx(134.4, abs=1.0)
    assert 3.5 < scalars['bulk_modulus_derivative'] < 5.5
    curve = emt_copper['eos']['curves']['energy_volume']
    assert len(curve['x']) == 7
    assert min(curve['y']) == pytest.approx(scalars['minimum_energy_ev_per_atom'], abs=1e-4)


def test_elastic_of_emt_copper_is_cubic_and_agrees_with_the_eos(emt_copper):
    scalars = emt_copper['elastic']['scalars']
    for a, b in (('c11', 'c22'), ('c11', 'c33'), ('c12', 'c13'), ('c44', 'c66')):
        assert scalars[f'{a}_gpa'] == pytest.approx(scalars[f'{b}_gpa'], abs=0.1)
    assert abs(scalars['c14_gpa']) < 0.1 and abs(scalars['c16_gpa']) < 0.1
    assert scalars['c11_gpa'] == pytest.approx(172.6, abs=1.5)
    assert scalars['c12_gpa'] == pytest.approx(115.6, abs=1.5)
    assert scalars['c44_gpa'] == pytest.approx(90.0, abs=1.5)
    # B = (C11 + 2 C12) / 3 for a cubic crystal: the same modulus as the equation of state's
    assert scalars['bulk_modulus_voigt_gpa'] == pytest.approx(scalars['bulk_modulus_reuss_gpa'], abs=1e-6)
    assert scalars['bulk_modulus_hill_gpa'] == pytest.approx(emt_copper['eos']['scalars']['bulk_modulus_gpa'], rel=0.01)
    assert scalars['shear_modulus_reuss_gpa'] < scalars['shear_modulus_hill_gpa'] < scalars['shear_modulus_voigt_gpa']


def test_elastic_voigt_reuss_hill_of_a_known_tensor():
    # an isotropic tensor: Voigt = Reuss = Hill, B = lambda + 2/3 mu, G = mu
    lam, mu = 60.0, 40.0
    tensor = np.zeros((6, 6))
    tensor[:3, :3] = lam
    tensor[np.arange(3), np.arange(3)] = lam + 2 * mu
    tensor[np.arange(3, 6), np.arange(3, 6)] = mu
    moduli = elastic.voigt_reuss_hill(tensor)
    assert moduli['bulk_modulus_voigt'] == pytest.approx(lam + 2 * mu / 3)
    assert moduli['bulk_modulus_reuss'] == pytest.approx(lam + 2 * mu / 3)
    assert moduli['shear_modulus_voigt'] == pytest.approx(mu)
    assert moduli['shear_modulus_reuss'] == pytest.approx(mu)
    assert moduli['poisson_ratio_hill'] == pytest.approx(lam / (2 * (lam + mu)))


def test_eos_and_elastic_refusals():
    atoms = bulk('Si', 'diamond', a=5.43)
    with pytest.raises(InvalidPropertyInput, match='more than the 20 %'):
        eos.validate_settings(kernel_settings('eos', overrides={'volume_range': 0.3}), [atoms])
    with pytest.raises(InvalidPropertyInput, match='range is empty'):
        eos.validate_settings(kernel_settings('eos', overrides={'volume_range': 0.0}), [atoms])
    with pytest.raises(InvalidPropertyInput, match='exactly one structure'):
        eos.validate_settings(kernel_settings('eos'), [atoms, atoms])
    with pytest.raises(InvalidPropertyInput, match='more than the 20 %'):
        elastic.validate_settings(kernel_settings('elastic', overrides={'strains': [-0.25, 0.25]}), [atoms])
    with pytest.raises(InvalidPropertyInput, match='range is empty'):
        elastic.validate_settings(kernel_settings('elastic', overrides={'strains': []}), [atoms])
    slab = atoms.copy()
    slab.pbc = [True, True, False]
    with pytest.raises(InvalidPropertyInput, match='periodic in all three'):
        elastic.validate_settings(kernel_settings('elastic'), [slab])


def test_reference_configurations_and_result_round_trip():
    """The DFT reference path: configurations labelled with a calculator give the same fit as the kernel's own."""
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = bulk('Cu', 'fcc', a=3.59, cubic=True)
    for kind, module in (('eos', eos), ('elastic', elastic)):
        settings = kernel_settings(kind, overrides={'relax_ions_at_volume': False} if kind == 'eos' else None)
        configurations = module.reference_configurations([atoms], settings)
        labelled = []
        for configuration in configurations:
            configuration.calc = EMT()
            results = {'energy': configuration.get_potential_energy(), 'forces': configuration.get_forces()}
            results['stress'] = configuration.get_stress()
            configuration.calc = SinglePointCalculator(configuration, **results)
            labelled.append(configuration)
        result = module.reference_result(labelled, settings)
        if kind == 'eos':
            assert len(configurations) == 7
            assert result['scalars']['bulk_modulus_gpa'] == pytest.approx(134.4, abs=1.5)
        else:
            assert len(configurations) == 1 + 6 * 2
            # fcc Cu has no internal coordinates: clamped-ion = relaxed-ion constants
            assert result['scalars']['c11_gpa'] == pytest.approx(172.6, abs=2.0)
            assert result['scalars']['c44_gpa'] == pytest.approx(90.0, abs=2.0)


def test_plot_curve_writes_a_png(tmp_path):
    aggregate = common.aggregate_members(
        [{'curves': {'e': {'x': [1, 2, 3], 'y': [3, 1, 3], 'x_label': 'V', 'y_label': 'E'}}}] * 2
    )
    path = common.plot_curve(aggregate['curves']['e'], tmp_path / 'e.png', title='t')
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert pathlib.Path(path).stat().st_size > 1000


# ---------------------------------------------------------------------------------------------------- amorphous


def copper_amorphous_settings(anneal_ps: float = 0.02, anneal_ensemble: str = 'nvt') -> dict:
    """A few-step melt (3000 K, 0.02 ps) and quench (10 steps of 2 fs) of EMT copper at 8.0 g/cm^3."""
    overrides = {
        'density_g_cm3': 8.0,
        'timestep_fs': 2.0,
        'sample_interval': 5,
        'melt': {'temperature_k': 3000.0, 'time_ps': 0.02},
        'quench': {'end_k': 300.0, 'rate_k_per_ps': 135000.0, 'ensemble': 'nvt'},
        'anneal': {'time_ps': anneal_ps, 'ensemble': anneal_ensemble},
        'relax': {'max_steps': 20, 'cell': False},
        'cutoffs': {'Cu-Cu': 3.0},
        'rings': {'enabled': False},
    }
    return kernel_settings('amorphous', overrides=overrides)


def test_amorphous_members_quench_one_shared_melt(tmp_path):
    """Two members quench the same melt (made by the first, read by the second) at the set rate; at fixed density
    (nvt) the cell keeps the density asked for."""
    from aiida_sianode.properties import amorphous

    settings = copper_amorphous_settings(anneal_ps=0.01)
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    amorphous.validate_settings(settings, [atoms])
    assert amorphous.quench_steps(settings) == 10  # (3000 - 300) K / 135000 K/ps = 0.02 ps = 10 steps of 2 fs
    results = []
    for index in range(2):
        workdir = tmp_path / f'member_{index}'
        workdir.mkdir()
        results.append(amorphous.run_member([atoms], EMT(), settings, workdir))
    first, second = (result['extra'] for result in results)
    assert first['melt_made_by_this_member'] and not second['melt_made_by_this_member']
    assert first['melt_sha256'] == second['melt_sha256']
    assert (tmp_path / 'member_shared' / 'melt.extxyz').is_file()
    assert first['quench_steps'] == 10 and first['anneal_steps'] == 5
    assert first['melt_density_g_cm3'] == pytest.approx(8.0)
    for result in results:
        assert result['scalars']['density_g_cm3'] == pytest.approx(8.0)
        curve = result['curves']['quench_density']
        assert curve['x'] == pytest.approx([1650.0, 300.0])
        assert (tmp_path / f'member_{results.index(result)}' / 'amorphous.extxyz').is_file()


def test_amorphous_npt_anneal_after_a_langevin_quench(tmp_path):
    """The `balanced` protocol's order: a Langevin quench (centre of mass held by a constraint), then an MTK NPT
    anneal, which refuses constraints; the barostat moves the cell off the quench's density."""
    from aiida_sianode.properties import amorphous

    settings = copper_amorphous_settings(anneal_ensemble='npt')
    assert kernel_settings('amorphous', protocol='balanced')['anneal']['ensemble'] == 'npt'
    (tmp_path / 'member_0').mkdir()
    result = amorphous.run_member([bulk('Cu', 'fcc', a=3.6, cubic=True)], EMT(), settings, tmp_path / 'member_0')
    assert result['extra']['anneal_steps'] == 10
    assert result['scalars']['density_g_cm3'] != pytest.approx(8.0, abs=1e-4)  # the barostat moved the cell
    assert 7.0 < result['scalars']['density_g_cm3'] < 9.5


def test_amorphous_member_continues_after_its_last_finished_stage(tmp_path, monkeypatch):
    """A member that failed in its relaxation, run again in its folder, continues from its annealed state and gives
    what an uninterrupted member gives; another melt's stage file is ignored."""
    from aiida_sianode.properties import amorphous

    settings = copper_amorphous_settings()
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    for folder in ('whole', 'stopped'):
        (tmp_path / folder / 'member_1').mkdir(parents=True)
    whole = amorphous.run_member([atoms], EMT(), settings, tmp_path / 'whole' / 'member_1')
    assert whole['extra']['continued_after_stage'] is None

    real_relax = amorphous.relax

    def failing_relax(*args, **kwargs):
        raise RuntimeError('the node went down')

    monkeypatch.setattr(amorphous, 'relax', failing_relax)
    with pytest.raises(RuntimeError, match='the node went down'):
        amorphous.run_member([atoms], EMT(), settings, tmp_path / 'stopped' / 'member_1')
    monkeypatch.setattr(amorphous, 'relax', real_relax)
    calls = []
    real_dynamics = amorphous._dynamics

    def counted_dynamics(*args, **kwargs):
        calls.append(1)
        return real_dynamics(*args, **kwargs)

    monkeypatch.setattr(amorphous, '_dynamics', counted_dynamics)
    again = amorphous.run_member([atoms], EMT(), settings, tmp_path / 'stopped' / 'member_1')
    assert calls == []  # neither the quench nor the anneal ran again
    assert again['extra']['continued_after_stage'] == 'annealed'
    # equal to rounding: EMT sums its neighbours in the order of a neighbour list built at other positions
    assert again['scalars']['energy_ev_per_atom'] == pytest.approx(whole['scalars']['energy_ev_per_atom'], rel=1e-10)
    assert again['scalars']['density_g_cm3'] == pytest.approx(whole['scalars']['density_g_cm3'], rel=1e-12)
    assert again['curves']['quench_density'] == whole['curves']['quench_density']

    other_melt = {**settings, 'melt': {'temperature_k': 2900.0, 'time_ps': 0.02}}
    (tmp_path / 'stopped' / 'member_shared' / 'melt.extxyz').unlink()
    fresh = amorphous.run_member([atoms], EMT(), other_melt, tmp_path / 'stopped' / 'member_1')
    assert fresh['extra']['continued_after_stage'] is None
    assert len(calls) == 3  # a new melt, its quench and its anneal


def test_amorphous_refusals():
    from aiida_sianode.properties import amorphous

    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    with pytest.raises(InvalidPropertyInput, match='the quench must end below the melt'):
        amorphous.validate_settings(kernel_settings('amorphous', overrides={'quench': {'end_k': 3000.0}}), [atoms])
    with pytest.raises(InvalidPropertyInput, match=r'quench\.rate_k_per_ps must be positive'):
        amorphous.validate_settings(kernel_settings('amorphous', overrides={'quench': {'rate_k_per_ps': 0}}), [atoms])
    with pytest.raises(InvalidPropertyInput, match=r'anneal\.ensemble must be npt or nvt'):
        amorphous.validate_settings(kernel_settings('amorphous', overrides={'anneal': {'ensemble': 'nve'}}), [atoms])


def test_amorphous_stops_a_cell_that_falls_apart():
    from aiida_sianode.properties import amorphous

    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    swollen = atoms.copy()
    swollen.set_cell(atoms.cell * 1.3, scale_atoms=True)
    with pytest.raises(RuntimeError, match=r'swelled to 2\.2 times its volume during the anneal'):
        amorphous.check_intact(swollen, atoms.get_volume(), 'the anneal')
    amorphous.check_intact(atoms, atoms.get_volume(), 'the anneal')
