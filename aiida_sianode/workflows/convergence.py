"""Campaign-side helpers of the convergence criteria of :mod:`aiida_sianode.analysis.convergence`."""

from __future__ import annotations

import numpy as np

from aiida_sianode.analysis import convergence as criteria


def exploration_property(exploration, name: str) -> dict:
    """Return ``{'name', 'value', 'spread', 'n_runs'}`` of property ``name`` over the MD runs of ``exploration``.

    ``density``: each run's mean mass density (g/cm^3) over the second half of its frames (the first half is taken
    as equilibration), then mean and spread over the runs.
    """
    from aiida_sianode.workflows.select import exploration_runs

    if name not in criteria.PROPERTIES:
        raise ValueError(f'unknown convergence property {name!r}; choose one of: {", ".join(criteria.PROPERTIES)}')
    per_run = []
    for run in exploration_runs(exploration).values():
        trajectory = run['trajectory']
        cells = trajectory.get_cells()
        if cells is None or len(cells) == 0:
            continue
        atoms = trajectory.get_step_structure(0).get_ase()
        densities = criteria.mass_density(atoms.get_masses(), cells)
        per_run.append(float(np.mean(densities[len(densities) // 2 :])))
    return {'name': name, **criteria.property_over_runs(per_run)}
