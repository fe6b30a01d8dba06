"""Short stretches of consecutive frames, read from places spread over a whole video.

Adapting a model to a clip (:mod:`sepconv.engine.adapt`) needs triplets from all of the clip,
not just its start, without holding a long video in memory or decoding it twice.
:func:`read_windows` reads frames once, in order, and keeps *windows* of ``span`` consecutive
frames: window ``w`` holds frames ``w * span`` to ``w * span + span - 1``. It keeps every
``stride``-th window and doubles the stride whenever more than ``2 * windows`` are held, so
at most ``2 * windows * span`` frames are ever in memory (``windows`` shrinks to fit
``max_bytes``) and the windows kept are spread evenly
over what was read; at the end ``windows`` of them, evenly spaced, are returned as one
:class:`~sepconv.data.video_triplets.VideoClip` whose ``breaks`` mark where one window ends and
the next begins. The choice depends on the frame count alone, so it is the same on every run.

Reading stops after ``max_seconds`` (a long video then contributes windows from the part read
so far), or when ``should_stop`` raises (Ctrl-C).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sepconv.data.video_triplets import VideoClip

__all__ = ["evenly_spaced", "read_windows"]


def evenly_spaced(count: int, wanted: int) -> list[int]:
    """``wanted`` indices of ``range(count)`` spread evenly, first and last included (all of
    them when ``count <= wanted``)."""
    if count <= wanted:
        return list(range(count))
    if wanted == 1:
        return [count // 2]
    return sorted({round(k * (count - 1) / (wanted - 1)) for k in range(wanted)})


def read_windows(
    frames: Iterable[tuple[float, Any]],
    *,
    convert: Callable[[Any], torch.Tensor] | None = None,
    path: Path | str = "",
    windows: int = 24,
    span: int = 8,
    max_seconds: float = math.inf,
    max_bytes: int = 2**30,
    should_stop: Callable[[], None] | None = None,
) -> VideoClip:
    """Windows of consecutive frames spread over ``frames`` (see the module docstring).

    Args:
        frames: (time in seconds, picture) in display order; time may be NaN where unknown.
        convert: turns a picture into a (3, H, W) uint8 RGB tensor; called only for the frames
            kept (None: the pictures are such tensors already).
        path: the source, for messages.
        windows: how many windows to return (at most; fewer when the input is short, or when
            ``2 * windows * span`` frames would take more than ``max_bytes``).
        span: frames per window (``span - 2`` triplets of neighbouring frames each).
        max_seconds: stop reading after this long.
        max_bytes: memory for the frames held while reading (at least two windows are).
        should_stop: called after every frame; raises to abandon reading.

    Returns:
        A clip of the chosen windows' frames, its ``breaks`` at every window start but the
        first; the input's last window may be shorter than ``span``. Empty frames
        (0, 3, 0, 0) if the input had fewer than ``min(3, span)`` frames.
    """
    if windows < 1 or span < 1:
        raise ValueError("windows and span must be at least 1")
    started = time.perf_counter()
    stride = 1
    held: dict[int, list[tuple[float, torch.Tensor]]] = {}
    complete = 0  # windows fully read
    for index, (stamp, picture) in enumerate(frames):
        window, offset = divmod(index, span)
        if window % stride == 0:
            tensor = picture if convert is None else convert(picture)
            if index == 0:
                affordable = max_bytes // max(1, 2 * span * tensor.numel() * tensor.element_size())
                windows = max(2, min(windows, affordable))
            held.setdefault(window, []).append((float(stamp), tensor))
        if offset == span - 1:
            complete = window + 1
            if len(held) > 2 * windows:
                stride *= 2
                held = {key: value for key, value in held.items() if key % stride == 0}
        if should_stop is not None:
            should_stop()
        if time.perf_counter() - started >= max_seconds and offset == span - 1:
            break
    # Complete windows, and the last one cut short by the end of the input if it holds a
    # triplet (so a clip shorter than a window still gives one).
    usable = [
        key
        for key in sorted(held)
        if len(held[key]) == span or (key >= complete and len(held[key]) >= min(3, span))
    ]
    chosen = [usable[k] for k in evenly_spaced(len(usable), windows)]
    if not chosen:
        return VideoClip(
            path=Path(path), frames=torch.zeros((0, 3, 0, 0), dtype=torch.uint8), times=np.zeros(0)
        )
    pictures = [picture for key in chosen for _, picture in held[key]]
    stamps = np.asarray([stamp for key in chosen for stamp, _ in held[key]], dtype=np.float64)
    starts = np.cumsum([len(held[key]) for key in chosen])[:-1]
    return VideoClip(
        path=Path(path),
        frames=torch.stack(pictures),
        times=stamps,
        breaks=tuple(int(start) for start in starts),
    )
