"""The one file hash of the project: the SHA-256 that labels (their source file) and potentials (their model file)
record, so a file can be recognised again by its content."""

from __future__ import annotations

import hashlib
import os

__all__ = ('sha256_file',)

#: Bytes read at a time: large model and trajectory files are hashed without being held in memory.
CHUNK_BYTES = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hexadecimal SHA-256 digest of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b''):
            digest.update(chunk)
    return digest.hexdigest()
