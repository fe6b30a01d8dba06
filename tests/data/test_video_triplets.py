"""Video triplets: decoding, scene-cut and static-run skipping, timing, crops."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import DATA_ROOT, needs_data

from sepconv.data.video_triplets import VideoTriplets, decode_video, valid_triplets
from sepconv.errors import InputError

DATA_VIDEOS = DATA_ROOT / "videos"

WIDTH, HEIGHT = 96, 64
CUT = 12  # first frame of scene B
STATIC = range(20, 26)  # frames 20..25 are identical


def _scene(frame: int, bright: bool) -> np.ndarray:
    """Smooth sinusoidal texture moving 1.5 px per frame (small frame differences)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    shift = 1.5 * frame
    base = 60.0 if not bright else 180.0
    pattern = np.sin((x - shift) / 5.0) + 0.7 * np.cos((y + 0.5 * shift) / 7.0)
    red = base + 25 * pattern
    green = base + 25 * np.sin((x + y - shift) / 9.0)
    blue = base - 20 * pattern
    return np.clip(np.stack((red, green, blue), -1), 0, 255).astype(np.uint8)


def _frames() -> list[np.ndarray]:
    frames = []
    for i in range(32):
        moment = min(i, STATIC.start) if i in STATIC else i
        frames.append(_scene(moment, bright=i >= CUT))
    return frames


def _write_video(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=fps)  # lossless: static frames stay equal
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv444p"
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_video(tmp_path_factory.mktemp("videos") / "clip.mkv", _frames())


def test_decode(video: Path) -> None:
    clip = decode_video(video)
    assert clip.frames.shape == (32, 3, HEIGHT, WIDTH)
    assert clip.frames.dtype == torch.uint8
    assert np.allclose(np.diff(clip.times), 1 / 25)
    # colour survives (yuv444, lossless up to the RGB<->YUV rounding)
    expected = torch.from_numpy(_frames()[3]).permute(2, 0, 1).float()
    assert float((clip.frames[3].float() - expected).abs().mean()) < 3
    small = decode_video(video, max_side=48)
    assert small.frames.shape == (32, 3, 32, 48)


def _first_last(found: list[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(m - g, m + g) for m, g in found}


def test_skips_cut_and_static_run(video: Path) -> None:
    clip = decode_video(video)
    found = valid_triplets(clip.frames, clip.times, gaps=(1, 2))
    spans = _first_last(found)
    for first, last in spans:
        assert not first < CUT <= last, f"triplet {first}..{last} spans the cut"
    middles = {(m, g) for m, g in found}
    # Static run 20..25: for these middles a neighbour (gap 1) or a frame two apart on one
    # side (gap 2) is identical to the middle.
    for middle in STATIC:
        assert (middle, 1) not in middles
        assert (middle, 2) not in middles
    # Everything else that neither spans the cut nor touches the static run is kept.
    for middle in list(range(1, CUT - 1)) + list(range(CUT + 1, 19)) + [27, 28, 29, 30]:
        assert (middle, 1) in middles, middle
    for middle in list(range(2, CUT - 2)) + [CUT + 2, CUT + 3, 26, 27, 28, 29]:
        assert (middle, 2) in middles, middle


def test_uneven_timing_is_skipped() -> None:
    frames = torch.from_numpy(np.stack([_scene(i, False) for i in range(6)])).permute(0, 3, 1, 2)
    times = np.array([0.0, 0.04, 0.08, 0.2, 0.24, 0.28])  # a dropped-frame gap after frame 2
    found = valid_triplets(frames, times, gaps=(1,))
    assert sorted(found) == [(1, 1), (4, 1)]
    assert sorted(valid_triplets(frames, None, gaps=(1,))) == [(1, 1), (2, 1), (3, 1), (4, 1)]


def test_dataset(video: Path, tmp_path: Path) -> None:
    dataset = VideoTriplets([video], gaps=(1, 2), crop_size=48, seed=0)
    clip = decode_video(video)
    assert len(dataset) == len(valid_triplets(clip.frames, clip.times, (1, 2)))
    item = dataset[3]
    assert set(item) == {"first", "middle", "last"}
    for frame in item.values():
        assert frame.shape == (3, 48, 48) and frame.dtype == torch.float32
        assert float(frame.min()) >= 0 and float(frame.max()) <= 1
    again = VideoTriplets([video], gaps=(1, 2), crop_size=48, seed=0)[3]
    assert all(torch.equal(item[k], again[k]) for k in item)
    # Crops come from the right frames: find the crop in the decoded frames.
    _, middle, gap = (int(v) for v in dataset.items[3])
    full = clip.frames[middle].float() / 255
    windows = full.unfold(1, 48, 1).unfold(2, 48, 1)  # (3, H-47, W-47, 48, 48)
    hits = (windows - item["middle"][:, None, None]).abs().amax(dim=(0, 3, 4)) == 0
    assert bool(hits.any())
    only_gap1 = VideoTriplets([video], gaps=(1,), crop_size=None)
    assert len(only_gap1) < len(dataset)
    assert only_gap1[0]["first"].shape == (3, HEIGHT, WIDTH)
    dataset.set_epoch(1)
    assert any(
        not torch.equal(dataset[i]["middle"], VideoTriplets([video], crop_size=48)[i]["middle"])
        for i in range(5)
    )
    with pytest.raises(InputError):
        VideoTriplets([video], crop_size=100)  # larger than every video
    with pytest.raises(InputError):
        VideoTriplets(tmp_path / "missing")


@needs_data("videos", "realshort.mp4")
def test_real_video() -> None:
    dataset = VideoTriplets([DATA_VIDEOS / "realshort.mp4"], crop_size=150)
    assert len(dataset) > 40  # 36 frames, hand-held pan: nearly all gap-1 and gap-2 triplets
    assert dataset[0]["middle"].shape == (3, 150, 150)
