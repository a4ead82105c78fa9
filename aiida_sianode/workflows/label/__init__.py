"""Label work chains: one interface (:class:`CommonLabelWorkChain`) over GPAW, GFN1-xTB, VASP and CASTEP."""

from aiida_sianode.workflows.label.base import CommonLabelWorkChain

__all__ = ('CommonLabelWorkChain', 'get_label_workchain')


def get_label_workchain(labeler: str):
    """Return the label work chain class of ``labeler`` (``gpaw``, ``xtb``, ``vasp``, ``castep``).

    :raises ValueError: when the entry point ``sianode.label.<labeler>`` is missing or cannot be loaded.
    """
    from aiida.common.exceptions import EntryPointError
    from aiida.plugins import WorkflowFactory

    try:
        return WorkflowFactory(f'sianode.label.{labeler}')
    except EntryPointError as exception:
        raise ValueError(f'no label work chain for labeler `{labeler}` ({exception})') from exception
