"""``PropertyParser``: results, curves and plots of :class:`~aiida_sianode.calculations.property.PropertyCalculation`.

Outputs:

* ``results`` (``Dict``): ``status``, ``kind``, ``n_members``, ``scalars`` (name with unit -> ``{'mean', 'std',
  'members'}``), ``members`` (each finished member's ``scalars`` and ``extra``), ``model_sha256``, ``device``,
  ``wall_time_s``, ``cpu_time_s``, ``member_wall_time_s``, and ``failures`` when some member failed;
* ``curves`` (``XyData`` per curve): x, then the y arrays ``mean``, ``std`` and ``member_<i>``;
* ``plots`` (``SinglefileData`` per curve): the engine's PNG.

Whatever finished is kept: a run with failed members still gives the others' results with its exit code.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_sianode.engines import property as engine

#: engine status -> exit code label
STATUS_EXIT_CODES = {
    'invalid_input': 'ERROR_INVALID_INPUT',
    'model_error': 'ERROR_MODEL',
    'member_failed': 'ERROR_MEMBER_FAILED',
    'all_members_failed': 'ERROR_ALL_MEMBERS_FAILED',
    'error': 'ERROR_ENGINE_FAILED',
}


def _label(text: str) -> str:
    """An AiiDA link label from a curve name (letters, digits, underscores)."""
    label = re.sub(r'\W+', '_', text).strip('_')
    return label if label and not label[0].isdigit() else f'c_{label}'


def curve_to_xydata(curve: dict) -> orm.XyData:
    """Return an XyData of an aggregated curve: x, then ``mean``, ``std`` and ``member_<i>`` as y arrays."""
    node = orm.XyData()
    node.set_x(np.asarray(curve['x'], dtype=float), 'x', curve.get('x_label', 'x'))
    arrays, names, units = [], [], []
    y_label = curve.get('y_label', 'y')
    for name in ('mean', 'std'):
        arrays.append(np.asarray(curve[name], dtype=float))
        names.append(name)
        units.append(y_label)
    for index, values in enumerate(curve.get('members', [])):
        if values is not None:
            arrays.append(np.asarray([np.nan if value is None else value for value in values], dtype=float))
            names.append(f'member_{index}')
            units.append(y_label)
    node.set_y(arrays, names, units)
    node.base.attributes.set_many({'x_label': curve.get('x_label', 'x'), 'y_label': y_label})
    return node


def results_dict(results: dict) -> dict:
    """Return the content of the ``results`` Dict from the engine's ``results.json``."""
    aggregate = results.get('aggregate') or {}
    members = []
    for index, member in zip(results.get('member_indices', []), results.get('members', [])):
        members.append({'index': index, 'scalars': member.get('scalars', {}), 'extra': member.get('extra', {})})
    content = {
        'status': results.get('status'),
        'kind': results.get('kind'),
        'n_members': len(members),
        'scalars': aggregate.get('scalars', {}),
        'members': members,
        'curves': sorted(aggregate.get('curves', {})),
    }
    for key in ('model_sha256', 'device', 'wall_time_s', 'cpu_time_s', 'member_wall_time_s', 'members_kept'):
        content[key] = results.get(key)
    if results.get('failures'):
        content['failures'] = results['failures']
    return content


class PropertyParser(Parser):
    """Parse ``results.json`` and the PNGs of a property run."""

    def parse(self, **kwargs):
        """Attach the outputs that the files allow, then return the exit code that the engine's status implies."""
        names = self.retrieved.base.repository.list_object_names()
        if engine.RESULTS_FILENAME not in names:
            finished = 0
            for name in names:
                if re.fullmatch(r'member_\d+\.json', name):
                    try:
                        finished += (
                            json.loads(self.retrieved.base.repository.get_object_content(name)).get('status') == 'ok'
                        )
                    except ValueError:
                        pass
            return self.exit_codes.ERROR_INTERRUPTED.format(n_finished=finished)
        try:
            results = json.loads(self.retrieved.base.repository.get_object_content(engine.RESULTS_FILENAME))
        except (ValueError, OSError) as exception:
            return self.exit_codes.ERROR_UNREADABLE_RESULTS.format(message=str(exception))

        status = results.get('status')
        if status == 'invalid_input' and not results.get('members'):
            return self.exit_codes.ERROR_INVALID_INPUT.format(message=results.get('message', ''))
        if results.get('aggregate'):
            self.out('results', orm.Dict(results_dict(results)))
            for name, curve in results['aggregate'].get('curves', {}).items():
                self.out(f'curves.{_label(name)}', curve_to_xydata(curve))
            for filename in results.get('plots', []):
                if filename in names:
                    content = self.retrieved.base.repository.get_object_content(filename, mode='rb')
                    stem = filename.rsplit('.', 1)[0]
                    self.out(f'plots.{_label(stem)}', orm.SinglefileData(io.BytesIO(content), filename=filename))
        if status == 'ok':
            return None
        label = STATUS_EXIT_CODES.get(status)
        if label is None:
            return self.exit_codes.ERROR_ENGINE_FAILED.format(message=f'unknown status {status!r}')
        return getattr(self.exit_codes, label).format(message=results.get('message', status))
