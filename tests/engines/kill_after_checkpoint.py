"""A stand-in for the training engine's program that is killed once mid-training, as a job out of walltime would be.

``python kill_after_checkpoint.py -m aiida_sianode.engines.train config.json``: while the file named by
``SIANODE_KILL_MARKER`` does not exist, create it, run the engine, SIGKILL the engine as soon as it has written a
complete mace checkpoint and then SIGKILL itself; once the marker exists, run the engine normally. The engine is
stopped (SIGSTOP) before its checkpoint is read, so a file mace is still writing is never taken for a finished one.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time


def kill_after_first_checkpoint(command: list[str], directory: pathlib.Path, timeout: float = 300.0):
    """Run ``command`` in ``directory``, SIGKILL it after its first readable checkpoint; return (path, epoch)."""
    import torch

    from aiida_sianode.engines import train as engine

    config = json.loads((directory / engine.CONFIG_FILENAME).read_text())
    seed = engine.resolve_parameters(config.get('parameters'))['seed']
    process = subprocess.Popen(command, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError('the engine finished before it could be killed')
            found = engine.latest_checkpoint(directory / engine.MACE_WORK_DIR, seed)
            if found is not None:
                os.kill(process.pid, signal.SIGSTOP)
                try:
                    torch.load(found[0], map_location='cpu', weights_only=False)
                except Exception:
                    os.kill(process.pid, signal.SIGCONT)
                else:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
                    return found
            time.sleep(0.05)
        raise RuntimeError(f'no checkpoint within {timeout} s')
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


if __name__ == '__main__':
    marker = pathlib.Path(os.environ['SIANODE_KILL_MARKER'])
    if marker.exists():
        os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
    marker.touch()
    kill_after_first_checkpoint([sys.executable, *sys.argv[1:]], pathlib.Path.cwd())
    os.kill(os.getpid(), signal.SIGKILL)
