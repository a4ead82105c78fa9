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

__all__ = (
    'calculations_behind_labels',
    'dataset_generations',
    'dataset_of_potential',
    'labelling_calculations',
    'labels_behind_potential',
    'labels_of_dataset',
    'potentials_using_label',
    'summarise_calculations',
)

_CREATE = {'type': LinkType.CREATE.value}
_INPUT_CALC = {'type': LinkType.INPUT_CALC.value}


def labelling_calculations(labels: Iterable) -> dict[str, orm.ProcessNode | None]:
    """Return ``{label uuid: the calculation that made it}``, ``None`` for labels imported from files.

    A label created by a CalcJob (its parser) maps to that CalcJob. A label created by a calcfunction from a
    calculation's outputs maps to the CalcJob behind the calcfunction; when there is none, to the calcfunction.
    Two queries for any number of labels.
    """
    from aiida_sianode.data.label import LabelData

    labels = list(labels)
    result: dict[str, orm.ProcessNode | None] = {label.uuid: None for label in labels}
    made = [label.pk for label in labels if (label.source or {}).get('kind') != 'file' and label.is_stored]
    if not made:
        return result
    query = orm.QueryBuilder()
    query.append(LabelData, filters={'id': {'in': made}}, project=['uuid'], tag='label')
    query.append(orm.ProcessNode, with_outgoing='label', edge_filters=_CREATE, project=['*'], tag='creator')
    creators = dict(query.all())

    functions = sorted({node.pk for node in creators.values() if isinstance(node, orm.CalcFunctionNode)})
    behind: dict[int, orm.CalcJobNode] = {}
    if functions:
        query = orm.QueryBuilder()
        query.append(orm.CalcFunctionNode, filters={'id': {'in': functions}}, project=['id'], tag='function')
        query.append(orm.Data, with_outgoing='function', edge_filters=_INPUT_CALC, tag='data')
        query.append(orm.CalcJobNode, with_outgoing='data', edge_filters=_CREATE, project=['*'], tag='calcjob')
        query.order_by({'calcjob': {'id': 'asc'}})
        for function_pk, calcjob in query.all():
            behind.setdefault(function_pk, calcjob)
    for uuid, node in creators.items():
        result[uuid] = behind.get(node.pk, node)
    return result


def dataset_of_potential(potential):
    """Return the DatasetData the potential was trained on: the ``dataset`` input of the process that created it.

    Falls back to the ``training_set_uuid`` attribute when the potential has no creator (stored by hand).
    """
    from aiida_sianode.data.dataset import DatasetData

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


def _generation(dataset) -> tuple[list, object | None, bool]:
    """Return ``(new labels, parent dataset, has_creator)`` of one dataset generation, in one query."""
    from aiida_sianode.data.dataset import DatasetData
    from aiida_sianode.data.label import LabelData

    query = orm.QueryBuilder()
    query.append(DatasetData, filters={'id': dataset.pk}, tag='dataset')
    query.append(orm.CalcFunctionNode, with_outgoing='dataset', edge_filters=_CREATE, tag='build')
    query.append(
        orm.Data,
        with_outgoing='build',
        edge_filters=_INPUT_CALC,
        edge_project=['label'],
        project=['*'],
        tag='input',
    )
    labels, parent, found = [], None, False
    for link_label, node in query.all():
        found = True
        if link_label == 'parent' and isinstance(node, DatasetData):
            parent = node
        elif isinstance(node, LabelData):
            labels.append(node)
    if not found and dataset.creator is not None:
        found = True
    return labels, parent, found


def dataset_generations(dataset) -> list:
    """Return the chain of datasets from ``dataset`` back to the first generation (newest first)."""
    chain = [dataset]
    while True:
        _, parent, _ = _generation(chain[-1])
        if parent is None:
            return chain
        chain.append(parent)


def labels_of_dataset(dataset) -> list:
    """Return every LabelData in ``dataset`` (its parents' included), in frame order.

    One query per dataset generation, following the provenance links (see the module docstring).
    """
    from aiida_sianode.data.label import LabelData

    labels: list = []
    current = dataset
    while current is not None:
        new, parent, has_creator = _generation(current)
        if not has_creator:
            uuids = list(current.label_uuids or [])
            query = orm.QueryBuilder().append(LabelData, filters={'uuid': {'in': uuids}}) if uuids else None
            labels.extend(query.all(flat=True) if query is not None else [])
            break
        labels.extend(new)
        current = parent
    order = {uuid: index for index, uuid in enumerate(dataset.label_uuids or [])}
    labels.sort(key=lambda label: order.get(label.uuid, len(order)))
    return labels


def labels_behind_potential(potential) -> list:
    """Return the LabelData nodes the potential was trained on (training, validation and test frames alike)."""
    return labels_of_dataset(dataset_of_potential(potential))


def calculations_behind_labels(labels: Iterable) -> list[dict]:
    """Return, per label, the calculation that made it with its code and level of theory.

    Each row: ``label_uuid``, ``label_pk``, ``formula``, ``calculation_uuid``, ``calculation_pk``, ``process_label``,
    ``code`` (``label@computer`` of the CalcJob's code, or ``None``), ``fingerprint``, ``level_of_theory`` and
    ``source`` (the label's source record; for imported labels the file, its SHA-256 and frame). A handful of
    queries for any number of labels.
    """
    labels = list(labels)
    calculations = labelling_calculations(labels)
    calcjob_pks = sorted({node.pk for node in calculations.values() if isinstance(node, orm.CalcJobNode)})
    codes: dict[int, str] = {}
    if calcjob_pks:
        query = orm.QueryBuilder()
        query.append(orm.CalcJobNode, filters={'id': {'in': calcjob_pks}}, project=['id'], tag='calcjob')
        query.append(orm.AbstractCode, with_outgoing='calcjob', project=['*'])
        for pk, code in query.all():
            codes[pk] = code.full_label
    rows = []
    for label in labels:
        calculation = calculations.get(label.uuid)
        rows.append(
            {
                'label_uuid': label.uuid,
                'label_pk': label.pk,
                'formula': label.formula,
                'calculation_uuid': calculation.uuid if calculation is not None else None,
                'calculation_pk': calculation.pk if calculation is not None else None,
                'process_label': calculation.process_label if calculation is not None else None,
                'code': codes.get(calculation.pk) if calculation is not None else None,
                'fingerprint': label.fingerprint,
                'level_of_theory': label.level_of_theory,
                'source': label.source,
            }
        )
    return rows


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
    return sorted(result, key=lambda group: -group['n_labels'])


def potentials_using_label(label) -> list:
    """Return every PotentialData trained on a dataset that contains ``label`` (directly or through a parent)."""
    from aiida_sianode.data.dataset import DatasetData
    from aiida_sianode.data.potential import PotentialData

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
