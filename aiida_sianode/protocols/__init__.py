"""Protocols: named sets of inputs (``fast``, ``balanced``, ``stringent``) stored as YAML beside this module.

A protocol file ``<name>.yaml`` looks like::

    default_protocol: balanced
    default_inputs:        # shared by every protocol
      ...
    protocols:
      fast:
        description: ...
        ...                # merged over default_inputs
      balanced: {...}

Work chains mix in :class:`ProtocolMixin` and set ``_protocol_file``; ``get_protocol_inputs(protocol, overrides)``
returns the merged inputs and refuses unknown protocols and override keys that do not exist.
"""

from __future__ import annotations

import copy
import pathlib

import yaml

PROTOCOL_DIRECTORY = pathlib.Path(__file__).parent


class ProtocolError(ValueError):
    """Raised for an unknown protocol or an override key that the protocol does not have."""


def recursive_merge(base: dict, update: dict, *, strict: bool = False, path: str = '') -> dict:
    """Return ``base`` updated with ``update`` recursively; with ``strict``, unknown keys raise ``ProtocolError``."""
    result = copy.deepcopy(base)
    for key, value in update.items():
        where = f'{path}.{key}' if path else str(key)
        if strict and key not in result:
            known = ', '.join(sorted(map(str, result))) or 'none'
            raise ProtocolError(f'override `{where}` does not exist; known keys here: {known}')
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = recursive_merge(result[key], value, strict=strict, path=where)
        else:
            result[key] = copy.deepcopy(value)
    return result


def load_protocol_file(name: str) -> dict:
    """Load ``<name>.yaml`` from the protocol directory."""
    path = PROTOCOL_DIRECTORY / f'{name}.yaml'
    with path.open() as handle:
        return yaml.safe_load(handle)


class ProtocolMixin:
    """Gives a work chain ``get_available_protocols``, ``get_default_protocol`` and ``get_protocol_inputs``."""

    _protocol_file: str = ''

    @classmethod
    def _load_protocols(cls) -> dict:
        if not cls._protocol_file:
            raise NotImplementedError(f'{cls.__name__} does not define `_protocol_file`')
        return load_protocol_file(cls._protocol_file)

    @classmethod
    def get_default_protocol(cls) -> str:
        """Return the name of the default protocol."""
        return cls._load_protocols()['default_protocol']

    @classmethod
    def get_available_protocols(cls) -> dict[str, dict]:
        """Return ``{name: {'description': ...}}`` for every protocol."""
        return {
            name: {'description': values.get('description', '')}
            for name, values in cls._load_protocols()['protocols'].items()
        }

    @classmethod
    def get_protocol_inputs(cls, protocol: str | None = None, overrides: dict | None = None) -> dict:
        """Return the inputs of ``protocol`` merged over the defaults, then ``overrides`` merged over those.

        :raises ProtocolError: for an unknown protocol, or an override key that the protocol does not define.
        """
        data = cls._load_protocols()
        protocol = protocol or data['default_protocol']
        if protocol not in data['protocols']:
            known = ', '.join(sorted(data['protocols']))
            raise ProtocolError(f'unknown protocol `{protocol}` for {cls.__name__}; choose one of: {known}')
        selected = copy.deepcopy(data['protocols'][protocol])
        selected.pop('description', None)
        inputs = recursive_merge(data.get('default_inputs', {}), selected)
        if overrides:
            inputs = recursive_merge(inputs, overrides, strict=True)
        return inputs
