"""Structure builders: reproducible ASE structures for the anode materials, from physical parameters and a seed.

``BUILDERS`` maps each kind (``si-crystal``, ``lixsi``, ``core-shell`` ...) to a :class:`Builder`, a callable that
checks its parameters (unknown names are refused), calls the plain kernel of ``silicon``, ``lithiation``,
``carbon``, ``composites`` or ``sei`` and records the builder name, the resolved parameters and the seed in
``atoms.info``. ``aiida_sianode.structures.calcfunctions.build_structure`` wraps the same call in a calcfunction
so that each stored structure has provenance. No AiiDA import here.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from aiida_sianode.structures import carbon, composites, lithiation, sei, silicon
from aiida_sianode.structures.common import StructureBuildError

__all__ = ('BUILDERS', 'Builder', 'StructureBuildError', 'build', 'get_builder', 'resolve_parameters')

#: Keyword arguments of the kernels that are not parameters of a build.
_RESERVED = ('seed', 'host_atoms')


def _plain(value):
    """``value`` as plain JSON types (tuples to lists, numpy scalars to Python numbers)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Builder:
    """One kind of structure: the kernel that makes it and the description of its parameters.

    Calling it, ``builder(seed=0, host=None, **parameters)``, refuses unknown parameter names, runs the kernel and
    returns the ``ase.Atoms`` with ``info['builder']``, ``info['builder_parameters']`` (JSON of the resolved
    parameters, defaults included) and ``info['seed']``.
    """

    kind: str
    function: Callable[..., Atoms]
    summary: str
    defaults: dict = field(init=False)
    uses_seed: bool = field(init=False)
    accepts_host: bool = field(init=False)

    def __post_init__(self):
        signature = inspect.signature(self.function)
        defaults = {
            name: _plain(parameter.default) for name, parameter in signature.parameters.items() if name not in _RESERVED
        }
        object.__setattr__(self, 'defaults', defaults)
        object.__setattr__(self, 'uses_seed', 'seed' in signature.parameters)
        object.__setattr__(self, 'accepts_host', 'host_atoms' in signature.parameters)

    def resolve(self, parameters: Mapping | None = None) -> dict:
        """The full parameter set: ``parameters`` over the defaults; unknown names raise StructureBuildError."""
        parameters = dict(parameters or {})
        unknown = sorted(set(parameters) - set(self.defaults))
        if unknown:
            raise StructureBuildError(
                f'unknown parameter{"s" if len(unknown) > 1 else ""} for {self.kind}: {", ".join(unknown)}; '
                f'known: {", ".join(self.defaults) or "(none)"}'
            )
        resolved = {**self.defaults, **_plain(parameters)}
        try:
            json.dumps(resolved)
        except TypeError as exception:
            raise StructureBuildError(f'parameters of {self.kind} must be plain JSON values: {exception}') from None
        return resolved

    def __call__(self, seed: int = 0, host: Atoms | None = None, **parameters) -> Atoms:
        """Build the structure (see the class docstring)."""
        resolved = self.resolve(parameters)
        keywords = dict(resolved)
        if self.uses_seed:
            keywords['seed'] = seed
        elif isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise StructureBuildError(f'seed must be a non-negative integer, got {seed!r}')
        if host is not None:
            if not self.accepts_host:
                raise StructureBuildError(f'{self.kind} does not take a host structure')
            keywords['host_atoms'] = host
        atoms = self.function(**keywords)
        atoms.info['builder'] = self.kind
        atoms.info['builder_parameters'] = json.dumps(resolved, sort_keys=True)
        atoms.info['seed'] = int(seed)
        return atoms


def _builders(*entries: tuple[str, Callable[..., Atoms], str]) -> dict[str, Builder]:
    return {kind: Builder(kind, function, summary) for kind, function, summary in entries}


#: Every structure kind the package can build: ``{kind: Builder}``.
BUILDERS: dict[str, Builder] = _builders(
    ('si-crystal', silicon.si_crystal, 'diamond c-Si supercell; strain, rattle, vacancies, interstitials'),
    ('si-random', silicon.si_random, 'random Si at a-Si density: a melt-quench start'),
    ('lixsi', lithiation.lixsi, 'Li_xSi, 0 <= x <= 4.4: Li inserted at the largest voids of an expanded Si host'),
    ('lixsi-crystal', lithiation.lixsi_crystal, 'crystalline LiSi, Li12Si7, Li7Si3, Li13Si4, Li15Si4 or Li17Si4'),
    ('amorphous-carbon', carbon.amorphous_carbon, 'random C at 1.5-3.3 g/cm^3: a melt-quench start'),
    ('graphite', carbon.graphite, 'AB (Bernal) graphite'),
    ('lic6', carbon.lic6, 'stage-1 LiC6'),
    ('lic12', carbon.lic12, 'idealised stage-2 LiC12'),
    ('hard-carbon', carbon.hard_carbon, 'random a-C with an optional closed pore and Na or Li in the largest voids'),
    ('si-ac-interface', composites.si_ac_interface, 'Si(001) slab against random a-C with a set interface gap'),
    ('core-shell', composites.core_shell, 'Si@C core-shell nanoparticle (radii in nm) with vacuum padding'),
    ('sei-pack', sei.sei_pack, 'random low-density packing of SEI units (Li2EDC, Li2CO3, LiF, Li2O, LiPF6, Li)'),
    ('sei-crystal', sei.sei_crystal, 'crystalline Li2CO3, LiF or Li2O'),
    ('li-metal', sei.li_metal, 'bcc or fcc lithium metal'),
)


def get_builder(kind: str) -> Builder:
    """The :class:`Builder` of ``kind``; an unknown kind raises StructureBuildError naming the known ones."""
    if kind not in BUILDERS:
        raise StructureBuildError(f'unknown structure kind {kind!r}; known kinds: {", ".join(BUILDERS)}')
    return BUILDERS[kind]


def resolve_parameters(kind: str, parameters: Mapping | None = None) -> dict:
    """The full parameter set of ``kind`` (defaults filled in), refusing unknown kinds and parameter names."""
    return get_builder(kind).resolve(parameters)


def build(kind: str, parameters: Mapping | None = None, seed: int = 0, host: Atoms | None = None) -> Atoms:
    """Build a structure of ``kind`` from ``parameters`` and ``seed`` (and ``host`` for the kinds that take one)."""
    return get_builder(kind)(seed=seed, host=host, **dict(parameters or {}))
