"""The names of the error metrics of a potential on labelled frames, one list for the whole package.

:func:`aiida_sianode.engines.train.error_metrics` computes them; the committee summary
(:mod:`aiida_sianode.workflows.train`), the parity plots and the CLI tables read them by these names.
"""

#: Energy per atom (meV/atom), force components (meV/Å), Voigt stress components (meV/Å^3); RMSE and MAE each.
ERROR_METRIC_KEYS = (
    'rmse_e_per_atom_mev',
    'mae_e_per_atom_mev',
    'rmse_f_mev_a',
    'mae_f_mev_a',
    'rmse_stress_mev_a3',
    'mae_stress_mev_a3',
)
