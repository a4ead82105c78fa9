"""The ``aiida-sianode`` command line, in verdi's style: ``--profile`` on the root, ``--json`` on every command."""

from aiida_sianode.cli.root import cmd_root

# Importing the command modules registers their commands on ``cmd_root``.
from aiida_sianode.cli import (  # noqa: F401  isort: skip
    setup,
    dataset,
    potential,
    build,
    select,
    label,
    train,
    explore,
    dataset_import,
    campaign,
    presample,
    computer,
    resume,
    property,
)

__all__ = ('cmd_root',)
