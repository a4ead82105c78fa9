"""Installing the engines on a remote machine: ``aiida-sianode computer install-engines CLUSTER.yaml``.

The remote virtual environment is the one the cluster file names (``engines.python``: ``VENV/bin/python``). It is
installed the way ``make install`` installs this checkout, by the same script (``requirements/install-engines.sh``)
under the same lock files, so the engines on the cluster run the versions the tests ran here:

1. a wheel of this checkout is built here (``pip wheel --no-deps``, build tools pinned by
   ``requirements/build-constraints.txt``);
2. the wheel, the script and the three files beside it (``constraints.txt``, ``build-constraints.txt``,
   ``gpaw-siteconfig.py``) are copied through the computer's own transport (SSH) into ``VENV.install/``;
3. the script runs there: it creates VENV with the remote ``python3`` (``--remote-python``) when it does not exist,
   installs torch, then the wheel under the constraints, and ends with the self-check (every engine's stack imports,
   a GPAW and an xTB single point of Si2);
4. the remote python imports every engine module (label, train, explore, property) and finds its ``main``.

The remote machine needs Python 3.11 with ``venv``, a C/C++ compiler (GPAW is built from source) and access to a
package index (PyPI or a mirror named by ``pip.conf``); nothing is installed outside VENV.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shlex
import subprocess
import sys
import tempfile

#: the files of requirements/ that the install script reads, copied beside it
REQUIREMENT_FILES = ('install-engines.sh', 'constraints.txt', 'build-constraints.txt', 'gpaw-siteconfig.py')
#: the engine modules the remote python must import after the install
ENGINE_MODULES = ('label', 'train', 'explore', 'property')
ENGINE_CHECK = (
    'import importlib\n'
    f'for name in {ENGINE_MODULES!r}:\n'
    "    assert callable(importlib.import_module('aiida_sianode.engines.' + name).main), name\n"
    f"print('engines import: {', '.join(ENGINE_MODULES)}')"
)


class RemoteInstallError(RuntimeError):
    """The install could not be prepared or failed on the remote machine; the message says which step."""


@dataclasses.dataclass
class InstallPlan:
    """What :func:`install_engines` does, with the exact remote commands."""

    computer: str
    venv: str
    staging: str
    wheel: str
    commands: list[str]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def checkout_root() -> pathlib.Path:
    """The source checkout this package runs from; the install needs its pyproject.toml and requirements/."""
    import aiida_sianode

    root = pathlib.Path(aiida_sianode.__file__).resolve().parents[1]
    missing = [
        name
        for name in ('pyproject.toml', *(f'requirements/{f}' for f in REQUIREMENT_FILES))
        if not (root / name).exists()
    ]
    if missing:
        raise RemoteInstallError(
            f'install-engines needs the source checkout of aiida-sianode (it builds a wheel and copies the lock '
            f"files); {root} lacks {', '.join(missing)}: run it from the checkout's environment (make install)"
        )
    return root


def venv_of(python: str) -> str:
    """``/path/VENV/bin/python`` -> ``/path/VENV``; anything else is refused."""
    path = pathlib.PurePosixPath(python)
    if path.parent.name != 'bin' or not path.is_absolute():
        raise RemoteInstallError(
            f'engines.python must be the python of a virtual environment, /path/VENV/bin/python; got `{python}`'
        )
    return str(path.parent.parent)


def build_wheel(destination: pathlib.Path, root: pathlib.Path | None = None) -> pathlib.Path:
    """A wheel of the checkout (no dependencies), built with pip and the pinned build tools."""
    import os

    root = root or checkout_root()
    env = {**os.environ, 'PIP_CONSTRAINT': str(root / 'requirements' / 'build-constraints.txt')}
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--quiet', '--wheel-dir', str(destination), str(root)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wheels = sorted(destination.glob('aiida_sianode-*.whl'))
    if result.returncode != 0 or not wheels:
        raise RemoteInstallError(f'building the wheel of {root} failed:\n{(result.stdout + result.stderr)[-2000:]}')
    return wheels[-1]


def plan(computer_label: str, python: str, wheel_name: str, remote_python: str = 'python3') -> InstallPlan:
    """The remote commands, in order (each run by ``bash -c`` in the staging folder)."""
    venv = venv_of(python)
    staging = f'{venv}.install'
    q = shlex.quote
    commands = [
        f'PYTHON={q(remote_python)} bash {q(staging + "/install-engines.sh")} {q(venv)} '
        f'{q(staging + "/" + wheel_name)}',
        f'{q(python)} -c {q(ENGINE_CHECK)}',
    ]
    return InstallPlan(computer=computer_label, venv=venv, staging=staging, wheel=wheel_name, commands=commands)


def install_engines(
    computer, python: str, remote_python: str = 'python3', timeout: float = 3600.0, echo=None
) -> InstallPlan:
    """Build, copy and install through ``computer``'s transport; raise :class:`RemoteInstallError` on any failure."""
    root = checkout_root()
    echo = echo or (lambda message: None)
    with tempfile.TemporaryDirectory(prefix='sianode-wheel-') as folder:
        echo(f'building the wheel of {root}')
        wheel = build_wheel(pathlib.Path(folder), root)
        steps = plan(computer.label, python, wheel.name, remote_python)
        with computer.get_transport() as transport:
            echo(f'copying the wheel and requirements/ to {computer.label}:{steps.staging}')
            transport.makedirs(steps.staging, ignore_existing=True)
            transport.put(str(wheel), f'{steps.staging}/{wheel.name}')
            for name in REQUIREMENT_FILES:
                transport.put(str(root / 'requirements' / name), f'{steps.staging}/{name}')
            for command in steps.commands:
                echo(f'running on {computer.label}: {command}')
                retval, stdout, stderr = transport.exec_command_wait(
                    f'cd {shlex.quote(steps.staging)} && {command}', timeout=timeout
                )
                if retval != 0:
                    raise RemoteInstallError(
                        f'on {computer.label}, `{command}` exited {retval}:\n{(stdout + stderr)[-3000:]}'
                    )
    return steps
