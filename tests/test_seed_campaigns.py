"""The campaign specs of the seed systems (issue 16): every shipped spec builds and passes its labeler's checks, and
a spec that cannot run is refused before anything runs (an element the labeler cannot do, a packing density its
distance floor cannot reach, a pressure beyond the barostat); ``aiida-sianode run --dry-run`` builds every input
and stores nothing."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml
from ase import Atoms
from ase.io import write

from aiida_sianode.campaign_spec import SpecError, load_spec, parse_spec, preflight

WORKFLOWS = pathlib.Path(__file__).resolve().parent.parent / 'workflows'

#: spec: (labeler, protocol, structures labelled first, elements of the campaign's chemistry)
SHIPPED = {
    'sei_xtb.yaml': ('xtb', 'fast', 6, {'Li', 'C', 'O', 'F', 'P'}),
    'ac_si_xtb.yaml': ('xtb', 'fast', 8, {'C', 'Si', 'Li'}),
    'core_shell_xtb.yaml': ('xtb', 'fast', 4, {'C', 'Si', 'Li'}),
    'hard_carbon_xtb.yaml': ('xtb', 'fast', 4, {'C', 'Na', 'Li'}),
    'si_lixsi_ac_xtb.yaml': ('xtb', 'fast', 10, {'Si', 'Li', 'C'}),
    'sei_vasp.yaml': ('vasp', 'balanced', 120, {'H', 'Li', 'C', 'O', 'F', 'P'}),
    'ac_si_castep.yaml': ('castep', 'balanced', 30, {'C', 'Si', 'Li'}),
    'core_shell_vasp.yaml': ('vasp', 'balanced', 18, {'C', 'Si', 'Li'}),
    'hard_carbon_vasp.yaml': ('vasp', 'balanced', 12, {'C', 'Na', 'Li'}),
    'si_lixsi_ac_vasp.yaml': ('vasp', 'balanced', 20, {'Si', 'Li', 'C'}),
    'si_lixsi_xtb.yaml': ('xtb', 'fast', 8, {'Si', 'Li'}),
    'si_lixsi_gpaw.yaml': ('gpaw', 'fast', 5, {'Si', 'Li'}),
}


def test_every_spec_in_workflows_is_listed_here_and_in_the_readme():
    readme = (WORKFLOWS.parent / 'README.md').read_text()
    shipped = sorted(path.name for path in WORKFLOWS.glob('*.yaml'))
    assert shipped == sorted(SHIPPED)
    for name in shipped:
        assert f'`workflows/{name}`' in readme, name


@pytest.mark.parametrize('name', sorted(SHIPPED))
def test_shipped_spec_builds_and_passes_its_labeler(name):
    """Every structure of the spec is built in memory; the counts and the chemistry are the ones the spec says."""
    labeler, protocol, n_labelled, chemistry = SHIPPED[name]
    spec = load_spec(WORKFLOWS / name)
    assert (spec.labeler.name, spec.labeler.protocol) == (labeler, protocol)
    assert sum(len(entry.seeds) for entry in spec.structures) == n_labelled
    if protocol == 'balanced':
        # Production cells are large: build each entry once (its first seed); `run --dry-run` builds them all.
        spec = spec.model_copy(
            update={'structures': [entry.model_copy(update={'seeds': entry.seeds[:1]}) for entry in spec.structures]}
        )
    planned = preflight(spec, WORKFLOWS)
    labelled = [item for item in planned if item.section == 'structures']
    assert len(labelled) == sum(len(entry.seeds) for entry in spec.structures)
    elements = {symbol for item in planned for symbol in item.atoms.get_chemical_symbols()}
    assert elements == chemistry
    if labeler != 'gpaw' and name != 'si_lixsi_xtb.yaml':  # the two c-Si/LixSi specs belong to another issue
        assert spec.training.protocol == ('balanced' if protocol == 'balanced' else 'fast')
        text = (WORKFLOWS / name).read_text()
        assert 'seed paper' in text and ('Scaled down' in text or 'scaled down' in text.lower())


def test_production_specs_follow_the_papers():
    """The paper's settings: VASP or CASTEP at `balanced` (VASP 520 eV), 120 SEI packings, NPT to 100 kbar, maxvol
    with grade 2 for SEI, DIRECT for core-shell, the level-of-theory guard for the composite."""
    from aiida_sianode.campaign_spec import labeler_inputs

    sei = load_spec(WORKFLOWS / 'sei_vasp.yaml')
    assert labeler_inputs(sei.labeler)['incar']['encut'] == 520
    assert sum(len(entry.seeds) for entry in sei.structures) == 120
    assert {entry.builder for entry in sei.structures} == {'sei-pack'}
    assert max(sei.exploration.pressures) == 10.0 and max(sei.exploration.temperatures) == 1000
    assert (sei.selection.strategy, sei.selection.grade_threshold) == ('maxvol', 2.0)
    assert load_spec(WORKFLOWS / 'core_shell_vasp.yaml').selection.strategy == 'direct'
    assert load_spec(WORKFLOWS / 'core_shell_xtb.yaml').selection.strategy == 'direct'
    shells = {
        entry.parameters['shell_thickness_nm']
        for entry in load_spec(WORKFLOWS / 'core_shell_vasp.yaml').structures
        if entry.builder == 'core-shell'
    }
    assert len(shells) == 2
    assert load_spec(WORKFLOWS / 'si_lixsi_ac_vasp.yaml').dataset.allow_mixed is False
    castep = load_spec(WORKFLOWS / 'ac_si_castep.yaml')
    # a-C over the paper's density range, pre-sampled by LAMMPS Tersoff melt-quenches (seed 000's recipe)
    densities = {entry.presample.density for entry in castep.structures if entry.presample is not None}
    assert (min(densities), max(densities)) == (1.5, 3.3)
    assert {entry.presample.material for entry in castep.structures if entry.presample is not None} == {'a-c'}
    # Li at the Si/a-C interface (seed 000's item) in the a-C and composite specs, small and production.
    for name in ('ac_si_xtb.yaml', 'ac_si_castep.yaml', 'si_lixsi_ac_xtb.yaml', 'si_lixsi_ac_vasp.yaml'):
        spec = load_spec(WORKFLOWS / name)
        assert any(e.builder == 'si-ac-interface' and e.parameters.get('n_li', 0) > 0 for e in spec.structures), name


# ------------------------------------------------------------------------------------------------------ refusals


def spec_with(labeler: str, structures: list, **sections) -> dict:
    return {'name': 'refused', 'structures': structures, 'labeler': {'name': labeler}, **sections}


def refusal(data: dict, base: pathlib.Path = WORKFLOWS) -> str:
    with pytest.raises(SpecError) as error:
        preflight(parse_spec(data), base)
    return str(error.value)


@pytest.mark.parametrize(
    ('labeler', 'element'),
    [('xtb', 'U'), ('gpaw', 'Po'), ('vasp', 'Cu')],
    ids=['xtb-beyond-radon', 'gpaw-no-setup', 'vasp-not-in-potcar-mapping'],
)
def test_an_element_the_labeler_cannot_do_is_refused(tmp_path, labeler, element):
    """GFN1-xTB stops at Rn, GPAW has no Po setup, the VASP protocol maps no POTCAR to Cu: each is named, in the
    labelled structures and in the MD starts (whose frames get labelled later)."""
    write(
        tmp_path / 'foreign.extxyz',
        Atoms(f'Si{element}', positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=[5] * 3, pbc=True),
    )
    silicon = {'builder': 'si-crystal', 'parameters': {'size': [1, 1, 1]}}
    message = refusal(spec_with(labeler, [{'file': 'foreign.extxyz'}]), tmp_path)
    assert f'element {element} cannot be labelled by {labeler}' in message
    assert 'structures foreign_000 (foreign.extxyz)' in message
    message = refusal(spec_with(labeler, [silicon], explore_structures=[{'file': 'foreign.extxyz'}]), tmp_path)
    assert f'explore_structures foreign_000 (foreign.extxyz): element {element}' in message


def test_every_builder_output_is_within_every_labelers_elements():
    """The builders make H, Li, C, O, F, Na, Si and P only: each labeler's list holds them all (so the element
    refusal above is met with structure files, the same check)."""
    from aiida_sianode.campaign_spec import LabelerSpec, spec_labeler_elements

    made = {'H', 'Li', 'C', 'O', 'F', 'Na', 'Si', 'P'}
    for name in ('gpaw', 'xtb', 'vasp'):
        assert made <= spec_labeler_elements(LabelerSpec(name=name, protocol='balanced')), name
    assert spec_labeler_elements(LabelerSpec(name='castep')) is None  # the C19 on-the-fly library: any element
    assert spec_labeler_elements(LabelerSpec(name='vasp')) == made


def test_a_packing_density_that_cannot_be_reached_is_refused():
    """Random placement cannot reach a packing fraction above 0.34; an SEI box smaller than its largest unit; a
    hard-carbon cell with no void left for the alkali: all named with the entry, builder and seed."""
    dense = {'builder': 'amorphous-carbon', 'parameters': {'n_atoms': 64, 'density': 3.3, 'min_distance': 2.0}}
    message = refusal(spec_with('xtb', [dense]))
    assert 'structures[0] (amorphous-carbon, seed 0): amorphous-carbon: 64 atoms' in message
    assert 'above what random placement can reach' in message
    sei = {'builder': 'sei-pack', 'parameters': {'composition': {'Li2EDC': 1, 'LiF': 1}, 'density': 2.0}}
    assert 'is smaller than its largest unit' in refusal(spec_with('vasp', [sei]))
    full = {
        'builder': 'hard-carbon',
        'parameters': {'n_carbon': 24, 'density': 1.6, 'alkali': 'Na', 'n_alkali': 2},
        'seeds': [1, 11],
    }
    message = refusal(spec_with('xtb', [full]))
    assert 'structures[0] (hard-carbon, seed 11): hard-carbon: after 1 of 2 Na atoms' in message
    assert 'seed 1)' not in message  # seed 1 fits


@pytest.mark.parametrize(
    'exploration',
    [
        {'ensembles': ['npt'], 'pressures': [0.0, 12.0]},
        {'ensembles': ['npt'], 'pressures': [-10.5]},
        {'ensembles': ['npt'], 'overrides': {'pressures': [20.0]}},
    ],
    ids=['above', 'below', 'in-overrides'],
)
def test_a_pressure_beyond_the_barostat_is_refused(exploration):
    data = spec_with('xtb', [{'builder': 'si-crystal'}], exploration=exploration)
    with pytest.raises(SpecError, match="beyond the barostat's range: pressures are in GPa and at most 10 GPa"):
        parse_spec(data)


def test_an_unknown_labeler_override_is_refused_before_anything_is_built():
    data = spec_with('xtb', [{'builder': 'si-crystal'}])
    data['labeler']['overrides'] = {'calc': {'parameters': {'smearing': 0.1}}}
    assert 'labeler.overrides: override `calc.parameters.smearing` does not exist' in refusal(data)


# ------------------------------------------------------------------------------------------------ run --dry-run


def invoke(*args):
    from click.testing import CliRunner

    from aiida_sianode.cli import cmd_root

    return CliRunner().invoke(cmd_root, [str(arg) for arg in args], catch_exceptions=False)


def node_count() -> int:
    from aiida import orm

    return orm.QueryBuilder().append(orm.Node).count()


def test_dry_run_of_a_small_spec_builds_every_label_and_stores_nothing(label_code, train_code, explore_code):
    before = node_count()
    result = invoke('run', '--dry-run', '--json', WORKFLOWS / 'hard_carbon_xtb.yaml')
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert node_count() == before
    assert (report['initial_labels'], report['label_inputs_built'], report['missing']) == (4, 6, [])
    assert report['initial_label_atoms'] == 25 + 26 + 26 + 26
    assert report['md_runs_per_iteration'] == 2 * 2  # two MD starts x two temperatures, NVT
    assert [row['formula'] for row in report['structures'][:2]] == ['C24Na', 'C24Na2']
    assert report['submitted'] is False


def test_dry_run_of_a_production_spec_names_what_the_profile_lacks(aiida_profile, tmp_path):
    """The cluster's codes and the POTCAR family are not in this profile: named, and the command still exits 0."""
    from aiida_vasp.data.potcar import PotcarData

    if PotcarData.get_potcar_group('PBE.54') is not None:
        pytest.skip('this profile has a PBE.54 POTCAR family')
    before = node_count()
    result = invoke('run', '--dry-run', '--json', WORKFLOWS / 'hard_carbon_vasp.yaml')
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert node_count() == before
    assert report['missing'] == [
        'code `vasp@cluster`',
        'code `sianode-train@cluster`',
        'code `sianode-explore@cluster`',
        'POTCAR family `PBE.54` (aiida-vasp potcar uploadfamily --name PBE.54 ...)',
    ]
    assert (report['initial_labels'], report['label_inputs_built']) == (12, 0)
    assert report['md_runs_per_iteration'] == 12 * 3 * 2  # 12 starts, 3 temperatures, NVT and NPT at 0 GPa
    assert {row['natoms'] for row in report['structures']} == {130, 132, 136, 140}  # 128 C + 2-12 Na or 4-8 Li


def test_dry_run_builds_vasp_and_castep_label_inputs_and_refuses_a_castep_family_without_carbon(
    aiida_localhost, tmp_path
):
    """With a POTCAR family and the pseudopotential families in the profile the label inputs of every structure are
    built; a CASTEP family holding only Si refuses the carbon of an a-C cell (exit 1, element named)."""
    from aiida import orm
    from aiida_castep.data.otfg import upload_otfg_family
    from aiida_vasp.data.potcar import PotcarData, PotcarGroup

    if PotcarData.get_potcar_group('PBE.54') is None:
        PotcarGroup(label='PBE.54').store()  # empty: POTCAR files are licensed and not shipped
    upload_otfg_family(['C19'], 'C19', 'CASTEP C19 library', stop_if_existing=False)
    upload_otfg_family(['Si 3|1.8|5|6|7|30:31:32'], 'Si-only', 'one Si string', stop_if_existing=False)
    for label, plugin in (('vasp-dry', 'vasp.vasp'), ('castep-dry', 'castep.castep')):
        try:
            orm.load_code(f'{label}@{aiida_localhost.label}')
        except Exception:
            orm.InstalledCode(
                label=label, computer=aiida_localhost, filepath_executable='/bin/true', default_calc_job_plugin=plugin
            ).store()
    structures = [
        {'builder': 'si-crystal', 'parameters': {'size': [1, 1, 1]}, 'seeds': [1, 2]},
        {'builder': 'amorphous-carbon', 'parameters': {'n_atoms': 16}},
    ]
    for labeler, code in (('vasp', 'vasp-dry'), ('castep', 'castep-dry')):
        path = tmp_path / f'{labeler}.yaml'
        data = spec_with(labeler, structures)
        data['labeler'].update(protocol='balanced', code=f'{code}@{aiida_localhost.label}')
        path.write_text(yaml.safe_dump(data))
        result = invoke('run', '--dry-run', '--json', path)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report['label_inputs_built'] == 3
        assert f'code `{code}@{aiida_localhost.label}`' not in report['missing']

    data['labeler']['overrides'] = {'pseudos_family': 'Si-only'}
    path.write_text(yaml.safe_dump(data))
    result = invoke('run', '--dry-run', '--json', path)
    assert result.exit_code == 1
    message = json.loads(result.stdout)['error']
    assert 'amorphous_carbon_01_seed0' in message and 'element C cannot be labelled by castep' in message


def test_run_refuses_before_storing_anything(label_code, train_code, explore_code, tmp_path):
    """Without --dry-run the same checks run first: a refused spec stores no structure."""
    path = tmp_path / 'dense.yaml'
    dense = {'builder': 'amorphous-carbon', 'parameters': {'n_atoms': 64, 'density': 3.3, 'min_distance': 2.0}}
    path.write_text(yaml.safe_dump(spec_with('xtb', [{'builder': 'si-crystal'}, dense])))
    before = node_count()
    result = invoke('run', path)
    assert result.exit_code == 1
    assert 'refused before anything runs' in result.output and 'structures[1] (amorphous-carbon' in result.output
    assert node_count() == before


# ------------------------------------------------------------------------------------------- a small campaign, run

#: The small spec the suite runs end to end (the others run in benchmarks/seed_campaigns.py, see its .md table).
SUITE_SPEC = 'hard_carbon_xtb.yaml'


@pytest.fixture(scope='module')
def seed_campaign(engine_codes, tmp_path_factory):
    """Run the suite's small seed campaign once, as written in workflows/, with the test profile's engine codes."""
    label_code, train_code, explore_code = engine_codes
    data = yaml.safe_load((WORKFLOWS / SUITE_SPEC).read_text())
    data['labeler']['code'] = label_code.full_label
    data['training']['code'] = train_code.full_label
    data['exploration']['code'] = explore_code.full_label
    folder = tmp_path_factory.mktemp('seed_campaign')
    path = folder / SUITE_SPEC
    path.write_text(yaml.safe_dump(data))
    result = invoke('run', path, '--json', '--output-dir', folder / 'report')
    return result, json.loads(result.stdout)


def test_small_seed_campaign_runs_end_to_end(seed_campaign):
    result, summary = seed_campaign
    assert result.exit_code == 0, result.output
    assert summary['stop_reason'] in ('converged', 'max_iterations', 'label_budget', 'nothing_to_label')
    rows = summary['iterations']
    assert rows[0]['labels_added'] + rows[0]['labels_failed'] == 4  # the four hard-carbon cells of the spec
    assert len(rows) <= 3  # the initial labels and at most two iterations
    frames = [row['training_set_frames'] for row in rows if 'training_set_frames' in row]
    assert frames == sorted(frames)
    assert frames[-1] > frames[0]  # grew by selected frames (benchmark run: 4 -> 10 -> 10)
    assert frames[-1] == sum(row['labels_added'] for row in rows)
    assert summary['labels_computed'] == sum(row['labels_added'] + row['labels_failed'] for row in rows)


def test_small_seed_campaign_grew_a_training_set_of_its_own_chemistry(seed_campaign):
    """Every label is a hard-carbon cell: 24 C with Na or Li, xTB energies, forces on every atom."""
    from aiida import orm

    _, summary = seed_campaign
    node = orm.load_node(summary['pk'])
    frames = node.outputs.training_set.get_frames()
    assert len(frames) == summary['iterations'][-1].get('training_set_frames', len(frames))
    assert {symbol for atoms in frames for symbol in atoms.get_chemical_symbols()} == {'C', 'Na', 'Li'}
    for atoms in frames:
        symbols = atoms.get_chemical_symbols()
        assert symbols.count('C') == 24 and 1 <= len(symbols) - 24 <= 2
        assert atoms.arrays['REF_forces'].shape == (len(atoms), 3)
        assert atoms.info['REF_energy'] < 0
    assert node.outputs.training_set.base.attributes.get('level_of_theory')['code'] == 'xtb'
