"""Tests of the protocol mixin: merging, unknown protocols and strict overrides."""

import pytest

from aiida_sianode import protocols
from aiida_sianode.protocols import ProtocolError, ProtocolMixin, recursive_merge


@pytest.fixture
def protocol_file(tmp_path, monkeypatch):
    (tmp_path / 'toy.yaml').write_text(
        'default_protocol: balanced\n'
        'default_inputs:\n'
        '  parameters: {cutoff: 300, smearing: {width: 0.1}}\n'
        '  max_iterations: 5\n'
        'protocols:\n'
        '  fast: {description: quick, parameters: {cutoff: 200}}\n'
        '  balanced: {description: default, parameters: {cutoff: 400}}\n'
    )
    monkeypatch.setattr(protocols, 'PROTOCOL_DIRECTORY', tmp_path)

    class Toy(ProtocolMixin):
        _protocol_file = 'toy'

    return Toy


def test_default_and_named_protocols(protocol_file):
    assert protocol_file.get_default_protocol() == 'balanced'
    assert protocol_file.get_available_protocols() == {
        'fast': {'description': 'quick'},
        'balanced': {'description': 'default'},
    }
    assert protocol_file.get_protocol_inputs()['parameters'] == {'cutoff': 400, 'smearing': {'width': 0.1}}
    assert protocol_file.get_protocol_inputs('fast')['parameters']['cutoff'] == 200


def test_overrides_are_merged_recursively(protocol_file):
    inputs = protocol_file.get_protocol_inputs('fast', overrides={'parameters': {'smearing': {'width': 0.2}}})
    assert inputs == {'parameters': {'cutoff': 200, 'smearing': {'width': 0.2}}, 'max_iterations': 5}


def test_unknown_protocol_is_refused(protocol_file):
    with pytest.raises(ProtocolError, match=r'unknown protocol `precise`.*balanced, fast'):
        protocol_file.get_protocol_inputs('precise')


def test_unknown_override_key_is_refused(protocol_file):
    with pytest.raises(ProtocolError, match=r'override `parameters.cutof` does not exist'):
        protocol_file.get_protocol_inputs('fast', overrides={'parameters': {'cutof': 250}})


def test_recursive_merge_does_not_modify_inputs():
    base = {'a': {'b': 1}}
    merged = recursive_merge(base, {'a': {'c': 2}})
    assert merged == {'a': {'b': 1, 'c': 2}}
    assert base == {'a': {'b': 1}}
