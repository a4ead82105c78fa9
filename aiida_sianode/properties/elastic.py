"""Elastic constants from finite strains with relaxed ions, and the Voigt-Reuss-Hill moduli.

Per member: relax positions and cell (FIRE + ``FrechetCellFilter``), then for each of the six Voigt strain
components ``j`` and each magnitude ``e`` of ``strains`` apply ``F = I + ε`` (``ε_jj = e`` for a normal strain,
``ε_kl = ε_lk = e/2`` for a shear, i.e. engineering shear strain ``e``), relax the ions at the fixed strained cell and
read the stress. ``C_ij`` is the least-squares slope of ``σ_i`` against ``e_j`` over the magnitudes and the unstrained
cell (our own fit: a straight line per pair, no pymatgen), symmetrised. Stress is ASE's (positive = tensile), so
``σ = C ε`` with ``C`` in GPa. Bulk and shear moduli: Voigt, Reuss and Hill averages.

Reference (``reference``): the same strained cells from the *input* structure, labelled as they are: single points
cannot relax ions, so the DFT constants are clamped-ion (for diamond Si, C44 clamped is much larger than relaxed).
"""

from __future__ import annotations

import pathlib

import numpy as np

from aiida_sianode.properties.common import (
    InvalidPropertyInput,
    check_fraction_range,
    relax,
    require_keys,
)

KIND = 'elastic'
DESCRIPTION = 'Elastic constants Cij (finite strains, relaxed ions) and Voigt-Reuss-Hill bulk and shear moduli'

SETTINGS = ('strains', 'relax', 'relax_ions')
RELAX_SETTINGS = ('fmax_ev_a', 'stress_tol_gpa', 'max_steps')
VOIGT = ('xx', 'yy', 'zz', 'yz', 'xz', 'xy')
_VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def validate_settings(settings: dict, structures: list) -> None:
    """Refuse anything but one 3D-periodic structure, an empty strain list or one over 20 %, unknown keys."""
    require_keys(settings, SETTINGS, KIND)
    require_keys(settings.get('relax', {}), RELAX_SETTINGS, f'{KIND} (relax)')
    if len(structures) != 1:
        raise InvalidPropertyInput(f'the elastic constants take exactly one structure, got {len(structures)}')
    if not all(structures[0].pbc):
        raise InvalidPropertyInput('the elastic constants need a structure periodic in all three directions')
    strains = [float(value) for value in settings.get('strains', [])]
    check_fraction_range('strain', strains)
    if any(value == 0 for value in strains):
        raise InvalidPropertyInput('the strains must be non-zero (the unstrained cell is always included)')


def strain_matrix(component: int, magnitude: float) -> np.ndarray:
    """Symmetric strain tensor of Voigt component ``component`` (0-5) with engineering magnitude ``magnitude``."""
    epsilon = np.zeros((3, 3))
    i, j = _VOIGT_PAIRS[component]
    if i == j:
        epsilon[i, i] = magnitude
    else:
        epsilon[i, j] = epsilon[j, i] = magnitude / 2.0
    return epsilon


def strained(atoms, component: int, magnitude: float):
    """A copy of ``atoms`` with its cell (and atoms) deformed by ``F = I + ε``."""
    copy = atoms.copy()
    deformation = np.eye(3) + strain_matrix(component, magnitude)
    copy.set_cell(np.array(atoms.get_cell()) @ deformation.T, scale_atoms=True)
    return copy


def fit_elastic_tensor(strains: np.ndarray, stresses: np.ndarray) -> np.ndarray:
    """Return the 6x6 ``C`` (units of ``stresses``) from the stresses of every strained cell.

    :param strains: the magnitudes ``e`` (engineering strains), shape ``(m,)``.
    :param stresses: shape ``(6, m + 1, 6)``: for component ``j``, the Voigt stress of the unstrained cell (first)
        and of each magnitude.
    """
    x = np.concatenate([[0.0], np.asarray(strains, dtype=float)])
    tensor = np.zeros((6, 6))
    for j in range(6):
        for i in range(6):
            tensor[i, j] = np.polyfit(x, stresses[j][:, i], 1)[0]
    return 0.5 * (tensor + tensor.T)


def voigt_reuss_hill(tensor: np.ndarray) -> dict:
    """Bulk and shear moduli (units of ``tensor``) in the Voigt, Reuss and Hill averages, Young's modulus and Poisson
    ratio of the Hill averages."""
    c = tensor
    bulk_voigt = (c[0, 0] + c[1, 1] + c[2, 2] + 2 * (c[0, 1] + c[0, 2] + c[1, 2])) / 9.0
    shear_voigt = (
        (c[0, 0] + c[1, 1] + c[2, 2]) - (c[0, 1] + c[0, 2] + c[1, 2]) + 3 * (c[3, 3] + c[4, 4] + c[5, 5])
    ) / 15.0
    s = np.linalg.inv(c)
    bulk_reuss = 1.0 / ((s[0, 0] + s[1, 1] + s[2, 2]) + 2 * (s[0, 1] + s[0, 2] + s[1, 2]))
    shear_reuss = 15.0 / (
        4 * (s[0, 0] + s[1, 1] + s[2, 2]) - 4 * (s[0, 1] + s[0, 2] + s[1, 2]) + 3 * (s[3, 3] + s[4, 4] + s[5, 5])
    )
    bulk_hill, shear_hill = (bulk_voigt + bulk_reuss) / 2, (shear_voigt + shear_reuss) / 2
    return {
        'bulk_modulus_voigt': float(bulk_voigt),
        'bulk_modulus_reuss': float(bulk_reuss),
        'bulk_modulus_hill': float(bulk_hill),
        'shear_modulus_voigt': float(shear_voigt),
        'shear_modulus_reuss': float(shear_reuss),
        'shear_modulus_hill': float(shear_hill),
        'youngs_modulus_hill': float(9 * bulk_hill * shear_hill / (3 * bulk_hill + shear_hill)),
        'poisson_ratio_hill': float((3 * bulk_hill - 2 * shear_hill) / (2 * (3 * bulk_hill + shear_hill))),
    }


def tensor_scalars(tensor_gpa: np.ndarray) -> dict:
    """Scalars of a 6x6 tensor in GPa: ``c<ij>_gpa`` for i <= j, the VRH moduli (``_gpa``), the Poisson ratio, and
    for a cubic crystal the averages ``c11_cubic_gpa``, ``c12_cubic_gpa``, ``c44_cubic_gpa``."""
    scalars = {}
    for i in range(6):
        for j in range(i, 6):
            scalars[f'c{i + 1}{j + 1}_gpa'] = float(tensor_gpa[i, j])
    for name, value in voigt_reuss_hill(tensor_gpa).items():
        scalars[name if name == 'poisson_ratio_hill' else f'{name}_gpa'] = value
    c = tensor_gpa
    scalars['c11_cubic_gpa'] = float((c[0, 0] + c[1, 1] + c[2, 2]) / 3)
    scalars['c12_cubic_gpa'] = float((c[0, 1] + c[0, 2] + c[1, 2]) / 3)
    scalars['c44_cubic_gpa'] = float((c[3, 3] + c[4, 4] + c[5, 5]) / 3)
    return scalars


def _curves(magnitudes: np.ndarray, stresses_gpa: np.ndarray) -> dict:
    x = np.concatenate([[0.0], magnitudes])
    order = np.argsort(x)
    curves = {}
    for name, (j, i) in {
        'stress_xx_vs_strain_xx': (0, 0),
        'stress_yy_vs_strain_xx': (0, 1),
        'stress_yz_vs_strain_yz': (3, 3),
    }.items():
        curves[name] = {
            'x': x[order].tolist(),
            'y': stresses_gpa[j][order, i].tolist(),
            'x_label': f'strain {VOIGT[j]} (engineering)',
            'y_label': f'stress {VOIGT[i]} (GPa)',
        }
    return curves


def run_member(structures: list, calculator, settings: dict, workdir: pathlib.Path) -> dict:
    """Relax, strain, relax the ions, fit ``C`` (see the module docstring)."""
    from ase.units import GPa

    workdir = pathlib.Path(workdir)
    options = settings['relax']
    atoms = structures[0].copy()
    atoms.calc = calculator
    relaxation = relax(
        atoms,
        fmax=options['fmax_ev_a'],
        stress_tol_gpa=options['stress_tol_gpa'],
        max_steps=options['max_steps'],
        logfile=str(workdir / 'relax.log'),
    )
    reference_stress = atoms.get_stress(voigt=True) / GPa
    magnitudes = np.asarray(settings['strains'], dtype=float)
    stresses = np.zeros((6, len(magnitudes) + 1, 6))
    unconverged = 0
    for j in range(6):
        stresses[j, 0] = reference_stress
        for k, magnitude in enumerate(magnitudes):
            cell = strained(atoms, j, magnitude)
            cell.calc = calculator
            if settings.get('relax_ions', True):
                result = relax(
                    cell, fmax=options['fmax_ev_a'], stress_tol_gpa=None, max_steps=options['max_steps'], cell=False
                )
                unconverged += not result['converged']
            stresses[j, k + 1] = cell.get_stress(voigt=True) / GPa
    tensor = fit_elastic_tensor(magnitudes, stresses)
    return {
        'scalars': tensor_scalars(tensor),
        'curves': _curves(magnitudes, stresses),
        'extra': {
            'elastic_tensor_gpa': tensor.tolist(),
            'relaxation': relaxation,
            'unconverged_ion_relaxations': unconverged,
            'relaxed_cell_a': np.array(atoms.get_cell()).tolist(),
        },
    }


def reference_configurations(structures: list, settings: dict) -> list:
    """The unstrained input cell, then each Voigt component at each strain magnitude (ions not relaxed)."""
    configurations = [structures[0].copy()]
    for j in range(6):
        for magnitude in settings['strains']:
            configurations.append(strained(structures[0], j, float(magnitude)))
    return configurations


def reference_result(configurations: list, settings: dict) -> dict:
    """Clamped-ion ``C`` and moduli from DFT stresses of :func:`reference_configurations`."""
    from ase.units import GPa

    magnitudes = np.asarray(settings['strains'], dtype=float)
    m = len(magnitudes)
    base = configurations[0].get_stress(voigt=True) / GPa
    stresses = np.zeros((6, m + 1, 6))
    for j in range(6):
        stresses[j, 0] = base
        for k in range(m):
            stresses[j, k + 1] = configurations[1 + j * m + k].get_stress(voigt=True) / GPa
    tensor = fit_elastic_tensor(magnitudes, stresses)
    return {
        'scalars': tensor_scalars(tensor),
        'curves': _curves(magnitudes, stresses),
        'extra': {'elastic_tensor_gpa': tensor.tolist(), 'clamped_ion': True},
    }
