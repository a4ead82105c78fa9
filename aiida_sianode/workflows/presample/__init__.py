"""Classical pre-sampling: melt-quench amorphous structures with LAMMPS (``sianode.presample``).

* :mod:`.workchain`: :class:`PresampleWorkChain` and its input validators;
* :mod:`.lammps`: the LAMMPS parameters of each stage (plain functions);
* :mod:`.calcfunctions`: the snapshot extraction and the analysis of the final structure;
* the schedule, random starting cell and coordination cutoffs: :mod:`aiida_sianode.structures.melt_quench`.
"""

from aiida_sianode.structures.melt_quench import (
    DEFAULT_COORDINATION_CUTOFFS,
    MIN_MELT_MSD,
    RANDOM_CELL_BUILDERS,
    check_random_cell,
    cutoffs_for_elements,
    melt_quench_schedule,
    parse_cutoffs,
    random_cell_request,
)
from aiida_sianode.workflows.presample.workchain import PresampleWorkChain

__all__ = (
    'DEFAULT_COORDINATION_CUTOFFS',
    'MIN_MELT_MSD',
    'RANDOM_CELL_BUILDERS',
    'PresampleWorkChain',
    'check_random_cell',
    'cutoffs_for_elements',
    'melt_quench_schedule',
    'parse_cutoffs',
    'random_cell_request',
)
