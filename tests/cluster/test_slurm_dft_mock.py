"""VASP and CASTEP labels through the daemon of the production profile, each calculation a Slurm job on
``loop-slurm``, with the plugins' mock executables (``mock-vasp``, ``castep.mock``) as the remote codes.

The registries are those of ``tests/workflows/label/test_mock_engines.py`` (``fixtures/mock/registry.py``), built by
the ``cluster`` fixture; the same numbers are asserted here, read from the same fixture files.
"""

from __future__ import annotations

import time

import pytest

SUBMIT = """
import importlib.util, sys
from aiida.engine import submit
from aiida_sianode.deploy.cluster import default_options
from aiida_sianode.workflows.label.castep import CastepLabelWorkChain
from aiida_sianode.workflows.label.vasp import VaspLabelWorkChain
from aiida_vasp.data.potcar import PotcarData

spec = importlib.util.spec_from_file_location('registry', '{repo}/fixtures/mock/registry.py')
registry = importlib.util.module_from_spec(spec); sys.modules['registry'] = registry; spec.loader.exec_module(registry)
PotcarData.upload_potcar_family('{registry}/potcars/headers', 'mock-PBE', 'POTCAR headers')

vasp = orm.load_code('vasp@loop-slurm')
first = registry.VASP_CASES['si2-scf-restart'][0]
inputs = registry.vasp_recorded_inputs(first.folder())
builder = VaspLabelWorkChain.get_builder_from_protocol(
    vasp, orm.StructureData(ase=inputs['atoms']), overrides={{'potential_family': 'mock-PBE'}},
    options=default_options(vasp))
builder.vasp.parameters = orm.Dict({{'incar': inputs['incar']}})
kpoints = orm.KpointsData(); kpoints.set_kpoints_mesh(inputs['mesh'], inputs['shift'])
builder.vasp.kpoints = kpoints
del builder['kpoint_spacing']
vasp_pk = submit(builder).pk

castep = orm.load_code('castep@loop-slurm')
case = registry.CASTEP_CASES['li-bcc-single-point']
inputs = registry.castep_case_inputs(case)
options = default_options(castep)
assert options['max_wallclock_seconds'] == case.max_wallclock_seconds
builder = CastepLabelWorkChain.get_builder_from_protocol(
    castep, inputs['structure'], overrides={{'pseudos_family': inputs['family']}}, options=options)
builder.castep.calc.parameters = orm.Dict(inputs['parameters'])
builder.castep.calc.kpoints = inputs['kpoints']
del builder['kpoint_spacing']
castep_pk = submit(builder).pk
print(json.dumps([vasp_pk, castep_pk]))
"""

DESCRIBE = """
rows = {{}}
for pk in {pks}:
    chain = orm.load_node(pk)
    calcs = sorted((n for n in chain.called_descendants if isinstance(n, orm.CalcJobNode)), key=lambda n: n.ctime)
    row = {{'exit_status': chain.exit_status, 'calcs': [[c.get_job_id(), c.exit_status, c.computer.label,
            c.get_option('queue_name')] for c in calcs]}}
    if 'label' in chain.outputs:
        label = chain.outputs.label
        row.update(energy=label.energy, forces=label.forces.tolist(), lot=label.level_of_theory)
    else:
        params = calcs[-1].outputs.output_parameters.get_dict()
        row.update(zero_K_energy=params['zero_K_energy'], version=params['castep_version'])
    rows[pk] = row
print(json.dumps(rows))
"""


def test_vasp_and_castep_labels_through_slurm(cluster):
    started = time.time()
    vasp_pk, castep_pk = cluster.python(SUBMIT.format(repo=cluster.repo_root, registry=cluster.registry))
    states = cluster.wait([vasp_pk, castep_pk], timeout=900)
    print(
        f'\n[cluster] a VASP label (2 calculations) and a CASTEP label through Slurm in {time.time() - started:.1f} s'
    )
    rows = {int(pk): row for pk, row in cluster.python(DESCRIBE.format(pks=[vasp_pk, castep_pk])).items()}
    jobs = cluster.slurm_jobs()

    vasp = rows[vasp_pk]
    assert states[vasp_pk]['exit_status'] == 0, (vasp, cluster.verdi('process', 'report', vasp_pk, check=False))
    # the unconverged SCF (VaspCalculation exit 701), then aiida-vasp's restart: two Slurm jobs, both COMPLETED
    assert [exit_status for _, exit_status, _, _ in vasp['calcs']] == [701, 0]
    for job_id, _, computer, queue in vasp['calcs']:
        assert (computer, queue) == ('loop-slurm', 'cpu')
        assert jobs[job_id]['JobState'] == 'COMPLETED' and jobs[job_id]['Partition'] == 'cpu'
    # OUTCAR of Si_ionic-unconverged_first-step line 3146, vasprun.xml lines 827-828
    assert vasp['energy'] == pytest.approx(-6.50161629, abs=1e-8)
    assert vasp['forces'][0] == pytest.approx([-6.09635501, 11.33713775, -7.02162328], abs=1e-8)
    assert (vasp['lot']['cutoff_ev'], vasp['lot']['kpoints_mesh'], vasp['lot']['code_version']) == (
        300.0,
        [4, 4, 4],
        '5.4.4',
    )

    castep = rows[castep_pk]
    # replayed and parsed on the cluster; the label stops at aiida-castep's required .bands (fixtures/mock/README.md)
    ((job_id, exit_status, computer, queue),) = castep['calcs']
    assert (exit_status, computer, queue) == (0, 'loop-slurm', 'cpu')
    assert jobs[job_id]['JobState'] == 'COMPLETED'
    assert castep['zero_K_energy'] == pytest.approx(-195.8126215487, abs=1e-8) and castep['version'] == '18.1'
    assert castep['exit_status'] == 420
