"""Self-check of an installation: every engine's stack imports and both local labelers compute.

Run as ``python -m aiida_sianode.selfcheck`` (``make check``, also the last step of ``make install``). It prints the
versions of the packages the engines and plugins rely on, then runs a GPAW PBE single point of an Si2 cell (plane
waves, 200 eV, Γ only: about ten seconds) and a GFN1-xTB single point of the same cell, and checks that the energies
and forces are finite and that the forces of the symmetric cell vanish. It exits non-zero, naming what failed, when
any import or calculation fails, so a user knows that the labelers work before a campaign starts.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import tempfile
import time

#: distributions whose versions are printed (and whose import is checked)
PACKAGES = {
    'aiida-core': 'aiida',
    'aiida-vasp': 'aiida_vasp',
    'aiida-castep': 'aiida_castep',
    'aiida-lammps': 'aiida_lammps',
    'ase': 'ase',
    'numpy': 'numpy',
    'torch': 'torch',
    'mace-torch': 'mace',
    'gpaw': 'gpaw',
    'tblite': 'tblite',
    'lammps': 'lammps',
    'pymatgen': 'pymatgen.core',
    'matscipy': 'matscipy',
    'phonopy': 'phonopy',
}

#: forces of the symmetric Si2 cell must vanish to this tolerance (eV/Å)
FORCE_TOLERANCE = 1e-2


def _si2():
    from ase.build import bulk

    atoms = bulk('Si', 'diamond', a=5.43)
    atoms.rattle(0.0)
    return atoms


def check_imports() -> list[str]:
    """Import every package of :data:`PACKAGES`, print its version; return the problems found."""
    problems = []
    for distribution, module in PACKAGES.items():
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f'{distribution} is not installed')
            print(f'  {distribution:<14} MISSING')
            continue
        try:
            importlib.import_module(module)
        except Exception as exception:  # any import failure is what the check is for
            problems.append(f'{distribution} {version} is installed but `import {module}` fails: {exception}')
            print(f'  {distribution:<14} {version}  IMPORT FAILED: {exception}')
            continue
        print(f'  {distribution:<14} {version}')
    return problems


def check_labeler(labeler: str, parameters: dict) -> list[str]:
    """Run one single point of Si2 with the project's own label engine; return the problems found."""
    import numpy as np

    from aiida_sianode.engines.label import STATUS_OK, label

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        results = label(_si2(), labeler, parameters, workdir)
    elapsed = time.perf_counter() - start
    if results['status'] != STATUS_OK:
        return [f'{labeler} single point of Si2 failed ({results["status"]}): {results.get("error")}']
    forces = np.asarray(results['forces'], dtype=float)
    energy = float(results['energy'])
    problems = []
    if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
        problems.append(f'{labeler} returned a non-finite energy or force')
    elif np.abs(forces).max() > FORCE_TOLERANCE:
        problems.append(
            f'{labeler}: forces of the symmetric Si2 cell should vanish, largest is {np.abs(forces).max():.3g} eV/Å'
        )
    print(
        f'  {labeler:<5} Si2 single point: E = {energy:.4f} eV, max |F| = {np.abs(forces).max():.1e} eV/Å, '
        f'{elapsed:.1f} s'
    )
    return problems


def main() -> int:
    """Print versions, run both labelers; return 0 when everything works, 1 otherwise."""
    print('aiida-sianode self-check')
    print('packages:')
    problems = check_imports()
    print('labelers:')
    problems += check_labeler('gpaw', {'cutoff_ev': 200.0, 'kpoint_density': None, 'compute_stress': False})
    problems += check_labeler('xtb', {'compute_stress': False})
    if problems:
        print('self-check FAILED:', file=sys.stderr)
        for problem in problems:
            print(f'  - {problem}', file=sys.stderr)
        return 1
    print('self-check passed: the engines import and both local labelers compute.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
