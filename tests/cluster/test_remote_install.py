"""`aiida-sianode computer install-engines`: the engines installed on `loop-slurm` through its SSH transport.

A new virtual environment is made on the "remote" side (this machine through sshd on 127.0.0.1) from a wheel of the
checkout and the lock files, by the same script `make install` runs; it must end with the self-check and hold the
versions of this environment. It needs a package index (as `make install` does) and takes minutes (GPAW is built).
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import time

import yaml


def test_engines_are_installed_on_the_remote_from_the_lock_files(cluster):
    venv = cluster.workdir.parent / 'remote-venv'
    shutil.rmtree(venv, ignore_errors=True)
    data = yaml.safe_load((cluster.workdir.parent / 'loop-slurm.yaml').read_text())
    data['engines']['python'] = str(venv / 'bin' / 'python')
    data['codes'] = {}
    cluster_file = cluster.workdir.parent / 'install-engines.yaml'
    cluster_file.write_text(yaml.safe_dump(data))

    started = time.time()
    steps = json.loads(cluster.sianode('computer', 'install-engines', str(cluster_file), '--json', timeout=3000))
    print(f'\n[install] engines installed on loop-slurm in {time.time() - started:.0f} s: {steps["venv"]}')
    assert steps['installed'] is True and steps['venv'] == str(venv)
    assert (venv.parent / 'remote-venv.install' / steps['wheel']).exists()

    names = ('aiida-sianode', 'torch', 'numpy', 'gpaw', 'tblite', 'mace-torch')
    probe = f'import importlib.metadata as m, json; print(json.dumps({{d: m.version(d) for d in {names!r}}}))'
    remote = json.loads(
        subprocess.run([venv / 'bin' / 'python', '-c', probe], capture_output=True, text=True, check=True).stdout
    )
    local = {name: importlib.metadata.version(name) for name in remote}
    assert remote == local
    # run again: the environment exists, nothing is recreated, the self-check passes again
    again = json.loads(cluster.sianode('computer', 'install-engines', str(cluster_file), '--json', timeout=3000))
    assert again['installed'] is True
    shutil.rmtree(venv, ignore_errors=True)
