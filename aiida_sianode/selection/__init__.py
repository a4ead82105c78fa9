"""Frame selection for active learning: which MD frames to label next.

Plain numpy / scikit-learn kernels, no AiiDA (the calcfunction lives in :mod:`aiida_sianode.workflows.select`):

* :mod:`~aiida_sianode.selection.trust`: committee trust levels (DP-GEN) and caps per run / per iteration;
* :mod:`~aiida_sianode.selection.maxvol`: D-optimality with the maxvol algorithm, extrapolation grades (MTP);
* :mod:`~aiida_sianode.selection.direct`: DIRECT sampling (PCA + BIRCH + stratified picks);
* :mod:`~aiida_sianode.selection.random`: the seeded random baseline;
* :mod:`~aiida_sianode.selection.dedup`: removal of near-identical frames;
* :mod:`~aiida_sianode.selection.descriptors`: per-atom MACE descriptors, a model-free radial fallback, pooling;
* :mod:`~aiida_sianode.selection.strategies`: the table of strategies (each orders a pool of frames);
* :mod:`~aiida_sianode.selection.report`: the report of one selection.
"""

from aiida_sianode.selection.dedup import deduplicate, select_distinct
from aiida_sianode.selection.direct import direct_sample
from aiida_sianode.selection.maxvol import extrapolation_grades, frame_grades, maxvol, select_maxvol
from aiida_sianode.selection.random import random_sample
from aiida_sianode.selection.trust import cap_selection, classify_frames, select_by_trust

__all__ = (
    'cap_selection',
    'classify_frames',
    'deduplicate',
    'direct_sample',
    'extrapolation_grades',
    'frame_grades',
    'maxvol',
    'random_sample',
    'select_by_trust',
    'select_distinct',
    'select_maxvol',
)
