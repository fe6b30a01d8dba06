"""Video and image-sequence frame-rate conversion with the SepConv :class:`Interpolator`.

The module has two layers:

* **Scheduling** (pure, no IO): input frame timestamps, scene-cut and duplicate flags and the
  wanted output timestamps go in; a list of :class:`OutputFrame` comes out, each saying which
  picture to show at that time: an input frame (by index) or a :class:`Node` of the dyadic
  midpoint tree between two neighbouring *anchor* frames. Node ``k / 2**level`` of the pair
  (a, b) is the midpoint of its two neighbours at that level (``(k - 1) / 2**level`` and
  ``(k + 1) / 2**level``, reduced), so every node is one :meth:`Interpolator.interpolate_tensor`
  call on two already-known pictures, and a node shared by several outputs is computed once.
  An output time between two anchors is mapped to the *nearest* node at ``max_level`` (then
  reduced): with ``max_level = L`` the timing error is at most ``1 / 2**(L + 1)`` of the
  anchors' interval, and it is zero when the time is dyadic (a power-of-two ``--factor`` on a
  constant-rate input). Any other ``--factor`` N is scheduled like ``--fps`` (output times
  ``k / (N x rate)``, rounded ``--levels`` deep; :func:`factor_timing_error`).
* **IO**: a first pass decodes the video once to read timestamps and detect scene cuts and
  duplicate frames (keeping one previous frame); a second pass decodes again and renders the
  schedule segment by segment (a few anchors and the nodes of a few pairs held at a time),
  encoding each segment into its own file in a hidden work folder next to the output. The
  segments are finally concatenated by copying packets (each starts with a keyframe), the
  audio and subtitle packets of the input are copied alongside, and the result is moved onto
  the output in one rename. Until its segment is encoded, every interpolated frame is also
  kept as a PNG in the work folder, so an interruption loses at most the batch of frame pairs
  in flight. ``resume=True`` skips segments already finished by an earlier run with the same
  input and options and encodes the kept frames of the next one instead of computing them
  again, which gives the same file as an uninterrupted run (rendering restarts at a batch
  boundary, and encoder settings are deterministic).

Anchors: the first frame of every run of duplicate frames. A run longer than ``max_dup_run``
frames is a freeze, not animation on twos or threes, and also gets its last frame as an anchor
(the picture is held over the run, then motion resumes). No node is made between anchors with
a scene cut between them: the earlier anchor is held until the cut.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import heapq
import json
import math
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sepconv.errors import InputError, OutputError
from sepconv.interrupts import StopRequests

# --------------------------------------------------------------------------------------------
# Scheduling (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Node:
    """The picture at ``numerator / 2**level`` of the way from anchor ``left`` to ``right``.

    ``left`` and ``right`` are input frame indices; ``numerator`` is odd and
    ``0 < numerator < 2**level`` (the fraction is in lowest terms).
    """

    left: int
    right: int
    numerator: int
    level: int

    @property
    def position(self) -> Fraction:
        return Fraction(self.numerator, 2**self.level)

    @property
    def time(self) -> Fraction:
        """Where the node lies between its two parents: their midpoint."""
        return Fraction(1, 2)

    def parents(self) -> tuple[int | Node, int | Node]:
        """The two pictures whose midpoint this node is (input indices or coarser nodes)."""
        return (
            make_source(self.left, self.right, self.numerator - 1, self.level),
            make_source(self.left, self.right, self.numerator + 1, self.level),
        )


@dataclass(frozen=True, order=True)
class Timed:
    """The picture at ``position`` (0 < position < 1) of the way from anchor ``left`` to
    ``right``, made in one pass by a model that takes the time t (no midpoint tree, no
    rounding of the time)."""

    left: int
    right: int
    position: Fraction

    level: ClassVar[int] = 1

    @property
    def time(self) -> Fraction:
        """The time passed to the model: the position between its two parents, the anchors."""
        return self.position

    def parents(self) -> tuple[int, int]:
        return (self.left, self.right)


#: What the schedule computes (the rest are input frames, by index).
COMPUTED = (Node, Timed)


def make_source(left: int, right: int, numerator: int, level: int) -> int | Node:
    """``numerator / 2**level`` between anchors ``left`` and ``right``, in lowest terms.

    0 is the input frame ``left`` and 1 the input frame ``right``; anything between is a Node.
    """
    if not 0 <= numerator <= 2**level:
        raise ValueError(f"position {numerator}/2**{level} is outside [0, 1]")
    if numerator == 0:
        return left
    if numerator == 2**level:
        return right
    while numerator % 2 == 0:
        numerator //= 2
        level -= 1
    return Node(left, right, numerator, level)


@dataclass(frozen=True)
class OutputFrame:
    """One output frame: its number, its time on the input timeline and what to show."""

    index: int
    time: Fraction
    source: int | Node | Timed
    group: int  # the left anchor of the interval holding `time` (segments end between groups)


@dataclass(frozen=True)
class Anchors:
    """The frames interpolation works between, and whether each gap may be interpolated."""

    indices: list[int]  # input frame indices, ascending
    interpolate: list[bool]  # interpolate[j]: make nodes between indices[j] and indices[j + 1]


def find_anchors(
    same_as_previous: Sequence[bool], cut_before: Sequence[bool], max_dup_run: int = 4
) -> Anchors:
    """Anchors from per-frame flags (both sequences have one entry per input frame).

    ``same_as_previous[i]``: frame i duplicates frame i - 1. ``cut_before[i]``: a scene cut
    between frames i - 1 and i. Runs of duplicates collapse onto their first frame; a run longer
    than ``max_dup_run`` also keeps its last frame (a freeze: held, not morphed through).
    """
    count = len(same_as_previous)
    if len(cut_before) != count:
        raise ValueError("same_as_previous and cut_before must have one entry per frame")
    indices: list[int] = []
    interpolate: list[bool] = []
    start = 0
    while start < count:
        end = start
        while end + 1 < count and same_as_previous[end + 1]:
            end += 1
        if indices:
            interpolate.append(not cut_before[start])
        indices.append(start)
        if end > start and end - start + 1 > max_dup_run:
            interpolate.append(False)  # identical pictures: nothing to interpolate
            indices.append(end)
        start = end + 1
    return Anchors(indices, interpolate)


def output_times(start: Fraction, end: Fraction, rate: Fraction) -> list[Fraction]:
    """``start + k / rate`` for k = 0, 1, ... while the time is before ``end``."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    count = max(1, math.ceil((end - start) * rate))
    return [start + Fraction(k) / rate for k in range(count)]


def plan_frames(
    times: Sequence[Fraction],
    anchors: Anchors,
    targets: Sequence[Fraction],
    max_level: int,
    exact_times: bool = False,
) -> list[OutputFrame]:
    """Map each target time to an input frame or the nearest dyadic node between anchors
    (with ``exact_times``, for a model that takes t: a :class:`Timed` picture at the exact
    time instead).

    A time before the first anchor shows the first anchor; a time at or after the last anchor,
    or inside a gap that may not be interpolated (scene cut, freeze), shows the anchor before
    it. Otherwise the time's fraction ``u`` of its gap is rounded to the nearest multiple of
    ``2**-max_level`` (ties upwards), which is exact when ``u`` is dyadic at that level and
    off by at most ``2**-(max_level + 1)`` of the gap otherwise.
    """
    if max_level < 0:
        raise ValueError("max_level must be >= 0")
    anchor_times = [times[i] for i in anchors.indices]
    steps = 2**max_level
    plan = []
    for number, time in enumerate(targets):
        j = max(bisect.bisect_right(anchor_times, time) - 1, 0)
        left = anchors.indices[j]
        source: int | Node | Timed = left
        if j + 1 < len(anchor_times) and anchors.interpolate[j] and time > anchor_times[j]:
            u = (time - anchor_times[j]) / (anchor_times[j + 1] - anchor_times[j])
            if exact_times:
                source = Timed(left, anchors.indices[j + 1], u)
            else:
                numerator = math.floor(u * steps + Fraction(1, 2))
                source = make_source(left, anchors.indices[j + 1], numerator, max_level)
        plan.append(OutputFrame(number, time, source, left))
    return plan


def max_timing_error(plan: Sequence[OutputFrame], times: Sequence[Fraction]) -> Fraction:
    """The largest |shown picture's time - output time| over interpolated frames (seconds)."""
    worst = Fraction(0)
    for frame in plan:
        if isinstance(frame.source, COMPUTED):
            node = frame.source
            shown = times[node.left] + node.position * (times[node.right] - times[node.left])
            worst = max(worst, abs(shown - frame.time))
    return worst


def required_nodes(sources: Iterable[int | Node | Timed]) -> list[list[Node | Timed]]:
    """Every node needed to build ``sources`` (with their ancestors), grouped by level.

    Level 1 comes first; each level only depends on input frames and lower levels. Every node
    appears once, so nothing is computed twice. (:class:`Timed` pictures are level 1: made
    from the anchors directly.)
    """
    needed: set[Node | Timed] = set()
    stack: list[Node | Timed] = [source for source in sources if isinstance(source, COMPUTED)]
    while stack:
        node = stack.pop()
        if node in needed:
            continue
        needed.add(node)
        stack.extend(parent for parent in node.parents() if isinstance(parent, Node))
    if not needed:
        return []
    by_level: list[list[Node | Timed]] = [[] for _ in range(max(node.level for node in needed))]
    for node in sorted(needed, key=_order):
        by_level[node.level - 1].append(node)
    return [level for level in by_level if level]


def _order(node: Node | Timed) -> tuple[int, int, Fraction]:
    """Sort key of computed pictures: by anchor pair, then position."""
    return (node.left, node.right, node.position)


def split_segments(plan: Sequence[OutputFrame], min_frames: int) -> list[tuple[int, int]]:
    """Split the plan into [start, stop) ranges of at least ``min_frames`` output frames.

    Ranges end only where the group (anchor pair) changes, so no node is needed by two
    segments (the last range may be shorter).
    """
    segments = []
    start = 0
    for index in range(1, len(plan) + 1):
        boundary = index == len(plan) or plan[index].group != plan[index - 1].group
        if boundary and (index - start >= min_frames or index == len(plan)):
            segments.append((start, index))
            start = index
    return segments


def referenced_inputs(plan: Iterable[OutputFrame]) -> set[int]:
    """The input frame indices the plan reads (shown frames and the anchors of nodes)."""
    wanted: set[int] = set()
    for frame in plan:
        if isinstance(frame.source, COMPUTED):
            wanted.update((frame.source.left, frame.source.right))
        else:
            wanted.add(frame.source)
    return wanted


# --------------------------------------------------------------------------------------------
# Frame similarity (pure numpy)
# --------------------------------------------------------------------------------------------


def thumbnail(luma: np.ndarray, columns: int = 16) -> np.ndarray:
    """Block-average an ``H x W`` luma image (floats in [0, 1]) to about ``columns`` wide."""
    height, width = luma.shape
    block = max(1, width // columns)
    rows, cols = max(1, height // block), max(1, width // block)
    trimmed = luma[: rows * block, : cols * block] if height >= block else luma[:, : cols * block]
    if height < block:
        return trimmed.reshape(height, cols, block).mean(axis=(0, 2))[None]
    return trimmed.reshape(rows, block, cols, block).mean(axis=(1, 3))


def scene_change_score(previous_thumb: np.ndarray, thumb: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails, in [0, 1] (cheap cut detector).

    Block averaging blurs out texture, so camera and object motion score low while a change
    of scene (layout, brightness, colours) scores high.
    """
    return float(np.abs(previous_thumb - thumb).mean())


def duplicate_score(previous: np.ndarray, luma: np.ndarray, block: int = 8) -> float:
    """The largest mean absolute difference over ``block x block`` tiles, in [0, 1].

    0 for identical frames; a small moving object gives a large value even when the
    whole-frame mean difference is tiny, while codec noise stays small.
    """
    diff = np.abs(previous - luma)
    height, width = diff.shape
    rows, cols = -(-height // block), -(-width // block)
    padded = np.zeros((rows * block, cols * block), np.float32)
    padded[:height, :width] = diff
    return float(padded.reshape(rows, block, cols, block).mean(axis=(1, 3)).max())


@dataclass
class Analysis:
    """What the first pass learned about the input frames."""

    times: list[Fraction] = field(default_factory=list)
    same_as_previous: list[bool] = field(default_factory=list)
    cut_before: list[bool] = field(default_factory=list)
    end_time: Fraction = Fraction(0)
    width: int = 0
    height: int = 0
    display_matrix: tuple[int, ...] | None = None  # the input's rotation/flip, kept on output

    @property
    def cuts(self) -> int:
        return sum(self.cut_before)

    @property
    def duplicates(self) -> int:
        return sum(self.same_as_previous)


class FrameAnalyser:
    """Feeds frames one at a time; keeps only the previous frame's luma and thumbnail."""

    def __init__(self, scene_threshold: float, dup_threshold: float) -> None:
        self.scene_threshold = scene_threshold
        self.dup_threshold = dup_threshold
        self.analysis = Analysis()
        self._previous: np.ndarray | None = None
        self._previous_thumb: np.ndarray | None = None

    def add(self, time: Fraction, luma: np.ndarray) -> None:
        """Add the next frame: its time in seconds and its ``H x W`` luma in [0, 1]."""
        thumb = thumbnail(luma)
        same = cut = False
        if self._previous is not None and self._previous_thumb is not None:
            if self.dup_threshold >= 0:
                same = duplicate_score(self._previous, luma) <= self.dup_threshold
            cut = not same and scene_change_score(self._previous_thumb, thumb) > (
                self.scene_threshold
            )
        self.analysis.times.append(time)
        self.analysis.same_as_previous.append(same)
        self.analysis.cut_before.append(cut)
        self._previous, self._previous_thumb = luma, thumb


# --------------------------------------------------------------------------------------------
# Rendering (shared by video and image sequences)
# --------------------------------------------------------------------------------------------


class FrameStore:
    """Sequential access to input frames by index, keeping only wanted frames not yet released.

    ``frames`` yields ``(C, H, W)`` float32 tensors in input order; ``wanted`` are the indices
    the plan reads (others are decoded and dropped at once).
    """

    def __init__(self, frames: Iterator[Any], wanted: set[int]) -> None:
        self._frames = frames
        self._wanted = wanted
        self._next = 0
        self._floor = 0
        self._kept: dict[int, Any] = {}

    def get(self, index: int) -> Any:
        while self._next <= index:
            try:
                frame = next(self._frames)
            except StopIteration:
                raise InputError(
                    f"the input ended at frame {self._next}, before frame {index}: "
                    "it changed since it was first read"
                ) from None
            if self._next in self._wanted and self._next >= self._floor:
                self._kept[self._next] = frame
            self._next += 1
        return self._kept[index]

    def release_before(self, index: int) -> None:
        """Forget frames before ``index``, and do not keep them when decoded later."""
        self._floor = max(self._floor, index)
        for key in [key for key in self._kept if key < index]:
            del self._kept[key]

    @property
    def held(self) -> int:
        return len(self._kept)


def _stack(pictures: Sequence[Any]) -> Any:
    """Stack (C, H, W) tensors into a batch on one device (inputs live on the CPU, computed
    nodes on the interpolator's device)."""
    import torch

    device = next((p.device for p in pictures if p.device.type != "cpu"), pictures[0].device)
    return torch.stack([p.to(device) for p in pictures])


def _groups(plan: Sequence[OutputFrame]) -> list[list[OutputFrame]]:
    """Consecutive frames of ``plan`` split where the group (left anchor) changes."""
    groups: list[list[OutputFrame]] = []
    for frame in plan:
        if groups and groups[-1][-1].group == frame.group:
            groups[-1].append(frame)
        else:
            groups.append([frame])
    return groups


def chunk_starts(plan: Sequence[OutputFrame], batch_pairs: int = 2) -> list[int]:
    """Where :func:`render` starts each batch of ``batch_pairs`` anchor pairs: offsets into
    ``plan``, ascending, ending with ``len(plan)``.

    Rendering ``plan[offset:]`` from one of these offsets computes exactly the same batches,
    so gives the same pictures, as rendering the whole of ``plan`` does.
    """
    starts, offset = [], 0
    groups = _groups(plan)
    for index, group in enumerate(groups):
        if index % batch_pairs == 0:
            starts.append(offset)
        offset += len(group)
    return [*starts, len(plan)] if starts else [0]


def render(
    plan: Sequence[OutputFrame],
    store: FrameStore,
    interpolate: Callable[..., Any],
    emit: Callable[[OutputFrame, Any], None],
    batch_pairs: int = 2,
) -> None:
    """Compute and emit the pictures of ``plan`` (consecutive output frames) in order.

    ``batch_pairs`` anchor pairs are processed at a time: the nodes they need are computed level
    by level, each level in ``interpolate(first, second)`` calls on ``(B, C, H, W)`` batches of
    at most ``2 * batch_pairs`` pictures (``interpolate(first, second, t)`` for
    :class:`Timed` pictures at other times t than 1/2, batched by t); computed nodes are
    dropped once their frames are emitted, and input frames before the next pairs are
    released from ``store``.
    """
    groups = _groups(plan)
    max_batch = max(1, 2 * batch_pairs)
    for chunk_start in range(0, len(groups), batch_pairs):
        chunk = [
            frame for group in groups[chunk_start : chunk_start + batch_pairs] for frame in group
        ]
        computed: dict[Node | Timed, Any] = {}

        def picture(
            source: int | Node | Timed, computed: dict[Node | Timed, Any] = computed
        ) -> Any:
            return computed[source] if isinstance(source, COMPUTED) else store.get(source)

        for level in required_nodes(frame.source for frame in chunk):
            by_time: dict[Fraction, list[Node | Timed]] = {}
            for node in level:
                by_time.setdefault(node.time, []).append(node)
            for time, same_time in sorted(by_time.items()):
                timing = () if time == Fraction(1, 2) else (float(time),)
                for start in range(0, len(same_time), max_batch):
                    nodes = same_time[start : start + max_batch]
                    firsts = _stack([picture(node.parents()[0]) for node in nodes])
                    seconds = _stack([picture(node.parents()[1]) for node in nodes])
                    middles = interpolate(firsts, seconds, *timing)
                    for node, middle in zip(nodes, middles, strict=True):
                        computed[node] = middle
        for frame in chunk:
            emit(frame, picture(frame.source))
        next_start = chunk_start + batch_pairs
        if next_start < len(groups):
            store.release_before(groups[next_start][0].group)


# --------------------------------------------------------------------------------------------
# Video IO
# --------------------------------------------------------------------------------------------

CODECS: dict[str, str] = {  # codec -> pixel format
    "libx264": "yuv420p",
    "libx265": "yuv420p",
    "mpeg4": "yuv420p",
    "ffv1": "yuv444p",
    "png": "rgb24",
}


def _show(path: Path | str) -> str:
    return str(path)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def open_input(path: Path) -> Any:
    """Open a video for reading (one-line InputError for missing, empty, corrupt, no video)."""
    import av

    where = _show(path)
    if not path.exists():
        raise InputError(f"cannot read video {where}: no such file")
    if not path.is_file():
        raise InputError(f"cannot read video {where}: not a regular file")
    if path.stat().st_size == 0:
        raise InputError(f"cannot read video {where}: the file is empty")
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise InputError(
            f"cannot read video {where}: not a readable video: corrupt, truncated or not a "
            f"video file ({_reason(exc)})"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read video {where}: {_reason(exc)}") from None
    if not container.streams.video:
        empty = not container.streams
        container.close()
        if empty:  # e.g. an .mp4 cut short before its index (moov), or not a video at all
            raise InputError(
                f"cannot read video {where}: no streams found (truncated, or not a video file)"
            )
        raise InputError(f"cannot read video {where}: it has no video stream")
    return container


def stream_rate(stream: Any) -> Fraction | None:
    """The stream's nominal frame rate, if it declares a usable one."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return Fraction(rate)
    return None


def decode_video(path: Path) -> Iterator[tuple[Fraction, Any]]:
    """Yield ``(time in seconds, av.VideoFrame)`` for the first video stream, in order.

    Times come from the frames' timestamps (so variable frame rates are handled); a frame
    without one follows the previous by 1 / rate; frames whose time does not increase are
    dropped (the same frames on every pass).
    """
    import av

    container = open_input(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream_rate(stream) or Fraction(25)
        previous: Fraction | None = None
        try:
            for frame in container.decode(stream):
                if frame.pts is not None and frame.time_base is not None:
                    time = Fraction(frame.pts) * Fraction(frame.time_base)
                else:
                    time = Fraction(0) if previous is None else previous + 1 / rate
                if previous is not None and time <= previous:
                    continue
                previous = time
                yield time, frame
        except av.error.FFmpegError as exc:
            raise InputError(
                f"cannot read video {_show(path)}: corrupt data ({_reason(exc)})"
            ) from None
    finally:
        container.close()


def _frame_duration(frame: Any) -> Fraction | None:
    duration = getattr(frame, "duration", None)
    if duration and frame.time_base is not None:
        return Fraction(duration) * Fraction(frame.time_base)
    return None


def _display_matrix(frame: Any) -> tuple[int, ...] | None:
    """The frame's display matrix (rotation/flip of phone videos), as FFmpeg's 9 int32s."""
    import struct

    container = getattr(frame, "side_data", None) or ()
    # PyAV >= 18 makes the container a mapping from type to side data; earlier ones iterate it.
    entries = container.values() if hasattr(container, "values") else container
    for side_data in entries:
        if getattr(getattr(side_data, "type", None), "name", "") == "DISPLAYMATRIX":
            data = bytes(side_data)
            if len(data) == 36:
                return struct.unpack("<9i", data)
    return None


def analyse_video(
    path: Path,
    scene_threshold: float,
    dup_threshold: float,
    progress: Callable[[int], None] | None = None,
) -> tuple[Analysis, Fraction]:
    """First pass: timestamps, cuts and duplicates of every frame; and the nominal rate."""
    analyser = FrameAnalyser(scene_threshold, dup_threshold)
    last_duration: Fraction | None = None
    for time, frame in decode_video(path):
        luma = frame.to_ndarray(format="gray").astype(np.float32) / 255.0
        analyser.add(time, luma)
        analysis = analyser.analysis
        analysis.width, analysis.height = frame.width, frame.height
        if len(analysis.times) == 1:
            analysis.display_matrix = _display_matrix(frame)
        last_duration = _frame_duration(frame)
        if progress is not None:
            progress(1)
    analysis = analyser.analysis
    times = analysis.times
    if not times:
        raise InputError(f"cannot read video {_show(path)}: no frame could be decoded")
    if len(times) < 2:
        raise InputError(
            f"cannot interpolate {_show(path)}: it has only one frame (a still image?); a video "
            "needs at least two"
        )
    with open_input(path) as container:
        declared = stream_rate(container.streams.video[0])
    if len(times) > 1:
        measured = Fraction(len(times) - 1) / (times[-1] - times[0])
        rate = declared if declared is not None else measured.limit_denominator(1001)
    else:
        rate = declared or Fraction(25)
    if last_duration is None or last_duration <= 0:
        if len(times) > 1:
            intervals = sorted(b - a for a, b in zip(times[:-1], times[1:], strict=True))
            last_duration = intervals[len(intervals) // 2]
        else:
            last_duration = 1 / rate
    analysis.end_time = times[-1] + last_duration
    return analysis, rate


def _frame_to_tensor(frame: Any) -> Any:
    import torch

    array = frame.to_ndarray(format="rgb24")
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)


def _frame_to_uint8_tensor(frame: Any) -> Any:
    import torch

    return torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)


def video_windows(path: Path, **options: Any) -> Any:
    """Windows of consecutive frames spread over a video, for adapting a model to it:
    :func:`sepconv.data.clip_windows.read_windows` (``options``) over this module's decoding,
    so the frames are the ones a conversion interpolates. Returns a ``VideoClip``."""
    from sepconv.data.clip_windows import read_windows

    decoded = decode_video(path)
    with contextlib.closing(decoded):
        return read_windows(
            ((float(time), frame) for time, frame in decoded),
            convert=_frame_to_uint8_tensor,
            path=path,
            **options,
        )


def sequence_windows(files: Sequence[Path], **options: Any) -> Any:
    """:func:`video_windows` for an image sequence (frame i at time i; 8-bit RGB)."""
    import torch

    from sepconv.data.clip_windows import read_windows
    from sepconv.imageio import read_image, to_uint8

    def convert(path: Path) -> Any:
        pixels, _ = read_image(path)
        return torch.from_numpy(to_uint8(pixels[..., :3])).permute(2, 0, 1)

    return read_windows(
        ((float(index), path) for index, path in enumerate(files)),
        convert=convert,
        path=files[0].parent if files else "",
        **options,
    )


def tensor_to_uint8(picture: Any) -> np.ndarray:
    """(C, H, W) float tensor in [0, 1] -> H x W x C uint8 array (rounded)."""
    return (
        (picture.detach().float().cpu().clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0).numpy()
    )


@dataclass(frozen=True)
class EncoderSettings:
    """How segments are encoded (every field is part of the resume key)."""

    codec: str = "libx264"
    crf: int = 18
    preset: str = "medium"

    def pixel_format(self, width: int, height: int) -> str:
        pix_fmt = CODECS[self.codec]
        if pix_fmt == "yuv420p" and (width % 2 or height % 2):
            if self.codec in ("libx264", "libx265"):
                return "yuv444p"
            raise InputError(f"{self.codec} needs an even width and height; use --codec libx264")
        return pix_fmt

    def options(self) -> dict[str, str]:
        if self.codec in ("libx264", "libx265"):
            return {"crf": str(self.crf), "preset": self.preset}
        return {}


CONTAINERS: dict[str, str] = {  # output extension -> FFmpeg muxer
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".avi": "avi",
    ".nut": "nut",
}


def check_codec_container(output: Path, codec: str) -> None:
    """Refuse (OutputError) an output extension or codec FFmpeg cannot write together."""
    import io

    import av

    muxer = CONTAINERS.get(output.suffix.lower())
    if muxer is None:
        known = ", ".join(CONTAINERS)
        raise OutputError(f"cannot write {output}: unknown video extension (use one of {known})")
    if codec not in CODECS or codec not in av.codecs_available:
        known = ", ".join(name for name in CODECS if name in av.codecs_available)
        raise OutputError(f"unknown or unavailable --codec {codec} (use one of {known})")
    try:
        with av.open(io.BytesIO(), mode="w", format=muxer) as container:
            container.add_stream(codec, rate=25)
    except (ValueError, av.error.FFmpegError) as exc:
        raise OutputError(
            f"cannot write {codec} video into a {output.suffix} file ({_reason(exc)})"
        ) from None


class SegmentWriter:
    """Encodes pictures into one file, timestamps 0, 1, 2... in units of 1 / rate."""

    def __init__(
        self, path: Path, settings: EncoderSettings, rate: Fraction, width: int, height: int
    ) -> None:
        import av

        self.rate = rate
        self.container = av.open(str(path), mode="w")
        stream = self.container.add_stream(settings.codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = settings.pixel_format(width, height)
        stream.codec_context.max_b_frames = 0  # dts == pts: segments concatenate cleanly
        stream.codec_context.time_base = 1 / rate
        if settings.codec == "mpeg4":
            stream.codec_context.bit_rate = int(width * height * float(rate) * 0.3)
        stream.options = settings.options()
        self.stream = stream
        self.count = 0

    def write(self, picture: Any) -> None:
        """Encode a (C, H, W) float tensor in [0, 1]."""
        self.write_array(tensor_to_uint8(picture))

    def write_array(self, rgb: np.ndarray) -> None:
        """Encode an H x W x 3 uint8 RGB array."""
        import av

        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.count
        frame.time_base = 1 / self.rate
        self.count += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()


@dataclass(frozen=True)
class VideoJob:
    """Everything that decides the output of a video conversion."""

    factor: int = 2
    fps: Fraction | None = None
    slowmo: bool = False
    levels: int = 3
    scene_threshold: float = 0.12
    dup_threshold: float = 0.004
    max_dup_run: int = 4
    segment_frames: int = 240
    batch_pairs: int = 2
    copy_audio: bool = True
    encoder: EncoderSettings = EncoderSettings()
    # The model takes the time t: every output frame at its exact time, in one pass.
    exact_times: bool = False


def is_power_of_two(number: int) -> bool:
    """True for 1, 2, 4, 8, ..."""
    return number >= 1 and number & (number - 1) == 0


def factor_levels(factor: int, levels: int = 3) -> int:
    """The midpoint-tree depth output times are rounded to for ``factor`` x the input rate.

    A power of two gets ``log2(factor) + 2``: its times are exact midpoints, and the two spare
    levels serve the times across duplicate runs. Any other factor gets ``levels``, as
    ``--fps`` does (see :func:`factor_timing_error`).
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if is_power_of_two(factor):
        return int(math.log2(factor)) + 2  # exact for dyadic times; fine for dedup spans
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    return levels


def factor_timing_error(factor: int, levels: int) -> Fraction:
    """The largest timing error of ``factor`` x the rate of a constant-rate input, when times
    are rounded to the nearest ``1 / 2**levels`` of an interval, in input frame intervals.

    The new frames sit at ``k / factor`` of each interval (k = 1 ... factor - 1); the answer is
    the largest distance from one of those to the nearest multiple of ``1 / 2**levels``: 0 for
    a power of two at :func:`factor_levels`' depth, at most ``1 / 2**(levels + 1)`` otherwise.
    (Across duplicate runs or uneven timestamps the interval is the anchors' gap.)
    """
    if factor < 1 or levels < 0:
        raise ValueError("factor must be >= 1 and levels >= 0")
    steps = 2**levels
    # k * steps mod factor takes every multiple of g = gcd(steps, factor) below factor; the
    # error of k is the distance of that residue to 0 or factor, over factor * steps.
    g = math.gcd(steps, factor)
    return Fraction(g * (factor // (2 * g)), factor * steps)


def job_levels(job: VideoJob) -> int:
    """The dyadic level output times are rounded to (more than log2(factor) when needed)."""
    if job.fps is not None:
        return job.levels
    return factor_levels(job.factor, job.levels)


def plan_video(analysis: Analysis, input_rate: Fraction, job: VideoJob) -> tuple[list, Fraction]:
    """The output frames of a job and the output frame rate."""
    anchors = find_anchors(analysis.same_as_previous, analysis.cut_before, job.max_dup_run)
    rate = job.fps if job.fps is not None else input_rate * job.factor
    targets = output_times(analysis.times[0], analysis.end_time, rate)
    plan = plan_frames(analysis.times, anchors, targets, job_levels(job), job.exact_times)
    return plan, rate


def _file_identity(path: Path) -> dict[str, Any]:
    try:
        stat = path.stat()
        return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    except OSError:
        return {"path": str(path)}


def work_folder(output: Path, key: dict[str, Any]) -> Path:
    """The hidden folder next to ``output`` that holds the segments of this exact job."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return output.parent / f".{output.name}.sepconv-{digest[:16]}"


def _segment_packets(
    path: Path, offset: Fraction, out_stream: Any
) -> Iterator[tuple[Fraction, int, Any, Any]]:
    """The video packets of a segment, timestamps shifted by ``offset`` seconds."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base)
        shift = round(offset / time_base)
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            packet.pts += shift
            packet.dts = packet.pts if packet.dts is None else packet.dts + shift
            yield (Fraction(packet.dts) * time_base, 0, packet, out_stream)


def _copied_packets(
    path: Path, streams: dict[int, Any]
) -> Iterator[tuple[Fraction, int, Any, Any]]:
    """The packets of the input's audio/subtitle streams (by stream index), unchanged."""
    import av

    if not streams:
        return
    with av.open(str(path)) as container:
        chosen = [s for s in container.streams if s.index in streams]
        for packet in container.demux(chosen):
            if packet.size == 0 or packet.dts is None and packet.pts is None:
                continue
            stamp = packet.dts if packet.dts is not None else packet.pts
            yield (
                Fraction(stamp) * Fraction(packet.time_base),
                1,
                packet,
                streams[packet.stream.index],
            )


def concatenate(
    segments: Sequence[tuple[Path, Fraction]],
    output: Path,
    input_path: Path | None,
    copy_audio: bool,
    display_matrix: Sequence[int] | None = None,
) -> None:
    """Write ``output`` from the segment files (each shifted to its start time) and, if asked,
    the input's audio and subtitle packets, interleaved by time, without re-encoding.
    ``display_matrix`` (the input's rotation, see :func:`_display_matrix`) is set on the
    output's video stream."""
    import av

    with av.open(str(segments[0][0])) as first:
        template = first.streams.video[0]
        container = av.open(str(output), mode="w")
        try:
            video = container.add_stream_from_template(template)
            video.time_base = template.time_base
            if display_matrix is not None:
                video.set_display_matrix(list(display_matrix))
        except BaseException:
            container.close()
            raise
    try:
        copied: dict[int, Any] = {}
        if copy_audio and input_path is not None:
            with av.open(str(input_path)) as source:
                for stream in source.streams:
                    if stream.type not in ("audio", "subtitle"):
                        continue
                    try:
                        out = container.add_stream_from_template(stream)
                    except (av.error.FFmpegError, ValueError) as exc:
                        print(
                            f"sepconv: warning: not copying {stream.type} stream "
                            f"{stream.index} ({_reason(exc)})",
                            file=sys.stderr,
                        )
                        continue
                    out.time_base = stream.time_base
                    copied[stream.index] = out
        video_packets = _chain([_segment_packets(path, start, video) for path, start in segments])
        copied_packets = _copied_packets(input_path, copied) if input_path else iter(())
        merged = heapq.merge(video_packets, copied_packets, key=lambda item: (item[0], item[1]))
        for _, _, packet, out_stream in merged:
            packet.stream = out_stream
            container.mux(packet)
    except av.error.FFmpegError as exc:
        raise OutputError(
            f"cannot write {_show(output)}: {_reason(exc)} (try another container, or --no-audio)"
        ) from None
    finally:
        container.close()


def _chain(iterators: Sequence[Iterator[Any]]) -> Iterator[Any]:
    for iterator in iterators:
        yield from iterator


class ConversionInterrupted(KeyboardInterrupt):
    """A conversion stopped by Ctrl-C or SIGTERM: ``kept`` of its ``total`` output frames are
    kept in the work folder ``work`` for ``resume`` (0: nothing is, and the folder is gone)."""

    def __init__(self, kept: int, total: int, work: Path) -> None:
        super().__init__(f"{kept} of {total} output frames kept in {work}")
        self.kept = kept
        self.total = total
        self.work = work


def pending_folder(segment: Path) -> Path:
    """Where the finished frames of an unfinished segment wait (lossless PNGs, by number):
    ``pending-00003`` for ``segment-00003.mp4``."""
    return segment.with_name(f"pending-{segment.stem.removeprefix('segment-')}")


def _pending_path(folder: Path, index: int) -> Path:
    return folder / f"{index:08d}.png"


def resumable_prefix(plan: Sequence[OutputFrame], pending: Path, batch_pairs: int) -> int:
    """How many first frames of a segment's ``plan`` a resumed run takes from ``pending``
    instead of computing them: up to the last :func:`chunk_starts` offset before the first
    interpolated frame that is missing there (input frames are read from the input again)."""
    if not pending.is_dir():
        return 0
    saved = {path.name for path in pending.iterdir()}
    missing = next(
        (
            offset
            for offset, frame in enumerate(plan)
            if isinstance(frame.source, COMPUTED)
            and _pending_path(pending, frame.index).name not in saved
        ),
        len(plan),
    )
    return max(offset for offset in chunk_starts(plan, batch_pairs) if offset <= missing)


def _save_pending(folder: Path, index: int, picture: Any) -> None:
    """Write one finished frame as a PNG (fast compression), atomically."""
    import cv2

    path = _pending_path(folder, index)
    temp = path.with_name(f".{path.stem}.tmp.png")
    rgb = tensor_to_uint8(picture)
    try:
        if not cv2.imwrite(str(temp), rgb[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise OSError(f"OpenCV could not write {temp}")
        temp.replace(path)
    except (OSError, cv2.error) as exc:
        raise OutputError(f"cannot write {_show(path)}: {_reason(exc)}") from None


def _load_pending(folder: Path, index: int) -> np.ndarray:
    """A frame written by :func:`_save_pending`: H x W x 3 uint8 RGB."""
    import cv2

    path = _pending_path(folder, index)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(
            f"cannot read {_show(path)}, a frame kept for --resume: run without --resume"
        )
    return np.ascontiguousarray(bgr[..., ::-1])


def _render_segment(
    plan: Sequence[OutputFrame],
    path: Path,
    store: FrameStore,
    interpolate: Callable[[Any, Any], Any],
    job: VideoJob,
    rate: Fraction,
    size: tuple[int, int],
    bar: Any,
    stop_requests: StopRequests,
) -> None:
    """Encode one segment's frames into ``path`` (atomically), keeping each interpolated frame
    as a PNG in its :func:`pending_folder` until the segment is complete; frames an earlier,
    interrupted run kept there are encoded from those instead of being computed again. A stop
    request is honoured after a whole batch of pairs (:func:`chunk_starts`), once its frames
    are kept."""
    from sepconv.imageio import atomic_write

    pending = pending_folder(path)
    resumed = resumable_prefix(plan, pending, job.batch_pairs)
    batch_ends = {plan[offset - 1].index for offset in chunk_starts(plan, job.batch_pairs)[1:]}
    try:
        pending.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {_show(pending)}: {_reason(exc)}") from None
    with atomic_write(path) as temp:
        writer = SegmentWriter(temp, job.encoder, rate, *size)
        try:
            for frame in plan[:resumed]:
                if isinstance(frame.source, COMPUTED):
                    writer.write_array(_load_pending(pending, frame.index))
                else:
                    writer.write(store.get(frame.source))

            def emit(frame: OutputFrame, picture: Any) -> None:
                writer.write(picture)
                if isinstance(frame.source, COMPUTED):
                    _save_pending(pending, frame.index, picture)
                bar.update(1)
                if frame.index in batch_ends:
                    stop_requests.check()

            render(plan[resumed:], store, interpolate, emit, job.batch_pairs)
        finally:
            writer.close()
    shutil.rmtree(pending, ignore_errors=True)


def convert_video(
    input_path: Path,
    output: Path,
    interpolate: Callable[[Any, Any], Any],
    job: VideoJob,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    key_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Convert ``input_path`` into ``output`` (see the module docstring). Returns a summary.

    ``interpolate`` is :meth:`Interpolator.interpolate_tensor` (or anything with its
    contract). ``key_extra`` describes the model (weights, padding...) for the resume key.
    SIGINT or SIGTERM stops after the batch of frame pairs in flight with
    :class:`ConversionInterrupted` (a KeyboardInterrupt saying how many output frames are kept
    for ``resume``); a second signal stops at once.
    """
    with StopRequests() as stop_requests:  # Ctrl-C stops between frames, not inside FFmpeg
        return _convert_video(
            input_path, output, interpolate, job, stop_requests, resume, overwrite, quiet, key_extra
        )


def _convert_video(
    input_path: Path,
    output: Path,
    interpolate: Callable[[Any, Any], Any],
    job: VideoJob,
    stop_requests: StopRequests,
    resume: bool,
    overwrite: bool,
    quiet: bool,
    key_extra: dict[str, Any] | None,
) -> dict[str, Any]:
    from tqdm import tqdm

    from sepconv.imageio import atomic_write

    with tqdm(desc="reading", unit="frame", disable=quiet, file=sys.stderr, leave=False) as bar:

        def analysed(count: int) -> None:
            bar.update(count)
            stop_requests.check()

        analysis, input_rate = analyse_video(
            input_path, job.scene_threshold, job.dup_threshold, analysed
        )
    plan, rate = plan_video(analysis, input_rate, job)
    wanted = referenced_inputs(plan)
    segments = split_segments(plan, job.segment_frames)
    suffix = output.suffix or ".mkv"
    key = {
        "input": _file_identity(input_path),
        "job": job,
        "model": key_extra or {},
        "version": 2,
    }
    work = work_folder(output, key)
    try:
        if work.exists() and not resume:
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        (work / "job.json").write_text(json.dumps(key, sort_keys=True, default=str, indent=1))
    except OSError as exc:
        raise OutputError(f"cannot write {_show(output)}: {_reason(exc)}") from None
    paths = [work / f"segment-{number:05d}{suffix}" for number in range(len(segments))]

    def kept() -> list[int]:
        """Per segment, how many of its first frames a resumed run will not compute again."""
        return [
            stop - start
            if path.exists()
            else resumable_prefix(plan[start:stop], pending_folder(path), job.batch_pairs)
            for (start, stop), path in zip(segments, paths, strict=True)
        ]

    done = sum(kept())
    base = Fraction(0) if job.slowmo else analysis.times[0]
    width, height = analysis.width, analysis.height
    out_rate = input_rate if job.slowmo else rate

    decoded = decode_video(input_path)
    store = FrameStore((_frame_to_tensor(frame) for _, frame in decoded), wanted)
    try:
        with (
            contextlib.closing(decoded),
            tqdm(
                total=len(plan),
                initial=done,
                unit="frame",
                desc="interpolating",
                disable=quiet,
                file=sys.stderr,
                dynamic_ncols=True,
            ) as bar,
        ):
            for (start, stop), path in zip(segments, paths, strict=True):
                if path.exists():
                    continue
                store.release_before(plan[start].group)
                _render_segment(
                    plan[start:stop], path, store, interpolate, job, out_rate, (width, height),
                    bar, stop_requests,
                )  # fmt: skip
        starts = [base + Fraction(start) / out_rate for start, _ in segments]
        with atomic_write(output, overwrite=overwrite) as temp:
            concatenate(
                list(zip(paths, starts, strict=True)),
                temp,
                input_path,
                job.copy_audio and not job.slowmo,
                analysis.display_matrix,
            )
    except KeyboardInterrupt:
        finished = sum(kept())
        if finished == 0:
            shutil.rmtree(work, ignore_errors=True)  # nothing a resumed run could use
        raise ConversionInterrupted(finished, len(plan), work) from None
    shutil.rmtree(work, ignore_errors=True)
    return {
        "frames": len(plan),
        "rate": out_rate,
        "input_frames": len(analysis.times),
        "cuts": analysis.cuts,
        "duplicates": analysis.duplicates,
        "max_timing_error": max_timing_error(plan, analysis.times),
        "segments": len(segments),
        "resumed_frames": done,
    }


# --------------------------------------------------------------------------------------------
# Image sequences
# --------------------------------------------------------------------------------------------

SEQUENCE_EXTENSIONS = (".png",)


def list_sequence(folder: Path) -> list[Path]:
    """The PNG files of ``folder``, sorted by name (one-line InputError if none)."""
    if not folder.is_dir():
        raise InputError(f"cannot read frames from {_show(folder)}: not a folder")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SEQUENCE_EXTENSIONS
    )
    if not files:
        raise InputError(f"no .png frames in {_show(folder)}")
    return files


def convert_sequence(
    files: Sequence[Path],
    output_dir: Path,
    interpolate: Callable[[Any, Any], Any],
    factor: int,
    *,
    levels: int = 3,
    scene_threshold: float = 0.12,
    dup_threshold: float = 0.004,
    max_dup_run: int = 4,
    batch_pairs: int = 2,
    overwrite: bool = False,
    quiet: bool = False,
    exact_times: bool = False,
) -> int:
    """Interpolate a PNG sequence by ``factor``: (N - 1) * factor + 1 numbered PNGs out.

    Uses the same scheduler as videos (frame i at time i, output frame k at time
    k / factor): a ``factor`` that is not a power of two shows the nearest point of the
    midpoint tree ``levels`` deep (see :func:`factor_levels`), unless ``exact_times`` (a
    model that takes t: ``interpolate(first, second, t)`` at the exact times). Returns the
    number written.
    """
    import torch
    from tqdm import tqdm

    from sepconv.imageio import FAST_PNG_COMPRESSION, read_image, write_image

    analyser = FrameAnalyser(scene_threshold, dup_threshold)
    shape = None
    info = None
    for number, path in enumerate(files):
        pixels, info_now = read_image(path)
        if shape is None:
            shape, info = pixels.shape, info_now
        elif pixels.shape != shape:
            raise InputError(
                f"{_show(path)} is {pixels.shape[1]}x{pixels.shape[0]}x{pixels.shape[2]}, "
                f"the first frame is {shape[1]}x{shape[0]}x{shape[2]}"
            )
        analyser.add(Fraction(number), pixels[..., :3].mean(axis=2))
    analysis = analyser.analysis
    anchors = find_anchors(analysis.same_as_previous, analysis.cut_before, max_dup_run)
    rate = Fraction(factor)
    targets = output_times(Fraction(0), Fraction(len(files) - 1) + 1 / (2 * rate), rate)
    plan = plan_frames(analysis.times, anchors, targets, factor_levels(factor, levels), exact_times)
    output_dir.mkdir(parents=True, exist_ok=True)
    digits = max(6, len(str(len(plan))))

    def frames() -> Iterator[Any]:
        for path in files:
            pixels, _ = read_image(path)
            yield torch.from_numpy(pixels).permute(2, 0, 1)

    store = FrameStore(frames(), referenced_inputs(plan))
    with (
        StopRequests() as stop_requests,
        tqdm(total=len(plan), unit="frame", disable=quiet, file=sys.stderr) as bar,
    ):

        def emit(frame: OutputFrame, picture: Any) -> None:
            array = picture.detach().float().cpu().permute(1, 2, 0).numpy()
            write_image(
                output_dir / f"{frame.index:0{digits}d}.png",
                array,
                info,
                overwrite=overwrite,
                png_compression=FAST_PNG_COMPRESSION,
            )
            bar.update(1)
            stop_requests.check()

        render(plan, store, interpolate, emit, batch_pairs)
    return len(plan)
