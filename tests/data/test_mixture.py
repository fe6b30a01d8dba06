"""Step-indexed mixed training batches and the data kinds of ``build_batches``."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from sepconv.data.mixture import TrainingBatches, split_counts, step_seed
from sepconv.data.sources import build_batches
from sepconv.data.synthetic import SyntheticMotion, SyntheticMotionConfig
from sepconv.errors import SepconvError

pytestmark = pytest.mark.usefixtures("one_thread")

FRAMES = ("first", "middle", "last")


class _TaggedDataset(torch.utils.data.Dataset):
    """Constant frames whose value tags the source; random crops recorded by epoch."""

    def __init__(self, tag: float, length: int = 7, side: int = 40) -> None:
        self.tag, self.length, self.side = tag, length, side
        self.epochs: list[int] = []

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(hash((self.epochs[-1], index)) % 2**31)
        noise = 0.001 * torch.rand((3, self.side, self.side), generator=generator)
        frame = torch.full((3, self.side, self.side), self.tag) + noise
        return {"first": frame, "middle": frame + 0.01, "last": frame + 0.02}


def _synthetic(size: int = 40) -> SyntheticMotion:
    generator = torch.Generator().manual_seed(0)
    photos = (torch.rand((2, 3, 120, 120), generator=generator) * 255).to(torch.uint8)
    return SyntheticMotion(photos, SyntheticMotionConfig(size=size, max_translation=4.0))


def _equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in FRAMES)


def test_step_seed_is_distinct_and_reexported() -> None:
    from sepconv.engine import train

    assert train.step_seed is step_seed
    seeds = {step_seed(s, r, t) for s in range(3) for r in range(3) for t in range(50)}
    assert len(seeds) == 3 * 3 * 50


def test_batch_depends_only_on_seed_rank_and_step() -> None:
    def make(**kwargs) -> TrainingBatches:
        sources = [_synthetic(), _TaggedDataset(0.5)]
        return TrainingBatches(sources, [0.5, 0.5], 6, "cpu", seed=3, size=32, **kwargs)

    reference = make(num_workers=0, prefetch=False)
    first = reference.batch(4)
    assert first["middle"].shape == (6, 3, 32, 32)
    # Another object, another order of calls, threads and prefetching: the same batch 4.
    threaded = make(num_workers=3)
    threaded.batch(9)
    assert _equal(threaded.batch(4), first)
    # Iterating from start_step yields batch start_step, start_step + 1, ...
    stream = iter(make(start_step=4))
    assert _equal(next(stream), first)
    assert _equal(next(stream), reference.batch(5))
    stream.close()
    # Different steps, ranks and seeds differ.
    assert not torch.equal(reference.batch(5)["middle"], first["middle"])
    assert not torch.equal(make(rank=1).batch(4)["middle"], first["middle"])
    other_seed = TrainingBatches([_synthetic(), _TaggedDataset(0.5)], [1, 1], 6, seed=4, size=32)
    assert not torch.equal(other_seed.batch(4)["middle"], first["middle"])


def test_counts_per_source_and_epochs() -> None:
    datasets = [_TaggedDataset(0.1), _TaggedDataset(0.4), _TaggedDataset(0.7)]
    batches = TrainingBatches(datasets, [3, 1, 1], 10, "cpu", seed=0, size=32, augment=False)
    assert batches.counts == split_counts(10, [3, 1, 1]) == [6, 2, 2]
    batch = batches.batch(2)
    tags = batch["first"].mean((1, 2, 3))
    expected = torch.tensor([0.1] * 6 + [0.4] * 2 + [0.7] * 2)
    assert torch.allclose(tags, expected, atol=0.002)
    assert torch.allclose(batch["middle"] - batch["first"], torch.tensor(0.01), atol=1e-6)
    batches.batch(3)
    # Each dataset's own crops change with the step: its epoch is the step's seed.
    for dataset in datasets:
        assert dataset.epochs == [step_seed(0, 0, 2), step_seed(0, 0, 3)]


def test_synthetic_parts_are_augmented() -> None:
    batches = TrainingBatches([_synthetic(32)], [1.0], 16, seed=0, size=32, num_workers=0)
    batch = batches.batch(0)
    plain = _synthetic(32).sample(16, torch.Generator().manual_seed(step_seed(0, 0, 0)))
    assert batch["middle"].shape == plain["middle"].shape == (16, 3, 32, 32)
    # The same samples, some of them flipped or with first and last swapped.
    assert not _equal(batch, plain)


# -- build_batches kinds ---------------------------------------------------------------------


def _write_triplets(root: Path, count: int = 3, side: int = 64) -> Path:
    rng = np.random.default_rng(0)
    for index in range(count):
        folder = root / f"clip{index}" / "0001"
        folder.mkdir(parents=True)
        for name in ("im1", "im2", "im3"):
            pixels = rng.integers(0, 256, (side, side + 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}.png")
    return root


def _write_photos(root: Path) -> Path:
    root.mkdir()
    rng = np.random.default_rng(1)
    for index in range(2):
        pixels = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"p{index}.png")
    return root


def _write_video(path: Path, frames: int = 10, width: int = 96, height: int = 64) -> Path:
    """A smooth texture moving 1.5 px per frame (no cuts, no static frames)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for index in range(frames):
            shift = 1.5 * index
            pattern = np.sin((x - shift) / 5.0) + 0.7 * np.cos((y + 0.5 * shift) / 7.0)
            array = np.stack((120 + 40 * pattern, 110 + 30 * pattern, 100 - 30 * pattern), -1)
            frame = av.VideoFrame.from_ndarray(array.clip(0, 255).astype(np.uint8), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _build(spec: dict, **kwargs):
    settings = {"batch_size": 3, "crop_size": 32, "seed": 0, **kwargs}
    return build_batches(spec, **settings)


def test_triplets_kind(tmp_path: Path) -> None:
    root = _write_triplets(tmp_path / "triplets")
    spec = {"kind": "triplets", "path": str(root), "cache": True}
    batches = _build(spec)
    assert isinstance(batches, TrainingBatches)
    assert batches.sources[0].crop_size == 32 + 22  # read larger, cropped by the augmentation
    first = batches.batch(7)
    assert first["middle"].shape == (3, 3, 32, 32)
    assert _equal(first, next(iter(_build(spec, start_step=7))))
    assert not torch.equal(first["middle"], batches.batch(8)["middle"])


def test_vimeo_kind(tmp_path: Path) -> None:
    root = tmp_path / "vimeo"
    _write_triplets(root / "sequences", count=2)
    (root / "tri_trainlist.txt").write_text("clip0/0001\n")
    (root / "tri_testlist.txt").write_text("clip1/0001\n")
    train = _build({"kind": "vimeo", "path": str(root)})
    assert [t.name for t in train.sources[0].triplets] == ["clip0/0001"]
    test = _build({"kind": "vimeo", "path": str(root), "split": "test"})
    assert [t.name for t in test.sources[0].triplets] == ["clip1/0001"]
    assert test.batch(0)["first"].shape == (3, 3, 32, 32)
    with pytest.raises(SepconvError, match=r"data\.split"):
        _build({"kind": "vimeo", "path": str(root), "split": "val"})
    with pytest.raises(SepconvError, match=r"data\.path: .*tri_trainlist"):
        _build({"kind": "vimeo", "path": str(root / "sequences")})


def test_videos_kind(tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    _write_video(folder / "clip.mkv")
    spec = {"kind": "videos", "path": str(folder), "gaps": [1, 2], "crop_candidates": 2}
    batches = _build(spec)
    dataset = batches.sources[0]
    assert len(dataset) == 8 + 6  # gap 1: middles 1..8; gap 2: middles 2..7
    batch = batches.batch(5)
    assert batch["middle"].shape == (3, 3, 32, 32)
    assert _equal(batch, _build(spec).batch(5))
    assert not torch.equal(batch["middle"], batches.batch(6)["middle"])
    single = _build({"kind": "videos", "path": [str(folder / "clip.mkv")], "gaps": 1})
    assert len(single.sources[0]) == 8


def test_mixture_kind(tmp_path: Path) -> None:
    spec = {
        "kind": "mixture",
        "sources": [
            {"kind": "synthetic", "weight": 3, "photos": str(_write_photos(tmp_path / "photos"))},
            {"kind": "triplets", "weight": 1.0, "path": str(_write_triplets(tmp_path / "t"))},
        ],
    }
    batches = _build(spec, batch_size=4)
    assert batches.counts == [3, 1]
    assert type(batches.sources[0]).__name__ == "SyntheticMotion"
    assert batches.sources[0].config.size == 32
    batch = batches.batch(0)
    assert batch["middle"].shape == (4, 3, 32, 32)
    assert _equal(batch, _build(spec, batch_size=4).batch(0))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "nope"}, r"unknown data kind 'nope'"),
        ({"kind": "triplets"}, r"data\.path is missing"),
        (
            {"kind": "triplets", "path": "/no/such/folder"},
            r"data\.path: '/no/such/folder' does not",
        ),
        ({"kind": "triplets", "path": "EMPTY"}, r"data\.path: no triplets"),
        ({"kind": "triplets", "path": "TRIPLETS", "chache": True}, r"unknown key data\.chache"),
        ({"kind": "triplets", "path": "TRIPLETS", "cache": "yes"}, r"data\.cache"),
        ({"kind": "synthetic", "photos": "PHOTOS", "extra": 1}, r"unknown key data\.extra"),
        ({"kind": "videos", "path": "EMPTY"}, r"data\.path 'EMPTY': no videos"),
        ({"kind": "videos", "path": "STATIC"}, r"data\.path 'STATIC': no usable triplets"),
        ({"kind": "videos", "path": "VIDEOS", "gaps": [0]}, r"data\.gaps"),
        ({"kind": "videos", "path": "VIDEOS", "max_side": 40}, r"data\.max_side 40"),
        ({"kind": "videos", "path": ["/no/clip.mp4"]}, r"data\.path: file '/no/clip.mp4'"),
        ({"kind": "mixture"}, r"data\.sources"),
        ({"kind": "mixture", "sources": [{"weight": 1}]}, r"data\.sources\[0\]\.kind is missing"),
        (
            {
                "kind": "mixture",
                "sources": [{"kind": "synthetic", "photos": "PHOTOS"}, {"kind": 1}],
            },
            r"unknown data kind 1 in data\.sources\[1\]\.kind",
        ),
        (
            {"kind": "mixture", "sources": [{"kind": "mixture", "sources": []}]},
            r"unknown data kind 'mixture' in data\.sources\[0\]",
        ),
        (
            {"kind": "mixture", "sources": [{"kind": "triplets", "path": "TRIPLETS", "weight": 0}]},
            r"data\.sources\[0\]\.weight must be a positive number, got 0",
        ),
        (
            {"kind": "mixture", "sources": [{"kind": "triplets", "path": "TRIPLETS", "w": 1}]},
            r"unknown key data\.sources\[0\]\.w ",
        ),
        (
            {"kind": "mixture", "sources": [{"kind": "triplets", "path": "/no/such"}]},
            r"data\.sources\[0\]\.path: '/no/such' does not exist",
        ),
        (
            {"kind": "mixture", "sources": [{"kind": "triplets", "path": "SMALL"}]},
            r"data\.sources\[0\]: triplet .* \(40x32\) is smaller than the 54x54",
        ),
        (
            {"kind": "mixture", "sources": [{"kind": "synthetic", "photos": "/no/photos"}]},
            r"data\.sources\[0\]\.photos: photo folder '/no/photos' does not exist",
        ),
    ],
)
def test_bad_specs_are_clear_errors(tmp_path: Path, spec: dict, message: str) -> None:
    folders = {
        "EMPTY": tmp_path / "empty",
        "TRIPLETS": _write_triplets(tmp_path / "triplets", count=1),
        "SMALL": _write_triplets(tmp_path / "small", count=1, side=32),
        "PHOTOS": _write_photos(tmp_path / "photos"),
        "VIDEOS": tmp_path / "videos",
        "STATIC": tmp_path / "static",
    }
    folders["EMPTY"].mkdir()
    if "VIDEOS" in str(spec):
        folders["VIDEOS"].mkdir()
        _write_video(folders["VIDEOS"] / "clip.mkv", frames=3)
    if "STATIC" in str(spec):
        folders["STATIC"].mkdir()
        _write_video(folders["STATIC"] / "still.mkv", frames=1)

    def resolve(value):
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return str(folders[value]) if isinstance(value, str) and value in folders else value

    for name in ("EMPTY", "STATIC"):
        message = message.replace(f"'{name}'", re.escape(repr(str(folders[name]))))
    with pytest.raises(SepconvError, match=message) as caught:
        _build(resolve(spec))
    assert "\n" not in str(caught.value)
