"""Training triplets sampled from real videos (decoded once with PyAV, kept in memory).

Every video is decoded once at a reduced resolution (long side <= ``max_side``) into a uint8
tensor. A triplet is frames (i - g, i, i + g) for every gap g in ``gaps``; it is kept only when

* no scene cut lies between its first and last frame: a cut between two neighbouring frames is
  a large change of the grey-level histogram (``cut_histogram``), a very large mean absolute
  difference (``cut_difference``), or a difference ``cut_ratio`` times the video's median;
* the middle frame differs from both its neighbours (static parts and repeated frames carry
  no motion to learn; a repeated neighbour also breaks the equal spacing): at least a fraction
  ``static_fraction`` of the pixels of a block-averaged grey image change by more than
  ``motion_level`` grey levels;
* the frames are about equally spaced in time (variable frame rate clips, dropped frames):
  the two intervals differ by at most ``timing_tolerance`` of their mean.

Items are random crops (``crop_size``; the best of ``crop_candidates`` random positions by
frame difference, so crops of static camera footage tend to contain the moving parts), the
positions fixed by (seed, epoch, index): call :meth:`VideoTriplets.set_epoch` for new ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch.utils.data import Dataset

from sepconv.data.files import list_files
from sepconv.errors import InputError

__all__ = [
    "VIDEO_SUFFIXES",
    "VideoClip",
    "VideoTriplets",
    "decode_video",
    "list_videos",
    "valid_triplets",
]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".ogv", ".ogg", ".m4v", ".mpg", ".mpeg")


@dataclass
class VideoClip:
    """A decoded video: ``frames`` (N,3,H,W) uint8 RGB and presentation ``times`` (N,) in
    seconds (NaN where unknown). ``breaks``: indices k where frame k does not directly follow
    frame k - 1 (stretches read from several places of a video); empty for a whole video."""

    path: Path
    frames: torch.Tensor
    times: np.ndarray
    breaks: tuple[int, ...] = ()


def list_videos(folder: Path | str) -> list[Path]:
    """Video files directly in ``folder`` (sorted by name)."""
    return list_files(folder, VIDEO_SUFFIXES, "video")


def decode_video(path: Path | str, max_side: int = 640) -> VideoClip:
    """Decode every frame of a video to RGB, downscaled (area) so the long side is <= max_side.

    Timestamps are sorted: decoders output frames in display order but some containers (AVI
    with B-frames) label them with out-of-order times.
    """
    import av

    path = Path(path)
    frames: list[np.ndarray] = []
    times: list[float] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                scale = min(1.0, max_side / max(frame.width, frame.height))
                width = max(2, round(frame.width * scale / 2) * 2)
                height = max(2, round(frame.height * scale / 2) * 2)
                frames.append(
                    frame.to_ndarray(
                        format="rgb24", width=width, height=height, interpolation="AREA"
                    )
                )
                times.append(float(frame.time) if frame.time is not None else math.nan)
    except (av.error.FFmpegError, IndexError, OSError) as error:
        raise InputError(f"cannot decode video {str(path)!r}: {error}") from None
    if not frames:
        raise InputError(f"video {str(path)!r} has no frames")
    array = np.stack(frames)
    stamps = np.asarray(times, dtype=np.float64)
    if np.isfinite(stamps).all():
        stamps = np.sort(stamps)
    tensor = torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
    return VideoClip(path=path, frames=tensor, times=stamps)


def _small_grey(frames: torch.Tensor, long_side: int = 160) -> torch.Tensor:
    """Block-averaged grey images (N,h,w) in 0..255 (noise-robust frame comparisons)."""
    factor = max(1, math.ceil(max(frames.shape[-2:]) / long_side))
    out = []
    for start in range(0, frames.shape[0], 64):
        chunk = frames[start : start + 64].float()
        grey = (chunk * torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]).sum(1)
        out.append(F.avg_pool2d(grey[:, None], factor, ceil_mode=True)[:, 0])
    return torch.cat(out)


def _histograms(grey: torch.Tensor, bins: int = 32) -> torch.Tensor:
    index = (grey.reshape(grey.shape[0], -1) * (bins / 256.0)).long().clamp(0, bins - 1)
    counts = torch.zeros((grey.shape[0], bins))
    counts.scatter_add_(1, index, torch.ones_like(index, dtype=torch.float32))
    return counts / index.shape[1]


def valid_triplets(
    frames: torch.Tensor,
    times: np.ndarray | None = None,
    gaps: Sequence[int] = (1, 2),
    *,
    cut_histogram: float = 0.15,
    cut_difference: float = 30.0,
    cut_ratio: float = 6.0,
    static_fraction: float = 0.001,
    motion_level: float = 4.0,
    timing_tolerance: float = 0.2,
    breaks: Sequence[int] = (),
) -> list[tuple[int, int]]:
    """The (middle index, gap) of the usable triplets of a clip (see the module docstring).

    ``breaks``: indices k where frame k does not follow frame k - 1 in the video (``frames``
    holds several separate stretches of it, as :func:`sepconv.data.clip_windows` reads them);
    no triplet spans a break, and the differences across breaks do not count for the median.
    """
    count = frames.shape[0]
    if count < 3:
        return []
    grey = _small_grey(frames)
    difference = (grey[1:] - grey[:-1]).abs().mean(dim=(1, 2))  # (N-1,)
    hist = _histograms(grey)
    hist_distance = 0.5 * (hist[1:] - hist[:-1]).abs().sum(1)
    consecutive = torch.ones(count - 1, dtype=torch.bool)
    for index in breaks:
        if 0 < index < count:
            consecutive[index - 1] = False
    median = float(difference[consecutive].median()) if bool(consecutive.any()) else 0.0
    cut = (
        (hist_distance > cut_histogram)
        | (difference > cut_difference)
        | (difference > cut_ratio * max(median, 0.5))
        | ~consecutive
    )
    # cuts_before[k] = number of cuts between frames j, j+1 for j < k.
    cuts_before = np.concatenate(([0], np.cumsum(cut.numpy().astype(np.int64))))
    has_times = times is not None and len(times) == count and bool(np.isfinite(times).all())

    result = []
    for gap in sorted(set(int(g) for g in gaps)):
        if gap < 1 or 2 * gap >= count:
            continue
        moving = ((grey[gap:] - grey[:-gap]).abs() > motion_level).float().mean(dim=(1, 2))
        for middle in range(gap, count - gap):
            first, last = middle - gap, middle + gap
            if cuts_before[last] - cuts_before[first] > 0:
                continue
            if min(float(moving[first]), float(moving[middle])) < static_fraction:
                continue
            if has_times:
                before = times[middle] - times[first]
                after = times[last] - times[middle]
                mean = 0.5 * (before + after)
                if mean <= 0 or abs(before - after) > timing_tolerance * mean:
                    continue
            result.append((middle, gap))
    return result


class VideoTriplets(Dataset):
    """Triplets {"first", "middle", "last"} (float (3,crop,crop) in [0, 1]) from videos.

    Args:
        videos: video files, or a folder of them.
        gaps: frame gaps g of the triplets (i - g, i, i + g).
        max_side: decoding resolution cap (long side).
        crop_size: side of the square random crops (None: whole frames, which then differ in
            size between videos). Videos smaller than the crop are skipped.
        crop_candidates: random crop positions tried per item; the one with the largest
            frame difference wins (1: plain random crops).
        seed: seeds the crop positions together with the epoch and the index.
        **criteria: thresholds of :func:`valid_triplets`.
    """

    def __init__(
        self,
        videos: Sequence[Path | str] | Path | str,
        gaps: Sequence[int] = (1, 2),
        *,
        max_side: int = 640,
        crop_size: int | None = 150,
        crop_candidates: int = 4,
        seed: int = 0,
        **criteria: float,
    ) -> None:
        paths = (
            list_videos(videos) if isinstance(videos, (str, Path)) else [Path(v) for v in videos]
        )
        self.crop_size = crop_size
        self.crop_candidates = max(1, int(crop_candidates))
        self.seed = seed
        self.epoch = 0
        self.clips: list[VideoClip] = []
        items: list[tuple[int, int, int]] = []
        self.skipped: dict[str, str] = {}
        for path in paths:
            clip = decode_video(path, max_side)
            height, width = clip.frames.shape[-2:]
            if crop_size is not None and min(height, width) < crop_size:
                self.skipped[path.name] = f"smaller than the crop ({width}x{height})"
                continue
            found = valid_triplets(clip.frames, clip.times, gaps, breaks=clip.breaks, **criteria)
            if not found:
                self.skipped[path.name] = "no usable triplet"
                continue
            index = len(self.clips)
            self.clips.append(clip)
            items.extend((index, middle, gap) for middle, gap in found)
        if not items:
            raise InputError(f"no usable triplets in {len(paths)} video(s)")
        self.items = np.asarray(items, dtype=np.int64)  # (M,3): clip, middle, gap

    @classmethod
    def from_clip(
        cls,
        clip: VideoClip,
        triplets: Sequence[tuple[int, int]],
        *,
        crop_size: int | None = 150,
        crop_candidates: int = 4,
        seed: int = 0,
    ) -> VideoTriplets:
        """The given (middle, gap) triplets of a clip already in memory (no decoding, no
        selection: pass the output of :func:`valid_triplets`, or part of it)."""
        if not triplets:
            raise InputError(f"no usable triplets in {str(clip.path)!r}")
        dataset = cls.__new__(cls)
        dataset.crop_size = crop_size
        dataset.crop_candidates = max(1, int(crop_candidates))
        dataset.seed = seed
        dataset.epoch = 0
        dataset.clips = [clip]
        dataset.skipped = {}
        dataset.items = np.asarray([(0, m, g) for m, g in triplets], dtype=np.int64)
        return dataset

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Change the crop positions (they depend on seed, epoch and index)."""
        self.epoch = int(epoch)

    def counts(self) -> dict[str, int]:
        """Number of triplets per video file name."""
        names = [self.clips[i].path.name for i in self.items[:, 0]]
        return {name: names.count(name) for name in dict.fromkeys(names)}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip_index, middle, gap = (int(v) for v in self.items[index])
        frames = self.clips[clip_index].frames
        triplet = frames[[middle - gap, middle, middle + gap]]  # (3,3,H,W) uint8
        if self.crop_size is not None:
            triplet = self._crop(triplet, index)
        triplet = triplet.float().div_(255.0)
        return {"first": triplet[0], "middle": triplet[1], "last": triplet[2]}

    def _crop(self, triplet: torch.Tensor, index: int) -> torch.Tensor:
        size = self.crop_size
        height, width = triplet.shape[-2:]
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        tops = rng.integers(0, height - size + 1, self.crop_candidates)
        lefts = rng.integers(0, width - size + 1, self.crop_candidates)
        best, best_score = None, -1.0
        for top, left in zip(tops, lefts, strict=True):
            crop = triplet[:, :, top : top + size, left : left + size]
            if self.crop_candidates == 1:
                return crop
            signed = crop.to(torch.int16)
            score = float((signed[1] - signed[0]).abs().sum() + (signed[2] - signed[1]).abs().sum())
            if score > best_score:
                best, best_score = crop, score
        return best
