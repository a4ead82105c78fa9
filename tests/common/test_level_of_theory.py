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


def test_records_without_hubbard_or_dispersion_keep_their_fingerprint():
    """The fingerprint of a record without the new keys is the SHA-256 it had before they existed."""
    import hashlib
    import json

    canonical = lot.normalise(PBE_520)
    before = {key: canonical.get(key) for key in lot.FINGERPRINT_KEYS}
    assert lot.fingerprint(PBE_520) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    plus_u = {**PBE_520, 'hubbard': {'scheme': 'dudarev', 'species': {'Ni': {'orbital': 'd', 'u_ev': 6.2}}}}
    assert lot.fingerprint(plus_u) != lot.fingerprint(PBE_520)
    assert lot.fingerprint({**PBE_520, 'dispersion': 'DFT-D3(BJ) (IVDW=12)'}) != lot.fingerprint(PBE_520)
    assert lot.differences(PBE_520, {**PBE_520, 'dispersion': 'SEDC G06'}) == ["dispersion: None != 'SEDC G06'"]


def test_vasp_hubbard_and_dispersion_tags():
    titles = {'Ni': 'PAW_PBE Ni 02Aug2007', 'O': 'PAW_PBE O 08Apr2002'}
    tags = {'LDAU': '.TRUE.', 'LDAUTYPE': 2, 'LDAUL': '2 -1', 'LDAUU': '6.2 0.0', 'LDAUJ': '0 0', 'IVDW': 11}
    record = lot.vasp_level_of_theory(tags, potcar_titles=titles)
    assert record['hubbard'] == {'scheme': 'dudarev', 'species': {'Ni': {'orbital': 'd', 'u_ev': 6.2, 'j_ev': 0.0}}}
    assert record['dispersion'] == 'DFT-D3(zero) (IVDW=11)'
    # LDAU on but no U on any species: plain DFT, no key
    assert 'hubbard' not in lot.vasp_level_of_theory({**tags, 'LDAUL': [-1, -1]}, potcar_titles=titles)
    optb88 = lot.vasp_level_of_theory({'GGA': 'MK', 'LUSE_VDW': True, 'AGGAC': 0.0, 'PARAM1': 0.18}, potcar_titles={})
    assert (optb88['method'], optb88['dispersion']) == ('optB88', 'vdW-DF (LUSE_VDW, AGGAC=0)')
    df2 = lot.vasp_level_of_theory({'LUSE_VDW': 'T', 'Zab_VDW': -1.8867, 'AGGAC': 0}, potcar_titles={})
    assert df2['dispersion'] == 'vdW-DF2 (LUSE_VDW, AGGAC=0)'


def test_castep_hubbard_block_and_sedc():
    assert lot.castep_hubbard_from_block(['eV', 'Ni d: 6.2', 'Er f : 5 ! comment']) == {
        'Ni': {'d': 6.2},
        'Er': {'f': 5.0},
    }
    assert lot.castep_hubbard_from_block('Ha\nFe d: 0.1') == {'Fe': {'d': pytest.approx(2.7211386)}}
    with pytest.raises(ValueError, match=r'cannot read the hubbard_u line `Ni 6\.2`'):
        lot.castep_hubbard_from_block(['Ni 6.2'])
    record = lot.castep_level_of_theory(
        cutoff_ev=600, xc_functional='PBE', hubbard={'Ni': {'d': 6.2}, 'O': {'p': 0.0}}, dispersion='TS'
    )
    assert record['hubbard'] == {
        'scheme': 'castep hubbard_u',
        'species': {'Ni': {'orbital': 'd', 'u_ev': 6.2, 'j_ev': 0.0}},
    }
    assert record['dispersion'] == 'SEDC TS'
    assert 'hubbard' not in lot.castep_level_of_theory(cutoff_ev=600, xc_functional='PBE', hubbard={'O': {'p': 0}})


def test_contradictions_name_both_values_and_skip_what_the_output_does_not_say():
    recorded = {**PBE_520, 'kpoints_mesh': [6, 6, 6]}
    assert lot.contradictions(recorded, {'cutoff_ev': 520.0, 'kpoints_mesh': None, 'method': 'PBE'}) == []
    assert lot.contradictions(recorded, {'cutoff_ev': 300.0, 'kpoints_mesh': [4, 4, 4]}) == [
        'cutoff_ev: the label records 520, the code ran with 300',
        'kpoints_mesh: the label records [6, 6, 6], the code ran with [4, 4, 4]',
    ]
    # for DFT+U and dispersion, None is what the code says: ran without them
    plus_d = {**recorded, 'dispersion': 'DFT-D3(BJ) (IVDW=12)'}
    assert lot.contradictions(plus_d, {'dispersion': None}) == [
        "dispersion: the label records 'DFT-D3(BJ) (IVDW=12)', the code ran with None"
    ]
