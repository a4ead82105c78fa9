"""Provenance queries: which labels and DFT calculations are behind a potential, which potentials use a label.

The graph these helpers walk::

    CalcJob (DFT) --create--> LabelData --input--> build_dataset_calcfunction --create--> DatasetData
    DatasetData (parent) --input 'parent'--> build_dataset_calcfunction (next generation)
    DatasetData --input 'dataset'--> training process --create--> PotentialData

How the labels of a potential are found (the choice, and why): we follow the links, not an attribute. The
training process's ``dataset`` input gives the dataset; from there one ``QueryBuilder`` query per dataset
generation returns all inputs of that generation's build calcfunction (its new labels and its ``parent``), so a
campaign of *n* iterations costs *n* queries however many labels it holds. The answer is what the provenance graph
proves, not what a node claims. Every ``DatasetData`` also stores ``label_uuids``: it is used only for datasets
without a creator (for example a dataset stored by hand), where a single ``uuid in [...]`` query is made.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiida import orm
from aiida.common.links import LinkType

from aiida_sianode.data.dataset import DatasetData
from aiida_sianode.data.label import LabelData, labelling_calculation_ids
from aiida_sianode.data.potential import PotentialData

__all__ = (
    'calculations_behind_labels',
    'calculations_behind_potential',
    'dataset_generations',
    'dataset_of_potential',
    'label_ids_of_dataset',
    'labelling_calculation_ids',
    'labelling_calculations',
    'labels_behind_potential',
    'labels_of_dataset',
    'potentials_using_label',
    'summarise_calculations',
    'summary_order',
)

_CREATE = {'type': LinkType.CREATE.value}
_INPUT_CALC = {'type': LinkType.INPUT_CALC.value}
_LABEL_TYPE = 'data.sianode.label.LabelData.'
_DATASET_TYPE = 'data.sianode.dataset.DatasetData.'


def labelling_calculations(labels: Iterable) -> dict[str, orm.ProcessNode | None]:
    """Return ``{label uuid: the calculation node that made it}`` (see :func:`labelling_calculation_ids`)."""
    rows = _label_table([_pk_of(label) for label in labels], 'source')
    ids = labelling_calculation_ids((row['pk'], row['uuid'], row['source']) for row in rows)
    nodes = _load_many(sorted({value[0] for value in ids.values() if value is not None}))
    return {uuid: (nodes[value[0]] if value is not None else None) for uuid, value in ids.items()}


def _pk_of(label) -> int:
    return label if isinstance(label, int) else label.pk


def _label_table(pks: list[int], *keys: str) -> list[dict]:
    """Return ``{'pk', 'uuid', key: attributes[key], ...}`` for every label pk, in one query, in the given order."""

    if not pks:
        return []
    query = orm.QueryBuilder().append(
        LabelData, filters={'id': {'in': list(pks)}}, project=['id', 'uuid', *[f'attributes.{key}' for key in keys]]
    )
    found = {row[0]: row for row in query.iterall()}
    return [dict(zip(('pk', 'uuid', *keys), found[pk])) for pk in pks]


def _load_many(pks: list[int]) -> dict[int, orm.Node]:
    """Return ``{pk: node}`` for many pks in one query."""
    if not pks:
        return {}
    query = orm.QueryBuilder().append(orm.Node, filters={'id': {'in': pks}}, project=['id', '*'])
    return dict(query.iterall())


def dataset_of_potential(potential):
    """Return the DatasetData the potential was trained on: the ``dataset`` input of the process that created it.

    Falls back to the ``training_set_uuid`` attribute when the potential has no creator (stored by hand).
    """

    creator = potential.creator
    if creator is not None:
        links = creator.base.links.get_incoming(node_class=DatasetData, link_label_filter='dataset').all()
        if links:
            return links[0].node
    uuid = potential.base.attributes.get('training_set_uuid', None)
    if uuid:
        return orm.load_node(uuid)
    raise ValueError(
        f'potential {potential.pk} has no training set: its creator has no `dataset` input and the attribute '
        '`training_set_uuid` is empty'
    )


def _generation(dataset_pk: int) -> tuple[list[tuple[int, str]], int | None, bool]:
    """Return ``(new label (pk, uuid)s, parent dataset pk, has_builder)`` of one dataset generation, in one query."""

    query = orm.QueryBuilder()
    query.append(DatasetData, filters={'id': dataset_pk}, tag='dataset')
    query.append(orm.CalcFunctionNode, with_outgoing='dataset', edge_filters=_CREATE, tag='build')
    query.append(
        orm.Data,
        with_outgoing='build',
        edge_filters=_INPUT_CALC,
        edge_project=['label'],
        project=['id', 'uuid', 'node_type'],
        tag='input',
    )
    labels, parent, found = [], None, False
    for pk, uuid, node_type, link_label in query.iterall():
        found = True
        if link_label == 'parent' and node_type == _DATASET_TYPE:
            parent = pk
        elif node_type == _LABEL_TYPE:
            labels.append((pk, uuid))
    return labels, parent, found


def dataset_generations(dataset) -> list:
    """Return the chain of datasets from ``dataset`` back to the first generation (newest first)."""
    chain = [dataset.pk]
    while True:
        _, parent, _ = _generation(chain[-1])
        if parent is None:
            break
        chain.append(parent)
    nodes = _load_many(chain)
    return [nodes[pk] for pk in chain]


def label_ids_of_dataset(dataset) -> list[tuple[int, str]]:
    """Return ``(pk, uuid)`` of every label in ``dataset`` (its parents' included), in frame order.

    One query per dataset generation, following the provenance links (see the module docstring); a dataset with no
    build calcfunction (stored by hand) falls back to one ``uuid in [...]`` query over its ``label_uuids``.
    """

    found: list[tuple[int, str]] = []
    current = dataset.pk
    while current is not None:
        new, parent, has_builder = _generation(current)
        if not has_builder:
            uuids = list(orm.load_node(current).label_uuids or [])
            if uuids:
                query = orm.QueryBuilder().append(LabelData, filters={'uuid': {'in': uuids}}, project=['id', 'uuid'])
                found.extend(tuple(row) for row in query.iterall())
            break
        found.extend(new)
        current = parent
    order = {uuid: index for index, uuid in enumerate(dataset.label_uuids or [])}
    found.sort(key=lambda row: order.get(row[1], len(order)))
    return found


def labels_of_dataset(dataset) -> list:
    """Return every LabelData in ``dataset`` (its parents' included), in frame order.

    The nodes come from one extra query. AiiDA reloads a stored node from the database on each attribute access,
    so to read an attribute of thousands of labels project it with a ``QueryBuilder`` (as
    :func:`calculations_behind_labels` does) rather than loop over the nodes.
    """
    ids = label_ids_of_dataset(dataset)
    nodes = _load_many([pk for pk, _ in ids])
    return [nodes[pk] for pk, _ in ids]


def labels_behind_potential(potential) -> list:
    """Return the LabelData nodes the potential was trained on (training, validation and test frames alike)."""
    return labels_of_dataset(dataset_of_potential(potential))


def calculations_behind_labels(labels: Iterable) -> list[dict]:
    """Return, per label (LabelData or pk), the calculation that made it with its code and level of theory.

    Each row: ``label_uuid``, ``label_pk``, ``formula``, ``calculation_uuid``, ``calculation_pk``, ``process_label``,
    ``code`` (``label@computer`` of the CalcJob's code, or ``None``), ``fingerprint``, ``level_of_theory`` and
    ``source`` (the label's source record; for imported labels the file, its SHA-256 and frame). A handful of
    queries for any number of labels.
    """
    rows = _label_table([_pk_of(label) for label in labels], 'formula', 'fingerprint', 'level_of_theory', 'source')
    calculations = labelling_calculation_ids((row['pk'], row['uuid'], row['source']) for row in rows)
    calculation_pks = sorted({value[0] for value in calculations.values() if value is not None})
    process_labels: dict[int, str] = {}
    codes: dict[int, str] = {}
    if calculation_pks:
        query = orm.QueryBuilder().append(
            orm.ProcessNode, filters={'id': {'in': calculation_pks}}, project=['id', 'attributes.process_label']
        )
        process_labels = dict(query.iterall())
        query = orm.QueryBuilder()
        query.append(orm.CalcJobNode, filters={'id': {'in': calculation_pks}}, project=['id'], tag='job')
        query.append(orm.AbstractCode, with_outgoing='job', edge_filters=_INPUT_CALC, project=['label'], tag='code')
        query.append(orm.Computer, with_node='code', project=['label'], outerjoin=True)
        for job_pk, code_label, computer_label in query.iterall():
            codes[job_pk] = f'{code_label}@{computer_label}' if computer_label else code_label
    result = []
    for row in rows:
        calculation = calculations.get(row['uuid'])
        result.append(
            {
                'label_uuid': row['uuid'],
                'label_pk': row['pk'],
                'formula': row['formula'],
                'calculation_uuid': calculation[1] if calculation is not None else None,
                'calculation_pk': calculation[0] if calculation is not None else None,
                'process_label': process_labels.get(calculation[0]) if calculation is not None else None,
                'code': codes.get(calculation[0]) if calculation is not None else None,
                'fingerprint': row['fingerprint'],
                'level_of_theory': row['level_of_theory'],
                'source': row['source'],
            }
        )
    return result


def calculations_behind_potential(potential) -> list[dict]:
    """Return :func:`calculations_behind_labels` for every label the potential was trained on, without loading them."""
    return calculations_behind_labels([pk for pk, _ in label_ids_of_dataset(dataset_of_potential(potential))])


def summarise_calculations(rows: list[dict]) -> list[dict]:
    """Group the rows of :func:`calculations_behind_labels` by (code or source file, process, level of theory).

    Returns rows ``{'made_by', 'process_label', 'code', 'method', 'fingerprint', 'n_labels', 'n_calculations'}``,
    most labels first.
    """
    groups: dict[tuple, dict] = {}
    for row in rows:
        source = row.get('source') or {}
        if row['calculation_uuid'] is None:
            made_by = f'file {source.get("filename", "unknown")}'
        else:
            made_by = row['code'] or row['process_label'] or 'calculation'
        key = (made_by, row['process_label'], row['fingerprint'])
        group = groups.setdefault(
            key,
            {
                'made_by': made_by,
                'process_label': row['process_label'],
                'code': row['code'],
                'method': (row['level_of_theory'] or {}).get('method'),
                'level_of_theory_code': (row['level_of_theory'] or {}).get('code'),
                'fingerprint': row['fingerprint'],
                'n_labels': 0,
                '_calculations': set(),
            },
        )
        group['n_labels'] += 1
        if row['calculation_uuid']:
            group['_calculations'].add(row['calculation_uuid'])
    result = []
    for group in groups.values():
        group['n_calculations'] = len(group.pop('_calculations'))
        result.append(group)
    return sorted(result, key=summary_order)


def summary_order(group: dict) -> tuple:
    """The order of :func:`summarise_calculations`: most labels first, ties by made-by, process and fingerprint (so
    that the answer does not depend on the order of the rows, and the database's ``GROUP BY`` gives the same)."""
    return (-group['n_labels'], group['made_by'] or '', group['process_label'] or '', group['fingerprint'] or '')


def potentials_using_label(label) -> list:
    """Return every PotentialData trained on a dataset that contains ``label`` (directly or through a parent)."""

    query = orm.QueryBuilder()
    query.append(orm.Node, filters={'id': label.pk}, tag='label')
    query.append(orm.CalcFunctionNode, with_incoming='label', edge_filters=_INPUT_CALC, tag='build')
    query.append(DatasetData, with_incoming='build', edge_filters=_CREATE, project=['id'])
    current = set(query.all(flat=True))
    datasets = set(current)
    while current:
        query = orm.QueryBuilder()
        query.append(DatasetData, filters={'id': {'in': sorted(current)}}, tag='parent')
        query.append(
            orm.CalcFunctionNode, with_incoming='parent', edge_filters={**_INPUT_CALC, 'label': 'parent'}, tag='build'
        )
        query.append(DatasetData, with_incoming='build', edge_filters=_CREATE, project=['id'])
        current = set(query.all(flat=True)) - datasets
        datasets |= current
    if not datasets:
        return []
    query = orm.QueryBuilder()
    query.append(DatasetData, filters={'id': {'in': sorted(datasets)}}, tag='dataset')
    query.append(orm.ProcessNode, with_incoming='dataset', edge_filters={'label': 'dataset'}, tag='training')
    query.append(PotentialData, with_incoming='training', edge_filters=_CREATE, project=['*'])
    found = {node.pk: node for node in query.all(flat=True)}
    uuids = orm.QueryBuilder().append(DatasetData, filters={'id': {'in': sorted(datasets)}}, project=['uuid'])
    query = orm.QueryBuilder().append(
        PotentialData, filters={'attributes.training_set_uuid': {'in': uuids.all(flat=True)}}, project=['*']
    )
    for node in query.all(flat=True):
        found.setdefault(node.pk, node)
    return [found[pk] for pk in sorted(found)]


#: AiiDA node types holding licensed pseudopotential files, which must not leave in an archive of ours
LICENSED_NODE_TYPES = ('PotcarData', 'PotcarFileData')
_LICENSED_FILTER = {'or': [{'like': f'%.{name}.'} for name in LICENSED_NODE_TYPES]}


def export_campaign(campaign, path, *, archive=None) -> dict:
    """Export a campaign's final training set as extxyz (per-frame label, calculation and source), and optionally the
    whole campaign with everything it made and used as an AiiDA archive.

    :param campaign: a finished ``ActiveLearningWorkChain`` node (it must have the ``training_set`` output).
    :param path: the extxyz file to write.
    :param archive: an ``.aiida`` file to write, or ``None``.
    :raises ValueError: the campaign has no training set, or its provenance holds licensed POTCAR nodes (an archive
        would carry them; export the extxyz only).
    """
    from aiida.tools.archive import create_archive
    from aiida.tools.graph.graph_traversers import get_nodes_export

    if 'training_set' not in campaign.outputs:
        raise ValueError(f'process {campaign.pk} has no `training_set` output: is it a finished campaign?')
    dataset = campaign.outputs.training_set
    frames = dataset.export(path)
    result = {'campaign': campaign.pk, 'training_set': dataset.pk, 'frames': frames, 'extxyz': str(path)}
    if archive is not None:
        pks = set(get_nodes_export([campaign.pk])['nodes'])
        licensed = (
            orm.QueryBuilder()
            .append(orm.Node, filters={'id': {'in': list(pks)}, 'node_type': _LICENSED_FILTER}, project='id')
            .all(flat=True)
            if pks
            else []
        )
        if licensed:
            raise ValueError(
                f'the provenance of campaign {campaign.pk} holds {len(licensed)} POTCAR nodes, which are licensed and '
                'must not leave in an archive; export the training set as extxyz only'
            )
        create_archive([campaign], filename=archive, overwrite=True)
        result.update({'archive': str(archive), 'archive_nodes': len(pks)})
    return result
