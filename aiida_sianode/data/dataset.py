"""``DatasetData``: a training set of labels, stored as one extended-XYZ file and linked to every label in it.

A dataset is built by the calcfunction :func:`build_dataset_calcfunction` whose inputs are the labels (a dynamic
namespace, one ``label_NNNNNN`` input per label), a ``settings`` dict and optionally the ``parent`` dataset it grows
from. Its output is the ``DatasetData``, so every label is linked to the training set in AiiDA's provenance graph.
A growing training set (one per active-learning iteration) is a chain: each generation takes its parent plus only
the new labels, so no calcfunction ever needs all 10^5 labels as inputs, yet every label is linked exactly once.

File format (``dataset.extxyz``), one frame per label:

* ``info['REF_energy']`` total energy in eV, ``arrays['REF_forces']`` eV/Å, ``info['REF_stress']`` Voigt-6 in
  eV/Å^3 (ASE sign convention, only when the label has a stress), ``info['config_type']``;
* ``info['split']`` one of ``train``, ``valid``, ``test``;
* ``info['label_uuid']``, ``info['source_uuid']`` (the calculation that made the label, empty for imported labels),
  ``info['fingerprint']`` (level of theory) and, for labels imported from files, ``info['source_file']``,
  ``info['source_sha256']``, ``info['source_frame']``.

Frames of ``config_type == 'IsolatedAtom'`` (single atoms in vacuum, for MACE's E0s) always go to ``train``:
``mace_run_train`` reads them from the training file as the isolated-atom reference energies.
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import re
from collections.abc import Iterable, Sequence

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_sianode.common import level_of_theory as lot

__all__ = ('SPLITS', 'DatasetData', 'MixedLevelOfTheoryError', 'build_dataset', 'build_dataset_calcfunction')

SPLITS = ('train', 'valid', 'test')
ISOLATED_ATOM = 'IsolatedAtom'
FILENAME = 'dataset.extxyz'
#: the reference keys of the stored file, as they start a ``key=value`` pair or a ``Properties`` column
_EXPORT_KEYS = re.compile(r'(^|[\s:])(REF_energy=|REF_forces:)')
#: the Voigt-6 reference stress: ASE reads ``stress`` in ``info`` only as a 3x3 matrix of 9 numbers
_EXPORT_STRESS = re.compile(r'(^|\s)REF_stress="([^"]*)"')


def _full_stress(match) -> str:
    """The ``stress="..."`` pair (3x3, row by row) for a matched ``REF_stress="xx yy zz yz xz xy"`` pair."""
    xx, yy, zz, yz, xz, xy = match.group(2).split()
    return f'{match.group(1)}stress="{" ".join((xx, xy, xz, xy, yy, yz, xz, yz, zz))}"'


#: keys of ``info`` that are bookkeeping rather than training targets; they are kept in exports
META_KEYS = ('config_type', 'split', 'label_uuid', 'source_uuid', 'fingerprint')


class MixedLevelOfTheoryError(ValueError):
    """Raised when labels with different levels of theory would be mixed in one training set."""


class DatasetData(orm.SinglefileData):
    """A training set: one extended-XYZ file of labelled frames with their train/valid/test split.

    Attributes: ``n_frames``, ``elements``, ``fingerprints`` (distinct level-of-theory fingerprints),
    ``level_of_theory`` (the common record; with ``mixed`` the first one), ``levels_of_theory`` (fingerprint ->
    record), ``mixed``, ``split_counts``, ``seed``, ``valid_fraction``, ``test_fraction``, ``label_uuids`` (in
    frame order), ``config_types`` (config_type -> count), ``parent_uuid`` and ``n_new`` (frames added on top of
    the parent).
    """

    @property
    def n_frames(self) -> int:
        """Number of frames (labels) in the dataset."""
        return self.base.attributes.get('n_frames')

    @property
    def elements(self) -> list[str]:
        """Sorted chemical symbols present in the dataset."""
        return self.base.attributes.get('elements')

    @property
    def fingerprints(self) -> list[str]:
        """Sorted distinct level-of-theory fingerprints of the labels."""
        return self.base.attributes.get('fingerprints')

    @property
    def level_of_theory(self) -> dict:
        """The level of theory of the labels (pseudopotentials merged over elements); the first one when mixed."""
        return self.base.attributes.get('level_of_theory')

    @property
    def levels_of_theory(self) -> dict[str, dict]:
        """Every distinct level of theory, keyed by fingerprint."""
        return self.base.attributes.get('levels_of_theory')

    @property
    def mixed(self) -> bool:
        """``True`` when the labels were built with more than one level of theory (``allow_mixed=True``)."""
        return self.base.attributes.get('mixed')

    @property
    def split_counts(self) -> dict[str, int]:
        """Number of frames per split."""
        return self.base.attributes.get('split_counts')

    @property
    def seed(self) -> int:
        """The seed that assigned this generation's new frames to splits."""
        return self.base.attributes.get('seed')

    @property
    def label_uuids(self) -> list[str]:
        """UUIDs of the labels in frame order."""
        return self.base.attributes.get('label_uuids')

    def _read_frames(self) -> list:
        import ase.io

        with self.open(mode='r') as handle:
            return ase.io.read(io.StringIO(handle.read()), index=':', format='extxyz')

    def get_frames(self, split: str | None = None) -> list:
        """Return the frames as ``ase.Atoms``, optionally only those of ``split``.

        Each frame keeps the ``REF_*`` keys, ``split``, ``config_type`` and the UUIDs in ``info``/``arrays`` and
        carries a ``SinglePointCalculator`` with the reference energy, forces and stress.
        """
        return list(self.iter_frames(split))

    def iter_frames(self, split: str | None = None):
        """Yield the frames of :meth:`get_frames` one at a time, read from the stored file as they are needed."""
        import ase.io
        from ase.calculators.singlepoint import SinglePointCalculator

        if split is not None and split not in SPLITS:
            raise ValueError(f'unknown split {split!r}: choose one of {", ".join(SPLITS)}')
        with self.open(mode='r') as handle:
            for atoms in ase.io.iread(handle, index=':', format='extxyz'):
                _normalise_info(atoms)
                if split is not None and atoms.info['split'] != split:
                    continue
                results = {'energy': atoms.info['REF_energy'], 'free_energy': atoms.info['REF_energy']}
                results['forces'] = np.array(atoms.arrays['REF_forces'], dtype=float)
                if 'REF_stress' in atoms.info:
                    results['stress'] = np.array(atoms.info['REF_stress'], dtype=float)
                atoms.calc = SinglePointCalculator(atoms, **results)
                yield atoms

    def iter_frame_texts(self):
        """Yield ``(info, text)`` per frame, streamed from the stored file: no frame is parsed into ``ase.Atoms``.

        ``info`` holds the frame's comment-line keys (as ASE's extxyz reader parses them) and ``text`` the frame's
        lines as stored. Memory stays that of one frame, whatever the size of the dataset.
        """
        from ase.io.extxyz import key_val_str_to_dict

        with self.open(mode='r') as handle:
            while True:
                first = handle.readline()
                if not first.strip():
                    return
                natoms = int(first)
                comment = handle.readline()
                atoms = [handle.readline() for _ in range(natoms)]
                if len(atoms) != natoms or (natoms and not atoms[-1].endswith('\n')):
                    raise ValueError(f'dataset {self.uuid}: a frame of {natoms} atoms is cut short')
                yield key_val_str_to_dict(comment), first + comment + ''.join(atoms)

    def write_training_files(self, directory) -> dict[str, str | None]:
        """Write ``train.extxyz``, ``valid.extxyz`` and ``test.extxyz`` for ``mace_run_train`` into ``directory``.

        Keys: ``REF_energy``, ``REF_forces``, ``REF_stress`` (Voigt-6, eV/Å^3) and ``config_type``. Returns
        ``{'train': path, 'valid': path or None, 'test': path or None}``; a split without frames gets no file
        (``valid`` is empty only when the dataset was built with ``valid_fraction=0``).

        The frames are copied as text from the stored file to the file of their split (see
        :meth:`iter_frame_texts`), so preparing the input of a 10^5-frame training needs neither the label nodes
        nor the frames in memory.
        """
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        counts = dict.fromkeys(SPLITS, 0)
        with contextlib.ExitStack() as stack:
            handles = {split: stack.enter_context(open(directory / f'{split}.extxyz', 'w')) for split in SPLITS}
            for info, text in self.iter_frame_texts():
                split = str(info.get('split'))
                if split not in handles:
                    raise ValueError(f'dataset {self.uuid}: a frame has split {split!r}, not one of {SPLITS}')
                handles[split].write(text)
                counts[split] += 1
        paths: dict[str, str | None] = {}
        for split in SPLITS:
            path = directory / f'{split}.extxyz'
            paths[split] = str(path) if counts[split] else None
            if not counts[split]:
                path.unlink()
        if not counts['train']:
            for path in paths.values():
                if path:
                    pathlib.Path(path).unlink()
            raise ValueError(f'dataset {self.uuid} has no training frames')
        return paths

    def export(self, path, split: str | None = None) -> int:
        """Write the frames (or those of ``split``) to ``path`` as extended XYZ for users; return the frame count.

        Energies, forces and stresses are written under ASE's standard keys (``energy``, ``forces``, ``stress``),
        so ``ase.io.read`` gives atoms with a ``SinglePointCalculator``; ``info`` keeps ``config_type``, ``split``,
        ``label_uuid``, ``source_uuid``, ``fingerprint`` and, for imported labels, ``source_file``,
        ``source_sha256`` and ``source_frame``.

        The frames are streamed as text (see :meth:`iter_frame_texts`): only the comment line of each frame is
        changed (``REF_energy``, ``REF_stress`` and the ``REF_forces`` column renamed), the atom lines are copied.
        """
        if split is not None and split not in SPLITS:
            raise ValueError(f'unknown split {split!r}: choose one of {", ".join(SPLITS)}')
        count = 0
        with open(path, 'w') as handle:
            for info, text in self.iter_frame_texts():
                if split is not None and str(info.get('split')) != split:
                    continue
                first, comment, atoms = text.split('\n', 2)
                comment = _EXPORT_STRESS.sub(_full_stress, comment)
                comment = _EXPORT_KEYS.sub(lambda match: match.group(1) + match.group(2)[4:], comment)
                handle.write(f'{first}\n{comment}\n{atoms}')
                count += 1
        return count

    def summary(self) -> dict:
        """Return a JSON-serialisable overview: frames, splits, elements, levels of theory, sources."""
        attributes = self.base.attributes
        return {
            'pk': self.pk,
            'uuid': self.uuid,
            'n_frames': self.n_frames,
            'n_labels': len(self.label_uuids or []),
            'n_new': attributes.get('n_new'),
            'split_counts': self.split_counts,
            'seed': self.seed,
            'valid_fraction': attributes.get('valid_fraction'),
            'test_fraction': attributes.get('test_fraction'),
            'elements': self.elements,
            'config_types': attributes.get('config_types'),
            'mixed': self.mixed,
            'fingerprints': self.fingerprints,
            'levels_of_theory': self.levels_of_theory,
            'sources': attributes.get('sources'),
            'parent_uuid': attributes.get('parent_uuid'),
        }


def _normalise_info(atoms) -> None:
    """Make the bookkeeping keys strings again: extxyz parses values such as ``T`` or ``123`` into bool or int."""
    for key in (*META_KEYS, 'source_file', 'source_sha256'):
        if key in atoms.info:
            value = atoms.info[key]
            atoms.info[key] = ('T' if value else 'F') if isinstance(value, bool | np.bool_) else str(value)
    atoms.info.setdefault('source_uuid', '')
    atoms.info.setdefault('config_type', 'default')


def _drop_empty(atoms) -> None:
    """Remove empty string values from ``info``: extxyz writes them as ``key=``, which swallows the next pair."""
    for key in [key for key, value in atoms.info.items() if isinstance(value, str) and not value]:
        del atoms.info[key]


def _check_levels_of_theory(records: Iterable[tuple[str, dict]], allow_mixed: bool) -> tuple[dict, dict, bool]:
    """Compare levels of theory; return ``(common record, {fingerprint: record}, mixed)``.

    ``records`` yields ``(who, level_of_theory)``; pseudopotentials are merged per element so that labels with
    disjoint element sets are compatible as long as the shared elements use the same pseudopotential.
    Raises :class:`MixedLevelOfTheoryError` naming the differing settings unless ``allow_mixed``.
    """
    reference_who = None
    reference: dict | None = None
    merged_pseudos: dict[str, str] = {}
    by_fingerprint: dict[str, dict] = {}
    seen: set[str] = set()
    problems: list[str] = []
    for who, record in records:
        record = lot.normalise(record)
        key = json.dumps({k: v for k, v in record.items() if k != 'code_version'}, sort_keys=True)
        by_fingerprint.setdefault(lot.fingerprint(record), record)
        if key in seen:
            continue
        seen.add(key)
        if reference is None:
            reference_who, reference = who, record
            merged_pseudos.update(record.get('pseudopotentials') or {})
            continue
        found = lot.differences({**reference, 'pseudopotentials': merged_pseudos}, record)
        if found:
            problems.append(f'{who} differs from {reference_who}: {"; ".join(found)}')
        for element, name in (record.get('pseudopotentials') or {}).items():
            merged_pseudos.setdefault(element, name)
    if reference is None:
        raise ValueError('a dataset needs at least one label')
    mixed = bool(problems)
    if mixed and not allow_mixed:
        raise MixedLevelOfTheoryError(
            'labels with different levels of theory cannot be mixed in one training set: '
            + ' | '.join(problems[:5])
            + (f' | ... and {len(problems) - 5} more' if len(problems) > 5 else '')
            + '. Pass allow_mixed=True to build it anyway.'
        )
    common = dict(reference)
    if merged_pseudos:
        common['pseudopotentials'] = dict(sorted(merged_pseudos.items()))
    return common, by_fingerprint, mixed


def _assign_splits(
    n_new: int, n_previous: int, previous_counts: dict[str, int], valid_fraction: float, test_fraction: float, seed: int
) -> list[str]:
    """Assign ``n_new`` frames to splits so that the whole dataset approaches the requested fractions.

    The number of new valid (test) frames is ``round(fraction * (n_previous + n_new))`` minus the parent's count
    (at least one valid frame in all when the valid fraction is non-zero and there are two frames), clipped to what is
    available, so small growth steps do not drift the fractions. Which new frames go where is a
    permutation drawn from ``numpy.random.default_rng(seed)``: the same frames and seed give the same splits.
    """
    total = n_previous + n_new
    n_test = int(np.clip(round(test_fraction * total) - previous_counts.get('test', 0), 0, n_new))
    # Training needs a validation frame: a non-zero fraction of a small set still gets one (when it has two frames).
    valid_target = round(valid_fraction * total)
    if valid_fraction > 0 and total >= 2:
        valid_target = max(valid_target, 1)
    n_valid = int(np.clip(valid_target - previous_counts.get('valid', 0), 0, n_new - n_test))
    order = np.random.default_rng(seed).permutation(n_new)
    splits = ['train'] * n_new
    for position, index in enumerate(order):
        if position < n_test:
            splits[index] = 'test'
        elif position < n_test + n_valid:
            splits[index] = 'valid'
    return splits


def _keep_every_element_in_train(splits: list[str], symbols: list[set[str]], train_elements: set[str]) -> list[str]:
    """Move held-out frames to ``train`` until every element of the frames is in a training frame.

    Training refuses a validation or test frame with an element absent from training (a small campaign whose only
    LiPF6 frame was drawn for validation stopped there), so the first held-out frame (in frame order) that holds
    a missing element goes to ``train``. If that empties the validation split, the first training frame whose
    elements are all still covered by the other training frames takes its place.

    :param splits: the drawn split of each new frame.
    :param symbols: the element set of each new frame.
    :param train_elements: the elements already in training frames of the parent dataset.
    """
    splits = list(splits)
    had_valid = 'valid' in splits
    covered = set(train_elements).union(*(symbols[i] for i, split in enumerate(splits) if split == 'train'))
    for index, split in enumerate(splits):
        if split != 'train' and not symbols[index] <= covered:
            splits[index] = 'train'
            covered |= symbols[index]
    if had_valid and 'valid' not in splits:
        for index, split in enumerate(splits):
            others = set(train_elements).union(
                *(symbols[j] for j, other in enumerate(splits) if other == 'train' and j != index)
            )
            if split == 'train' and symbols[index] <= others:
                splits[index] = 'valid'
                break
    return splits


def _validate_settings(allow_mixed, valid_fraction, test_fraction, seed) -> dict:
    for name, value in (('valid_fraction', valid_fraction), ('test_fraction', test_fraction)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value < 1.0:
            raise ValueError(f'{name} must be a number in [0, 1), got {value!r}')
    if valid_fraction + test_fraction >= 1.0:
        raise ValueError(f'valid_fraction + test_fraction must be below 1, got {valid_fraction + test_fraction}')
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
    return {
        'allow_mixed': bool(allow_mixed),
        'valid_fraction': float(valid_fraction),
        'test_fraction': float(test_fraction),
        'seed': int(seed),
    }


def label_rows(labels: Sequence) -> list[dict]:
    """Return ``{'pk', 'uuid', 'attributes', 'repository_metadata', 'hash'}`` of stored labels, in one query.

    ``labels`` are LabelData nodes or their PKs. AiiDA re-reads a stored node from the database on every attribute
    access (and every node a query returns has already expired), so over thousands of labels the dataset code reads
    what it needs in bulk instead. ``hash`` is the label's stored ``_aiida_hash`` (``None`` if it has none).

    :raises ValueError: a PK that is not a stored LabelData.
    """
    from aiida_sianode.data.label import LabelData

    pks = [int(label) if isinstance(label, int | np.integer) else label.pk for label in labels]
    query = orm.QueryBuilder().append(
        LabelData,
        filters={'id': {'in': sorted(set(pks))}},
        project=['id', 'uuid', 'attributes', 'repository_metadata', 'extras._aiida_hash'],
    )
    found = {row[0]: row for row in query.iterall(batch_size=10_000)}
    missing = [pk for pk in pks if pk not in found]
    if missing:
        raise ValueError(f'{len(missing)} of the labels are not stored LabelData nodes, e.g. PK {missing[0]}')
    return [dict(zip(('pk', 'uuid', 'attributes', 'repository_metadata', 'hash'), found[pk])) for pk in pks]


def _input_label_rows(process_pk: int) -> list[dict]:
    """Return the label rows (see :func:`label_rows`) of the inputs of process ``process_pk``, in input order."""
    from aiida_sianode.data.label import LabelData

    query = orm.QueryBuilder()
    query.append(orm.ProcessNode, filters={'id': process_pk}, tag='process')
    query.append(
        LabelData,
        with_outgoing='process',
        edge_filters={'type': 'input_calc'},
        edge_project=['label'],
        project=['id', 'uuid', 'attributes', 'repository_metadata'],
    )
    rows = []
    for pk, uuid, attributes, metadata, link_label in query.iterall():
        rows.append({'pk': pk, 'uuid': uuid, 'attributes': attributes, 'repository_metadata': metadata})
        rows[-1]['index'] = int(link_label.rsplit('_', 1)[-1])
    return sorted(rows, key=lambda row: row['index'])


def read_label_arrays(rows: Sequence[dict]) -> list[dict[str, np.ndarray]]:
    """Return the arrays of many stored labels (rows of :func:`label_rows`), read in one pass over the repository.

    ``label.get_array`` opens the object store once per array, which dominates the cost of building a dataset from
    thousands of labels; this asks the repository backend for all objects at once (identical arrays, stored once
    by the content-addressed store, are read once). Falls back to ``get_array`` when the backend cannot stream.
    """
    from aiida.manage import get_manager

    wanted: dict[str, list[tuple[int, str]]] = {}
    for index, row in enumerate(rows):
        for filename, entry in ((row['repository_metadata'] or {}).get('o') or {}).items():
            if filename.endswith('.npy') and entry.get('k'):
                wanted.setdefault(entry['k'], []).append((index, filename[:-4]))
    arrays: list[dict[str, np.ndarray]] = [{} for _ in rows]
    try:
        backend = get_manager().get_profile_storage().get_repository()
        for key, stream in backend.iter_object_streams(list(wanted)):
            value = np.load(io.BytesIO(stream.read()), allow_pickle=False)
            for index, name in wanted.pop(key):
                arrays[index][name] = value
    except (NotImplementedError, AttributeError):
        pass
    for entries in wanted.values():  # whatever the bulk read did not deliver
        for index, name in entries:
            arrays[index][name] = orm.load_node(rows[index]['pk']).get_array(name)
    return arrays


def _label_to_frame(uuid: str, attributes: dict, arrays: dict[str, np.ndarray], source_uuid: str):
    """Return the ``ase.Atoms`` frame of label ``uuid`` (its ``attributes`` and ``arrays``) with the dataset's keys."""
    from ase import Atoms
    from ase.stress import full_3x3_to_voigt_6_stress

    atoms = Atoms(
        numbers=arrays['numbers'],
        positions=arrays['positions'],
        cell=arrays['cell'],
        pbc=np.asarray(arrays['pbc']).astype(bool),
    )
    atoms.info['REF_energy'] = float(attributes['energy'])
    atoms.arrays['REF_forces'] = np.array(arrays['forces'], dtype=float)
    if attributes.get('has_stress', False) and 'stress' in arrays:
        atoms.info['REF_stress'] = full_3x3_to_voigt_6_stress(np.asarray(arrays['stress'], dtype=float))
    atoms.info['config_type'] = attributes.get('config_type') or 'default'
    atoms.info['label_uuid'] = uuid
    # extxyz cannot hold an empty value (``key=`` swallows the next pair): empty fields are left out and
    # :func:`_normalise_info` restores them on reading.
    if source_uuid:
        atoms.info['source_uuid'] = source_uuid
    atoms.info['fingerprint'] = attributes['fingerprint']
    source = attributes.get('source') or {}
    for key, name in (('source_file', 'filename'), ('source_sha256', 'sha256')):
        if source.get(name):
            atoms.info[key] = str(source[name])
    if source.get('frame') is not None:
        atoms.info['source_frame'] = int(source['frame'])
    return atoms


def _dataset_contents(rows: Sequence[dict], parent: DatasetData | None, options: dict) -> tuple[bytes, dict]:
    """Return ``(extxyz bytes, attributes)`` of the dataset of label ``rows`` (see :func:`label_rows`) on ``parent``.

    Shared by the calcfunction and the bulk path, so that both store the same file and attributes. Reads the labels'
    attributes from ``rows`` and their arrays from the repository in one pass: no label node is loaded.
    """
    import ase.io

    from aiida_sianode.data.label import labelling_calculation_ids

    records = []
    previous_frames: list = []
    previous_counts = dict.fromkeys(SPLITS, 0)
    previous_uuids: list[str] = []
    previous_sources: dict[str, int] = {}
    if parent is not None:
        records.extend((f'parent dataset {parent.uuid}', record) for record in parent.levels_of_theory.values())
        previous_frames = parent._read_frames()
        previous_counts.update(parent.split_counts)
        previous_uuids = list(parent.label_uuids)
        previous_sources = dict(parent.base.attributes.get('sources') or {})
    records.extend(
        (f'label {row["uuid"]} ({row["attributes"]["formula"]})', row['attributes']['level_of_theory']) for row in rows
    )
    common, by_fingerprint, mixed = _check_levels_of_theory(records, options['allow_mixed'])

    creators = labelling_calculation_ids([(row['pk'], row['uuid'], row['attributes'].get('source')) for row in rows])
    frames = [
        _label_to_frame(row['uuid'], row['attributes'], arrays, (creators[row['uuid']] or (None, ''))[1])
        for row, arrays in zip(rows, read_label_arrays(rows))
    ]
    trainable = [index for index, atoms in enumerate(frames) if atoms.info['config_type'] != ISOLATED_ATOM]
    previous_trainable_counts = dict(previous_counts)
    previous_trainable = sum(1 for atoms in previous_frames if str(atoms.info.get('config_type')) != ISOLATED_ATOM)
    previous_trainable_counts['train'] = previous_trainable - previous_counts['valid'] - previous_counts['test']
    splits = _assign_splits(
        len(trainable),
        previous_trainable,
        previous_trainable_counts,
        options['valid_fraction'],
        options['test_fraction'],
        options['seed'],
    )
    parent_train_elements = {
        symbol
        for atoms in previous_frames
        if atoms.info.get('split') == 'train' and str(atoms.info.get('config_type')) != ISOLATED_ATOM
        for symbol in atoms.get_chemical_symbols()
    }
    splits = _keep_every_element_in_train(
        splits, [set(frames[index].get_chemical_symbols()) for index in trainable], parent_train_elements
    )
    for atoms in frames:
        atoms.info['split'] = 'train'
    for index, split in zip(trainable, splits):
        frames[index].info['split'] = split

    all_frames = previous_frames + frames
    handle = io.StringIO()
    ase.io.write(handle, all_frames, format='extxyz')

    counts = dict.fromkeys(SPLITS, 0)
    config_types: dict[str, int] = {}
    elements: set[str] = set()
    for atoms in all_frames:
        counts[str(atoms.info['split'])] += 1
        config_type = str(atoms.info.get('config_type', 'default'))
        config_types[config_type] = config_types.get(config_type, 0) + 1
        elements.update(atoms.get_chemical_symbols())
    sources = dict(previous_sources)
    for atoms in frames:
        key = 'calculation' if atoms.info.get('source_uuid') else f'file:{atoms.info.get("source_file", "unknown")}'
        sources[key] = sources.get(key, 0) + 1
    attributes = {
        'n_frames': len(all_frames),
        'n_new': len(frames),
        'elements': sorted(elements),
        'fingerprints': sorted(by_fingerprint),
        'level_of_theory': common,
        'levels_of_theory': by_fingerprint,
        'mixed': bool(mixed or (parent is not None and parent.mixed)),
        'split_counts': counts,
        'config_types': config_types,
        'sources': sources,
        'seed': options['seed'],
        'valid_fraction': options['valid_fraction'],
        'test_fraction': options['test_fraction'],
        'label_uuids': previous_uuids + [row['uuid'] for row in rows],
        'parent_uuid': parent.uuid if parent is not None else None,
    }
    return handle.getvalue().encode(), attributes


@calcfunction
def build_dataset_calcfunction(settings: orm.Dict, parent: DatasetData | None = None, **labels) -> DatasetData:
    """Build a :class:`DatasetData` from ``labels`` (dynamic namespace of LabelData), on top of ``parent``.

    Use :func:`build_dataset`, which validates the inputs first; this calcfunction is what links every label.
    """
    from aiida.engine import Process

    rows = _input_label_rows(Process.current().node.pk)
    if len(rows) != len(labels):
        raise TypeError(f'dataset inputs must all be LabelData: {len(labels) - len(rows)} are not')
    content, attributes = _dataset_contents(rows, parent, settings.get_dict())
    dataset = DatasetData(io.BytesIO(content), filename=FILENAME)
    dataset.base.attributes.set_many(attributes)
    return dataset


#: from this many labels on, :func:`build_dataset` writes the build node and its links in bulk (see ``bulk``)
BULK_MIN_LABELS = 100


def build_dataset(
    labels: Sequence,
    *,
    allow_mixed: bool = False,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.0,
    seed: int = 0,
    parent: DatasetData | None = None,
    bulk: bool | None = None,
) -> DatasetData:
    """Build and store a training set from stored ``labels`` (LabelData), linked to each of them.

    :param labels: the labels to add (for a child dataset only the new ones), as LabelData nodes or their PKs
        (at 10^5 labels, pass PKs from a query: loading the nodes alone takes minutes); each must be stored and
        appear once.
    :param allow_mixed: accept labels of different levels of theory (the dataset then has ``mixed=True`` and
        records every fingerprint); by default they are refused with :class:`MixedLevelOfTheoryError`.
    :param valid_fraction: target fraction of the (non-isolated-atom) frames in the ``valid`` split.
    :param test_fraction: target fraction in the ``test`` split.
    :param seed: seed of the split assignment of the new frames; the same labels and seed give the same splits.
    :param parent: an earlier DatasetData; its frames and splits are kept unchanged and the new labels appended.
    :param bulk: ``True``: write the ``build_dataset_calcfunction`` node, its input links and the dataset in one
        transaction without running the calcfunction (see :func:`_store_bulk`; the same node, attributes, links,
        hash and dataset); ``False``: run the calcfunction; ``None`` (default): bulk from :data:`BULK_MIN_LABELS`
        labels on, where the calcfunction's per-input hashing and link checks cost about a second per label.
    :return: the stored DatasetData, output of :func:`build_dataset_calcfunction`.
    """
    from aiida_sianode.data.label import LabelData

    options = _validate_settings(allow_mixed, valid_fraction, test_fraction, seed)
    labels = list(labels)
    if not labels:
        raise ValueError('build_dataset needs at least one label')
    for label in labels:
        if isinstance(label, bool) or not isinstance(label, LabelData | int | np.integer):
            raise TypeError(f'build_dataset takes LabelData nodes or their PKs, got {type(label).__name__}')
        if isinstance(label, LabelData) and not label.is_stored:
            raise ValueError(f'label {label} is not stored: store it (or take it from a calculation) first')
    rows = label_rows(labels)
    seen: set[str] = set()
    for row in rows:
        if row['uuid'] in seen:
            raise ValueError(f'label {row["uuid"]} is given twice')
        seen.add(row['uuid'])
    if parent is not None:
        if not isinstance(parent, DatasetData) or not parent.is_stored:
            raise TypeError(f'parent must be a stored DatasetData, got {parent!r}')
        already = seen.intersection(parent.label_uuids)
        if already:
            raise ValueError(f'{len(already)} label(s) are already in the parent dataset, e.g. {sorted(already)[0]}')
        if parent.mixed and not allow_mixed:
            raise MixedLevelOfTheoryError(
                f'the parent dataset {parent.uuid} mixes levels of theory ({len(parent.fingerprints)} fingerprints); '
                'pass allow_mixed=True to grow it'
            )
    # Compare levels of theory here, before anything is stored, so that the refusal costs nothing.
    records = []
    if parent is not None:
        records.extend((f'parent dataset {parent.uuid}', record) for record in parent.levels_of_theory.values())
    records.extend(
        (f'label {row["uuid"]} ({row["attributes"]["formula"]})', row['attributes']['level_of_theory']) for row in rows
    )
    _check_levels_of_theory(records, options['allow_mixed'])

    if bulk is None:
        bulk = len(rows) >= BULK_MIN_LABELS
    if bulk:
        return _store_bulk(rows, parent, options)
    nodes = [label if isinstance(label, LabelData) else orm.load_node(row['pk']) for label, row in zip(labels, rows)]
    inputs = {f'label_{index:06d}': label for index, label in enumerate(nodes)}
    if parent is not None:
        inputs['parent'] = parent
    return build_dataset_calcfunction(settings=orm.Dict(options), **inputs)


def _store_bulk(rows: Sequence[dict], parent: DatasetData | None, options: dict) -> DatasetData:
    """Store what running :func:`build_dataset_calcfunction` stores, with the label links written in bulk.

    aiida-core's engine, for a calcfunction with 10^5 inputs, recomputes the hash of every input (reading every
    array of every label from the repository) and validates each input link with its own queries. This writes the
    same provenance the way aiida-core's archive import does, in one database transaction:

    * a ``CalcFunctionNode`` with the calcfunction's process type, label, source file and attributes
      (``function_*``, ``version``, ``metadata_inputs``), finished with exit status 0 and sealed;
    * its ``INPUT_CALC`` links ``settings``, ``parent`` and ``label_NNNNNN`` (one per label, by ``bulk_insert``);
      a ``CALL_CALC`` link ``CALL`` from the process that is running, as the engine adds inside a workflow;
    * the ``DatasetData`` (from the same :func:`_dataset_contents`) as its ``CREATE`` output ``result``;
    * the node's ``_aiida_hash`` as AiiDA computes it, from the inputs' stored hashes instead of recomputed ones.
    """
    from aiida.common.hashing import make_hash
    from aiida.common.links import LinkType
    from aiida.engine import Process
    from aiida.manage import get_manager
    from aiida.orm.entities import EntityTypes
    from aiida.orm.nodes.caching import NodeCaching
    from aiida.plugins.utils import PluginVersionProvider
    from plumpy import ProcessState

    content, attributes = _dataset_contents(rows, parent, options)
    dataset = DatasetData(io.BytesIO(content), filename=FILENAME)
    dataset.base.attributes.set_many(attributes)

    function = build_dataset_calcfunction.process_class
    node = orm.CalcFunctionNode()
    node.set_process_type(f'{build_dataset_calcfunction.__module__}.{build_dataset_calcfunction.__name__}')
    node.set_process_label(build_dataset_calcfunction.__name__)
    node.label = build_dataset_calcfunction.__name__
    node.store_source_info(function._func)
    node.base.attributes.set_many(PluginVersionProvider().get_version_info(function))
    node.set_metadata_inputs(None)

    settings = orm.Dict(options)
    input_hashes = {}
    storage = get_manager().get_profile_storage()
    caller = Process.current()
    with storage.transaction():
        settings.store()
        node.base.links.add_incoming(settings, LinkType.INPUT_CALC, 'settings')
        input_hashes['settings'] = settings.base.caching.get_hash()
        if parent is not None:
            node.base.links.add_incoming(parent, LinkType.INPUT_CALC, 'parent')
            input_hashes['parent'] = parent.base.caching.get_hash() or parent.base.caching.compute_hash()
        node.store()
        links = []
        for index, row in enumerate(rows):
            link_label = f'label_{index:06d}'
            links.append({'input_id': row['pk'], 'output_id': node.pk, 'label': link_label, 'type': 'input_calc'})
            input_hashes[link_label] = row['hash'] or orm.load_node(row['pk']).base.caching.compute_hash()
        if caller is not None:
            links.append({'input_id': caller.node.pk, 'output_id': node.pk, 'label': 'CALL', 'type': 'call_calc'})
        storage.bulk_insert(EntityTypes.LINK, links)
        dataset.base.links.add_incoming(node, LinkType.CREATE, 'result')
        dataset.store()
        node.set_process_state(ProcessState.FINISHED)
        node.set_exit_status(0)
        # what ProcessNodeCaching hashes, with the inputs' stored hashes: its own method would recompute all of them
        objects = NodeCaching.get_objects_to_hash(node.base.caching)
        objects['inputs'] = input_hashes
        node.base.extras.set(node.base.caching._HASH_EXTRA_KEY, make_hash(objects))
        node.seal()
    return dataset
