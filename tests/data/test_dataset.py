"""Tests for ``DatasetData`` and ``build_dataset``: linking, level-of-theory checks, splits, growth and export."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from aiida import orm
from aiida.engine import calcfunction
from ase import Atoms
from ase.build import bulk

from aiida_sianode.data.dataset import DatasetData, MixedLevelOfTheoryError, build_dataset
from aiida_sianode.data.label import LabelData

PBE = {
    'code': 'vasp',
    'code_version': '6.4.2',
    'method': 'PBE',
    'basis': 'plane-wave',
    'cutoff_ev': 520,
    'kpoint_spacing': 0.25,
    'pseudopotentials': {'Si': 'Si', 'Li': 'Li_sv'},
}


def make_label(index: int, *, level_of_theory=None, source=None, config_type='md', stress=True, symbols='Si2'):
    """Return a stored label of a rattled cell with energy/forces/stress that depend on ``index``."""
    rng = np.random.default_rng(index)
    if symbols == 'Si2':
        atoms = bulk('Si', 'diamond', a=5.43)
    else:
        atoms = bulk('Si', 'diamond', a=5.43)
        atoms.set_chemical_symbols(symbols)
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    forces = rng.normal(scale=0.5, size=(len(atoms), 3))
    stress_value = rng.normal(scale=0.01, size=6) if stress else None
    label = LabelData(
        atoms,
        energy=-10.8 + 0.01 * index,
        forces=forces,
        stress=stress_value,
        level_of_theory=level_of_theory or PBE,
        source=source or {'kind': 'file', 'filename': 'vasprun.xml', 'sha256': 'ab12', 'frame': index},
        config_type=config_type,
    )
    return label.store()


def isolated_atom(symbol: str, energy: float):
    """Return a stored single-atom label for MACE's E0s."""
    atoms = Atoms(symbol, positions=[[0, 0, 0]], pbc=False)
    return LabelData(
        atoms,
        energy=energy,
        forces=np.zeros((1, 3)),
        level_of_theory=PBE,
        source={'kind': 'file', 'filename': 'e0.xyz', 'sha256': 'cd34', 'frame': 0},
        config_type='IsolatedAtom',
    ).store()


@calcfunction
def fake_labelling(structure: orm.StructureData) -> LabelData:
    """A stand-in for a labelling calculation: the label's creator is this process."""
    atoms = structure.get_ase()
    return LabelData(
        atoms,
        energy=-1.5 * len(atoms),
        forces=np.full((len(atoms), 3), 0.1),
        stress=np.zeros(6),
        level_of_theory=PBE,
        source={'kind': 'calculation'},
        config_type='crystal',
    )


def test_build_links_every_label_and_records_attributes(aiida_profile):
    labels = [make_label(i) for i in range(10)]
    dataset = build_dataset(labels, valid_fraction=0.2, test_fraction=0.1, seed=3)
    assert isinstance(dataset, DatasetData)
    assert dataset.is_stored
    build = dataset.creator
    inputs = build.base.links.get_incoming(node_class=LabelData).all()
    assert sorted(link.node.uuid for link in inputs) == sorted(label.uuid for label in labels)
    assert dataset.n_frames == 10
    assert dataset.label_uuids == [label.uuid for label in labels]
    assert dataset.split_counts == {'train': 7, 'valid': 2, 'test': 1}
    assert dataset.elements == ['Si']
    assert dataset.mixed is False
    assert dataset.fingerprints == [labels[0].fingerprint]
    assert dataset.level_of_theory['cutoff_ev'] == 520
    assert dataset.seed == 3


def test_mixed_level_of_theory_refused_naming_the_setting(aiida_profile):
    good = [make_label(i) for i in range(3)]
    other = make_label(99, level_of_theory={**PBE, 'cutoff_ev': 400})
    count = orm.QueryBuilder().append(DatasetData).count()
    with pytest.raises(MixedLevelOfTheoryError, match=r'cutoff_ev: 520 != 400'):
        build_dataset([*good, other])
    assert orm.QueryBuilder().append(DatasetData).count() == count  # refused before anything was stored

    wrong_pseudo = make_label(98, level_of_theory={**PBE, 'pseudopotentials': {'Si': 'Si_GW'}})
    with pytest.raises(MixedLevelOfTheoryError, match=r"pseudopotentials\[Si\]: 'Si' != 'Si_GW'"):
        build_dataset([*good, wrong_pseudo])

    mixed = build_dataset([*good, other], allow_mixed=True)
    assert mixed.mixed is True
    assert sorted(mixed.fingerprints) == sorted({good[0].fingerprint, other.fingerprint})
    assert len(mixed.levels_of_theory) == 2
    assert mixed.levels_of_theory[other.fingerprint]['cutoff_ev'] == 400
    frames = mixed.get_frames()
    assert {atoms.info['fingerprint'] for atoms in frames} == set(mixed.fingerprints)


def test_code_version_alone_is_compatible(aiida_profile):
    labels = [make_label(0), make_label(1, level_of_theory={**PBE, 'code_version': '6.3.0'})]
    dataset = build_dataset(labels)
    assert dataset.mixed is False


def test_splits_reproducible_from_seed(aiida_profile):
    labels = [make_label(i) for i in range(24)]
    first = build_dataset(labels, valid_fraction=0.25, test_fraction=0.1, seed=7)
    second = build_dataset(labels, valid_fraction=0.25, test_fraction=0.1, seed=7)
    other = build_dataset(labels, valid_fraction=0.25, test_fraction=0.1, seed=8)
    splits = [atoms.info['split'] for atoms in first.get_frames()]
    assert splits == [atoms.info['split'] for atoms in second.get_frames()]
    assert splits != [atoms.info['split'] for atoms in other.get_frames()]
    assert first.split_counts == {'train': 16, 'valid': 6, 'test': 2}
    assert [a.info['label_uuid'] for a in first.get_frames('valid')] == [
        a.info['label_uuid'] for a in second.get_frames('valid')
    ]


def test_parent_growth_keeps_splits(aiida_profile):
    first_labels = [make_label(i) for i in range(20)]
    parent = build_dataset(first_labels, valid_fraction=0.2, seed=1)
    new_labels = [make_label(100 + i) for i in range(10)]
    child = build_dataset(new_labels, valid_fraction=0.2, seed=2, parent=parent)

    assert child.n_frames == 30
    assert child.label_uuids == parent.label_uuids + [label.uuid for label in new_labels]
    parent_splits = {a.info['label_uuid']: a.info['split'] for a in parent.get_frames()}
    child_splits = {a.info['label_uuid']: a.info['split'] for a in child.get_frames()}
    assert all(child_splits[uuid] == split for uuid, split in parent_splits.items())
    assert child.split_counts == {'train': 24, 'valid': 6, 'test': 0}
    # only the new labels are inputs of the child's calcfunction, plus the parent
    inputs = child.creator.base.links.get_incoming().all()
    assert sorted(link.node.uuid for link in inputs if isinstance(link.node, LabelData)) == sorted(
        label.uuid for label in new_labels
    )
    assert [link.node.uuid for link in inputs if link.link_label == 'parent'] == [parent.uuid]

    with pytest.raises(ValueError, match='already in the parent'):
        build_dataset([first_labels[0]], parent=parent)
    with pytest.raises(MixedLevelOfTheoryError, match='cutoff_ev'):
        build_dataset([make_label(200, level_of_theory={**PBE, 'cutoff_ev': 600})], parent=parent)


def test_export_round_trip(aiida_profile, tmp_path):
    structure = orm.StructureData(ase=bulk('Si', 'diamond', a=5.43)).store()
    made = fake_labelling(structure)
    imported = [make_label(i) for i in range(4)]
    no_stress = make_label(50, stress=False)
    labels = [*imported, made, no_stress]
    dataset = build_dataset(labels, valid_fraction=0.0)
    path = tmp_path / 'export.extxyz'
    assert dataset.export(path) == 6
    frames = ase.io.read(path, index=':')
    assert len(frames) == 6
    for atoms, label in zip(frames, labels):
        assert atoms.info['label_uuid'] == label.uuid
        assert atoms.get_potential_energy() == pytest.approx(label.energy, abs=1e-10)
        np.testing.assert_allclose(atoms.get_forces(), label.forces, atol=1e-8)
        np.testing.assert_allclose(atoms.positions, label.get_array('positions'), atol=1e-8)
        if label.stress is not None:
            np.testing.assert_allclose(atoms.get_stress(voigt=False), label.stress, atol=1e-12)
        else:
            assert 'stress' not in atoms.calc.results
        assert atoms.info['config_type'] == label.config_type
    assert frames[4].info['source_uuid'] == made.creator.uuid
    assert 'source_file' not in frames[4].info
    assert frames[2].info['source_file'] == 'vasprun.xml'
    assert str(frames[2].info['source_sha256']) == 'ab12'
    assert frames[2].info['source_frame'] == 2
    assert frames[2].info.get('source_uuid', '') in ('', None)

    train_only = tmp_path / 'train.extxyz'
    assert dataset.export(train_only, split='train') == 6


def test_training_files_for_mace(aiida_profile, tmp_path):
    labels = [make_label(i) for i in range(10)]
    e0 = isolated_atom('Si', -0.85)
    dataset = build_dataset([e0, *labels], valid_fraction=0.2, test_fraction=0.1, seed=0)
    assert dataset.base.attributes.get('config_types') == {'IsolatedAtom': 1, 'md': 10}
    paths = dataset.write_training_files(tmp_path)
    train = ase.io.read(paths['train'], index=':')
    valid = ase.io.read(paths['valid'], index=':')
    test = ase.io.read(paths['test'], index=':')
    assert (len(train), len(valid), len(test)) == (8, 2, 1)
    isolated = [atoms for atoms in train if atoms.info['config_type'] == 'IsolatedAtom']
    assert len(isolated) == 1 and isolated[0].info['REF_energy'] == pytest.approx(-0.85)
    by_uuid = {label.uuid: label for label in labels}
    for atoms in train + valid + test:
        if atoms.info['config_type'] == 'IsolatedAtom':
            continue
        label = by_uuid[atoms.info['label_uuid']]
        assert atoms.info['REF_energy'] == pytest.approx(label.energy, abs=1e-10)
        np.testing.assert_allclose(atoms.arrays['REF_forces'], label.forces, atol=1e-8)
        from ase.stress import full_3x3_to_voigt_6_stress

        np.testing.assert_allclose(atoms.info['REF_stress'], full_3x3_to_voigt_6_stress(label.stress), atol=1e-12)
        assert atoms.calc is None or 'energy' not in atoms.calc.results  # only REF_ keys, mace reads those


def test_valid_fraction_zero_gives_no_valid_file(aiida_profile, tmp_path):
    dataset = build_dataset([make_label(i) for i in range(3)], valid_fraction=0.0)
    paths = dataset.write_training_files(tmp_path)
    assert paths['valid'] is None and paths['test'] is None
    assert len(ase.io.read(paths['train'], index=':')) == 3


def test_bad_input_refused(aiida_profile):
    label = make_label(0)
    with pytest.raises(ValueError, match='valid_fraction'):
        build_dataset([label], valid_fraction=1.5)
    with pytest.raises(ValueError, match='given twice'):
        build_dataset([label, label])
    with pytest.raises(ValueError, match='at least one label'):
        build_dataset([])
    with pytest.raises(ValueError, match='not stored'):
        build_dataset([LabelData(bulk('Si'), energy=-1.0, forces=np.zeros((2, 3)), level_of_theory=PBE)])
    with pytest.raises(TypeError, match='LabelData'):
        build_dataset([orm.Int(1).store()])
    dataset = build_dataset([label])
    with pytest.raises(ValueError, match='unknown split'):
        dataset.get_frames('training')


@pytest.mark.parametrize(
    ('plain', 'edited', 'difference'),
    [
        (
            'vasp/aiida-vasp/Si_ionic-unconverged_first-step/vasprun.xml',
            'vasp/edited/Si_first-step_LDAU/vasprun.xml',
            r"hubbard: None != \{'scheme': 'dudarev', 'species': \{'Si': \{'j_ev': 0, 'orbital': 'p', 'u_ev': 3\}\}\}",
        ),
        (
            'vasp/aiida-vasp/Si_ionic-unconverged_first-step/vasprun.xml',
            'vasp/edited/Si_first-step_IVDW12/vasprun.xml',
            r"dispersion: None != 'DFT-D3\(BJ\) \(IVDW=12\)'",
        ),
        (
            'castep/matador/Li-bcc_400eV.castep',
            'castep/edited/Li-bcc_400eV_SEDC-G06.castep',
            r"dispersion: None != 'SEDC G06'",
        ),
    ],
    ids=['vasp+U', 'vasp+D3', 'castep+SEDC'],
)
def test_plus_u_and_dispersion_labels_are_not_mixed_with_plain_ones(
    aiida_profile, fixtures_path, plain, edited, difference
):
    """A PBE label and a PBE+U (or +D) label of the same structure: same method, different fingerprints, refused.

    The edited fixtures are the plain files with only the DFT+U or dispersion tags changed (fixtures/README.md).
    """
    from aiida_sianode.data.importers import import_files

    report = import_files([fixtures_path / plain, fixtures_path / edited], deduplicate=False)
    first, second = report.labels
    assert first.level_of_theory['method'] == second.level_of_theory['method']
    assert first.energy == second.energy  # the numbers were not edited
    assert first.fingerprint != second.fingerprint
    assert report.mixed_levels_of_theory()
    for label in (first, second):
        label.store()
    with pytest.raises(MixedLevelOfTheoryError, match=difference):
        build_dataset([first, second])
    assert build_dataset([first, second], allow_mixed=True).base.attributes.get('mixed') is True


def test_every_element_of_held_out_frames_is_in_training(aiida_profile):
    """The only frame with Li must not be drawn for validation: training would refuse the set (exit 402)."""
    from aiida_sianode.data.dataset import _keep_every_element_in_train

    # unit: the Li frame drawn for `valid` goes to train, and a Si frame whose elements stay covered takes its place
    splits = _keep_every_element_in_train(
        ['valid', 'train', 'train', 'test'], [{'Li', 'Si'}, {'Si'}, {'Si'}, {'C'}], set()
    )
    assert splits == ['train', 'valid', 'train', 'train']
    # an element already in the parent's training frames needs no move
    assert _keep_every_element_in_train(['valid', 'train'], [{'Li'}, {'Si'}], {'Li'}) == ['valid', 'train']

    labels = [make_label(i) for i in range(9)] + [make_label(50, symbols='LiSi')]
    for seed in range(6):
        dataset = build_dataset(labels, valid_fraction=0.3, test_fraction=0.2, seed=seed)
        train_elements = {s for atoms in dataset.get_frames('train') for s in atoms.get_chemical_symbols()}
        assert 'Li' in train_elements
        counts = dataset.split_counts
        assert counts['valid'] >= 1
        assert sum(counts.values()) == 10
