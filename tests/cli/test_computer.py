"""``aiida-sianode computer add``: refusals before anything is stored, and the computer and codes it creates."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml
from aiida import orm
from click.testing import CliRunner

from aiida_sianode.cli import cmd_root
from aiida_sianode.deploy.cluster import ClusterFileError, apply_default_options, default_options, parse_cluster

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / 'docs' / 'examples'


def invoke(*args):
    return CliRunner().invoke(cmd_root, list(args), catch_exceptions=False)


def example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


def write(tmp_path, data, name='cluster.yaml') -> pathlib.Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        (lambda d: d['computer'].update(hostnme='x'), 'computer.hostnme: unknown key'),
        (lambda d: d['codes']['vasp'].update(queue='cpu'), 'codes.vasp.queue: unknown key'),
        (lambda d: d['computer'].update(scheduler='core.slurmm'), 'unknown scheduler `core.slurmm`'),
        (lambda d: d['computer'].update(transport='ssh'), 'unknown transport `ssh`'),
        (lambda d: d['computer']['connection'].update(username='alice'), 'core.ssh_async does not take `username`'),
        (lambda d: d['computer'].update(workdir='scratch/aiida'), 'work directory must be an absolute path'),
        (lambda d: d['codes']['vasp'].pop('executable'), 'codes.vasp: give `executable`'),
        (lambda d: d['codes']['sianode-label'].update(executable='/bin/python'), 'engine codes run `engines.python`'),
        (lambda d: d.pop('engines'), 'an engine code needs the `engines` section'),
        (lambda d: d['codes'].update(cp2k={'executable': '/bin/cp2k'}), 'codes.cp2k: give `plugin`'),
        (lambda d: d['codes']['vasp'].update(plugin='vasp.nope'), 'no calculation plugin `vasp.nope`'),
        (
            lambda d: d['codes']['vasp'].update(resources={'num_machines': 2, 'tot_num_mpiprocs': 3}),
            'codes.vasp.resources: core.slurm refuses',
        ),
        (lambda d: d['codes']['sianode-train'].update(max_wallclock_seconds=0), 'greater than or equal to 1'),
    ],
)
def test_bad_file_is_refused_naming_the_key(aiida_profile, tmp_path, change, message):
    data = example('cluster-slurm.yaml')
    change(data)
    before = orm.QueryBuilder().append(orm.Computer).count()
    with pytest.raises(ClusterFileError, match='is not a valid cluster file') as error:
        parse_cluster(data, source='cluster.yaml')
    assert message in str(error.value)
    # the command refuses it the same way, with exit code 1 and nothing stored
    result = invoke('computer', 'add', str(write(tmp_path, data)), '--json')
    assert result.exit_code == 1
    assert message in json.loads(result.stdout)['error']
    assert orm.QueryBuilder().append(orm.Computer).count() == before


def test_missing_and_non_mapping_files_are_refused(aiida_profile, tmp_path):
    result = invoke('computer', 'add', str(tmp_path / 'none.yaml'))
    assert result.exit_code == 1
    assert 'none.yaml` does not exist' in result.stderr
    (tmp_path / 'list.yaml').write_text('- a\n- b\n')
    result = invoke('computer', 'add', str(tmp_path / 'list.yaml'), '--json')
    assert json.loads(result.stdout)['error'].endswith('a cluster file is a mapping of keys, got list')


def test_slurm_example_creates_computer_and_codes(aiida_profile, tmp_path):
    data = example('cluster-slurm.yaml')
    data['computer']['label'] = 'hpc-slurm-test'
    path = write(tmp_path, data)

    checked = json.loads(invoke('computer', 'add', str(path), '--check-only', '--json').stdout)
    assert checked['valid'] is True
    assert checked['codes']['vasp@hpc-slurm-test']['plugin'] == 'vasp.vasp'
    with pytest.raises(Exception, match='hpc-slurm-test'):
        orm.load_computer('hpc-slurm-test')  # --check-only stored nothing

    result = invoke('computer', 'add', str(path), '--json')
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary['computer_created'] is True
    computer = orm.load_computer('hpc-slurm-test')
    assert computer.hostname == 'login.hpc.example.org'
    assert computer.transport_type == 'core.ssh_async'
    assert computer.scheduler_type == 'core.slurm'
    assert computer.get_workdir() == '/scratch/{username}/aiida'
    assert computer.get_mpirun_command() == ['srun']
    assert computer.get_default_mpiprocs_per_machine() == 128
    assert computer.get_prepend_text() == 'module purge\n'
    assert computer.get_minimum_job_poll_interval() == 30
    authinfo = computer.get_authinfo(orm.User.collection.get_default())
    assert authinfo.get_auth_params() == {'host': 'hpc', 'max_io_allowed': 8, 'safe_interval': 5}

    assert set(summary['codes']) == {
        f'{label}@hpc-slurm-test'
        for label in ('sianode-label', 'sianode-train', 'sianode-explore', 'vasp', 'castep', 'lammps')
    }
    train = orm.load_code('sianode-train@hpc-slurm-test')
    assert isinstance(train, orm.InstalledCode)
    assert str(train.filepath_executable) == '/home/alice/sianode/.venv/bin/python'
    assert train.default_calc_job_plugin == 'sianode.train'
    assert 'export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}' in train.prepend_text
    assert default_options(train) == {
        'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1, 'num_cores_per_mpiproc': 16},
        'queue_name': 'gpu',
        'max_wallclock_seconds': 43200,
        'custom_scheduler_commands': '#SBATCH --gres=gpu:1',
    }
    vasp = orm.load_code('vasp@hpc-slurm-test')
    assert str(vasp.filepath_executable) == '/opt/vasp/6.4.3/bin/vasp_std'
    assert vasp.default_calc_job_plugin == 'vasp.vasp'
    assert vasp.with_mpi is True
    assert vasp.prepend_text == 'module load vasp/6.4.3'
    assert default_options(vasp)['resources'] == {'num_machines': 1, 'num_mpiprocs_per_machine': 128}
    assert orm.load_code('castep@hpc-slurm-test').default_calc_job_plugin == 'castep.castep'
    assert orm.load_code('lammps@hpc-slurm-test').default_calc_job_plugin == 'lammps.base'

    # safe to run again: nothing new; a changed computer of the same label is refused
    again = json.loads(invoke('computer', 'add', str(path), '--json').stdout)
    assert again['computer_created'] is False
    assert {label: code['pk'] for label, code in again['codes'].items()} == {
        label: code['pk'] for label, code in summary['codes'].items()
    }
    assert not any(code['created'] for code in again['codes'].values())
    data['computer']['hostname'] = 'other.example.org'
    result = invoke('computer', 'add', str(write(tmp_path, data, 'changed.yaml')), '--json')
    assert result.exit_code == 1
    assert (
        'hostname is `login.hpc.example.org`, the file says `other.example.org`' in json.loads(result.stdout)['error']
    )


def test_pbs_example_with_paramiko_transport(aiida_profile, tmp_path):
    data = example('cluster-pbs.yaml')
    data['computer']['label'] = 'hpc-pbs-test'
    result = invoke('computer', 'add', str(write(tmp_path, data)), '--json')
    assert result.exit_code == 0, result.output
    computer = orm.load_computer('hpc-pbs-test')
    assert (computer.transport_type, computer.scheduler_type) == ('core.ssh', 'core.pbspro')
    assert computer.get_mpirun_command() == ['mpiexec', '-n', '{tot_num_mpiprocs}']
    params = computer.get_authinfo(orm.User.collection.get_default()).get_auth_params()
    assert params['username'] == 'alice' and params['port'] == 22 and params['key_policy'] == 'RejectPolicy'
    vasp = orm.load_code('vasp@hpc-pbs-test')
    assert default_options(vasp)['resources'] == {'num_machines': 2, 'num_mpiprocs_per_machine': 48}
    # the scheduler writes the code's default resources into a real submission script
    scheduler = computer.get_scheduler()
    from aiida.schedulers.datastructures import JobTemplate

    template = JobTemplate()
    template.job_resource = scheduler.create_job_resource(**default_options(vasp)['resources'])
    template.queue_name = default_options(vasp)['queue_name']
    template.max_wallclock_seconds = default_options(vasp)['max_wallclock_seconds']
    header = scheduler._get_submit_script_header(template)
    assert '#PBS -l select=2:mpiprocs=48' in header
    assert '#PBS -q workq' in header
    assert '#PBS -l walltime=24:00:00' in header


def test_default_options_reach_the_campaign_calculations(aiida_profile, tmp_path):
    """The site's resources, partition and gres line end up in the label, training and MD calculations."""
    from aiida_sianode.workflows.active_learning import ActiveLearningWorkChain

    data = {
        'computer': {
            'label': 'gpu-site',
            'hostname': 'gpu.example.org',
            'transport': 'core.ssh_async',
            'scheduler': 'core.slurm',
            'workdir': '/scratch/aiida',
        },
        'engines': {'python': '/opt/sianode/bin/python'},
        'codes': {
            'sianode-label': {'queue_name': 'cpu', 'max_wallclock_seconds': 600},
            'sianode-train': {'queue_name': 'gpu', 'custom_scheduler_commands': '#SBATCH --gres=gpu:1'},
            'sianode-explore': {'queue_name': 'gpu', 'custom_scheduler_commands': '#SBATCH --gres=gpu:1'},
        },
    }
    assert invoke('computer', 'add', str(write(tmp_path, data))).exit_code == 0
    from ase.build import bulk

    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        orm.load_code('sianode-label@gpu-site'),
        [bulk('Si', 'diamond', a=5.43)],
        labeler='xtb',
        train_code=orm.load_code('sianode-train@gpu-site'),
        explore_code=orm.load_code('sianode-explore@gpu-site'),
        protocol='fast',
    )
    applied = apply_default_options(builder)
    assert builder.label.options.get_dict() == {'queue_name': 'cpu', 'max_wallclock_seconds': 600}
    train_options = builder.train.member.train.metadata.options
    assert train_options['queue_name'] == 'gpu'
    assert train_options['custom_scheduler_commands'] == '#SBATCH --gres=gpu:1'
    assert builder.explore.md.metadata.options['custom_scheduler_commands'] == '#SBATCH --gres=gpu:1'
    assert set(applied) == {'label', 'train', 'explore'}


def test_install_engines_dry_run_names_the_remote_commands(aiida_profile, tmp_path):
    """`computer install-engines --dry-run`: the remote environment of `engines.python`, the shared install script
    with this wheel, then the import check of the four engines; nothing is built or copied."""
    data = example('cluster-slurm.yaml')
    data['computer']['label'] = 'hpc-install-test'
    path = write(tmp_path, data)

    refused = invoke('computer', 'install-engines', str(path), '--dry-run', '--json')
    assert refused.exit_code == 1
    assert 'computer `hpc-install-test` does not exist: run `aiida-sianode computer add' in refused.stdout

    assert invoke('computer', 'add', str(path), '--json').exit_code == 0
    result = invoke('computer', 'install-engines', str(path), '--dry-run', '--json', '--remote-python', 'python3.11')
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)
    assert steps['installed'] is False
    assert steps['venv'] == '/home/alice/sianode/.venv'
    assert steps['staging'] == '/home/alice/sianode/.venv.install'
    install, check = steps['commands']
    assert install == (
        'PYTHON=python3.11 bash /home/alice/sianode/.venv.install/install-engines.sh /home/alice/sianode/.venv '
        '/home/alice/sianode/.venv.install/aiida_sianode-VERSION-py3-none-any.whl'
    )
    assert check.startswith('/home/alice/sianode/.venv/bin/python -c ')
    for engine in ('label', 'train', 'explore', 'property'):
        assert f"'{engine}'" in check

    # an engines.python that is not VENV/bin/python cannot be installed into
    data['engines']['python'] = '/usr/local/python3'
    result = invoke('computer', 'install-engines', str(write(tmp_path, data, 'bad.yaml')), '--dry-run', '--json')
    assert result.exit_code == 1
    assert 'engines.python must be the python of a virtual environment' in result.stdout


def test_install_script_refuses_a_call_without_targets(tmp_path):
    """The script `make install` and `install-engines` share stops before creating anything when given no target."""
    import subprocess

    script = EXAMPLES.parents[1] / 'requirements' / 'install-engines.sh'
    result = subprocess.run(['bash', str(script), str(tmp_path / 'venv')], capture_output=True, text=True)
    assert result.returncode == 2
    assert 'usage:' in result.stderr
    assert not (tmp_path / 'venv').exists()
