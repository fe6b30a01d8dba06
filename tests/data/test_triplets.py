"""Triplet discovery on small temporary folder trees (empty files stand in for frames)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sepconv.data.triplets import Triplet, folder_triplets, middlebury_triplets
from sepconv.errors import InputError, SepconvError


def _touch(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


def _triplet_folder(folder: Path) -> Path:
    return _touch(folder, "im1.png", "im2.png", "im3.png")


def _middlebury_folder(folder: Path) -> Path:
    return _touch(folder, "frame10.png", "frame10i11.png", "frame11.png")


def _assert_one_line_user_error(excinfo: pytest.ExceptionInfo) -> None:
    assert isinstance(excinfo.value, SepconvError)
    assert "\n" not in str(excinfo.value)


def test_middlebury(tmp_path: Path) -> None:
    for name in ["Walking", "Beanbags", "Venus"]:
        _middlebury_folder(tmp_path / name)
    _touch(tmp_path / "Incomplete", "frame10.png", "frame11.png")
    _touch(tmp_path, "README.md")
    triplets = middlebury_triplets(tmp_path)
    assert [t.name for t in triplets] == ["Beanbags", "Venus", "Walking"]
    assert triplets[0] == Triplet(
        name="Beanbags",
        first=tmp_path / "Beanbags" / "frame10.png",
        middle=tmp_path / "Beanbags" / "frame10i11.png",
        last=tmp_path / "Beanbags" / "frame11.png",
    )
    assert middlebury_triplets(str(tmp_path)) == triplets


def test_middlebury_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist") as excinfo:
        middlebury_triplets(tmp_path / "missing")
    _assert_one_line_user_error(excinfo)
    with pytest.raises(InputError, match="not a folder"):
        middlebury_triplets(_touch(tmp_path, "file.png") / "file.png")
    _touch(tmp_path / "Partial", "frame10.png")
    with pytest.raises(InputError, match="no Middlebury triplets") as excinfo:
        middlebury_triplets(tmp_path)
    _assert_one_line_user_error(excinfo)


def test_folder_recursive(tmp_path: Path) -> None:
    _triplet_folder(tmp_path / "x")
    _triplet_folder(tmp_path / "a" / "b")
    _triplet_folder(tmp_path / "a" / "b" / "c")
    _touch(tmp_path / "d", "im1.png", "im3.png")
    triplets = folder_triplets(tmp_path)
    assert [t.name for t in triplets] == ["a/b", "a/b/c", "x"]
    first = triplets[0]
    assert (first.first, first.middle, first.last) == (
        tmp_path / "a" / "b" / "im1.png",
        tmp_path / "a" / "b" / "im2.png",
        tmp_path / "a" / "b" / "im3.png",
    )


def test_folder_root_is_a_triplet(tmp_path: Path) -> None:
    root = _triplet_folder(tmp_path / "clip_7")
    assert [t.name for t in folder_triplets(root)] == ["clip_7"]


def _vimeo(root: Path) -> Path:
    for entry in ["00001/0001", "00001/0002", "00002/0001"]:
        _triplet_folder(root / "sequences" / entry)
    (root / "tri_testlist.txt").write_text("00002/0001\n00001/0002\n\n", encoding="utf-8")
    (root / "tri_trainlist.txt").write_text("00001/0001\n", encoding="utf-8")
    return root


def test_vimeo_splits(tmp_path: Path) -> None:
    root = _vimeo(tmp_path / "vimeo_triplet")
    test = folder_triplets(root, split="test")
    assert [t.name for t in test] == ["00001/0002", "00002/0001"]
    assert test[0].middle == root / "sequences" / "00001" / "0002" / "im2.png"
    assert [t.name for t in folder_triplets(root, split="train")] == ["00001/0001"]
    # Without a split every folder is found by the recursive scan.
    assert [t.name for t in folder_triplets(root)] == [
        "sequences/00001/0001",
        "sequences/00001/0002",
        "sequences/00002/0001",
    ]


def test_vimeo_errors(tmp_path: Path) -> None:
    root = _vimeo(tmp_path / "vimeo")
    (root / "tri_testlist.txt").write_text("00001/0001\n00003/0001\n", encoding="utf-8")
    with pytest.raises(InputError, match="00003/0001") as excinfo:
        folder_triplets(root, split="test")
    _assert_one_line_user_error(excinfo)
    (root / "tri_trainlist.txt").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="lists no triplets"):
        folder_triplets(root, split="train")
    plain = _triplet_folder(tmp_path / "plain" / "seq")
    with pytest.raises(InputError, match="tri_testlist.txt") as excinfo:
        folder_triplets(plain.parent, split="test")
    _assert_one_line_user_error(excinfo)
    with pytest.raises(ValueError, match="split"):
        folder_triplets(root, split="val")  # type: ignore[arg-type]


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist") as excinfo:
        folder_triplets(tmp_path / "missing")
    _assert_one_line_user_error(excinfo)
    _touch(tmp_path / "seq", "im1.png", "im2.png")
    with pytest.raises(InputError, match="no triplets") as excinfo:
        folder_triplets(tmp_path)
    _assert_one_line_user_error(excinfo)


def test_clip_names_and_the_triplets_of_clips(tmp_path) -> None:
    from sepconv.data.triplets import Triplet, clip_name, of_clips

    assert clip_name("realshort_11") == "realshort"
    assert clip_name("VID_20191220_170832_4") == "VID_20191220_170832"
    assert clip_name("sub/balle1-vp9_12") == "balle1-vp9"
    assert clip_name("nofram") == "nofram"
    items = [Triplet(name, tmp_path, tmp_path, tmp_path) for name in ("a_1", "b_2", "a_3")]
    assert [t.name for t in of_clips(items, ["a"])] == ["a_1", "a_3"]
    assert of_clips(items, ["c"]) == []
