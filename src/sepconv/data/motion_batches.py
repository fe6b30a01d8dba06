"""Training batches for learned motion: frames at any time t, with exact flow where known.

``data.kind = "motion"`` mixes two sources in every batch:

* **Synthetic layered motion** (:meth:`sepconv.data.synthetic.SyntheticMotion.sample_with_flow`):
  the frame at a random t between the inputs, the exact flows from it to both inputs and
  visibility masks.
* **Real footage** (no flow): from every clip, frames i - g, i, i + g (t = 1/2) and
  i, i + g, i + 2g, i + 3g (the two inner frames at t = 1/3 and 2/3) for every gap g in
  ``gaps``, where :func:`sepconv.data.video_triplets.valid_triplets` finds no scene cut and
  some motion. Crops are the most moving of a few random positions, randomly flipped and
  reversed in time (t -> 1 - t).

Batch ``s`` of rank ``r`` depends only on ``step_seed(seed, r, s)``, so a resumed run continues
exactly. Every batch is {"first", "middle", "last"} (B, 3, S, S) in [0, 1], "time" (B,),
"flow_t0", "flow_t1" (B, 2, S, S), "flow_valid" (B,) (1 for synthetic samples).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from sepconv.data.mixture import split_counts, step_seed
from sepconv.data.synthetic import SyntheticMotion
from sepconv.data.video_triplets import VideoClip, decode_video, list_videos, valid_triplets
from sepconv.errors import InputError

__all__ = ["MotionBatches", "RealWindows", "window_items"]


def window_items(
    clip: VideoClip, gaps: Sequence[int], quadruplets: bool = True
) -> list[tuple[int, int, int, float]]:
    """(first, last, target, t) frame indices of a clip's usable windows.

    Triplets (i - g, i + g -> i, t = 1/2) come from :func:`valid_triplets`; a quadruplet
    i .. i + 3g is usable when both its triplets are (no cut inside, motion in both halves).
    """
    found = valid_triplets(clip.frames, clip.times, gaps, breaks=clip.breaks)
    items = [(middle - gap, middle + gap, middle, 0.5) for middle, gap in found]
    if quadruplets:
        usable = set(found)
        for middle, gap in found:
            if (middle + gap, gap) in usable:
                start, end = middle - gap, middle + 2 * gap
                items.append((start, end, middle, 1.0 / 3.0))
                items.append((start, end, middle + gap, 2.0 / 3.0))
    return items


class RealWindows:
    """Windows of real clips decoded into memory (long side <= ``max_side``).

    Args:
        videos: video files or a folder of them.
        gaps: frame gaps g.
        crop_size: square crop side; clips smaller than it are skipped.
        crop_candidates: random positions tried per crop (the most moving wins).
    """

    def __init__(
        self,
        videos: Sequence[Path | str] | Path | str,
        gaps: Sequence[int] = (1, 2, 3),
        *,
        max_side: int = 640,
        crop_size: int = 192,
        crop_candidates: int = 4,
        quadruplets: bool = True,
    ) -> None:
        paths = (
            list_videos(videos) if isinstance(videos, (str, Path)) else [Path(v) for v in videos]
        )
        self.crop_size = crop_size
        self.crop_candidates = max(1, crop_candidates)
        self.clips: list[VideoClip] = []
        items: list[tuple[int, int, int, int, float]] = []
        self.skipped: dict[str, str] = {}
        for path in paths:
            clip = decode_video(path, max_side)
            height, width = clip.frames.shape[-2:]
            if min(height, width) < crop_size:
                self.skipped[path.name] = f"smaller than the crop ({width}x{height})"
                continue
            found = window_items(clip, gaps, quadruplets)
            if not found:
                self.skipped[path.name] = "no usable window"
                continue
            index = len(self.clips)
            self.clips.append(clip)
            items.extend((index, *item) for item in found)
        if not items:
            raise InputError(f"no usable windows in {len(paths)} video(s)")
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, count: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``count`` random windows, cropped, flipped and time-reversed at random."""
        firsts, middles, lasts, times = [], [], [], []
        size = self.crop_size
        for _ in range(count):
            pick = int(torch.randint(len(self.items), (1,), generator=generator))
            clip_index, first, last, target, t = self.items[pick]
            frames = self.clips[clip_index].frames[[first, target, last]]
            height, width = frames.shape[-2:]
            tops = torch.randint(height - size + 1, (self.crop_candidates,), generator=generator)
            lefts = torch.randint(width - size + 1, (self.crop_candidates,), generator=generator)
            flips = torch.rand(3, generator=generator)
            best, best_score = frames, -1.0
            for top, left in zip(tops.tolist(), lefts.tolist(), strict=True):
                crop = frames[:, :, top : top + size, left : left + size]
                signed = crop.to(torch.int16)
                score = float((signed[2] - signed[0]).abs().sum())
                if score > best_score:
                    best, best_score = crop, score
            crop = best.float().div_(255.0)
            if flips[0] < 0.5:
                crop = crop.flip(-1)
            if flips[1] < 0.5:
                crop = crop.flip(-2)
            if flips[2] < 0.5:
                crop = crop.flip(0)
                t = 1.0 - t
            firsts.append(crop[0])
            middles.append(crop[1])
            lasts.append(crop[2])
            times.append(t)
        return {
            "first": torch.stack(firsts),
            "middle": torch.stack(middles),
            "last": torch.stack(lasts),
            "time": torch.tensor(times, dtype=torch.float32),
        }


class MotionBatches:
    """``data.kind = "motion"`` (see the module docstring): every batch holds
    ``round(batch_size * synthetic_weight)`` synthetic samples, the rest real windows.
    :func:`sepconv.data.sources.build_batches` builds it from a config's ``data`` table.

    Args:
        synthetic: the synthetic-motion renderer (its ``config.size`` is the crop size).
        real: the real windows, or None for synthetic samples alone.
        synthetic_weight: share of synthetic samples in [0, 1] (1 when ``real`` is None).
    """

    KEYS = frozenset(
        {"photos", "options", "videos", "gaps", "max_side", "synthetic_weight", "quadruplets"}
    )

    def __init__(
        self,
        synthetic: SyntheticMotion,
        real: RealWindows | None,
        batch_size: int,
        *,
        synthetic_weight: float = 0.5,
        seed: int,
        rank: int = 0,
        start_step: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        if real is None:
            synthetic_weight = 1.0
        if not 0.0 <= synthetic_weight <= 1.0:
            raise InputError(f"synthetic_weight must be in [0, 1], got {synthetic_weight}")
        self.synthetic, self.real = synthetic, real
        self.device = torch.device(device)
        self.batch_size, self.seed, self.rank, self.step = batch_size, seed, rank, start_step
        self.counts = split_counts(batch_size, [synthetic_weight, 1.0 - synthetic_weight])

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(step_seed(self.seed, self.rank, step))
        synthetic_count, real_count = self.counts
        parts = []
        if synthetic_count:
            sample = self.synthetic.sample_with_flow(synthetic_count, generator)
            parts.append({name: sample[name] for name in _KEYS})
        if real_count and self.real is not None:
            sample = self.real.sample(real_count, generator)
            size = sample["first"].shape[-1]
            zeros = torch.zeros(real_count, 2, size, size)
            sample.update(flow_t0=zeros, flow_t1=zeros, flow_valid=torch.zeros(real_count))
            parts.append(sample)
        return {name: torch.cat([part[name] for part in parts]).to(self.device) for name in _KEYS}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self.batch(self.step)
            self.step += 1


_KEYS = ("first", "middle", "last", "time", "flow_t0", "flow_t1", "flow_valid")
