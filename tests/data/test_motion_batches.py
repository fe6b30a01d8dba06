"""Training data for learned motion: exact flow at any time t, real windows at 1/3, 1/2, 2/3."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from conftest import make_clip

from sepconv.data.motion_batches import MotionBatches, RealWindows, window_items
from sepconv.data.sources import build_batches
from sepconv.data.synthetic import SyntheticMotion, SyntheticMotionConfig
from sepconv.data.video_triplets import VideoClip
from sepconv.models.motion import backward_warp

CONFIG = {"size": 64, "max_translation": 8.0, "max_side": 160, "quantize": False}


def _photos(count: int = 3, size: int = 160) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand((count, 3, size // 8, size // 8), generator=generator)
    return (F.interpolate(coarse, size=(size, size), mode="bicubic").clamp(0, 1) * 255).to(
        torch.uint8
    )


def test_exact_flow_aligns_both_frames_to_time_t() -> None:
    config = SyntheticMotionConfig(**CONFIG, photometric_probability=0.0)
    batch = SyntheticMotion(_photos(), config).sample_with_flow(
        8, torch.Generator().manual_seed(1), middle_probability=0.0
    )
    assert batch["time"].shape == (8,) and bool(((batch["time"] > 0) & (batch["time"] < 1)).all())
    assert not bool((batch["time"] == 0.5).all())
    for flow, frame, visible in (
        (batch["flow_t0"], batch["first"], batch["visible_t0"]),
        (batch["flow_t1"], batch["last"], batch["visible_t1"]),
    ):
        warped = backward_warp(frame, flow)
        error = ((warped - batch["middle"]).abs() * visible).sum() / (3 * visible.sum())
        unaligned = (frame - batch["middle"]).abs().mean()
        assert float(error) < 0.25 * float(unaligned)
        assert float(visible.mean()) > 0.5


def test_flow_scene_matches_the_triplet_sampler() -> None:
    source = SyntheticMotion(_photos(), SyntheticMotionConfig(**CONFIG))
    plain = source.sample(4, torch.Generator().manual_seed(3))
    with_flow = source.sample_with_flow(4, torch.Generator().manual_seed(3))
    assert torch.equal(plain["first"], with_flow["first"])
    assert torch.equal(plain["last"], with_flow["last"])
    middle = with_flow["time"] == 0.5
    assert bool(middle.any())
    assert torch.allclose(plain["middle"][middle], with_flow["middle"][middle], atol=1 / 255)


def _moving_clip(count: int = 12, size: int = 48) -> VideoClip:
    texture = _photos(1, size + 4 * count)[0]
    frames = torch.stack([texture[:, :size, 3 * i : 3 * i + size] for i in range(count)])
    return VideoClip(path=None, frames=frames, times=np.arange(count) / 25.0)  # type: ignore[arg-type]


def test_window_items_give_thirds_and_halves() -> None:
    items = window_items(_moving_clip(), gaps=(1, 2))
    halves = [item for item in items if item[3] == 0.5]
    thirds = [item for item in items if item[3] != 0.5]
    assert halves and thirds
    for first, last, target, time in items:
        assert first < target < last
        assert abs((target - first) / (last - first) - time) < 1e-9


def test_motion_batches_are_reproducible_per_step(tmp_path) -> None:
    clip = _moving_clip(10, 72)
    frames = [frame.permute(1, 2, 0).numpy() for frame in clip.frames]
    video = make_clip(tmp_path / "clip.mp4", frames, audio=False)
    spec = {
        "photos": _photos(),
        "videos": [str(video)],
        "gaps": [1, 2],
        "options": {"max_translation": 8.0, "max_side": 160},
    }
    spec["kind"] = "motion"
    one = build_batches(spec, batch_size=4, crop_size=48, seed=7)
    two = build_batches(spec, batch_size=4, crop_size=48, seed=7, start_step=5)
    assert isinstance(one, MotionBatches)
    batch = one.batch(5)
    assert all(torch.equal(batch[name], next(iter(two))[name]) for name in batch)
    assert batch["first"].shape == (4, 3, 48, 48)
    assert batch["flow_valid"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert not torch.equal(one.batch(6)["first"], batch["first"])
    windows = RealWindows([video], (1,), crop_size=48)
    sample = windows.sample(3, torch.Generator().manual_seed(0))
    assert sample["time"].shape == (3,)


def test_a_static_background_does_not_move() -> None:
    """static_probability = 1: the background's exact flow is zero, and with no foreground
    layer the three frames are the same picture; 0 leaves the random stream unchanged."""
    photos = _photos()
    still = SyntheticMotionConfig(
        **CONFIG, static_probability=1.0, layer_probabilities=(1.0,), photometric_probability=0.0
    )
    batch = SyntheticMotion(photos, still).sample_with_flow(4, torch.Generator().manual_seed(5))
    assert float(batch["flow_t0"].abs().max()) == 0.0
    assert float(batch["flow_t1"].abs().max()) == 0.0
    assert torch.equal(batch["first"], batch["last"])
    assert torch.allclose(batch["middle"], batch["first"], atol=1e-6)
    layered = SyntheticMotionConfig(**CONFIG, static_probability=1.0, photometric_probability=0.0)
    moving = SyntheticMotion(photos, layered).sample_with_flow(8, torch.Generator().manual_seed(5))
    motion = moving["flow_t0"].norm(dim=1)
    assert float((motion == 0).float().mean()) > 0.2  # the background ...
    assert float(motion.max()) > 0.2  # ... and layers that move on it
    default = SyntheticMotion(photos, SyntheticMotionConfig(**CONFIG))
    off = SyntheticMotion(photos, SyntheticMotionConfig(**CONFIG, static_probability=0.0))
    assert torch.equal(
        default.sample(2, torch.Generator().manual_seed(6))["first"],
        off.sample(2, torch.Generator().manual_seed(6))["first"],
    )
