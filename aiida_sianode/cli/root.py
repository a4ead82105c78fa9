"""The root command group and the helpers every command uses for ``--json`` output."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.params import options, types


class DefaultRunGroup(VerdiCommandGroup):
    """A group whose default sub-command is ``run``: ``explore si.xyz ...`` means ``explore run si.xyz ...``."""

    default_command = 'run'

    def parse_args(self, ctx, args):
        """Put ``run`` in front of the arguments unless they start with a sub-command or a help option."""
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group('aiida-sianode', cls=VerdiCommandGroup, context_settings={'help_option_names': ['-h', '--help']})
@options.PROFILE(type=types.ProfileParamType(load_profile=True), expose_value=False)
def cmd_root():
    """Machine-learning potentials for battery anodes, as provenance-tracked AiiDA work chains."""


_JSON_STDOUT: list = []


def _json_mode(ctx: click.Context, _param, value: bool) -> bool:
    """Under ``--json`` send everything else that would reach stdout (AiiDA's report lines, progress) to stderr.

    The real stdout is kept for :func:`echo_json` and restored when the command ends.
    """
    if value and not _JSON_STDOUT:
        _JSON_STDOUT.append(sys.stdout)
        sys.stdout = sys.stderr

        def restore():
            sys.stdout = _JSON_STDOUT.pop()

        ctx.call_on_close(restore)
    return value


JSON_OPTION = click.option(
    '--json',
    'as_json',
    is_flag=True,
    default=False,
    is_eager=True,
    callback=_json_mode,
    help='Print one JSON document on stdout and nothing else there.',
)


def _default(value: Any):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def echo_json(data: Any) -> None:
    """Print ``data`` as one JSON document on stdout (the real one, also under ``--json``'s redirection)."""
    stream = _JSON_STDOUT[-1] if _JSON_STDOUT else sys.stdout
    click.echo(json.dumps(data, indent=2, default=_default), file=stream)


def echo_info(message: str, as_json: bool = False) -> None:
    """Print a progress or info line: to stderr under ``--json`` so that stdout stays one JSON document."""
    click.echo(message, err=as_json)


def echo_table(
    rows: list[dict], columns: list[str], headers: list[str] | None = None, floatfmt: str | list[str] = '.4g'
) -> None:
    """Print ``rows`` (dicts) as a plain aligned table; ``floatfmt`` is one format or one per column."""
    from tabulate import tabulate

    table = [[row.get(column) for column in columns] for row in rows]
    click.echo(tabulate(table, headers=headers or columns, floatfmt=floatfmt, missingval=''))


def fail(message: str, as_json: bool = False, code: int = 1):
    """Report an error (as ``{"error": ...}`` under ``--json``) and exit with ``code``."""
    if as_json:
        echo_json({'error': message})
    else:
        click.echo(f'Error: {message}', err=True)
    sys.exit(code)


def load_profile_or_fail(as_json: bool = False):
    """Load the profile and its storage, or stop with a message pointing at ``aiida-sianode setup``."""
    from aiida.manage import get_manager

    manager = get_manager()
    try:
        profile = manager.get_profile() or manager.load_profile()
        manager.get_profile_storage()
    except Exception as exception:
        reason = str(exception).splitlines()[0]
        fail(f'no AiiDA profile could be loaded ({reason}); run `aiida-sianode setup` first', as_json)
    return profile


def load_code_or_fail(label: str, as_json: bool = False, hint: str = 'run `aiida-sianode setup` or pass --code'):
    """Return the code ``label`` (``name@computer``), or stop with a message naming it and ``hint``."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        return orm.load_code(label)
    except NotExistent:
        fail(f'code `{label}` not found: {hint}', as_json)
    except (MultipleObjectsError, ValueError) as exception:
        fail(f'code `{label}` cannot be loaded ({exception}): {hint}', as_json)
