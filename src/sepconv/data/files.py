"""Where the project's data lives, and listing the media files of a folder (one-line errors)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sepconv.errors import InputError

DATA_ENV = "SEPCONV_DATA"
"""Environment variable naming the data folder (photos/, videos/, triplets/, middlebury/)."""

# src/sepconv/data/files.py -> the checkout that holds this module (in an editable install)
_REPO_ROOT = Path(__file__).resolve().parents[3]


def data_root(repo_root: Path | str | None = None) -> Path:
    """The data folder used by the tests, benchmarks and scripts (not by training configs).

    ``$SEPCONV_DATA`` when set and not empty; else ``../shared/data`` relative to the
    repository root, `repo_root` (default: the checkout this module lives in; an installed,
    non-editable copy should set SEPCONV_DATA). The folder need not exist: callers check
    for what they need.
    """
    value = os.environ.get(DATA_ENV, "")
    if value:
        return Path(value).expanduser()
    root = Path(repo_root) if repo_root is not None else _REPO_ROOT
    return root.resolve().parent / "shared" / "data"


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
