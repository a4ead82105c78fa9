"""The BUILDERS registry: every kind builds with its defaults, records its provenance, and refuses bad input."""

import json

import numpy as np
import pytest

from aiida_sianode.structures import BUILDERS, StructureBuildError, build, resolve_parameters

KINDS = (
    'si-crystal',
    'si-random',
    'lixsi',
    'lixsi-crystal',
    'amorphous-carbon',
    'graphite',
    'lic6',
    'lic12',
    'hard-carbon',
    'si-ac-interface',
    'core-shell',
    'sei-pack',
    'sei-crystal',
    'li-metal',
)


def test_registry_has_every_documented_kind():
    assert tuple(BUILDERS) == KINDS


@pytest.mark.parametrize('kind', KINDS)
def test_every_kind_builds_reproducibly_and_records_name_parameters_and_seed(kind):
    atoms = BUILDERS[kind](seed=3)
    assert len(atoms) > 0
    assert atoms.info['builder'] == kind
    assert atoms.info['seed'] == 3
    assert json.loads(atoms.info['builder_parameters']) == BUILDERS[kind].defaults
    again = build(kind, {}, seed=3)
    assert np.array_equal(atoms.positions, again.positions)
    assert atoms.get_chemical_symbols() == again.get_chemical_symbols()


def test_parameters_are_resolved_over_the_defaults_as_plain_json():
    resolved = resolve_parameters('si-crystal', {'size': (1, 1, 1), 'rattle': np.float64(0.01)})
    assert resolved['size'] == [1, 1, 1]
    assert resolved['rattle'] == 0.01 and type(resolved['rattle']) is float
    assert resolved['lattice_constant'] == 5.431


def test_unknown_kinds_and_parameters_are_refused_with_the_known_names():
    with pytest.raises(StructureBuildError, match='known kinds: si-crystal'):
        build('diamond', {})
    with pytest.raises(StructureBuildError, match='unknown parameter for lixsi: xx; known: x, '):
        build('lixsi', {'xx': 1.0})
    with pytest.raises(StructureBuildError, match='seed'):
        build('graphite', {}, seed=-2)
    with pytest.raises(StructureBuildError, match='does not take a host'):
        build('graphite', {}, host=build('si-crystal', {}))
