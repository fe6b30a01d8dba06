"""Discovery of frame triplets (first, true middle, last) on disk.

Two layouts are supported:

* Middlebury (:func:`middlebury_triplets`): ``root/<Seq>/frame10.png``, ``frame11.png`` and the
  true middle ``frame10i11.png``.
* Folders of ``im1.png``, ``im2.png``, ``im3.png`` with ``im2`` the true middle
  (:func:`folder_triplets`): any folder tree, including Vimeo-90k's
  ``root/sequences/<XXXXX>/<XXXX>/`` with its ``tri_testlist.txt`` / ``tri_trainlist.txt``.

Only paths are gathered here; nothing is decoded. Missing folders and folders without any
triplet raise :class:`sepconv.errors.InputError` with a one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from sepconv.errors import InputError

__all__ = ["FrameTriplet", "Triplet", "folder_triplets", "middlebury_triplets"]

Split = Literal["test", "train"]

_MIDDLEBURY_FILES = ("frame10.png", "frame10i11.png", "frame11.png")
_FOLDER_FILES = ("im1.png", "im2.png", "im3.png")
_VIMEO_LISTS = {"test": "tri_testlist.txt", "train": "tri_trainlist.txt"}


@dataclass(frozen=True)
class Triplet:
    """One evaluation item: interpolate ``middle`` from ``first`` and ``last``.

    Attributes:
        name: identifier of the item, a relative path with '/' separators (e.g. ``"Beanbags"``,
            ``"00001/0001"``); unique within one dataset.
        first: path of the first input frame.
        middle: path of the ground-truth middle frame.
        last: path of the last input frame.
    """

    name: str
    first: Path
    middle: Path
    last: Path


@dataclass(frozen=True, eq=False)
class FrameTriplet:
    """An evaluation item already in memory: uint8 RGB (H, W, 3) arrays, 0..255 (e.g. crops of
    a user's clip, held out while a model adapts to it)."""

    name: str
    first: np.ndarray
    middle: np.ndarray
    last: np.ndarray


def _require_dir(root: Path | str) -> Path:
    path = Path(root)
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise InputError(f"dataset folder {str(path)!r} {what}")
    return path


def _has_files(folder: Path, names: tuple[str, ...]) -> bool:
    return all((folder / name).is_file() for name in names)


def middlebury_triplets(root: Path | str) -> list[Triplet]:
    """Triplets of a Middlebury-style folder, sorted by sequence name.

    Every direct sub-folder of ``root`` that holds ``frame10.png``, ``frame11.png`` and
    ``frame10i11.png`` is one item named after the sub-folder; other sub-folders are ignored.

    Raises:
        InputError: ``root`` is missing or no sub-folder holds the three frames.
    """
    base = _require_dir(root)
    triplets = [
        Triplet(
            name=folder.name,
            first=folder / "frame10.png",
            middle=folder / "frame10i11.png",
            last=folder / "frame11.png",
        )
        for folder in sorted(base.iterdir(), key=lambda p: p.name)
        if folder.is_dir() and _has_files(folder, _MIDDLEBURY_FILES)
    ]
    if not triplets:
        raise InputError(
            f"no Middlebury triplets in {str(base)!r} (expected <seq>/frame10.png, "
            "frame11.png, frame10i11.png)"
        )
    return triplets


def _folder_triplet(name: str, folder: Path) -> Triplet:
    return Triplet(
        name=name, first=folder / "im1.png", middle=folder / "im2.png", last=folder / "im3.png"
    )


def _listed_triplets(base: Path, list_file: Path) -> list[Triplet]:
    """Vimeo-90k: one ``XXXXX/XXXX`` per line of ``list_file``, relative to base/sequences."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {str(list_file)!r}: {error}") from None
    entries = [line.strip().strip("/") for line in lines if line.strip()]
    triplets = []
    missing = []
    for entry in entries:
        folder = base / "sequences" / entry
        if _has_files(folder, _FOLDER_FILES):
            triplets.append(_folder_triplet(entry, folder))
        else:
            missing.append(entry)
    if missing:
        raise InputError(
            f"{len(missing)} of {len(entries)} folders listed in {str(list_file)!r} lack "
            f"im1.png/im2.png/im3.png under {str(base / 'sequences')!r}, first: {missing[0]!r}"
        )
    if not triplets:
        raise InputError(f"{str(list_file)!r} lists no triplets")
    return sorted(triplets, key=lambda t: t.name)


def folder_triplets(root: Path | str, split: Split | None = None) -> list[Triplet]:
    """Triplets of ``im1.png`` / ``im2.png`` (truth) / ``im3.png`` folders, sorted by name.

    With ``split=None`` every folder under ``root`` (recursively, ``root`` included, symbolic
    links to folders not followed) that holds the three files is one item, named by its path
    relative to ``root`` with '/' separators (``root`` itself is named after its own folder name).

    With ``split="test"`` or ``"train"`` the Vimeo-90k layout is expected: the items are the
    ``XXXXX/XXXX`` lines of ``root/tri_testlist.txt`` or ``root/tri_trainlist.txt``, read from
    ``root/sequences/XXXXX/XXXX/``, and named ``"XXXXX/XXXX"``.

    Raises:
        InputError: ``root`` is missing; no folder holds a triplet; ``split`` is given but its
            list file is missing, or lists folders that do not hold the three frames.
        ValueError: ``split`` is not ``"test"``, ``"train"`` or None.
    """
    if split is not None and split not in _VIMEO_LISTS:
        raise ValueError(f"split must be 'test', 'train' or None, got {split!r}")
    base = _require_dir(root)
    if split is not None:
        list_file = base / _VIMEO_LISTS[split]
        if not list_file.is_file():
            raise InputError(
                f"no {_VIMEO_LISTS[split]} in {str(base)!r} (needed for split {split!r}; "
                "omit the split to scan the folder for im1/im2/im3.png)"
            )
        return _listed_triplets(base, list_file)

    triplets = []
    for dirpath, dirnames, _ in os.walk(base):
        dirnames.sort()
        folder = Path(dirpath)
        if _has_files(folder, _FOLDER_FILES):
            relative = folder.relative_to(base).as_posix()
            name = base.resolve().name if relative == "." else relative
            triplets.append(_folder_triplet(name, folder))
    if not triplets:
        raise InputError(f"no triplets (folders with im1.png, im2.png, im3.png) in {str(base)!r}")
    return sorted(triplets, key=lambda t: t.name)


def clip_name(triplet_name: str) -> str:
    """The clip a triplet was cut from: its folder name less a trailing ``_<frame number>``
    (``"realshort_11"`` -> ``"realshort"``; a name without one is its own clip)."""
    stem = triplet_name.rsplit("/", 1)[-1]
    head, _, tail = stem.rpartition("_")
    return head if head and tail.isdigit() else stem


def of_clips(triplets: list[Triplet], clips: Iterable[str]) -> list[Triplet]:
    """The triplets cut from the named clips (see :func:`clip_name`), in their order."""
    wanted = set(clips)
    return [triplet for triplet in triplets if clip_name(triplet.name) in wanted]
