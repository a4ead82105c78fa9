"""A remote computer and its codes from one YAML file (``aiida-sianode computer add cluster.yaml``).

The file has three sections::

    computer:                       # the AiiDA Computer
      label: hpc
      hostname: login.hpc.example.org
      transport: core.ssh_async     # or core.ssh
      scheduler: core.slurm         # or core.pbspro
      workdir: /scratch/{username}/aiida
      mpirun_command: srun
      mpiprocs_per_machine: 64
      prepend_text: module purge
      connection: {host: hpc}       # the transport's own settings (`verdi computer configure`)
    engines:                        # where aiida-sianode is installed on the remote machine
      python: /home/alice/sianode/.venv/bin/python
    codes:                          # one entry per code, with its default resources
      sianode-label: {queue_name: cpu, resources: {num_machines: 1, num_mpiprocs_per_machine: 1}}
      sianode-train: {queue_name: gpu, custom_scheduler_commands: '#SBATCH --gres=gpu:1'}
      vasp: {executable: /opt/vasp/6.4/bin/vasp_std, withmpi: true, resources: {...}}

:func:`load_cluster_file` checks everything (unknown keys, an unknown transport or scheduler, connection settings the
transport does not take, resources the scheduler refuses, a missing executable) before anything is stored;
:func:`create_cluster` then creates the computer (or reuses an identical one) and the codes that are missing. The
default calculation options of each code are kept in its extra ``sianode_default_options``;
:func:`apply_default_options` merges them under the options of a campaign's builder.
"""

from __future__ import annotations

import pathlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiida_sianode.common.yaml_models import read_yaml, validate_mapping

#: engine code label -> the calculation entry point it runs (``<python> -m aiida_sianode.engines.<name>``)
ENGINE_CODES = {
    'sianode-label': 'sianode.label',
    'sianode-train': 'sianode.train',
    'sianode-explore': 'sianode.explore',
    'sianode-property': 'sianode.property',
}
#: code label -> default calculation entry point of the third-party codes
EXECUTABLE_PLUGINS = {'vasp': 'vasp.vasp', 'castep': 'castep.castep', 'lammps': 'lammps.base'}
TRANSPORTS = ('core.ssh', 'core.ssh_async', 'core.local')
SCHEDULERS = ('core.slurm', 'core.pbspro', 'core.torque', 'core.sge', 'core.lsf', 'core.direct')
OPTIONS_EXTRA = 'sianode_default_options'


class ClusterFileError(ValueError):
    """A cluster file that cannot be used; the message names every offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)


class ComputerSpec(_Strict):
    """The AiiDA ``Computer``."""

    label: str = Field(min_length=1)
    hostname: str = Field(min_length=1)
    description: str = ''
    transport: str = 'core.ssh_async'
    scheduler: str = 'core.slurm'
    workdir: str = Field(min_length=1, description='Scratch folder; `{username}` is replaced by the remote user.')
    mpirun_command: str = 'mpirun -np {tot_num_mpiprocs}'
    mpiprocs_per_machine: int | None = Field(None, ge=1)
    shebang: str = '#!/bin/bash'
    prepend_text: str = ''
    append_text: str = ''
    use_double_quotes: bool = False
    job_poll_interval: float = Field(10.0, ge=0, description='Seconds between two polls of the scheduler.')
    connection: dict[str, Any] = Field(default_factory=dict, description="The transport's own settings.")

    @field_validator('transport')
    @classmethod
    def _transport(cls, value):
        if value not in TRANSPORTS:
            raise ValueError(f'unknown transport `{value}`; choose one of {", ".join(TRANSPORTS)}')
        return value

    @field_validator('scheduler')
    @classmethod
    def _scheduler(cls, value):
        if value not in SCHEDULERS:
            raise ValueError(f'unknown scheduler `{value}`; choose one of {", ".join(SCHEDULERS)}')
        return value

    @field_validator('workdir')
    @classmethod
    def _absolute(cls, value):
        if not value.startswith('/'):
            raise ValueError(f'the work directory must be an absolute path, got `{value}`')
        return value

    @model_validator(mode='after')
    def _connection_keys(self):
        from aiida.plugins import TransportFactory

        valid = list(TransportFactory(self.transport).get_valid_auth_params())
        unknown = sorted(set(self.connection) - set(valid))
        if unknown:
            raise ValueError(
                f'connection: {self.transport} does not take {", ".join(f"`{key}`" for key in unknown)}; '
                f'it takes {", ".join(valid)}'
            )
        return self


class EnginesSpec(_Strict):
    """The remote Python environment in which aiida-sianode (and GPAW, tblite, MACE) is installed."""

    python: str = Field(min_length=1, description='Absolute path of the remote virtual environment`s python.')
    prepend_text: str = Field('export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}', description='Run before each engine.')

    @field_validator('python')
    @classmethod
    def _absolute(cls, value):
        if not value.startswith('/'):
            raise ValueError(f'the engines` python must be an absolute path, got `{value}`')
        return value


class CodeSpec(_Strict):
    """One code and its default calculation options."""

    executable: str | None = Field(None, description='Absolute path on the remote machine (not for engine codes).')
    plugin: str | None = Field(None, description='Default calculation entry point.')
    description: str = ''
    prepend_text: str | None = None
    append_text: str = ''
    use_double_quotes: bool = False
    # default calculation options (metadata.options), kept on the code
    resources: dict[str, int] | None = None
    withmpi: bool | None = None
    queue_name: str | None = None
    account: str | None = None
    qos: str | None = None
    max_wallclock_seconds: int | None = Field(None, ge=1)
    max_memory_kb: int | None = Field(None, ge=1)
    custom_scheduler_commands: str | None = None
    environment_variables: dict[str, str] | None = None

    @field_validator('executable')
    @classmethod
    def _absolute(cls, value):
        if value is not None and not value.startswith('/'):
            raise ValueError(f'the executable must be an absolute path, got `{value}`')
        return value

    def default_options(self) -> dict[str, Any]:
        """The ``metadata.options`` set by this entry (only those given)."""
        keys = (
            'resources',
            'withmpi',
            'queue_name',
            'account',
            'qos',
            'max_wallclock_seconds',
            'max_memory_kb',
            'custom_scheduler_commands',
            'environment_variables',
        )
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}


class ClusterSpec(_Strict):
    """A whole cluster file."""

    computer: ComputerSpec
    engines: EnginesSpec | None = None
    codes: dict[str, CodeSpec] = Field(default_factory=dict)

    @model_validator(mode='after')
    def _codes(self):
        from aiida.plugins import SchedulerFactory
        from aiida.plugins.entry_point import get_entry_point_names

        calculations = set(get_entry_point_names('aiida.calculations'))
        resource_class = SchedulerFactory(self.computer.scheduler).job_resource_class
        problems = []
        for label, code in self.codes.items():
            where = f'codes.{label}'
            if label in ENGINE_CODES:
                if self.engines is None:
                    problems.append(f'{where}: an engine code needs the `engines` section (the remote python)')
                if code.executable is not None:
                    problems.append(f'{where}.executable: engine codes run `engines.python`; remove this key')
                plugin = code.plugin or ENGINE_CODES[label]
            else:
                if code.executable is None:
                    problems.append(f'{where}: give `executable`, its absolute path on `{self.computer.hostname}`')
                plugin = code.plugin or EXECUTABLE_PLUGINS.get(label)
                if plugin is None:
                    problems.append(f'{where}: give `plugin`, the calculation entry point of this code')
            if plugin is not None and plugin not in calculations:
                problems.append(f'{where}.plugin: no calculation plugin `{plugin}` is installed here')
            if code.resources is not None:
                try:
                    resource_class.validate_resources(**code.resources)
                except (ValueError, TypeError) as error:
                    problems.append(f'{where}.resources: {self.computer.scheduler} refuses {code.resources}: {error}')
        if problems:
            raise ValueError('; '.join(problems))
        return self

    def plugin_of(self, label: str) -> str:
        code = self.codes[label]
        return code.plugin or ENGINE_CODES.get(label) or EXECUTABLE_PLUGINS[label]


def parse_cluster(data: Any, source: str = '<cluster file>') -> ClusterSpec:
    """Validate ``data`` (a cluster file's content) and return the :class:`ClusterSpec`.

    :raises ClusterFileError: listing every problem with the path of its key.
    """
    return validate_mapping(data, ClusterSpec, ClusterFileError, source, 'cluster file')


def load_cluster_file(path: str | pathlib.Path) -> ClusterSpec:
    """Read and validate the cluster file at ``path``."""
    path = pathlib.Path(path)
    return parse_cluster(read_yaml(path, ClusterFileError, 'cluster file'), source=str(path))


def _ensure_computer(spec: ComputerSpec, user=None):
    """Return ``(computer, created)``: the stored computer of that label (refused if it differs) or a new one."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer(spec.label)
    except NotExistent:
        computer = None
    if computer is not None:
        differ = {
            key: (have, want)
            for key, have, want in (
                ('hostname', computer.hostname, spec.hostname),
                ('transport', computer.transport_type, spec.transport),
                ('scheduler', computer.scheduler_type, spec.scheduler),
                ('workdir', computer.get_workdir(), spec.workdir),
            )
            if have != want
        }
        if differ:
            details = ', '.join(f'{key} is `{have}`, the file says `{want}`' for key, (have, want) in differ.items())
            raise ClusterFileError(
                f'computer `{spec.label}` already exists and differs ({details}); choose another label'
            )
        created = False
    else:
        computer = orm.Computer(
            label=spec.label,
            hostname=spec.hostname,
            description=spec.description,
            transport_type=spec.transport,
            scheduler_type=spec.scheduler,
            workdir=spec.workdir,
        )
        computer.set_mpirun_command(spec.mpirun_command.split())
        computer.set_shebang(spec.shebang)
        computer.set_prepend_text(spec.prepend_text)
        computer.set_append_text(spec.append_text)
        computer.set_use_double_quotes(spec.use_double_quotes)
        if spec.mpiprocs_per_machine is not None:
            computer.set_default_mpiprocs_per_machine(spec.mpiprocs_per_machine)
        computer.store()
        computer.set_minimum_job_poll_interval(spec.job_poll_interval)
        created = True
    authinfo = computer.configure(user=user, **spec.connection)
    return computer, created, authinfo


def create_cluster(spec: ClusterSpec, user=None) -> dict[str, Any]:
    """Create the computer and the missing codes of ``spec``; return a summary (safe to run again)."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    computer, created, authinfo = _ensure_computer(spec.computer, user)
    summary = {
        'computer': computer.label,
        'computer_created': created,
        'hostname': computer.hostname,
        'transport': computer.transport_type,
        'scheduler': computer.scheduler_type,
        'connection': authinfo.get_auth_params(),
        'codes': {},
    }
    for label, code_spec in spec.codes.items():
        full_label = f'{label}@{computer.label}'
        options = code_spec.default_options()
        try:
            code = orm.load_code(full_label)
            summary['codes'][full_label] = {
                'pk': code.pk,
                'created': False,
                'executable': str(code.filepath_executable),
                'plugin': code.default_calc_job_plugin,
                'default_options': code.base.extras.get(OPTIONS_EXTRA, {}),
            }
            continue
        except NotExistent:
            pass
        engine = label in ENGINE_CODES
        executable = spec.engines.python if engine else code_spec.executable
        prepend = code_spec.prepend_text
        if prepend is None:
            prepend = spec.engines.prepend_text if engine else ''
        description = code_spec.description or (
            f'aiida_sianode.engines.{label.removeprefix("sianode-")} in {executable}' if engine else label
        )
        code = orm.InstalledCode(
            label=label,
            computer=computer,
            filepath_executable=executable,
            default_calc_job_plugin=spec.plugin_of(label),
            description=description,
            prepend_text=prepend,
            append_text=code_spec.append_text,
            use_double_quotes=code_spec.use_double_quotes,
            with_mpi=code_spec.withmpi,
        ).store()
        if options:
            code.base.extras.set(OPTIONS_EXTRA, options)
        summary['codes'][full_label] = {
            'pk': code.pk,
            'created': True,
            'executable': executable,
            'plugin': code.default_calc_job_plugin,
            'default_options': options,
        }
    return summary


def default_options(code) -> dict[str, Any]:
    """The default calculation options stored on ``code`` by :func:`create_cluster` (empty for other codes)."""
    return dict(code.base.extras.get(OPTIONS_EXTRA, {}) or {})


def merge_options(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
    """``over`` merged over ``base``; ``resources`` key by key."""
    merged = {**base, **(over or {})}
    if 'resources' in base and over and 'resources' in over:
        merged['resources'] = {**base['resources'], **over['resources']}
    return merged


def apply_default_options(builder) -> dict[str, dict]:
    """Merge each code's default options under the calculation options of a campaign builder.

    Works on an ``ActiveLearningWorkChain`` builder (label, train and explore namespaces). The site's defaults win
    over the protocol's generic options (a cluster's GPU partition and gres line over "one core, no queue"), the
    other options of the builder are kept. Returns the resulting options, by namespace.
    """
    from aiida import orm

    applied = {}
    label_code = builder.label.get('code')
    if label_code is not None and default_options(label_code):
        given = builder.label.options.get_dict() if 'options' in builder.label else None
        builder.label.options = orm.Dict(merge_options(given or {}, default_options(label_code)))
        applied['label'] = builder.label.options.get_dict()
    train = builder.train.get('member', {}).get('train', {})
    if train.get('code') is not None and default_options(train['code']):
        current = dict(train.metadata.options) if 'metadata' in train else {}
        train.metadata.options = merge_options(current, default_options(train['code']))
        applied['train'] = dict(train.metadata.options)
    md = builder.explore.get('md', {})
    if md.get('code') is not None and default_options(md['code']):
        current = dict(md.metadata.options) if 'metadata' in md else {}
        md.metadata.options = merge_options(current, default_options(md['code']))
        applied['explore'] = dict(md.metadata.options)
    return applied
