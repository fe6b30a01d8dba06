"""Listing the media files of a folder, with one-line errors."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sepconv.errors import InputError


def list_files(folder: Path | str, suffixes: Iterable[str], kind: str) -> list[Path]:
    """Files directly in `folder` whose lower-cased suffix is in `suffixes`, sorted by name.

    Raises:
        InputError: the folder does not exist, or holds no such file (`kind` names them,
            e.g. "photo", "video").
    """
    base = Path(folder)
    suffixes = tuple(suffixes)
    if not base.is_dir():
        raise InputError(f"{kind} folder {str(base)!r} does not exist")
    paths = sorted(p for p in base.iterdir() if p.suffix.lower() in suffixes)
    if not paths:
        raise InputError(f"no {kind}s ({', '.join(suffixes)}) in {str(base)!r}")
    return paths
