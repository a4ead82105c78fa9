"""The xTB labeler's SCF annealing: the same result as the plain SCF where that converges, and checked settings."""

import numpy as np
import pytest
from ase.build import bulk

from aiida_sianode.engines import label as engine

ANNEALING = {'start_k': 6000.0, 'hold_iterations': 5, 'cycles': 30}


def test_annealed_scf_gives_the_plain_result(tmp_path):
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    plain = engine.label(atoms, 'xtb', {'accuracy': 3.0}, tmp_path)
    annealed = engine.label(atoms, 'xtb', {'accuracy': 3.0, 'scf_annealing': ANNEALING}, tmp_path)
    assert plain['status'] == annealed['status'] == 'ok'
    assert annealed['energy'] == pytest.approx(plain['energy'], abs=1e-5)
    assert np.asarray(annealed['forces']) == pytest.approx(np.asarray(plain['forces']), abs=1e-3)
    assert annealed['scf']['annealing'] == ANNEALING
    # annealing is an SCF aid: the level of theory stays the protocol's
    assert annealed['level_of_theory'] == plain['level_of_theory']


@pytest.mark.parametrize(
    ('annealing', 'message'),
    [
        ({'start_k': 6000.0}, 'needs exactly the keys start_k, hold_iterations, cycles'),
        ({**ANNEALING, 'start_k': -1.0}, '`start_k` must be a positive number'),
        ({**ANNEALING, 'cycles': 2.5}, '`cycles` must be a non-negative integer'),
        ({**ANNEALING, 'cycles': 300}, 'must be below max_iterations (250)'),
    ],
)
def test_bad_annealing_is_refused(annealing, message):
    problems = engine.validate_parameters('xtb', {'scf_annealing': annealing})
    assert any(message in problem for problem in problems), problems
