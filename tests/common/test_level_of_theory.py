"""Tests of the level-of-theory record: normalisation, fingerprint and differences."""

import pytest

from aiida_sianode.common import level_of_theory as lot

PBE_520 = {
    'code': 'VASP',
    'code_version': '6.2.0',
    'method': 'PBE',
    'basis': 'plane-wave',
    'cutoff_ev': 520,
    'kpoint_spacing': 0.35,
    'smearing': {'type': 'gaussian', 'width_ev': 0.05},
    'spin': False,
    'pseudopotentials': {'Si': 'PAW_PBE Si 05Jan2001'},
}


def test_normalise_rounds_and_lowercases_code():
    result = lot.normalise({**PBE_520, 'cutoff_ev': 520.0000000001})
    assert result['code'] == 'vasp'
    assert result['cutoff_ev'] == 520
    assert result['smearing'] == {'type': 'gaussian', 'width_ev': 0.05}


def test_normalise_refuses_record_without_code():
    with pytest.raises(ValueError, match='`code`'):
        lot.normalise({'method': 'PBE'})


def test_fingerprint_ignores_version_and_pseudopotentials_but_not_cutoff():
    base = lot.fingerprint(PBE_520)
    assert lot.fingerprint({**PBE_520, 'code_version': '5.4.1'}) == base
    assert lot.fingerprint({**PBE_520, 'pseudopotentials': {'Li': 'PAW_PBE Li_sv'}}) == base
    assert lot.fingerprint({**PBE_520, 'cutoff_ev': 400}) != base
    assert len(base) == 64


def test_differences_name_the_setting():
    other = {**PBE_520, 'cutoff_ev': 400, 'smearing': {'type': 'gaussian', 'width_ev': 0.1}}
    found = lot.differences(PBE_520, other)
    assert found == [
        'cutoff_ev: 520 != 400',
        "smearing: {'type': 'gaussian', 'width_ev': 0.05} != {'type': 'gaussian', 'width_ev': 0.1}",
    ]


def test_differences_compare_pseudopotentials_per_shared_element():
    lithiated = {**PBE_520, 'pseudopotentials': {'Li': 'PAW_PBE Li_sv', 'Si': 'PAW_PBE Si 05Jan2001'}}
    assert lot.differences(PBE_520, lithiated) == []
    other_si = {**PBE_520, 'pseudopotentials': {'Si': 'PAW_PBE Si_GW'}}
    assert lot.differences(PBE_520, other_si) == ["pseudopotentials[Si]: 'PAW_PBE Si 05Jan2001' != 'PAW_PBE Si_GW'"]
