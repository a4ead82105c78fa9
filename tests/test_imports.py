"""Every module of aiida_sianode imports on its own, in a fresh interpreter (no hidden import order, no cycle)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import aiida_sianode

#: Imports each module named on stdin in turn; before each, every aiida_sianode module imported so far is dropped
#: from sys.modules, so each import starts from nothing of ours (third-party modules stay loaded, for speed).
SCRIPT = """
import importlib, json, sys, traceback
failures = {}
for name in sys.stdin.read().split():
    for loaded in [key for key in sys.modules if key == 'aiida_sianode' or key.startswith('aiida_sianode.')]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failures[name] = traceback.format_exc(limit=-3)
print(json.dumps(failures))
"""


def _all_modules() -> list[str]:
    return sorted(module.name for module in pkgutil.walk_packages(aiida_sianode.__path__, prefix='aiida_sianode.'))


def test_every_module_imports_on_its_own():
    modules = _all_modules()
    assert len(modules) > 50
    result = subprocess.run(
        [sys.executable, '-c', SCRIPT], input=' '.join(modules), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    failures = json.loads(result.stdout.splitlines()[-1])
    assert failures == {}, '\n'.join(f'{name}:\n{trace}' for name, trace in failures.items())
