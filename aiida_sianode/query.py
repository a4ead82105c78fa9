"""Queries over many labels that project columns with ``QueryBuilder`` and load no node.

At 10^5 labels, loading each node costs about a millisecond and a query that lists 10^5 PKs in an ``IN`` clause
exceeds what SQLite accepts, so these functions filter and join in the database and return plain rows.
:mod:`aiida_sianode.provenance` holds the graph walks (labels behind a potential, potentials using a label).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator

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
    'iter_calculations_behind_dataset',
    'label_counts',
    'label_counts_querybuilder',
    'label_ids_of_dataset_sql',
    'label_pks_of_dataset',
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
# with JSON records): at 10^5 rows that alone misses one second. The functions below send SQL statements over
# aiida-core's tables (``db_dbnode``, ``db_dblink``, ``db_dbcomputer``: the same on SQLite and PostgreSQL): a
# recursive CTE walks the dataset generations (a few rows), one statement over the labels linked into their builds
# gives the rows, ``GROUP BY`` the counts; rows come back as the DBAPI cursor's tuples. Their answers equal those of
# the QueryBuilder functions in :mod:`aiida_sianode.provenance` (tested on both backends). Where the time went at
# 10^5 labels and what each choice saved: ``benchmarks/scale.md``.

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
    """The JSON value at ``path`` of a JSON column as text: ``->>`` on PostgreSQL; on SQLite a bare
    ``json_extract(column, '$.a.b')`` (objects come back as their JSON text). SQLAlchemy's own form there,
    ``CAST(JSON_EXTRACT(column, '$."a"."b"') AS VARCHAR)``, took twice as long over 10^5 labels: SQLite parses a row's
    JSON once for all the bare ``json_extract`` calls of a statement."""
    import sqlalchemy as sa

    if _storage()[0].get_bind().dialect.name == 'sqlite':
        return sa.func.json_extract(column, '$.' + '.'.join(path), type_=sa.String)
    return column[path if len(path) > 1 else path[0]].as_string()


@contextlib.contextmanager
def _without_jit(session):
    """PostgreSQL's JIT compiler off while the statements inside are planned (``set_config`` local to the
    transaction, put back after; the planner decides on JIT): they cost enough for PostgreSQL 15's default
    ``jit_above_cost`` but run for well under a second, and compiling them took 0.1-1.9 s of the server's time at
    10^5 labels. After an error the setting is not put back: it ends with the transaction, which the error ends."""
    if session.get_bind().dialect.name == 'sqlite':
        yield
        return
    import sqlalchemy as sa

    before = session.execute(sa.text("SELECT current_setting('jit')")).scalar()
    session.execute(sa.text("SELECT set_config('jit', 'off', true)"))
    yield
    session.execute(sa.text("SELECT set_config('jit', :value, true)"), {'value': before})


def _fetch_rows(session, statement) -> list:
    """SQLAlchemy's rows of a statement with few rows (the counts), planned without JIT."""
    with _without_jit(session):
        return session.execute(statement).all()


def _fetch(statement) -> list[tuple]:
    """Run ``statement`` on the profile's session and return the DBAPI cursor's plain tuples, without SQLAlchemy's
    ``Row`` per row (about 2 µs each, a tenth of a second at 10^5 rows) or its result processing: only for
    statements whose columns are numbers and text."""
    session = _storage()[0]
    with _without_jit(session):
        result = session.execute(statement)
        try:
            return result.cursor.fetchall()
        finally:
            result.close()


def _loads():
    """``orjson.loads`` where installed (it is, through pymatgen), else ``json.loads``: the same values, 4x faster."""
    try:
        import orjson
    except ImportError:
        return json.loads
    return orjson.loads


def _dataset_chain(dataset_pk: int):
    """A recursive CTE of ``(id, depth)`` of ``dataset_pk`` (depth 0) and its parent datasets (``parent`` input of
    each build), with the build calcfunction of each: ``build`` (``None`` for a dataset stored by hand)."""
    import sqlalchemy as sa

    _, node, link, _ = _storage()
    chain = sa.select(sa.literal(dataset_pk).label('id'), sa.literal(0).label('depth')).cte('chain', recursive=True)
    create, build, parent_link, parent = link.alias(), node.alias(), link.alias(), node.alias()
    step = (
        sa.select(parent.c.id, chain.c.depth + 1)
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


def _builds(dataset_pk: int) -> list[int] | None:
    """The build calcfunctions of ``dataset_pk`` and its parents, oldest generation first, resolved before the
    statement over the labels (a few rows): given to it as numbers, the database estimates the 10^5 links behind
    them from its statistics instead of from a recursive CTE it cannot estimate. ``None`` when a dataset of the
    chain was stored by hand (no build calcfunction: the callers then answer from its ``label_uuids``)."""
    import sqlalchemy as sa

    session, node, link, _ = _storage()
    chain = _dataset_chain(dataset_pk)
    create, build = link.alias(), node.alias()
    built = (
        sa.select(create.c.input_id)
        .join(build, sa.and_(build.c.id == create.c.input_id, build.c.node_type.like(f'{_CALCFUNCTION_PREFIX}%')))
        .where(create.c.output_id == chain.c.id, create.c.type == 'create')
        .order_by(create.c.input_id)
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(sa.select(chain.c.depth, built).order_by(chain.c.depth.desc())).all()
    builds = [build_id for _, build_id in rows]
    return None if any(build_id is None for build_id in builds) else builds


def _label_links(builds: list[int]):
    """A select of ``(id, generation, position)`` of the labels linked into ``builds`` (oldest first): the
    ``label_NNNNNN`` inputs of each build, whose number is the label's place among that generation's new frames
    (both ways of building a dataset link them so), so ``ORDER BY generation, position`` is the frame order. Reads
    the link table only (its index on ``output_id``); every such input is a LabelData (the build refuses others)."""
    import sqlalchemy as sa

    link = _storage()[2]
    generation = sa.case({build: index for index, build in enumerate(builds)}, value=link.c.output_id)
    return sa.select(
        link.c.input_id.label('id'),
        generation.label('generation'),
        sa.cast(sa.func.substr(link.c.label, 7), sa.Integer).label('position'),
    ).where(link.c.output_id.in_(builds), link.c.type == 'input_calc', link.c.label.like('label\\_%', escape='\\'))


def _uuid_text(column, dialect: str):
    """The node's UUID as its usual text (8-4-4-4-12 hex digits) computed by the database: no ``uuid.UUID`` object
    per row (PostgreSQL stores a ``uuid``, SQLite 32 hex digits)."""
    import sqlalchemy as sa

    if dialect == 'sqlite':  # stored as text, with its dashes by sqlite_dos; 32 hex digits are dashed here
        raw = sa.type_coerce(column, sa.String)
        parts = [sa.func.substr(raw, start, length) for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]
        dashed = parts[0] + '-' + parts[1] + '-' + parts[2] + '-' + parts[3] + '-' + parts[4]
        return sa.case((sa.func.length(raw) == 32, dashed), else_=raw)
    return sa.cast(column, sa.String)


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
    """:func:`aiida_sianode.provenance.label_ids_of_dataset` in SQL: ``(pk, uuid)`` of every label of ``dataset``
    and its parents, in frame order (ordered by the database, see :func:`_label_links`).

    A dataset in the chain without a build calcfunction (stored by hand) is answered as the QueryBuilder function
    does, from its ``label_uuids``.
    """
    import sqlalchemy as sa

    from aiida_sianode.provenance import label_ids_of_dataset

    session, node = _storage()[:2]
    pk = _dataset_pk(dataset)
    builds = _builds(pk)
    if builds is None:  # the hand-made dataset's fallback, a single query
        return label_ids_of_dataset(orm.load_node(pk) if isinstance(dataset, int) else dataset)
    links = _label_links(builds).subquery('links')
    query = (
        sa.select(node.c.id, _uuid_text(node.c.uuid, session.get_bind().dialect.name))
        .join(links, links.c.id == node.c.id)
        .where(node.c.node_type == _LABEL_TYPE)
        .order_by(links.c.generation, links.c.position)
    )
    return _fetch(query)


def label_pks_of_dataset(dataset: orm.Node | int):
    """The pks of every label of ``dataset`` and its parents, in frame order, as a NumPy ``int64`` array: the ids of
    :func:`label_ids_of_dataset_sql` without their UUIDs, read from the link table alone (no row of a label is
    read, no Python object per label). For callers that need ids for a next query or a count."""
    import numpy as np
    import sqlalchemy as sa

    pk = _dataset_pk(dataset)
    builds = _builds(pk)
    if builds is None:
        return np.array([label for label, _ in label_ids_of_dataset_sql(pk)], dtype=np.int64)
    links = _label_links(builds).subquery('links')
    rows = _fetch(sa.select(links.c.id).order_by(links.c.generation, links.c.position))
    return np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))


def _calculation_rows(labels, summary: bool = False):
    """The statement of :func:`calculations_behind_labels_sql` for the labels of ``labels`` (a subquery whose
    column ``id`` is the label id): per label its columns, its creator and the CalcJob behind a calcfunction
    creator. ``summary``: the columns :func:`summarise_dataset_sql` groups and counts instead of the records.

    Written so that each label row is read once, by its primary key: the creator by the link table's index on
    ``output_id``, the CalcJob behind a calcfunction creator by a scalar subquery evaluated only for such a label,
    and the codes of the CalcJobs joined as one small table (CalcJob, code label, computer label)."""
    import sqlalchemy as sa

    session, node, link, computer = _storage()
    dialect = session.get_bind().dialect.name
    label, create, creator = node.alias('label'), link.alias('creator_link'), node.alias('creator')
    kind = _text(label.c.attributes, 'source', 'kind')
    # the CalcJob behind a calcfunction creator: the lowest-pk CalcJob that created one of the function's inputs
    inputs, data, made, job = link.alias(), node.alias(), link.alias(), node.alias()
    behind = (
        sa.select(sa.func.min(job.c.id))
        .select_from(inputs)
        .join(data, sa.and_(data.c.id == inputs.c.input_id, data.c.node_type.like('data.%')))
        .join(made, sa.and_(made.c.output_id == data.c.id, made.c.type == 'create'))
        .join(job, sa.and_(job.c.id == made.c.input_id, job.c.node_type.like(f'{_CALCJOB_PREFIX}%')))
        .where(inputs.c.output_id == creator.c.id, inputs.c.type == 'input_calc')
        .scalar_subquery()
    )
    creator_id = sa.case((sa.func.coalesce(kind, '') == 'file', None), else_=creator.c.id)
    calculation_id = sa.case(
        (
            sa.and_(creator_id.is_not(None), creator.c.node_type.like(f'{_CALCFUNCTION_PREFIX}%')),
            sa.func.coalesce(behind, creator.c.id),
        ),
        else_=creator_id,
    )
    labelled = (
        sa.select(
            labels.c.id,
            *((labels.c.generation, labels.c.position) if 'generation' in labels.c else ()),
            _text(label.c.attributes, 'fingerprint').label('fingerprint'),
            *(
                (
                    _text(label.c.attributes, 'source', 'filename').label('filename'),
                    _text(label.c.attributes, 'level_of_theory', 'method').label('method'),
                    _text(label.c.attributes, 'level_of_theory', 'code').label('lot_code'),
                )
                if summary
                else (
                    _uuid_text(label.c.uuid, dialect).label('uuid'),
                    _text(label.c.attributes, 'formula').label('formula'),
                    _text(label.c.attributes, 'level_of_theory').label('level_of_theory'),
                    _text(label.c.attributes, 'source').label('source'),
                )
            ),
            calculation_id.label('calculation_id'),
        )
        .select_from(labels)
        .join(label, sa.and_(label.c.id == labels.c.id, label.c.node_type == _LABEL_TYPE))
        .outerjoin(create, sa.and_(create.c.output_id == label.c.id, create.c.type == 'create'))
        .outerjoin(creator, sa.and_(creator.c.id == create.c.input_id, creator.c.node_type.like('process.%')))
    )
    if dialect != 'sqlite':  # the values taken out of the attributes before the joins below, not 0.9 kB rows
        labelled = labelled.offset(0)
    labelled = labelled.subquery('labelled')
    code_link, code, host = link.alias(), node.alias('code'), computer.alias()
    codes = (
        sa.select(
            code_link.c.output_id.label('job_id'),
            sa.case(
                (sa.func.coalesce(host.c.label, '') == '', code.c.label), else_=code.c.label + '@' + host.c.label
            ).label('code'),
        )
        .select_from(code)
        .join(code_link, sa.and_(code_link.c.input_id == code.c.id, code_link.c.type == 'input_calc'))
        .outerjoin(host, host.c.id == code.c.dbcomputer_id)
        .where(code.c.node_type.like(f'{_CODE_PREFIX}%'))
    ).subquery('codes')
    # every process with its uuid, process label and (for a CalcJob) code: one table the database can hash, instead
    # of a lookup per label by a computed id (which PostgreSQL planned as a hash of every node)
    process = node.alias('calculation')
    calculations = (
        sa.select(
            process.c.id,
            _uuid_text(process.c.uuid, dialect).label('uuid'),
            _text(process.c.attributes, 'process_label').label('process_label'),
            codes.c.code,
        )
        .outerjoin(
            codes,
            sa.and_(codes.c.job_id == process.c.id, process.c.node_type.like(f'{_CALCJOB_PREFIX}%')),
        )
        .where(process.c.node_type.like('process.%'))
    ).subquery('calculations')
    return (
        sa.select(
            *(labelled.c[name] for name in labelled.c.keys() if name != 'calculation_id'),
            calculations.c.id.label('calculation_id'),
            calculations.c.uuid.label('calculation_uuid'),
            calculations.c.process_label,
            calculations.c.code,
        )
        .select_from(labelled)
        .outerjoin(calculations, calculations.c.id == labelled.c.calculation_id)
    )


def _records(rows: list[tuple]) -> list[dict]:
    """The dicts of :func:`calculations_behind_labels_sql` from the tuples of :func:`_calculation_rows` (without
    ``summary``; ``generation`` and ``position`` present). The level of theory is the same JSON for every label of
    one fingerprint: parsed once per distinct text, and the rows of one level of theory share that dict (equal to
    what the QueryBuilder path gives; copy it before changing it)."""
    loads, levels = _loads(), {}
    result = []
    append = result.append
    for pk, _, _, fingerprint, uuid, formula, level, source, calculation, calculation_uuid, process, code in rows:
        if level is not None:
            record = levels.get(level)
            if record is None:
                record = levels[level] = loads(level)
        else:
            record = None
        made = calculation is not None
        append(
            {
                'label_uuid': uuid,
                'label_pk': pk,
                'formula': formula,
                'calculation_uuid': calculation_uuid if made else None,
                'calculation_pk': calculation,
                'process_label': process if made else None,
                'code': code if made else None,
                'fingerprint': fingerprint,
                'level_of_theory': record,
                'source': loads(source) if source is not None else None,
            }
        )
    return result


def _pk_chunks(pks: list[int], size: int = 10_000):
    """Subqueries of the label ids among ``pks``, 10^4 at a time (SQLite takes at most 32,766 parameters)."""
    import sqlalchemy as sa

    node = _storage()[1]
    for start in range(0, len(pks), size):
        chunk = sorted(set(pks[start : start + size]))
        yield (
            sa.select(node.c.id, sa.literal(0).label('generation'), sa.literal(0).label('position'))
            .where(node.c.id.in_(chunk))
            .subquery('wanted')
        )


def calculations_behind_labels_sql(labels: Iterable) -> list[dict]:
    """:func:`aiida_sianode.provenance.calculations_behind_labels` in SQL: one statement per 10^4 labels (LabelData
    or pks), the same rows in the given order."""
    pks = [label if isinstance(label, int) else label.pk for label in labels]
    found: dict[int, dict] = {}
    for chunk in _pk_chunks(pks):
        found.update((row['label_pk'], row) for row in _records(_fetch(_calculation_rows(chunk))))
    return [found[pk] for pk in pks]


def iter_calculations_behind_dataset(dataset: orm.Node | int, batch: int = 10_000) -> Iterator[dict]:
    """The rows of :func:`calculations_behind_dataset_sql` as they come from the database, ``batch`` at a time, in
    frame order (the database sorts them): for a caller that writes them out (``provenance labels --json``) and
    need not hold 10^5 dicts at once. The statement runs before the first row is given."""
    pk = _dataset_pk(dataset)
    builds = _builds(pk)
    if builds is None:
        yield from calculations_behind_labels_sql([label for label, _ in label_ids_of_dataset_sql(dataset)])
        return
    statement = _calculation_rows(_label_links(builds).subquery('links'))
    statement = statement.order_by(statement.selected_columns.generation, statement.selected_columns.position)
    session = _storage()[0]
    with _without_jit(session):
        result = session.execute(statement.execution_options(yield_per=batch))
    try:
        for rows in result.partitions():
            yield from _records(rows)
    finally:
        result.close()


def calculations_behind_dataset_sql(dataset: orm.Node | int) -> list[dict]:
    """The rows of :func:`calculations_behind_labels_sql` for every label of ``dataset`` (its parents' included), in
    frame order: one statement over the labels linked into the dataset's builds (see :func:`_label_links`), whose
    rows are put in frame order here (the database sorted the 10^5 wide rows on disk)."""
    pk = _dataset_pk(dataset)
    builds = _builds(pk)
    if builds is None:
        return calculations_behind_labels_sql([label for label, _ in label_ids_of_dataset_sql(dataset)])
    rows = _fetch(_calculation_rows(_label_links(builds).subquery('links')))
    rows.sort(key=lambda row: (row[1], row[2]))
    return _records(rows)


def calculations_behind_potential_sql(potential) -> list[dict]:
    """:func:`aiida_sianode.provenance.calculations_behind_potential` in SQL (see
    :func:`calculations_behind_dataset_sql`)."""
    return calculations_behind_dataset_sql(dataset_pk_of_potential(potential))


def summarise_dataset_sql(dataset: orm.Node | int) -> list[dict]:
    """:func:`aiida_sianode.provenance.summarise_calculations` of every label of ``dataset`` counted by the database:
    one ``GROUP BY`` (made by, process, level of theory), no row per label reaches Python. Same rows, same order."""
    session, pk = _storage()[0], _dataset_pk(dataset)
    builds = _builds(pk)
    if builds is None:
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
        for row in _fetch_rows(session, _summary_statement(builds))
    ]
    from aiida_sianode.provenance import summary_order

    return sorted(result, key=summary_order)


def _summary_statement(builds: list[int]):
    """The ``GROUP BY`` of :func:`summarise_dataset_sql` over the labels linked into ``builds``."""
    import sqlalchemy as sa

    rows = _calculation_rows(_label_links(builds).subquery('links'), summary=True)
    if _storage()[0].get_bind().dialect.name != 'sqlite':  # grouped apart: PostgreSQL then sorts the short values
        rows = rows.offset(0)
    rows = rows.subquery('rows')
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
    if session.get_bind().dialect.name == 'sqlite':
        return _label_counts_sqlite(session, group)
    result = [
        {
            'fingerprint': row.fingerprint,
            'method': row.method,
            'code': row.code,
            'elements': json.loads(row.elements) if row.elements is not None else None,
            'n_labels': row.n_labels,
        }
        for row in _fetch_rows(session, _counts_statement(group))
    ]
    return sorted(result, key=_count_order)


def _label_counts_sqlite(session, group: str | None) -> list[dict]:
    """:func:`label_counts` on SQLite: grouped by one ``json_extract`` of the four values (a JSON array), which is
    what SQLite can do fastest (each label's attributes are parsed once, and only the few distinct arrays come back);
    the groups of one fingerprint and element set are then merged here, ``method`` and ``code`` taken as ``min``
    over the labels like the ``GROUP BY`` on PostgreSQL."""
    import sqlalchemy as sa

    node = _storage()[1]
    key = sa.func.json_extract(
        node.c.attributes, '$.fingerprint', '$.elements', '$.level_of_theory.method', '$.level_of_theory.code'
    )
    query = sa.select(key, sa.func.count()).where(node.c.node_type == _LABEL_TYPE).group_by(key)
    if group is not None:
        query = query.where(node.c.id.in_(_group_members(session, group)))
    merged: dict[tuple, dict] = {}
    for text, count in _fetch(query):
        fingerprint, elements, method, code = json.loads(text)
        row = merged.setdefault(
            (fingerprint, json.dumps(elements)),
            {'fingerprint': fingerprint, 'method': None, 'code': None, 'elements': elements, 'n_labels': 0},
        )
        row['n_labels'] += count
        for name, value in (('method', method), ('code', code)):
            if value is not None and (row[name] is None or value < row[name]):
                row[name] = value
    return sorted(merged.values(), key=_count_order)


def _group_members(session, group: str):
    """A select of the node ids in the group labelled ``group``."""
    import sqlalchemy as sa

    groups, members = _groups_tables(session)
    return (
        sa.select(members.c.dbnode_id).join(groups, groups.c.id == members.c.dbgroup_id).where(groups.c.label == group)
    )


def _counts_statement(group: str | None):
    """The ``GROUP BY`` of :func:`label_counts` on PostgreSQL: the four values are taken out of each label's
    attributes first, so that the database groups rows of four short texts, not the labels' rows (it sorted the
    whole 0.9 kB rows on disk before; the inner select is kept apart from the grouping by ``OFFSET 0``)."""
    import sqlalchemy as sa

    session, node, _, _ = _storage()
    label = node.alias('label')
    values = sa.select(
        _text(label.c.attributes, 'fingerprint').label('fingerprint'),
        _text(label.c.attributes, 'level_of_theory', 'method').label('method'),
        _text(label.c.attributes, 'level_of_theory', 'code').label('code'),
        sa.cast(label.c.attributes['elements'], sa.Text).label('elements'),
    ).where(label.c.node_type == _LABEL_TYPE)
    if group is not None:
        values = values.where(label.c.id.in_(_group_members(session, group)))
    values = values.offset(0).subquery('label_values')
    return sa.select(
        values.c.fingerprint,
        sa.func.min(values.c.method).label('method'),
        sa.func.min(values.c.code).label('code'),
        values.c.elements,
        sa.func.count().label('n_labels'),
    ).group_by(values.c.fingerprint, values.c.elements)


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
