"""``aiida-sianode dataset``: import, show and export training sets."""

from __future__ import annotations

from aiida_sianode.cli.root import cmd_root


@cmd_root.group('dataset')
def cmd_dataset():
    """Import existing DFT work as labels, show and export training sets."""
