"""Evaluation of a frame interpolator on a set of triplets.

:func:`evaluate` is the one evaluation loop used by the CLI, training (validation) and the
benchmarks: it reads each triplet, asks ``predict`` for the middle frame, scores it with
:mod:`sepconv.metrics` (PSNR, SSIM, Middlebury IE) and optionally saves it as a PNG.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sepconv import metrics
from sepconv.data.triplets import FrameTriplet, Triplet, clip_name
from sepconv.errors import InputError, OutputError
from sepconv.imageio import atomic_write, read_image, to_uint8

__all__ = ["EvalResult", "EvalRow", "evaluate", "load_rgb8", "save_png_atomic"]

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]
Progress = Callable[[int, int, str], None]


def load_rgb8(path: Path | str) -> np.ndarray:
    """Read an image file as uint8 RGB of shape (H, W, 3), values 0..255 (alpha dropped).

    Raises:
        InputError: the file is missing or is not a readable image.
    """
    frame, _ = read_image(path)
    return to_uint8(frame[:, :, :3])


def save_png_atomic(frame: np.ndarray, path: Path | str) -> None:
    """Write a uint8 RGB (H, W, 3) frame as PNG atomically, replacing ``path``; parents created.

    Raises:
        OutputError: the file cannot be written.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target) as temporary:
            Image.fromarray(np.ascontiguousarray(frame)).save(temporary, format="PNG")
    except OSError as error:
        raise OutputError(f"cannot write {str(target)!r}: {error}") from None


@dataclass(frozen=True)
class EvalRow:
    """Scores of one item: PSNR in dB (inf if exact), SSIM, IE (0-255 RMS), predict seconds,
    and, for an aligned evaluation, the translation ``(dx, dy)`` removed before scoring."""

    name: str
    psnr: float
    ssim: float
    ie: float
    seconds: float
    shift: tuple[float, float] | None = None


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else math.nan


@dataclass(frozen=True)
class EvalResult:
    """Per-item scores and their means (the mean of the per-item values, as the authors do).

    A mean PSNR is ``inf`` when any item was reproduced exactly; means of an empty result are NaN.
    """

    rows: list[EvalRow] = field(default_factory=list)

    @property
    def psnr(self) -> float:
        """Mean PSNR in dB."""
        return _mean([row.psnr for row in self.rows])

    @property
    def ssim(self) -> float:
        """Mean SSIM."""
        return _mean([row.ssim for row in self.rows])

    @property
    def ie(self) -> float:
        """Mean interpolation error (0-255 RMS)."""
        return _mean([row.ie for row in self.rows])

    @property
    def seconds(self) -> float:
        """Mean seconds spent in ``predict`` per item."""
        return _mean([row.seconds for row in self.rows])

    def by_clip(self) -> dict[str, EvalResult]:
        """The rows grouped by the clip each triplet was cut from
        (:func:`sepconv.data.triplets.clip_name`), clips in order of first appearance."""
        groups: dict[str, list[EvalRow]] = {}
        for row in self.rows:
            groups.setdefault(clip_name(row.name), []).append(row)
        return {clip: EvalResult(rows=rows) for clip, rows in groups.items()}

    def to_table(self) -> str:
        """A fixed-width text table: one line per item, then the mean line."""
        names = [row.name for row in self.rows] + ["mean"]
        width = max(len("item"), *(len(name) for name in names))
        aligned = any(row.shift is not None for row in self.rows)
        header = f"{'item':<{width}}  {'PSNR':>7}  {'SSIM':>7}  {'IE':>6}  {'seconds':>8}"
        if aligned:
            header += f"  {'dx':>6}  {'dy':>6}"
        lines = [header, "-" * len(header)]

        def line(name: str, psnr: float, ssim: float, ie: float, seconds: float) -> str:
            return f"{name:<{width}}  {psnr:>7.2f}  {ssim:>7.4f}  {ie:>6.2f}  {seconds:>8.3f}"

        for row in self.rows:
            text = line(row.name, row.psnr, row.ssim, row.ie, row.seconds)
            if row.shift is not None:
                text += f"  {row.shift[0]:>6.2f}  {row.shift[1]:>6.2f}"
            lines.append(text)
        lines.append("-" * len(header))
        lines.append(line("mean", self.psnr, self.ssim, self.ie, self.seconds))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: ``{"count", "mean": {psnr, ssim, ie, seconds}, "items": [...]}``
        (each item with ``shift`` as ``[dx, dy]`` when the evaluation was aligned).

        Values are Python floats; an exact reproduction has PSNR ``inf``, which ``json.dumps``
        writes as ``Infinity``.
        """
        return {
            "count": len(self.rows),
            "mean": {
                "psnr": self.psnr,
                "ssim": self.ssim,
                "ie": self.ie,
                "seconds": self.seconds,
            },
            "items": [_item(row) for row in self.rows],
        }


def _item(row: EvalRow) -> dict[str, Any]:
    """One row as plain data; ``shift`` only for an aligned evaluation."""
    item = asdict(row)
    if row.shift is None:
        del item["shift"]
    return item


def _output_path(save_dir: Path, name: str) -> Path:
    """``save_dir/<name with '/' and '\\' replaced by '_'>.png``."""
    flat = name.replace("/", "_").replace("\\", "_")
    return save_dir / f"{flat}.png"


def evaluate(
    predict: Predictor,
    triplets: Sequence[Triplet | FrameTriplet],
    *,
    save_dir: Path | None = None,
    progress: Progress | None = None,
    align: bool = False,
) -> EvalResult:
    """Interpolate every triplet with ``predict`` and score it against the true middle frame.

    Args:
        predict: ``predict(first, last) -> middle``; ``first`` and ``last`` are uint8 RGB
            (H, W, 3) arrays, 0..255, and the result must be a uint8 RGB (H, W, 3) array of the
            same shape. Only the time spent in this call is reported as ``seconds``.
        triplets: the items, e.g. from :func:`sepconv.data.triplets.middlebury_triplets`, or
            :class:`~sepconv.data.triplets.FrameTriplet` items already in memory.
        save_dir: if given, each prediction is written to ``save_dir/<name>.png`` ('/' in the
            name becomes '_'), atomically; the folder is created.
        progress: called as ``progress(done, total, name)`` after each item (``done`` counts
            from 1).
        align: score each prediction after the global sub-pixel translation that brings it
            closest to the truth (at most :data:`sepconv.metrics.ALIGN_MAX_SHIFT` pixels;
            both frames cropped by as much). Hand-held cameras shake between frames in a way
            no two-frame method can predict; this scores everything else. Not comparable with
            published scores.

    Returns:
        The per-item scores and their means.

    Raises:
        ValueError: ``triplets`` is empty, or ``predict`` returned something other than a uint8
            array shaped like the truth.
        InputError: a frame cannot be read, the frames of one triplet differ in size, or
            they are too small to align (``align``).
        OutputError: a prediction cannot be saved.
    """
    if len(triplets) == 0:
        raise ValueError("no triplets to evaluate")
    rows = []
    total = len(triplets)
    for done, triplet in enumerate(triplets, start=1):
        first, truth, last = (
            frame if isinstance(frame, np.ndarray) else load_rgb8(frame)
            for frame in (triplet.first, triplet.middle, triplet.last)
        )
        if not first.shape == truth.shape == last.shape:
            raise InputError(
                f"frames of {triplet.name!r} differ in size: first {first.shape[1::-1]}, "
                f"middle {truth.shape[1::-1]}, last {last.shape[1::-1]} (width, height)"
            )
        start = time.perf_counter()
        estimate = predict(first, last)
        seconds = time.perf_counter() - start
        if (
            not isinstance(estimate, np.ndarray)
            or estimate.dtype != np.uint8
            or estimate.shape != truth.shape
        ):
            got = (
                f"{estimate.dtype} array of shape {estimate.shape}"
                if isinstance(estimate, np.ndarray)
                else type(estimate).__name__
            )
            raise ValueError(
                f"predict returned {got} for {triplet.name!r}, expected uint8 of shape "
                f"{truth.shape}"
            )
        scored_truth, scored, shift = truth, estimate, None
        if align:
            try:
                scored_truth, scored, shift = metrics.shift_aligned(truth, estimate)
            except ValueError as error:
                raise InputError(f"cannot align {triplet.name!r}: {error}") from None
        rows.append(
            EvalRow(
                name=triplet.name,
                psnr=metrics.psnr(scored_truth, scored),
                ssim=metrics.ssim(scored_truth, scored),
                ie=metrics.interpolation_error(scored_truth, scored),
                seconds=seconds,
                shift=shift,
            )
        )
        if save_dir is not None:
            save_png_atomic(estimate, _output_path(Path(save_dir), triplet.name))
        if progress is not None:
            progress(done, total, triplet.name)
    return EvalResult(rows=rows)
