"""aiida-sianode: provenance-tracked machine-learning potentials for battery anodes, as AiiDA work chains."""

__version__ = '0.1.0'
