"""Property work chains ``sianode.properties.<kind>``: one thin subclass of :class:`PropertyWorkChain` per kind.

Each sets only its kind; inputs, refusals, restarts and the DFT reference are the base class's, the science is the
kernel ``aiida_sianode.properties.<kind>``.
"""

from aiida_sianode.workflows.properties.base import PropertyWorkChain


class StructurePropertyWorkChain(PropertyWorkChain):
    """g(r), coordination, bond angles, rings, sp fractions and density of a structure, per committee member."""

    _kind = 'structure'


class AmorphousPropertyWorkChain(PropertyWorkChain):
    """Melt, quench and anneal with each committee member, then the structure analysis of the amorphous phase."""

    _kind = 'amorphous'


class EosPropertyWorkChain(PropertyWorkChain):
    """Relaxed lattice, E(V) and Birch-Murnaghan fit (V0, B, B') per committee member."""

    _kind = 'eos'


class ElasticPropertyWorkChain(PropertyWorkChain):
    """Elastic constants Cij from finite strains with relaxed ions, and Voigt-Reuss-Hill moduli, per member."""

    _kind = 'elastic'


class LithiationPropertyWorkChain(PropertyWorkChain):
    """Li-Si formation energies, convex hull, voltage profile and volume expansion, per committee member."""

    _kind = 'lithiation'


class CoreShellPropertyWorkChain(PropertyWorkChain):
    """Radii, shell strain and volume change of a lithiated Si@C core-shell particle, per committee member."""

    _kind = 'core_shell'


class MdPropertyWorkChain(PropertyWorkChain):
    """Production molecular dynamics with each committee member."""

    _kind = 'md'


class DiffusionPropertyWorkChain(PropertyWorkChain):
    """Diffusivities from the MSD over temperatures, Arrhenius fit, per committee member."""

    _kind = 'diffusion'


class PhononsPropertyWorkChain(PropertyWorkChain):
    """Phonon frequencies and density of states from finite displacements, per committee member."""

    _kind = 'phonons'


class VdosPropertyWorkChain(PropertyWorkChain):
    """Vibrational density of states from the velocity autocorrelation of MD, per committee member."""

    _kind = 'vdos'


class NebPropertyWorkChain(PropertyWorkChain):
    """Migration barriers from nudged elastic bands, per committee member."""

    _kind = 'neb'


__all__ = (
    'AmorphousPropertyWorkChain',
    'CoreShellPropertyWorkChain',
    'DiffusionPropertyWorkChain',
    'ElasticPropertyWorkChain',
    'EosPropertyWorkChain',
    'LithiationPropertyWorkChain',
    'MdPropertyWorkChain',
    'NebPropertyWorkChain',
    'PhononsPropertyWorkChain',
    'PropertyWorkChain',
    'StructurePropertyWorkChain',
    'VdosPropertyWorkChain',
)
