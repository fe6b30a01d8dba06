"""Datasets over image triplets: Vimeo-90k layout with split files, any list of triplets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DATA_ROOT, needs_data
from PIL import Image

from sepconv.data.triplets import folder_triplets
from sepconv.data.vimeo import TripletDataset, VimeoTriplets
from sepconv.errors import InputError

DATA_TRIPLETS = DATA_ROOT / "triplets"


def _image(seed: int, width: int = 40, height: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _vimeo(root: Path) -> dict[str, np.ndarray]:
    """A tiny Vimeo-90k tree: 3 sequences, 2 listed for training, 1 for testing."""
    images = {}
    for n, name in enumerate(["00001/0001", "00001/0002", "00002/0001"]):
        folder = root / "sequences" / name
        folder.mkdir(parents=True)
        for k in (1, 2, 3):
            array = _image(10 * n + k)
            Image.fromarray(array).save(folder / f"im{k}.png")
            images[f"{name}/im{k}"] = array
    (root / "tri_trainlist.txt").write_text("00001/0001\n00002/0001\n\n")
    (root / "tri_testlist.txt").write_text("00001/0002\n")
    return images


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255


def test_vimeo_splits(tmp_path: Path) -> None:
    images = _vimeo(tmp_path)
    train = VimeoTriplets(tmp_path, "train")
    test = VimeoTriplets(tmp_path, "test")
    assert len(train) == 2 and len(test) == 1
    assert [t.name for t in train.triplets] == ["00001/0001", "00002/0001"]
    item = train[1]
    for key, k in (("first", 1), ("middle", 2), ("last", 3)):
        assert item[key].dtype == torch.float32 and item[key].shape == (3, 24, 40)
        assert torch.equal(item[key], _tensor(images[f"00002/0001/im{k}"]))
    assert torch.equal(test[0]["middle"], _tensor(images["00001/0002/im2"]))
    assert torch.equal(train[-1]["last"], train[1]["last"])
    with pytest.raises(IndexError):
        train[2]


def test_vimeo_crops_are_consistent_and_seeded(tmp_path: Path) -> None:
    images = _vimeo(tmp_path)
    train = VimeoTriplets(tmp_path, "train", crop_size=16, seed=3, cache=True)
    item = train[0]
    assert item["first"].shape == (3, 16, 16)
    full = _tensor(images["00001/0001/im2"])
    windows = full.unfold(1, 16, 1).unfold(2, 16, 1)
    distance = (windows - item["middle"][:, None, None]).abs().amax(dim=(0, 3, 4))
    top, left = (int(v) for v in (distance == 0).nonzero()[0])
    for key, k in (("first", 1), ("last", 3)):
        expected = _tensor(images[f"00001/0001/im{k}"])[:, top : top + 16, left : left + 16]
        assert torch.equal(item[key], expected)
    again = VimeoTriplets(tmp_path, "train", crop_size=16, seed=3)[0]
    assert all(torch.equal(item[k], again[k]) for k in item)
    positions = set()
    for epoch in range(6):
        train.set_epoch(epoch)
        positions.add(tuple(train[0]["middle"][:, 0, 0].tolist()))
    assert len(positions) > 1  # new epochs, new crops
    with pytest.raises(InputError):
        VimeoTriplets(tmp_path, "train", crop_size=64)[0]


def test_vimeo_errors(tmp_path: Path) -> None:
    _vimeo(tmp_path)
    (tmp_path / "tri_testlist.txt").unlink()
    with pytest.raises(InputError):
        VimeoTriplets(tmp_path, "test")
    with pytest.raises(InputError):
        VimeoTriplets(tmp_path / "missing", "train")
    with pytest.raises(InputError):
        TripletDataset([])


def test_triplet_dataset_over_folders(tmp_path: Path) -> None:
    _vimeo(tmp_path)
    dataset = TripletDataset(folder_triplets(tmp_path / "sequences"))
    assert len(dataset) == 3
    assert dataset[2]["first"].shape == (3, 24, 40)
    odd = tmp_path / "odd"
    odd.mkdir()
    Image.fromarray(_image(0)).save(odd / "im1.png")
    Image.fromarray(_image(1, width=30)).save(odd / "im2.png")
    Image.fromarray(_image(2)).save(odd / "im3.png")
    with pytest.raises(InputError):
        TripletDataset(folder_triplets(odd))[0]


@needs_data("triplets")
def test_data_triplets() -> None:
    triplets = folder_triplets(DATA_TRIPLETS)[:2]
    dataset = TripletDataset(triplets, crop_size=128)
    item = dataset[0]
    assert item["middle"].shape == (3, 128, 128)
    assert float(item["middle"].min()) >= 0 and float(item["middle"].max()) <= 1
