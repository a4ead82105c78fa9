"""Where the wall time of a finished campaign went: compute in the engines versus AiiDA's own work.

Usage (in the profile the campaign ran in, e.g. after ``make demo``)::

    AIIDA_PATH=$PWD/.aiida .venv/bin/python benchmarks/campaign_overhead.py PK [--json out.json]

For every calculation job of the campaign it compares the job's lifetime in AiiDA (node creation to its last
change: upload, submission, scheduler polling, retrieval, parsing, plus the engine's own run) with the compute time
the engine measured itself (``wall_time_s`` of its results: label single point, MACE training, MD). The difference
is the per-job overhead: AiiDA's transport/scheduler/parsing work and the start of a Python interpreter with its
imports (GPAW, torch, mace), which is part of running an engine as a separate program. The time between stages
(work-chain steps, building datasets, selecting frames, storing nodes) is the campaign wall time minus the stage
wall times of the iteration table.
"""

from __future__ import annotations

import argparse
import json

ENGINE_OUTPUTS = {
    'LocalLabelCalculation': 'output_parameters',
    'TrainCalculation': 'metrics',
    'ExploreCalculation': 'summary',
}


def measure(pk: int) -> dict:
    """Return the time budget of campaign ``pk``."""
    from aiida import orm

    campaign = orm.load_node(pk)
    wall = (campaign.mtime - campaign.ctime).total_seconds()
    per_kind: dict[str, dict] = {}
    for node in campaign.called_descendants:
        if not isinstance(node, orm.CalcJobNode):
            continue
        kind = node.process_label
        output = ENGINE_OUTPUTS.get(kind)
        record = per_kind.setdefault(kind, {'jobs': 0, 'lifetime_s': 0.0, 'engine_s': 0.0, 'failed': 0})
        record['jobs'] += 1
        record['lifetime_s'] += (node.mtime - node.ctime).total_seconds()
        if output and output in node.outputs:
            record['engine_s'] += float(node.outputs[output].get_dict().get('wall_time_s') or 0.0)
        if not node.is_finished_ok:
            record['failed'] += 1
    for record in per_kind.values():
        record['overhead_s'] = record['lifetime_s'] - record['engine_s']
        record['overhead_per_job_s'] = record['overhead_s'] / record['jobs']
    rows = campaign.outputs.iterations.get_list() if 'iterations' in campaign.outputs else []
    stages = {
        stage: sum(row.get(f'wall_time_{stage}_s', 0.0) or 0.0 for row in rows)
        for stage in ('label', 'train', 'explore')
    }
    between = wall - sum(stages.values())
    labels = campaign.outputs.training_set.base.attributes.get('n_frames') if 'training_set' in campaign.outputs else 0
    return {
        'campaign': pk,
        'wall_time_s': wall,
        'stage_wall_s': stages,
        'between_stages_s': between,
        'jobs': per_kind,
        'labels_in_final_set': labels,
        'stop_reason': campaign.outputs.stop_reason.value if 'stop_reason' in campaign.outputs else None,
        'final_accurate_fraction': rows[-1].get('accurate_fraction') if rows else None,
    }


def main():
    """Print the budget as markdown (and JSON with ``--json``)."""
    from aiida import load_profile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('pk', type=int)
    parser.add_argument('--json', default=None)
    arguments = parser.parse_args()
    load_profile()
    result = measure(arguments.pk)
    print(
        f'campaign {result["campaign"]}: wall {result["wall_time_s"]:.0f} s, stop: {result["stop_reason"]}, '
        f'final accurate fraction {result["final_accurate_fraction"]}, labels in final set '
        f'{result["labels_in_final_set"]}'
    )
    print('\n| jobs | count | failed | lifetime in AiiDA (s) | engine compute (s) | overhead (s) | per job (s) |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for kind, record in sorted(result['jobs'].items()):
        print(
            f'| {kind} | {record["jobs"]} | {record["failed"]} | {record["lifetime_s"]:.0f} | '
            f'{record["engine_s"]:.0f} | {record["overhead_s"]:.0f} | {record["overhead_per_job_s"]:.1f} |'
        )
    stages = result['stage_wall_s']
    print(
        f'\nstage wall times (s): label {stages["label"]:.0f}, train {stages["train"]:.0f}, '
        f'explore {stages["explore"]:.0f}; between stages {result["between_stages_s"]:.0f}'
    )
    if arguments.json:
        with open(arguments.json, 'w') as handle:
            json.dump(result, handle, indent=2)


if __name__ == '__main__':
    main()
