"""sepconv.data.files: the data folder (SEPCONV_DATA or ../shared/data) and folder listings."""

from __future__ import annotations

from pathlib import Path

import pytest

from sepconv.data import files
from sepconv.data.files import DATA_ENV, data_root, list_files
from sepconv.errors import InputError


def test_data_root_is_the_environment_variable_when_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "elsewhere"))
    assert DATA_ENV == "SEPCONV_DATA"
    assert data_root() == tmp_path / "elsewhere"
    assert data_root(tmp_path / "repo") == tmp_path / "elsewhere"  # wins over repo_root
    monkeypatch.setenv(DATA_ENV, "~/data")
    assert data_root() == Path.home() / "data"


@pytest.mark.parametrize("value", [None, ""])
def test_data_root_falls_back_to_shared_data_beside_the_repository(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(DATA_ENV, raising=False)
    else:
        monkeypatch.setenv(DATA_ENV, value)  # empty: as if unset
    repo = tmp_path / "repo"
    assert data_root(repo) == tmp_path / "shared" / "data"
    assert data_root(str(repo)) == tmp_path / "shared" / "data"
    # Default: the checkout that holds the package (src/sepconv/data/files.py).
    checkout = Path(files.__file__).resolve().parents[3]
    assert data_root() == checkout.parent / "shared" / "data"


def test_data_root_resolves_a_relative_repository_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    assert data_root(".") == tmp_path.resolve() / "shared" / "data"


def test_list_files_sorts_and_filters_by_suffix(tmp_path: Path) -> None:
    for name in ("b.JPG", "a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert list_files(tmp_path, (".jpg", ".png"), "photo") == [
        tmp_path / "a.png",
        tmp_path / "b.JPG",
    ]
    with pytest.raises(InputError, match="no photos"):
        list_files(tmp_path, (".webp",), "photo")
    with pytest.raises(InputError, match="does not exist"):
        list_files(tmp_path / "missing", (".jpg",), "photo")
