"""Property kernels: plain Python (ASE, numpy; no AiiDA) computing one property with one committee member.

Every kind is a module ``aiida_sianode.properties.<kind>`` following the contract of ``docs/source/internals.md``
(``KIND``, ``DESCRIPTION``, ``validate_settings``, ``run_member``, optional ``aggregate``,
``reference_configurations`` and ``reference_result``). :data:`KINDS` names them all; :func:`load_kind` imports one
only when it is needed, so that asking for the list never imports torch, phonopy or pymatgen.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: every property kind -> the module holding its kernel (entry point ``sianode.properties.<kind>``)
KINDS = {
    'structure': 'aiida_sianode.properties.structure',
    'amorphous': 'aiida_sianode.properties.amorphous',
    'eos': 'aiida_sianode.properties.eos',
    'elastic': 'aiida_sianode.properties.elastic',
    'lithiation': 'aiida_sianode.properties.lithiation',
    'core_shell': 'aiida_sianode.properties.core_shell',
    'md': 'aiida_sianode.properties.md',
    'diffusion': 'aiida_sianode.properties.diffusion',
    'phonons': 'aiida_sianode.properties.phonons',
    'vdos': 'aiida_sianode.properties.vdos',
    'neb': 'aiida_sianode.properties.neb',
}


def load_kind(kind: str) -> ModuleType:
    """Return the kernel module of ``kind``.

    :raises aiida_sianode.properties.common.InvalidPropertyInput: for a kind that does not exist.
    """
    from aiida_sianode.properties.common import InvalidPropertyInput

    if kind not in KINDS:
        raise InvalidPropertyInput(f'unknown property `{kind}`; choose one of: {", ".join(sorted(KINDS))}')
    return importlib.import_module(KINDS[kind])
