"""The bulk path for labels: store thousands of :class:`~aiida_sianode.data.label.LabelData` per transaction.

``LabelData.store()`` costs about 0.1-0.2 s per label on this project's machines: AiiDA opens the object store and
fsyncs one loose file per array, then inserts the node row by row. This module stores the same nodes in batches:

* every label is still one ``LabelData`` node, with the same attributes, arrays, ``_aiida_hash`` extra and
  provenance (its ``source`` record: the file's SHA-256 and frame for imported labels) as ``label.store()`` gives;
* its arrays go straight into the packed store of the profile's disk-objectstore (one pack write and one fsync
  per batch, not one loose file per array); identical arrays (the same cell, atomic numbers, pbc) are one object;
* the node rows (and, with a group, the group memberships) of a batch are inserted by the storage backend's
  ``bulk_insert`` in one database transaction: a batch is stored whole or not at all, and a failed batch deletes
  the batches stored before it, so a call stores all its labels or none. Objects written to the
  pack for a batch whose transaction fails are orphans that ``verdi storage maintain`` removes, as for any
  failed ``store()``.

What it does not do: labels made by a calculation are outputs of that calculation and are stored by AiiDA's engine
with their ``CREATE`` link (one per CalcJob); the bulk path is for labels without a creator (imports), so it refuses
nothing but never adds links.

Writing to packs is a maintenance operation of disk-objectstore: two bulk stores into one profile are serialised
by a lock file in the repository folder, but a ``verdi storage maintain`` packing loose objects at the same time
is not guarded against; run maintenance between imports.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import pathlib
from collections.abc import Iterable
from typing import Any

import numpy as np
from aiida import orm

from aiida_sianode.data.label import LabelData, label_contents

__all__ = ('DEFAULT_BATCH', 'LabelRecord', 'store_labels')

#: labels per transaction; 2,000 labels of 64 atoms are about 20 MB of arrays held in memory at once
DEFAULT_BATCH = 2000
_NODE_TYPE = 'data.sianode.label.LabelData.'


class LabelRecord:
    """An unstored label as plain data: the attributes and arrays a ``LabelData`` would hold, without its sandbox.

    Building a ``LabelData`` writes each array to a temporary folder; at 10^5 labels that alone takes minutes and
    millions of files. A record holds the same checked content (made by :func:`label_contents`) in memory and has
    the read-only properties of ``LabelData`` the importers use. :func:`store_labels` stores it as a ``LabelData``
    node, after which ``pk`` and ``uuid`` are set.
    """

    def __init__(self, atoms, **kwargs):
        """Check and hold the label of ``atoms``; the keyword arguments are those of :class:`LabelData`."""
        self.attributes, self.arrays = label_contents(atoms, **kwargs)
        self.pk: int | None = None
        self.uuid: str | None = None

    @property
    def is_stored(self) -> bool:
        """Whether :func:`store_labels` stored this label."""
        return self.pk is not None

    energy = property(lambda self: self.attributes['energy'], doc='Total energy in eV.')
    natoms = property(lambda self: self.attributes['natoms'], doc='Number of atoms.')
    formula = property(lambda self: self.attributes['formula'], doc='Hill formula.')
    elements = property(lambda self: self.attributes['elements'], doc='Sorted chemical symbols present.')
    max_force = property(lambda self: self.attributes['max_force'], doc='Largest atomic force norm in eV/Å.')
    level_of_theory = property(lambda self: self.attributes['level_of_theory'], doc='Normalised level of theory.')
    fingerprint = property(lambda self: self.attributes['fingerprint'], doc='SHA-256 of the level of theory.')
    source = property(lambda self: self.attributes['source'], doc='Where the label comes from.')
    config_type = property(lambda self: self.attributes['config_type'], doc='Kind of structure.')
    forces = property(lambda self: self.arrays['forces'], doc='Forces in eV/Å, shape (natoms, 3).')
    stress = property(lambda self: self.arrays.get('stress'), doc='Stress in eV/Å^3 (3x3) or None.')

    def get_node(self) -> LabelData:
        """Return the stored ``LabelData`` node (after :func:`store_labels`)."""
        if self.pk is None:
            raise ValueError('the label is not stored yet: call store_labels first')
        return orm.load_node(self.pk)

    def __str__(self) -> str:
        return f'{self.formula} ({self.natoms} atoms) E={self.energy:.6f} eV'


def _contents(label) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Return ``(label attributes without the array shapes, arrays)`` of an unstored LabelData or a LabelRecord."""
    if isinstance(label, LabelRecord):
        return label.attributes, label.arrays
    if not isinstance(label, LabelData):
        raise TypeError(f'store_labels takes LabelData or LabelRecord, got {type(label).__name__}')
    if label.is_stored:
        raise ValueError(f'label {label.pk} is already stored')
    attributes = {key: value for key, value in label.base.attributes.all.items() if not key.startswith('array|')}
    return attributes, {name: label.get_array(name) for name in label.get_arraynames()}


def _npy(array: np.ndarray) -> bytes:
    """The bytes ``ArrayData.set_array`` writes for ``array`` (so that the same array gives the same object)."""
    handle = io.BytesIO()
    np.save(handle, array, allow_pickle=False)
    return handle.getvalue()


@contextlib.contextmanager
def _pack_lock(container):
    """Serialise pack writes of concurrent bulk stores into one repository."""
    path = pathlib.Path(container.get_folder()) / 'sianode-bulk.lock'
    with open(path, 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _put_objects(repository, contents: dict[str, bytes]) -> None:
    """Put the objects ``{sha256: bytes}`` that the repository lacks into its packed store (loose files otherwise)."""
    keys = list(contents)
    missing = [key for key, present in zip(keys, repository.has_objects(keys)) if not present]
    if not missing:
        return
    container = getattr(repository, '_container', None)
    if container is None or getattr(container, 'hash_type', None) != 'sha256':
        for key in missing:  # another repository backend: its own keys, one object at a time
            stored = repository.put_object_from_filelike(io.BytesIO(contents[key]))
            if stored != key:
                raise RuntimeError(f'the repository keys objects by another hash ({stored} for sha256 {key})')
        return
    with container as opened, _pack_lock(opened):
        stored = opened.add_objects_to_pack([contents[key] for key in missing], compress=False)
    if stored != missing:
        raise RuntimeError('the packed store returned other keys than the sha256 of the objects')


def _hash(attributes: dict[str, Any], keys: dict[str, str]) -> str:
    """Return the ``_aiida_hash`` ``LabelData.store()`` would compute (see ``NodeCaching.get_objects_to_hash``)."""
    from aiida.common.hashing import make_hash

    repository = {'__dirnames__': [], **{f'{name}.npy': key for name, key in keys.items()}}
    ignored = set(LabelData._hash_ignored_attributes) | set(LabelData._updatable_attributes)
    objects = {
        'class': str(LabelData),
        'attributes': {key: value for key, value in attributes.items() if key not in ignored},
        'repository_hash': make_hash(repository),
        'computer_uuid': None,
    }
    return make_hash(objects)


def store_labels(
    labels: Iterable, *, group: orm.Group | None = None, batch_size: int = DEFAULT_BATCH, progress=None
) -> list[int]:
    """Store labels (unstored ``LabelData`` or :class:`LabelRecord`) in batches; return their PKs in order.

    Each batch is one transaction: its arrays are written to the packed store, then its node rows (and group
    memberships, with ``group``) are inserted at once. When a batch fails, the batches stored before it are deleted
    again, so the call stores all the labels or none. A stored ``LabelData`` given here is refused before anything
    is stored; after the call, records carry ``pk`` and ``uuid`` (``LabelData`` objects stay unstored: load the
    nodes by PK).

    :param group: a stored group to add every label to.
    :param batch_size: labels per transaction.
    :param progress: called as ``progress(stored, total)`` after each batch.
    """
    from aiida.common import timezone
    from aiida.common.utils import get_new_uuid
    from aiida.manage import get_manager
    from aiida.orm.entities import EntityTypes
    from aiida.orm.implementation.utils import clean_value

    labels = list(labels)
    if batch_size < 1:
        raise ValueError(f'batch_size must be at least 1, got {batch_size}')
    if group is not None and not group.is_stored:
        raise ValueError('the group must be stored before labels are added to it')
    contents = [_contents(label) for label in labels]  # every refusal before anything is stored
    storage = get_manager().get_profile_storage()
    repository = storage.get_repository()
    user_id = orm.User.collection.get_default().pk
    pks: list[int] = []
    try:
        for start in range(0, len(labels), batch_size):
            rows, objects, uuids = [], {}, []
            for attributes, arrays in contents[start : start + batch_size]:
                keys = {}
                for name, array in arrays.items():
                    data = _npy(array)
                    key = hashlib.sha256(data).hexdigest()
                    objects[key] = data
                    keys[name] = key
                full = clean_value(
                    {**attributes, **{f'array|{name}': list(array.shape) for name, array in arrays.items()}}
                )
                now = timezone.now()
                uuids.append(get_new_uuid())
                rows.append(
                    {
                        'uuid': uuids[-1],
                        'node_type': _NODE_TYPE,
                        'process_type': None,
                        'label': '',
                        'description': '',
                        'ctime': now,
                        'mtime': now,
                        'user_id': user_id,
                        'dbcomputer_id': None,
                        'attributes': full,
                        'extras': {'_aiida_hash': _hash(full, keys)},
                        'repository_metadata': {'o': {f'{name}.npy': {'k': key} for name, key in keys.items()}},
                    }
                )
            _put_objects(repository, objects)
            with storage.transaction():
                storage.bulk_insert(EntityTypes.NODE, rows)
                # the ids come back in no guaranteed order (PostgreSQL's multi-row insert): map them by UUID
                query = orm.QueryBuilder().append(orm.Node, filters={'uuid': {'in': uuids}}, project=['uuid', 'id'])
                ids = dict(query.iterall())
                batch = [ids[uuid] for uuid in uuids]
                if group is not None:
                    storage.bulk_insert(
                        EntityTypes.GROUP_NODE, [{'dbgroup_id': group.pk, 'dbnode_id': pk} for pk in batch]
                    )
            for label, pk, uuid in zip(labels[start : start + batch_size], batch, uuids):
                if isinstance(label, LabelRecord):
                    label.pk, label.uuid = pk, uuid
            pks.extend(batch)
            if progress is not None:
                progress(len(pks), len(labels))
    except BaseException:
        if pks:  # the batches stored before the failure go too: all of them or none
            with storage.transaction():
                storage.delete_nodes_and_connections(pks)
        for label in labels:
            if isinstance(label, LabelRecord):
                label.pk = label.uuid = None
        raise
    return pks
