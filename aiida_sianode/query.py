"""Queries over many labels that project columns with ``QueryBuilder`` and load no node.

At 10^5 labels, loading each node costs about a millisecond and a query that lists 10^5 PKs in an ``IN`` clause
exceeds what SQLite accepts, so these functions filter and join in the database and return plain rows.
:mod:`aiida_sianode.provenance` holds the graph walks (labels behind a potential, potentials using a label).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from aiida import orm

from aiida_sianode.data.label import LabelData

__all__ = (
    'LABEL_COLUMNS',
    'calculations_behind_dataset_sql',
    'calculations_behind_labels_sql',
    'calculations_behind_potential_sql',
    'dataset_pk_of_potential',
    'find_labels',
    'find_labels_sql',
    'label_counts',
    'label_counts_querybuilder',
    'label_ids_of_dataset_sql',
    'summarise_dataset_sql',
    'summarise_potential_sql',
)

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


# --- answers computed in the database: SQLAlchemy core on the profile's own session --------------------------------
#
# QueryBuilder turns every row into Python objects through its own machinery (about 33 µs per row for ids, 115-190 µs
# with JSON records): at 10^5 rows that alone misses one second. The functions below send one SQL statement over
# aiida-core's tables (``db_dbnode``, ``db_dblink``, ``db_dbcomputer``: the same on SQLite and PostgreSQL), walk the
# dataset generations with a recursive CTE and aggregate with ``GROUP BY``; their answers equal those of the
# QueryBuilder functions in :mod:`aiida_sianode.provenance` (tested on both backends).

_LABEL_TYPE = 'data.sianode.label.LabelData.'
_DATASET_TYPE = 'data.sianode.dataset.DatasetData.'
_CALCFUNCTION_PREFIX = 'process.calculation.calcfunction.'
_CALCJOB_PREFIX = 'process.calculation.calcjob.'
_CODE_PREFIX = 'data.core.code.'


def _storage():
    """Return ``(session, node table, link table, computer table)`` of the loaded profile's storage."""
    from aiida.manage import get_manager

    session = get_manager().get_profile_storage().get_session()
    if session.get_bind().dialect.name == 'sqlite':
        from aiida.storage.sqlite_zip.models import DbComputer, DbLink, DbNode
    else:
        from aiida.storage.psql_dos.models.computer import DbComputer
        from aiida.storage.psql_dos.models.node import DbLink, DbNode
    return session, DbNode.__table__, DbLink.__table__, DbComputer.__table__


def _text(column, *path: str):
    """The JSON value at ``path`` of a JSON column as text (``->>`` on PostgreSQL, ``json_extract`` on SQLite)."""
    return column[path if len(path) > 1 else path[0]].as_string()


def _dataset_chain(dataset_pk: int):
    """A recursive CTE of the ids of ``dataset_pk`` and its parent datasets (``parent`` input of each build)."""
    import sqlalchemy as sa

    _, node, link, _ = _storage()
    chain = sa.select(sa.literal(dataset_pk).label('id')).cte('chain', recursive=True)
    create, build, parent_link, parent = link.alias(), node.alias(), link.alias(), node.alias()
    step = (
        sa.select(parent.c.id)
        .select_from(chain)
        .join(create, sa.and_(create.c.output_id == chain.c.id, create.c.type == 'create'))
        .join(build, sa.and_(build.c.id == create.c.input_id, build.c.node_type.like(f'{_CALCFUNCTION_PREFIX}%')))
        .join(
            parent_link,
            sa.and_(
                parent_link.c.output_id == build.c.id,
                parent_link.c.type == 'input_calc',
                parent_link.c.label == 'parent',
            ),
        )
        .join(parent, sa.and_(parent.c.id == parent_link.c.input_id, parent.c.node_type == _DATASET_TYPE))
    )
    return chain.union_all(step)


def _dataset_labels(dataset_pk: int):
    """A select of ``(id, uuid)`` of the labels that are inputs of the builds of ``dataset_pk`` and its parents."""
    import sqlalchemy as sa

    _, node, link, _ = _storage()
    chain = _dataset_chain(dataset_pk)
    create, build, inputs, label = link.alias(), node.alias(), link.alias(), node.alias()
    return (
        sa.select(label.c.id, label.c.uuid)
        .select_from(chain)
        .join(create, sa.and_(create.c.output_id == chain.c.id, create.c.type == 'create'))
        .join(build, sa.and_(build.c.id == create.c.input_id, build.c.node_type.like(f'{_CALCFUNCTION_PREFIX}%')))
        .join(inputs, sa.and_(inputs.c.output_id == build.c.id, inputs.c.type == 'input_calc'))
        .join(label, sa.and_(label.c.id == inputs.c.input_id, label.c.node_type == _LABEL_TYPE))
    )


def _has_builder(dataset_pk: int) -> bool:
    import sqlalchemy as sa

    session, node, link, _ = _storage()
    query = (
        sa.select(link.c.id)
        .join(node, node.c.id == link.c.input_id)
        .where(
            link.c.output_id == dataset_pk,
            link.c.type == 'create',
            node.c.node_type.like(f'{_CALCFUNCTION_PREFIX}%'),
        )
        .limit(1)
    )
    return session.execute(query).first() is not None


def _frame_order(dataset_pk: int) -> dict[str, int]:
    """``{label uuid: frame index}`` from the dataset's ``label_uuids`` attribute, read as one JSON value (AiiDA's
    attribute access would load and deep-copy every attribute of the node: 10^5 uuids)."""
    import sqlalchemy as sa

    session, node, _, _ = _storage()
    uuids = session.execute(sa.select(node.c.attributes['label_uuids']).where(node.c.id == dataset_pk)).scalar()
    return {uuid: index for index, uuid in enumerate(uuids or [])}


def _dataset_pk(dataset) -> int:
    return dataset if isinstance(dataset, int) else dataset.pk


def dataset_pk_of_potential(potential) -> int:
    """The pk of the dataset the potential was trained on (the ``dataset`` input of its creator), in one statement
    that loads no node; :func:`aiida_sianode.provenance.dataset_of_potential` when the potential has no creator."""
    import sqlalchemy as sa

    session, node, link, _ = _storage()
    create, dataset_link, dataset = link.alias(), link.alias(), node.alias()
    query = (
        sa.select(dataset.c.id)
        .select_from(create)
        .join(
            dataset_link,
            sa.and_(
                dataset_link.c.output_id == create.c.input_id,
                dataset_link.c.type == 'input_calc',
                dataset_link.c.label == 'dataset',
            ),
        )
        .join(dataset, sa.and_(dataset.c.id == dataset_link.c.input_id, dataset.c.node_type == _DATASET_TYPE))
        .where(create.c.output_id == _dataset_pk(potential), create.c.type == 'create')
        .order_by(dataset.c.id)
        .limit(1)
    )
    found = session.execute(query).scalar()
    if found is not None:
        return found
    from aiida_sianode.provenance import dataset_of_potential

    return dataset_of_potential(potential if not isinstance(potential, int) else orm.load_node(potential)).pk


def label_ids_of_dataset_sql(dataset: orm.Node | int) -> list[tuple[int, str]]:
    """:func:`aiida_sianode.provenance.label_ids_of_dataset` in one SQL statement: ``(pk, uuid)`` of every label of
    ``dataset`` and its parents, in frame order, from a recursive CTE over the build links.

    A dataset in the chain without a build calcfunction (stored by hand) is answered as the QueryBuilder function
    does, from its ``label_uuids``.
    """
    import sqlalchemy as sa

    from aiida_sianode.provenance import label_ids_of_dataset

    session, pk = _storage()[0], _dataset_pk(dataset)
    chain = [row[0] for row in session.execute(sa.select(_dataset_chain(pk).c.id)).all()]
    if not _has_builder(chain[-1]):  # the hand-made dataset's fallback, a single query
        return label_ids_of_dataset(orm.load_node(pk) if isinstance(dataset, int) else dataset)
    rows = [(label, str(uuid)) for label, uuid in session.execute(_dataset_labels(pk)).all()]
    order = _frame_order(pk)
    rows.sort(key=lambda row: order.get(row[1], len(order)))
    return rows


def _calculation_rows(labels_select, summary: bool = False):
    """The statement of :func:`calculations_behind_labels_sql` for the labels of ``labels_select`` (a select whose
    first column is the label id): per label its columns, its creator and the CalcJob behind a calcfunction creator.
    ``summary``: the columns :func:`summarise_dataset_sql` groups and counts instead of the records (each JSON value
    extracted costs the database a parse of the attributes on SQLite)."""
    import sqlalchemy as sa

    _, node, link, computer = _storage()
    wanted = labels_select.subquery('wanted')
    label, create, creator = node.alias('label'), link.alias('creator_link'), node.alias('creator')
    kind = _text(label.c.attributes, 'source', 'kind')
    labelled = (
        sa.select(
            label.c.id,
            _text(label.c.attributes, 'fingerprint').label('fingerprint'),
            *(
                (
                    _text(label.c.attributes, 'source', 'filename').label('filename'),
                    _text(label.c.attributes, 'level_of_theory', 'method').label('method'),
                    _text(label.c.attributes, 'level_of_theory', 'code').label('lot_code'),
                )
                if summary
                else (
                    label.c.uuid,
                    _text(label.c.attributes, 'formula').label('formula'),
                    label.c.attributes['level_of_theory'].label('level_of_theory'),
                    label.c.attributes['source'].label('source'),
                )
            ),
            sa.case((sa.func.coalesce(kind, '') == 'file', None), else_=creator.c.id).label('creator_id'),
            creator.c.node_type.label('creator_type'),
        )
        .select_from(wanted)
        .join(label, label.c.id == next(iter(wanted.c)))
        .outerjoin(create, sa.and_(create.c.output_id == label.c.id, create.c.type == 'create'))
        .outerjoin(creator, sa.and_(creator.c.id == create.c.input_id, creator.c.node_type.like('process.%')))
    ).cte('labelled')
    # the CalcJob behind a calcfunction creator: the lowest-pk CalcJob that created one of the function's inputs
    functions = (
        sa.select(labelled.c.creator_id.label('id'))
        .where(labelled.c.creator_type.like(f'{_CALCFUNCTION_PREFIX}%'), labelled.c.creator_id.is_not(None))
        .distinct()
        .cte('functions')
    )
    inputs, data, made, job = link.alias(), node.alias(), link.alias(), node.alias()
    behind = (
        sa.select(functions.c.id.label('function_id'), sa.func.min(job.c.id).label('job_id'))
        .select_from(functions)
        .join(inputs, sa.and_(inputs.c.output_id == functions.c.id, inputs.c.type == 'input_calc'))
        .join(data, sa.and_(data.c.id == inputs.c.input_id, data.c.node_type.like('data.%')))
        .join(made, sa.and_(made.c.output_id == data.c.id, made.c.type == 'create'))
        .join(job, sa.and_(job.c.id == made.c.input_id, job.c.node_type.like(f'{_CALCJOB_PREFIX}%')))
        .group_by(functions.c.id)
        .cte('behind')
    )
    calculation_id = sa.func.coalesce(behind.c.job_id, labelled.c.creator_id)
    calculation, code_link, code, host = node.alias('calculation'), link.alias(), node.alias('code'), computer.alias()
    code_label = sa.case(
        (sa.func.coalesce(host.c.label, '') == '', code.c.label), else_=code.c.label + '@' + host.c.label
    )
    return (
        sa.select(
            *(
                (labelled.c.fingerprint, labelled.c.filename, labelled.c.method, labelled.c.lot_code)
                if summary
                else (
                    labelled.c.id,
                    labelled.c.uuid,
                    labelled.c.formula,
                    labelled.c.fingerprint,
                    labelled.c.level_of_theory,
                    labelled.c.source,
                )
            ),
            calculation.c.id.label('calculation_id'),
            calculation.c.uuid.label('calculation_uuid'),
            _text(calculation.c.attributes, 'process_label').label('process_label'),
            code_label.label('code'),
        )
        .select_from(labelled)
        .outerjoin(behind, behind.c.function_id == labelled.c.creator_id)
        .outerjoin(calculation, calculation.c.id == calculation_id)
        .outerjoin(
            code_link,
            sa.and_(
                code_link.c.output_id == calculation.c.id,
                code_link.c.type == 'input_calc',
                calculation.c.node_type.like(f'{_CALCJOB_PREFIX}%'),
                code_link.c.input_id.in_(sa.select(node.c.id).where(node.c.node_type.like(f'{_CODE_PREFIX}%'))),
            ),
        )
        .outerjoin(code, code.c.id == code_link.c.input_id)
        .outerjoin(host, host.c.id == code.c.dbcomputer_id)
    )


def _row_dict(row) -> dict:
    calculation = row.calculation_id is not None
    return {
        'label_uuid': str(row.uuid),
        'label_pk': row.id,
        'formula': row.formula,
        'calculation_uuid': str(row.calculation_uuid) if calculation else None,
        'calculation_pk': row.calculation_id,
        'process_label': row.process_label if calculation else None,
        'code': row.code if calculation else None,
        'fingerprint': row.fingerprint,
        'level_of_theory': row.level_of_theory,
        'source': row.source,
    }


def _pk_chunks(pks: list[int], size: int = 10_000):
    """Selects of the label ids among ``pks``, 10^4 at a time (SQLite takes at most 32,766 parameters)."""
    import sqlalchemy as sa

    node = _storage()[1]
    for start in range(0, len(pks), size):
        yield sa.select(node.c.id).where(node.c.id.in_(sorted(set(pks[start : start + size]))))


def calculations_behind_labels_sql(labels: Iterable) -> list[dict]:
    """:func:`aiida_sianode.provenance.calculations_behind_labels` in SQL: one statement per 10^4 labels (LabelData
    or pks), the same rows in the given order."""
    pks = [label if isinstance(label, int) else label.pk for label in labels]
    session = _storage()[0]
    found: dict[int, dict] = {}
    for chunk in _pk_chunks(pks):
        for row in session.execute(_calculation_rows(chunk)):
            found[row.id] = _row_dict(row)
    return [found[pk] for pk in pks]


def calculations_behind_dataset_sql(dataset: orm.Node | int) -> list[dict]:
    """The rows of :func:`calculations_behind_labels_sql` for every label of ``dataset`` (its parents' included), in
    frame order: one statement, the labels found by the recursive CTE of :func:`label_ids_of_dataset_sql`."""
    import sqlalchemy as sa

    session, pk = _storage()[0], _dataset_pk(dataset)
    chain = [row[0] for row in session.execute(sa.select(_dataset_chain(pk).c.id)).all()]
    if not _has_builder(chain[-1]):
        return calculations_behind_labels_sql([label for label, _ in label_ids_of_dataset_sql(dataset)])
    rows = [_row_dict(row) for row in session.execute(_calculation_rows(_dataset_labels(pk)))]
    order = _frame_order(pk)
    rows.sort(key=lambda row: order.get(row['label_uuid'], len(order)))
    return rows


def calculations_behind_potential_sql(potential) -> list[dict]:
    """:func:`aiida_sianode.provenance.calculations_behind_potential` in SQL (see
    :func:`calculations_behind_dataset_sql`)."""
    return calculations_behind_dataset_sql(dataset_pk_of_potential(potential))


def summarise_dataset_sql(dataset: orm.Node | int) -> list[dict]:
    """:func:`aiida_sianode.provenance.summarise_calculations` of every label of ``dataset`` counted by the database:
    one ``GROUP BY`` (made by, process, level of theory), no row per label reaches Python. Same rows, same order."""
    import sqlalchemy as sa

    session, pk = _storage()[0], _dataset_pk(dataset)
    chain = [row[0] for row in session.execute(sa.select(_dataset_chain(pk).c.id)).all()]
    if not _has_builder(chain[-1]):
        from aiida_sianode.provenance import summarise_calculations

        return summarise_calculations(calculations_behind_dataset_sql(dataset))
    result = [
        {
            'made_by': row.made_by,
            'process_label': row.process,
            'code': row.code,
            'method': row.method,
            'level_of_theory_code': row.lot_code,
            'fingerprint': row.fingerprint,
            'n_labels': row.n_labels,
            'n_calculations': row.n_calculations,
        }
        for row in session.execute(_summary_statement(pk))
    ]
    from aiida_sianode.provenance import summary_order

    return sorted(result, key=summary_order)


def _summary_statement(pk: int):
    """The ``GROUP BY`` of :func:`summarise_dataset_sql` over the labels of dataset ``pk``."""
    import sqlalchemy as sa

    rows = _calculation_rows(_dataset_labels(pk), summary=True).subquery('rows')
    made_by = sa.case(
        (rows.c.calculation_id.is_(None), 'file ' + sa.func.coalesce(rows.c.filename, 'unknown')),
        else_=sa.func.coalesce(
            sa.func.nullif(rows.c.code, ''), sa.func.nullif(rows.c.process_label, ''), 'calculation'
        ),
    ).label('made_by')
    process_label = sa.case((rows.c.calculation_id.is_(None), None), else_=rows.c.process_label).label('process')
    return sa.select(
        made_by,
        process_label,
        sa.func.min(rows.c.code).label('code'),
        sa.func.min(rows.c.method).label('method'),
        sa.func.min(rows.c.lot_code).label('lot_code'),
        rows.c.fingerprint,
        sa.func.count().label('n_labels'),
        sa.func.count(sa.distinct(rows.c.calculation_id)).label('n_calculations'),
    ).group_by(made_by, process_label, rows.c.fingerprint)


def summarise_potential_sql(potential) -> list[dict]:
    """:func:`summarise_dataset_sql` of the dataset the potential was trained on."""
    return summarise_dataset_sql(dataset_pk_of_potential(potential))


def label_counts(*, group: str | None = None) -> list[dict]:
    """Count the labels per level of theory and element set in the database (one ``GROUP BY``).

    Rows ``{'fingerprint', 'method', 'code', 'elements', 'n_labels'}``, most labels first, then by fingerprint and
    elements. ``group``: only the labels in the group of this name.
    """
    session = _storage()[0]
    result = [
        {
            'fingerprint': row.fingerprint,
            'method': row.method,
            'code': row.code,
            'elements': json.loads(row.elements) if row.elements is not None else None,
            'n_labels': row.n_labels,
        }
        for row in session.execute(_counts_statement(group))
    ]
    return sorted(result, key=_count_order)


def _counts_statement(group: str | None):
    """The ``GROUP BY`` of :func:`label_counts`."""
    import sqlalchemy as sa

    session, node, _, _ = _storage()
    label = node.alias('label')
    elements = label.c.attributes['elements']
    if session.get_bind().dialect.name == 'sqlite':
        elements_key = sa.func.json(sa.func.json_extract(label.c.attributes, '$.elements'))
    else:
        elements_key = sa.cast(elements, sa.Text)
    fingerprint = _text(label.c.attributes, 'fingerprint')  # one expression: PostgreSQL matches GROUP BY by its binds
    query = sa.select(
        fingerprint.label('fingerprint'),
        sa.func.min(_text(label.c.attributes, 'level_of_theory', 'method')).label('method'),
        sa.func.min(_text(label.c.attributes, 'level_of_theory', 'code')).label('code'),
        elements_key.label('elements'),
        sa.func.count().label('n_labels'),
    ).where(label.c.node_type == _LABEL_TYPE)
    if group is not None:
        groups, members = _groups_tables(session)
        query = query.where(
            label.c.id.in_(
                sa.select(members.c.dbnode_id)
                .join(groups, groups.c.id == members.c.dbgroup_id)
                .where(groups.c.label == group)
            )
        )
    return query.group_by(fingerprint, elements_key)


def _groups_tables(session):
    if session.get_bind().dialect.name == 'sqlite':
        from aiida.storage.sqlite_zip.models import DbGroup, DbGroupNodes
    else:
        from aiida.storage.psql_dos.models.group import DbGroup
        from aiida.storage.psql_dos.models.group import DbGroupNode as DbGroupNodes
    return DbGroup.__table__, DbGroupNodes.__table__


def find_labels_sql(
    *,
    fingerprint: str | None = None,
    method: str | None = None,
    code: str | None = None,
    elements: Iterable[str] | None = None,
    group: str | None = None,
    project: Iterable[str] = LABEL_COLUMNS,
) -> list[tuple]:
    """:func:`find_labels` in one SQLAlchemy-core statement: the same rows, in the same order (by PK).

    ``project`` takes node columns (``id``, ``uuid``, ``label``, ...) and ``attributes.<key>[.<key>...]``. The element
    set is matched as the JSON of the sorted symbols, which is how labels store their ``elements`` attribute.
    """
    import sqlalchemy as sa

    wanted = None
    if elements is not None:
        wanted = sorted(set(elements))
        if not wanted:
            raise ValueError('elements: give at least one element')
    if fingerprint is None and method is None and code is None and wanted is None and group is None:
        raise ValueError('give at least one of fingerprint, method, code, elements or group')
    session, node, _, _ = _storage()
    label = node.alias('label')
    columns, uuids = [], []
    for index, name in enumerate(project):
        if name.startswith('attributes.'):
            path = tuple(name.split('.')[1:])
            columns.append(label.c.attributes[path if len(path) > 1 else path[0]])
        elif name in label.c:
            columns.append(label.c[name])
            if name == 'uuid':
                uuids.append(index)
        else:
            raise ValueError(f'project: unknown column {name!r} (node columns or attributes.<key>)')
    conditions = [label.c.node_type == _LABEL_TYPE]
    if fingerprint is not None:
        conditions.append(_text(label.c.attributes, 'fingerprint') == fingerprint)
    if method is not None:
        conditions.append(_text(label.c.attributes, 'level_of_theory', 'method') == method)
    if code is not None:
        conditions.append(_text(label.c.attributes, 'level_of_theory', 'code') == code)
    if wanted is not None:
        if session.get_bind().dialect.name == 'sqlite':
            stored = sa.func.json_extract(label.c.attributes, '$.elements')
            conditions.append(stored == json.dumps(wanted, separators=(',', ':')))
        else:
            from sqlalchemy.dialects.postgresql import JSONB

            conditions.append(label.c.attributes['elements'] == sa.literal(wanted, type_=JSONB))
    if group is not None:
        groups, members = _groups_tables(session)
        members_of = (
            sa.select(members.c.dbnode_id)
            .join(groups, groups.c.id == members.c.dbgroup_id)
            .where(groups.c.label == group)
        )
        conditions.append(label.c.id.in_(members_of))
    query = sa.select(*columns).where(*conditions).order_by(label.c.id)
    rows = session.execute(query).all()
    if uuids:
        return [tuple(str(value) if index in uuids else value for index, value in enumerate(row)) for row in rows]
    return [tuple(row) for row in rows]


def _count_order(row: dict) -> tuple:
    return (-row['n_labels'], row['fingerprint'] or '', row['elements'] or [])


def label_counts_querybuilder(*, group: str | None = None) -> list[dict]:
    """:func:`label_counts` through ``QueryBuilder`` projections (a row per label counted in Python): the reference
    the SQL answer is tested against, and slow at 10^5 labels."""
    from collections import Counter

    query = orm.QueryBuilder()
    project = [
        'attributes.fingerprint',
        'attributes.level_of_theory.method',
        'attributes.level_of_theory.code',
        'attributes.elements',
    ]
    if group is not None:
        query.append(orm.Group, filters={'label': group}, tag='group')
        query.append(LabelData, with_group='group', project=project)
    else:
        query.append(LabelData, project=project)
    counts: Counter = Counter()
    records: dict = {}
    for fingerprint, method, code, elements in query.iterall(batch_size=10_000):
        key = (fingerprint, tuple(elements) if elements is not None else None)
        counts[key] += 1
        records.setdefault(key, {'method': method, 'code': code})
    result = [
        {
            'fingerprint': fingerprint,
            'method': records[(fingerprint, elements)]['method'],
            'code': records[(fingerprint, elements)]['code'],
            'elements': list(elements) if elements is not None else None,
            'n_labels': n,
        }
        for (fingerprint, elements), n in counts.items()
    ]
    return sorted(result, key=_count_order)
