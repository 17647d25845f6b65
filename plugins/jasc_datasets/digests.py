"""File checksums (md5 of downloads, sha256 of generated datasets), read in 1-MiB blocks."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's bytes with ``hashlib``'s ``algorithm`` (``md5``, ``sha256``)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
