"""Queries over many labels that project columns with ``QueryBuilder`` and load no node.

At 10^5 labels, loading each node costs about a millisecond and a query that lists 10^5 PKs in an ``IN`` clause
exceeds what SQLite accepts, so these functions filter and join in the database and return plain rows.
:mod:`aiida_sianode.provenance` holds the graph walks (labels behind a potential, potentials using a label).
"""

from __future__ import annotations

from collections.abc import Iterable

from aiida import orm

from aiida_sianode.data.label import LabelData

__all__ = ('LABEL_COLUMNS', 'find_labels')

#: what :func:`find_labels` returns per label unless told otherwise
LABEL_COLUMNS = ('id', 'uuid', 'attributes.formula', 'attributes.energy', 'attributes.natoms')


def find_labels(
    *,
    fingerprint: str | None = None,
    method: str | None = None,
    code: str | None = None,
    elements: Iterable[str] | None = None,
    group: str | None = None,
    project: Iterable[str] = LABEL_COLUMNS,
) -> list[tuple]:
    """Return one row per label with the given level of theory and element set, ordered by PK.

    :param fingerprint: the level-of-theory fingerprint (see :mod:`aiida_sianode.common.level_of_theory`).
    :param method: the ``method`` of the level of theory (for example ``PBE``), matched exactly.
    :param code: the ``code`` of the level of theory (``vasp``, ``castep``, ``gpaw``, ``xtb``).
    :param elements: exactly these elements (the label's ``elements`` attribute, a sorted list).
    :param group: only labels in the group of this name.
    :param project: the columns of each row (QueryBuilder projections of the label).
    :raises ValueError: no filter given (the answer would be every label), or an empty element set.
    """
    filters: dict = {}
    if fingerprint is not None:
        filters['attributes.fingerprint'] = fingerprint
    if method is not None:
        filters['attributes.level_of_theory.method'] = method
    if code is not None:
        filters['attributes.level_of_theory.code'] = code
    if elements is not None:
        wanted = sorted(set(elements))
        if not wanted:
            raise ValueError('elements: give at least one element')
        filters['attributes.elements'] = {'and': [{'contains': wanted}, {'of_length': len(wanted)}]}
    if not filters and group is None:
        raise ValueError('give at least one of fingerprint, method, code, elements or group')
    query = orm.QueryBuilder()
    if group is not None:
        query.append(orm.Group, filters={'label': group}, tag='group')
        query.append(LabelData, with_group='group', filters=filters, project=list(project), tag='label')
    else:
        query.append(LabelData, filters=filters, project=list(project), tag='label')
    query.order_by({'label': {'id': 'asc'}})
    return [tuple(row) for row in query.iterall(batch_size=10_000)]
