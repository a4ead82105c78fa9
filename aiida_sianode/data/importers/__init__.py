"""Import existing DFT work as labels: extended XYZ datasets, VASP ``vasprun.xml``/``OUTCAR``, CASTEP
``.castep``/``.geom``/``.md``.

Every ionic step (frame) of a file becomes one :class:`~aiida_sianode.data.label.LabelData`, or is refused with the
reason. Nothing half-read becomes a label:

* the numbers (positions, cell, energy, forces, stress) are read by ASE's readers (``vasp-xml``, ``vasp-out``,
  ``castep-castep``, ``castep-geom``, ``castep-md``, ``extxyz``), never by a parser of our own, and converted by
  them to eV, eV/Å and eV/Å^3 with ASE's sign convention (for VASP the energy is ``energy(sigma->0)``, for a
  ``.castep`` file ASE's ``energy``: the 0 K estimate E-0.5TS with smearing, otherwise the final energy);
* a frame whose electronic self-consistency did not converge is refused: VASP steps that used all ``NELM``
  electronic steps (VASP 6 OUTCARs, which say "EDIFF was not reached", are taken at their word), CASTEP steps
  with the warning "SCF cycles performed but system has not reached the groundstate";
* a file cut off in the middle (a killed job, XML not closed) gives its whole ionic steps and the incomplete one
  is reported; a CASTEP file without a regular end is refused whole, with the warnings aiida-castep's parser
  finds in it;
* a frame without energy or forces (CASTEP prints no forces for BFGS trial steps) is refused;
* a frame whose structure equals one imported earlier in the same import (a ``vasprun.xml`` and the ``OUTCAR``
  of the same run, a ``.castep`` and its ``.md``) is refused as a duplicate.

The level of theory of each label is read from the file where the file has it: VASP ENCUT, GGA/METAGGA/LHFCALC,
ISMEAR/SIGMA, ISPIN, KSPACING or the k-point mesh, POTCAR titles and the version (from the ``<parameters>``,
``<incar>``, ``<kpoints>`` and ``<atominfo>`` blocks of ``vasprun.xml`` or the OUTCAR header); CASTEP cut-off,
functional, spin, smearing, pseudopotentials, MP grid and version (ASE's header reader, plus the smearing lines
and aiida-castep's version pattern). An extxyz file carries none: pass ``level_of_theory``. A ``.geom``/``.md``
file takes it from the ``.castep`` of the same seed beside it (or from ``level_of_theory``); its energies are the
free energy CASTEP writes there, so its record carries a ``description`` saying so and its labels do not mix
silently with labels read from ``.castep`` files.

Each label records ``source = {'kind': 'file', 'filename', 'sha256', 'frame', 'format'}``; frames are counted
from 0, as ``ase.io.read`` indexes them.

The package: :mod:`~aiida_sianode.data.importers.core` (formats, paths, duplicates, :func:`import_files`),
:mod:`~aiida_sianode.data.importers.report` (what was imported and refused), and one module per format family
(:mod:`~aiida_sianode.data.importers.vasp`, :mod:`~aiida_sianode.data.importers.castep`,
:mod:`~aiida_sianode.data.importers.extxyz`). The level-of-theory records are built by
:mod:`aiida_sianode.common.level_of_theory`, shared with the label work chains.
"""

from aiida_sianode.data.importers.castep import CASTEP_TRAJECTORY_ENERGY
from aiida_sianode.data.importers.core import DUPLICATE_TOLERANCE, FORMATS, detect_format, import_files
from aiida_sianode.data.importers.report import FileReport, FrameRefusal, ImportReport

__all__ = (
    'CASTEP_TRAJECTORY_ENERGY',
    'DUPLICATE_TOLERANCE',
    'FORMATS',
    'FileReport',
    'FrameRefusal',
    'ImportReport',
    'detect_format',
    'import_files',
)
