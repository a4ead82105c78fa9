"""The AiiDA face of the builders: a calcfunction, so that every generated structure has provenance.

``build_structure(kind, parameters, seed[, host])`` runs ``aiida_sianode.structures.BUILDERS[kind]`` and returns a
``StructureData`` that carries the builder name, the resolved parameters (defaults filled in) and the seed, both as
attributes (immutable once stored) and as extras (queryable, e.g. ``QueryBuilder().append(StructureData,
filters={'extras.sianode_builder': 'lixsi'})``). Bad input is refused with an exit code before anything is built.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ExitCode, calcfunction

from aiida_sianode.structures import BUILDERS, StructureBuildError, build, resolve_parameters

#: Exit codes of ``build_structure`` (all bad input: 200-299).
EXIT_CODES = {
    'ERROR_UNKNOWN_KIND': 201,
    'ERROR_INVALID_PARAMETERS': 202,
    'ERROR_REQUEST_REFUSED': 203,
}

#: Names of the attributes and extras written on the output structure.
BUILDER_KEY = 'sianode_builder'
PARAMETERS_KEY = 'sianode_builder_parameters'
SEED_KEY = 'sianode_builder_seed'


@calcfunction
def build_structure(
    kind: orm.Str, parameters: orm.Dict, seed: orm.Int, host: orm.StructureData | None = None
) -> orm.StructureData:
    """Build a structure of ``kind`` from ``parameters`` and ``seed`` (``host``: the host of lixsi / hard-carbon).

    Exit codes: 201 unknown kind, 202 unknown or invalid parameter names, 203 the builder refused the request
    (an impossible density, x out of range, a shell that does not fit ...); the message gives the reason.
    """
    kind_value = kind.value
    if kind_value not in BUILDERS:
        return ExitCode(
            EXIT_CODES['ERROR_UNKNOWN_KIND'],
            f'unknown structure kind {kind_value!r}; known kinds: {", ".join(BUILDERS)}',
        )
    try:
        resolved = resolve_parameters(kind_value, parameters.get_dict())
    except StructureBuildError as exception:
        return ExitCode(EXIT_CODES['ERROR_INVALID_PARAMETERS'], str(exception))
    try:
        atoms = build(kind_value, resolved, seed=seed.value, host=None if host is None else host.get_ase())
    except StructureBuildError as exception:
        return ExitCode(EXIT_CODES['ERROR_REQUEST_REFUSED'], str(exception))
    structure = orm.StructureData(ase=atoms)
    for key, value in ((BUILDER_KEY, kind_value), (PARAMETERS_KEY, resolved), (SEED_KEY, seed.value)):
        structure.base.attributes.set(key, value)
        structure.base.extras.set(key, value)
    if host is not None:
        structure.base.extras.set('sianode_host_uuid', host.uuid)
    return structure


def store_structure(
    kind: str, parameters: dict | None = None, seed: int = 0, host: orm.StructureData | None = None
) -> orm.StructureData:
    """Run :func:`build_structure` and return its stored output; raise StructureBuildError if it refused.

    The parameters are checked in Python first, so a misspelt name fails here without leaving a failed node.
    """
    from aiida.engine import run_get_node

    resolve_parameters(kind, parameters)
    inputs = {'kind': orm.Str(kind), 'parameters': orm.Dict(dict(parameters or {})), 'seed': orm.Int(seed)}
    if host is not None:
        inputs['host'] = host
    result, node = run_get_node(build_structure, **inputs)
    if not node.is_finished_ok:
        raise StructureBuildError(f'build_structure<{node.pk}> failed [{node.exit_status}]: {node.exit_message}')
    return result
