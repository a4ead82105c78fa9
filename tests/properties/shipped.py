"""The committees shipped in ``fixtures/models/<name>``: their member files and the sha256 their README lists."""

from __future__ import annotations

import hashlib
import pathlib
import re

MEMBERS = ['member_0.model', 'member_1.model', 'member_2.model']


def shipped_members(directory: pathlib.Path) -> tuple[list[pathlib.Path], dict[str, str]]:
    """The member files of ``directory`` (sorted) and the ``{file name: sha256}`` of its README's member table."""
    paths = sorted(directory.glob('member_*.model'))
    readme = (directory / 'README.md').read_text()
    listed = dict(re.findall(r'\| (member_\d\.model) \| \d+ \| ([0-9a-f]{64}) \|', readme))
    return paths, listed


def assert_members_match_readme(paths: list[pathlib.Path], listed: dict[str, str]) -> None:
    """Three members, each the file the README names by its sha256."""
    assert [path.name for path in paths] == MEMBERS
    assert {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in paths} == listed
