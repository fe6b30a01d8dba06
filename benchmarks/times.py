"""Frames at other times than the middle: frames i and i + 3g of real clips in, the frames
i + g and i + 2g scored as the predictions at t = 1/3 and 2/3, with the same ``evaluate()`` as
every benchmark.

Methods: the plain average of the two frames (time-blind), the blend weighted by the time
(``(1 - t) * first + t * last``), OpenCV DIS optical flow at time t (bilinear warps, the linear
motion of Super SloMo, eq. 4, blended by the time), RIFE 4.0 (benchmarks/rife_peer.py; skipped
with one line without its wheel) and, with ``--weights``, a sepconv model whose family takes a
time (``TAKES_TIME``; others are skipped with one line).

Windows: each clip is read as :func:`sepconv.video.video_windows` reads it for ``--adapt``
(stretches of consecutive frames spread over the whole clip); a window's frames i .. i + 3g
are used when frames i + g and i + 2g are both the middles of usable triplets of gap g
(:func:`sepconv.data.video_triplets.valid_triplets`: no scene cut, motion, even timing);
``--windows`` of them per clip and gap, spread evenly. Frames are downscaled (area) to
``--max-side``.

    python benchmarks/times.py                                  # $SEPCONV_DATA/videos, gap 1
    python benchmarks/times.py CLIP_OR_FOLDER ... --gaps 1 2 --windows 6 --json times.json
    python benchmarks/times.py --weights FILE_OR_NAME           # a model that takes t, too
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
from _common import DATA, environment, missing_data
from rife_peer import RIFE_VERSIONS, load_rife

from sepconv.data.triplets import FrameTriplet
from sepconv.engine.evaluate import EvalResult, evaluate
from sepconv.flow import FlowSettings, backward_warp, dis_flows

#: ``predict(first, last, time) -> frame``: uint8 (H, W, 3) RGB frames, 0..255, and the time
#: in (0, 1) of the frame to make (0: ``first``, 1: ``last``).
TimePredictor = Callable[[np.ndarray, np.ndarray, float], np.ndarray]

TIMES = (Fraction(1, 3), Fraction(2, 3))


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    """Float (H, W, 3) in 0..255 -> uint8, rounded (ties to even) and clipped."""
    return np.clip(np.round(frame), 0, 255).astype(np.uint8)


def average(first: np.ndarray, last: np.ndarray, time: float) -> np.ndarray:
    """The plain per-pixel mean of the two frames, whatever the time."""
    del time
    return _to_uint8((first.astype(np.float32) + last.astype(np.float32)) * 0.5)


def blend(first: np.ndarray, last: np.ndarray, time: float) -> np.ndarray:
    """``(1 - t) * first + t * last``: the frames cross-faded by the time."""
    return _to_uint8(first.astype(np.float32) * (1 - time) + last.astype(np.float32) * time)


def make_flow_time_predictor(settings: FlowSettings | None = None) -> TimePredictor:
    """DIS optical flow at time t (default DIS settings, bilinear warps).

    With the two DIS flows ``F01`` and ``F10``, the flows from time t back to the frames are
    (Super SloMo, Jiang et al., CVPR 2018, eq. 4)::

        F_t0 = -(1 - t) t F01 + t^2 F10        F_t1 = (1 - t)^2 F01 - t (1 - t) F10

    and the two backward warps are blended with weights ``1 - t`` and ``t``. At t = 1/2 this
    is :func:`sepconv.baselines.make_flow_predictor` exactly. One DIS object per predictor:
    use one predictor per thread.
    """
    settings = settings or FlowSettings()
    dis = settings.create()

    def predict(first: np.ndarray, last: np.ndarray, time: float) -> np.ndarray:
        a = first.astype(np.float32) / 255.0
        b = last.astype(np.float32) / 255.0
        flow_01, flow_10 = dis_flows(a, b, dis)
        t = float(time)
        to_first = -(1 - t) * t * flow_01 + t * t * flow_10
        to_last = (1 - t) ** 2 * flow_01 - t * (1 - t) * flow_10
        warped_first = backward_warp(a, to_first, settings.interpolation)
        warped_last = backward_warp(b, to_last, settings.interpolation)
        return _to_uint8((warped_first * (1 - t) + warped_last * t) * 255.0)

    return predict


def model_time_predictor(model) -> TimePredictor:
    """A sepconv model that takes a time (``TAKES_TIME``), float32 on the CPU.

    Through the Interpolator where its ``interpolate`` takes ``time``; otherwise the model
    interface run eagerly as the Interpolator does: ``prepare(first, second, time)`` on the
    whole frame, every prepared input replicate-padded right and bottom to the network's
    canvas, ``kernels_for``, ``synthesize``, cropped back.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    from sepconv.inference import PAD_MULTIPLE, Interpolator

    if "time" in inspect.signature(Interpolator.interpolate).parameters:
        interpolator = Interpolator(model, device="cpu")

        def through_interpolator(first: np.ndarray, last: np.ndarray, time: float) -> np.ndarray:
            return interpolator.interpolate(first, last, time=time)  # type: ignore[call-arg]

        return through_interpolator
    model = model.float().eval()

    def predict(first: np.ndarray, last: np.ndarray, time: float) -> np.ndarray:
        a, b = (
            torch.from_numpy(frame.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
            for frame in (first, last)
        )
        height, width = first.shape[:2]
        padding = [0, -width % PAD_MULTIPLE, 0, -height % PAD_MULTIPLE]
        with torch.no_grad():
            inputs = {
                name: F.pad(value, padding, mode="replicate")
                for name, value in model.prepare(a, b, time).items()
            }
            kernels = model.kernels_for(inputs)
            frame = model.synthesize(inputs["first"], inputs["second"], kernels)
        frame = frame[0, :, :height, :width].clamp(0, 1).permute(1, 2, 0).numpy()
        return _to_uint8(frame * 255.0)

    return predict


def methods(weights: str | None, rife: tuple[str, ...]) -> list[tuple[str, TimePredictor]]:
    """(name, predict) of every method that can run here, in table order; one line on
    stderr for each left out."""
    chosen: list[tuple[str, TimePredictor]] = [
        ("average of the two frames", average),
        ("blend weighted by t", blend),
        ("DIS flow at t, bilinear warps", make_flow_time_predictor()),
    ]
    for version in rife:
        peer, reason = load_rife(version)
        if peer is None:
            print(f"{RIFE_VERSIONS[version].name}: skipped ({reason})", file=sys.stderr)
        elif not peer.takes_time:
            print(f"{peer.name}: skipped (makes the middle frame only)", file=sys.stderr)
        else:
            chosen.append((peer.name, _rife_uint8(peer)))
    if weights:
        from sepconv.models.checkpoint import load_weights
        from sepconv.weights import resolve_weights

        path, _ = resolve_weights(weights)
        model = load_weights(path).model
        if getattr(model, "TAKES_TIME", False):
            chosen.append((f"{weights}", model_time_predictor(model)))
        else:
            print(
                f"{weights}: skipped (its family makes the middle frame only: no TAKES_TIME)",
                file=sys.stderr,
            )
    return chosen


def _rife_uint8(peer) -> TimePredictor:
    def predict(first: np.ndarray, last: np.ndarray, time: float) -> np.ndarray:
        return _to_uint8(peer(first, last, time) * 255.0)

    return predict


def _downscaled(frames, max_side: int):
    """(N, 3, H, W) uint8 tensor -> (N, H', W', 3) uint8 numpy, long side <= max_side (area)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    height, width = frames.shape[-2:]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(2, round(height * scale)), max(2, round(width * scale)))
        resized = [
            F.interpolate(frames[k : k + 16].float(), size=size, mode="area").round_()
            for k in range(0, frames.shape[0], 16)
        ]
        frames = torch.cat(resized).clamp_(0, 255).to(torch.uint8)
    return frames.permute(0, 2, 3, 1).contiguous().numpy()


def clip_windows(
    path: Path, gaps: list[int], windows: int, max_side: int
) -> dict[int, list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]]:
    """Per gap g: up to ``windows`` (name, frame i, i + g, i + 2g, i + 3g) of one clip, uint8
    (H, W, 3) RGB arrays (see the module docstring)."""
    from sepconv.data.clip_windows import evenly_spaced
    from sepconv.data.video_triplets import valid_triplets
    from sepconv.video import video_windows

    span = 3 * max(gaps) + 4
    clip = video_windows(path, windows=max(windows, 8), span=span, max_bytes=2**29)
    if clip.frames.shape[0] < 4:
        return {gap: [] for gap in gaps}
    usable = set(valid_triplets(clip.frames, clip.times, gaps, breaks=clip.breaks))
    frames = _downscaled(clip.frames, max_side)
    chosen = {}
    for gap in gaps:
        starts = [
            start
            for start in range(frames.shape[0] - 3 * gap)
            if (start + gap, gap) in usable and (start + 2 * gap, gap) in usable
        ]
        chosen[gap] = [
            (f"{path.stem}/{start:04d}", *(frames[start + k * gap] for k in range(4)))
            for start in (starts[k] for k in evenly_spaced(len(starts), windows))
        ]
    return chosen


def _clips(paths: list[Path]) -> list[Path]:
    from sepconv.data.video_triplets import list_videos

    found = []
    for path in paths:
        found += list_videos(path) if path.is_dir() else [path]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "clips",
        type=Path,
        nargs="*",
        help="videos or folders of them (default: $SEPCONV_DATA/videos)",
    )
    parser.add_argument("--gaps", type=int, nargs="+", default=[1], help="g: frames i, i + 3g in")
    parser.add_argument("--windows", type=int, default=4, help="scored windows per clip and gap")
    parser.add_argument("--max-side", type=int, default=640, help="frames downscaled to this")
    parser.add_argument(
        "--weights", help="a sepconv model (file or registry name), scored if it takes a time"
    )
    parser.add_argument(
        "--rife",
        nargs="*",
        default=["4.0"],
        choices=[key for key, wheel in RIFE_VERSIONS.items() if wheel.takes_time],
        help="RIFE variants to score (default: 4.0; none: a bare --rife)",
    )
    parser.add_argument("--align", action="store_true", help="score shift-aligned (evaluate())")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    if any(gap < 1 for gap in args.gaps) or args.windows < 1:
        parser.error("--gaps and --windows must be at least 1")
    if not args.clips:
        if not (DATA / "videos").is_dir():
            sys.exit(missing_data(DATA / "videos", "the clips"))
        args.clips = [DATA / "videos"]
    clips = _clips(args.clips)
    items: dict[int, dict[Fraction, list[FrameTriplet]]] = {
        gap: {time: [] for time in TIMES} for gap in args.gaps
    }
    for path in clips:
        for gap, chosen in clip_windows(path, args.gaps, args.windows, args.max_side).items():
            for name, first, one_third, two_thirds, last in chosen:
                for time, truth in zip(TIMES, (one_third, two_thirds), strict=True):
                    items[gap][time].append(FrameTriplet(name, first, truth, last))
    header = environment("cpu")
    print(f"# {header['date']}  {header['device_name']}")
    print(f"# {len(clips)} clips, long side <= {args.max_side}; torch {header['torch']}")
    chosen_methods = methods(args.weights, tuple(args.rife))
    results: dict[str, dict] = {}
    for gap in args.gaps:
        count = len(items[gap][TIMES[0]])
        print(
            f"\n## gap {gap}: {count} windows (frames i, i+{3 * gap} in; i+{gap} at t = 1/3 "
            f"and i+{2 * gap} at t = 2/3 scored){', aligned' if args.align else ''}"
        )
        if count == 0:
            print("no usable windows")
            continue
        print("| method | PSNR t=1/3 | PSNR t=2/3 | PSNR | SSIM | IE | s per frame |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        results[str(gap)] = {}
        for name, predict in chosen_methods:
            by_time = {
                time: evaluate(
                    lambda a, b, t=float(time), p=predict: p(a, b, t),
                    items[gap][time],
                    align=args.align,
                )
                for time in TIMES
            }
            both = EvalResult(rows=[row for result in by_time.values() for row in result.rows])
            third, two = (by_time[time] for time in TIMES)
            print(
                f"| {name} | {third.psnr:.2f} | {two.psnr:.2f} | {both.psnr:.2f} | "
                f"{both.ssim:.4f} | {both.ie:.2f} | {both.seconds:.3f} |",
                flush=True,
            )
            results[str(gap)][name] = {str(time): by_time[time].to_dict() for time in TIMES}
    if args.json:
        report = {"environment": header, "clips": [str(path) for path in clips], "results": results}
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
