"""Frames at other times than the middle: frames i and i + 3g of real clips in, the frames
i + g and i + 2g scored as the predictions at t = 1/3 and 2/3, with the same ``evaluate()`` as
every benchmark; with ``--times 1/2 1/3 2/3`` also frames i and i + 2g in, i + g scored at
t = 1/2 (so one run compares every method at every time, e.g. on held-out clips).

Methods: the plain average of the two frames (time-blind), the blend weighted by the time
(``(1 - t) * first + t * last``), OpenCV DIS optical flow at time t (bilinear warps, the linear
motion of Super SloMo, eq. 4, blended by the time), RIFE 4.0 (benchmarks/rife_peer.py; skipped
with one line without its wheel) and, with ``--weights``, a sepconv model whose family takes a
time (``TAKES_TIME``; a model that makes only the middle frame is scored at t = 1/2 alone, as
is RIFE HD).

Windows: each clip is read as :func:`sepconv.video.video_windows` reads it for ``--adapt``
(stretches of consecutive frames spread over the whole clip); a window's frames i .. i + 3g
are used when frames i + g and i + 2g are both the middles of usable triplets of gap g
(:func:`sepconv.data.video_triplets.valid_triplets`: no scene cut, motion, even timing);
``--windows`` of them per clip and gap, spread evenly. Frames are downscaled (area) to
``--max-side``.

    python benchmarks/times.py                                  # $SEPCONV_DATA/videos, gap 1
    python benchmarks/times.py CLIP_OR_FOLDER ... --gaps 1 2 --windows 6 --json times.json
    python benchmarks/times.py --weights FILE_OR_NAME           # a model that takes t, too
    python benchmarks/times.py CLIP ... --weights sepconv-motion --parts   # and its parts
    python benchmarks/times.py CLIP ... --weights sepconv-motion --ensemble 1 2  # 1 and 2 passes

``--parts`` also scores each learned-motion model's learned flows alone and its classic
candidate alone (:func:`motion_parts`), and prints the mean flow it finds between a frame and
itself (:func:`still_flow`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
from _common import DATA, add_ensemble_option, ensemble_label, environment, missing_data
from rife_peer import RIFE_VERSIONS, load_rife

from sepconv.data.triplets import FrameTriplet
from sepconv.engine.evaluate import EvalResult, evaluate
from sepconv.flow import FlowSettings, backward_warp, dis_flows, flows_at_time

#: ``predict(first, last, time) -> frame``: uint8 (H, W, 3) RGB frames, 0..255, and the time
#: in (0, 1) of the frame to make (0: ``first``, 1: ``last``).
TimePredictor = Callable[[np.ndarray, np.ndarray, float], np.ndarray]

TIMES = (Fraction(1, 3), Fraction(2, 3))
HALF = Fraction(1, 2)


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

    The two DIS flows give the flows from time t back to the frames by Super SloMo's linear
    motion (:func:`sepconv.flow.flows_at_time`), and the two backward warps are blended with
    weights ``1 - t`` and ``t``. At t = 1/2 this is :func:`sepconv.baselines.make_flow_predictor`
    exactly. One DIS object per predictor:
    use one predictor per thread.
    """
    settings = settings or FlowSettings()
    dis = settings.create()

    def predict(first: np.ndarray, last: np.ndarray, time: float) -> np.ndarray:
        a = first.astype(np.float32) / 255.0
        b = last.astype(np.float32) / 255.0
        t = float(time)
        to_first, to_last = flows_at_time(*dis_flows(a, b, dis), t)
        warped_first = backward_warp(a, to_first, settings.interpolation)
        warped_last = backward_warp(b, to_last, settings.interpolation)
        return _to_uint8((warped_first * (1 - t) + warped_last * t) * 255.0)

    return predict


def model_time_predictor(model, ensemble: int = 1) -> TimePredictor:
    """A sepconv model through the :class:`~sepconv.inference.Interpolator`, float32 on the CPU
    (any time if its family takes one, ``TAKES_TIME``; else the middle frame), averaging
    ``ensemble`` symmetric variants of the pass as ``--ensemble`` does."""
    from sepconv.inference import Interpolator

    interpolator = Interpolator(model, device="cpu", ensemble=ensemble)

    def predict(first: np.ndarray, last: np.ndarray, time: float) -> np.ndarray:
        return interpolator.interpolate(first, last, time=time)

    return predict


def motion_parts(name: str, model) -> list[tuple[str, TimePredictor, bool]]:
    """A learned-motion model's two sources of motion, each scored alone through the
    Interpolator with the model's own blend weights: its learned flows, and the classic
    candidate (DIS as its config sets it, :func:`sepconv.models.motion.classic_candidate`).
    The selector is forced to keep all of one (a model trained without a candidate gets one
    added, as ``ADDED_FIELDS`` allows, then forced). A model with trained kernels also gets
    its plain blend: the same motion with the kernel head zeroed (centre taps), which is what
    the kernels add over."""
    from dataclasses import replace

    import torch

    from sepconv.models.motion_sepconv import MotionSepConvNet

    parts = []
    for label, keep_logit in (("learned flows alone", 30.0), ("classic candidate alone", -30.0)):
        variant = MotionSepConvNet(replace(model.config, classic_candidate=True)).eval()
        variant.load_state_dict(model.state_dict(), strict=False)
        with torch.no_grad():
            variant.motion.selector.out.weight[0].zero_()
            variant.motion.selector.out.bias[0] = keep_logit
        parts.append((f"{name}: {label}", model_time_predictor(variant), True))
    if model.kernels_trained:
        plain = MotionSepConvNet(model.config).eval()
        plain.load_state_dict(model.state_dict())
        plain.reset_kernels()
        parts.append((f"{name}: plain blend (kernels off)", model_time_predictor(plain), True))
    return parts


def still_flow(model, items: list[FrameTriplet]) -> float:
    """Mean |F_t0| in pixels a learned-motion model finds between a frame and itself (the
    first frame of each item, at t = 1/2): 0 for a motion that leaves still content alone."""
    import torch

    total = 0.0
    with torch.inference_mode():
        for item in items:
            frame = torch.from_numpy(item.first).permute(2, 0, 1)[None].float() / 255.0
            motion = model.estimate_motion(frame, frame, 0.5)
            total += float(motion.flow_t0.norm(dim=1).mean())
    return total / max(len(items), 1)


def methods(
    weights: list[str],
    rife: tuple[str, ...],
    parts: bool = False,
    ensembles: tuple[int, ...] = (1,),
) -> list[tuple[str, TimePredictor, bool]]:
    """(name, predict, takes_time) of every method that can run here, in table order; one
    line on stderr for each left out. Methods that do not take a time make the middle frame
    only (scored at t = 1/2 alone). Each model has a row per size in ``ensembles`` (named
    ``NAME --ensemble N`` when N > 1). With ``parts``, each learned-motion model's
    :func:`motion_parts` follow it."""
    chosen: list[tuple[str, TimePredictor, bool]] = [
        ("average of the two frames", average, True),
        ("blend weighted by t", blend, True),
        ("DIS flow at t, bilinear warps", make_flow_time_predictor(), True),
    ]
    for version in rife:
        peer, reason = load_rife(version)
        if peer is None:
            print(f"{RIFE_VERSIONS[version].name}: skipped ({reason})", file=sys.stderr)
        else:
            chosen.append((peer.name, _rife_uint8(peer), bool(peer.takes_time)))
    for name in weights:
        from sepconv.models.checkpoint import load_weights
        from sepconv.weights import resolve_weights

        path, _ = resolve_weights(name)
        model = load_weights(path).model
        takes_time = bool(getattr(model, "TAKES_TIME", False))
        for ensemble in ensembles:
            label = ensemble_label(name, ensemble)
            chosen.append((label, model_time_predictor(model, ensemble), takes_time))
        if parts and hasattr(model, "estimate_motion"):
            chosen += motion_parts(name, model)
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
    path: Path, gaps: list[int], windows: int, max_side: int, times: tuple[Fraction, ...] = TIMES
) -> dict[tuple[int, Fraction], list[FrameTriplet]]:
    """Per gap g and time t: up to ``windows`` scored items of one clip, uint8 (H, W, 3) RGB:
    for t = 1/3, 2/3 frames i, i + 3g in and i + g, i + 2g the truths; for t = 1/2 frames
    i, i + 2g in and i + g the truth (see the module docstring)."""
    from sepconv.data.clip_windows import evenly_spaced
    from sepconv.data.video_triplets import valid_triplets
    from sepconv.video import video_windows

    span = 3 * max(gaps) + 4
    clip = video_windows(path, windows=max(windows, 8), span=span, max_bytes=2**29)
    chosen: dict[tuple[int, Fraction], list[FrameTriplet]] = {
        (gap, time): [] for gap in gaps for time in times
    }
    if clip.frames.shape[0] < 4:
        return chosen
    usable = set(valid_triplets(clip.frames, clip.times, gaps, breaks=clip.breaks))
    frames = _downscaled(clip.frames, max_side)
    for gap in gaps:
        thirds = [
            start
            for start in range(frames.shape[0] - 3 * gap)
            if (start + gap, gap) in usable and (start + 2 * gap, gap) in usable
        ]
        halves = [
            start for start in range(frames.shape[0] - 2 * gap) if (start + gap, gap) in usable
        ]
        for time in times:
            starts = halves if time == HALF else thirds
            span_frames = 2 * gap if time == HALF else 3 * gap
            for start in (starts[k] for k in evenly_spaced(len(starts), windows)):
                truth = frames[start + round(time * span_frames)]
                chosen[(gap, time)].append(
                    FrameTriplet(
                        f"{path.stem}/{start:04d}",
                        frames[start],
                        truth,
                        frames[start + span_frames],
                    )
                )
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
        "--weights",
        nargs="+",
        default=[],
        help="sepconv models (files or registry names): at every time if they take one, else "
        "at t = 1/2",
    )
    parser.add_argument(
        "--times",
        nargs="+",
        default=["1/3", "2/3"],
        choices=["1/2", "1/3", "2/3"],
        help="times scored (default 1/3 2/3)",
    )
    parser.add_argument(
        "--rife",
        nargs="*",
        default=["4.0"],
        choices=list(RIFE_VERSIONS),
        help="RIFE variants to score (default: 4.0; none: a bare --rife; HD: t = 1/2 only)",
    )
    parser.add_argument("--align", action="store_true", help="score shift-aligned (evaluate())")
    parser.add_argument(
        "--parts",
        action="store_true",
        help="also score each learned-motion model's learned flows and classic candidate "
        "alone, and print the flow it finds between a frame and itself",
    )
    add_ensemble_option(parser)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    if any(gap < 1 for gap in args.gaps) or args.windows < 1:
        parser.error("--gaps and --windows must be at least 1")
    if not args.clips:
        if not (DATA / "videos").is_dir():
            sys.exit(missing_data(DATA / "videos", "the clips"))
        args.clips = [DATA / "videos"]
    clips = _clips(args.clips)
    times = tuple(sorted(Fraction(text) for text in args.times))
    items: dict[tuple[int, Fraction], list[FrameTriplet]] = {
        (gap, time): [] for gap in args.gaps for time in times
    }
    for path in clips:
        for key, found in clip_windows(path, args.gaps, args.windows, args.max_side, times).items():
            items[key].extend(found)
    header = environment("cpu")
    print(f"# {header['date']}  {header['device_name']}")
    print(f"# {len(clips)} clips, long side <= {args.max_side}; torch {header['torch']}")
    chosen_methods = methods(
        list(args.weights), tuple(args.rife), parts=args.parts, ensembles=tuple(args.ensemble)
    )
    results: dict[str, dict] = {}
    columns = " | ".join(f"PSNR t={time}" for time in times)
    for gap in args.gaps:
        counts = ", ".join(f"{len(items[(gap, time)])} at t = {time}" for time in times)
        print(
            f"\n## gap {gap}: {counts} (t = 1/2: frames i, i+{2 * gap} in; 1/3, 2/3: frames i, "
            f"i+{3 * gap} in){', aligned' if args.align else ''}"
        )
        if not any(items[(gap, time)] for time in times):
            print("no usable windows")
            continue
        print(f"| method | {columns} | PSNR (all its times) | SSIM | s per frame |")
        print("|---|" + "---:|" * (len(times) + 3))
        results[str(gap)] = {}
        for name, predict, takes_time in chosen_methods:
            scored = [time for time in times if (takes_time or time == HALF) and items[(gap, time)]]
            if not scored:
                continue
            by_time = {
                time: evaluate(
                    lambda a, b, t=float(time), p=predict: p(a, b, t),
                    items[(gap, time)],
                    align=args.align,
                )
                for time in scored
            }
            both = EvalResult(rows=[row for result in by_time.values() for row in result.rows])
            cells = " | ".join(
                f"{by_time[time].psnr:.2f}" if time in by_time else "-" for time in times
            )
            print(
                f"| {name} | {cells} | {both.psnr:.2f} | {both.ssim:.4f} | {both.seconds:.3f} |",
                flush=True,
            )
            results[str(gap)][name] = {str(time): by_time[time].to_dict() for time in by_time}
    if args.parts:
        from sepconv.models.checkpoint import load_weights
        from sepconv.weights import resolve_weights

        firsts = [item for key in sorted(items) for item in items[key] if key[1] == times[0]]
        print(f"\n## still pairs: each of {len(firsts)} windows' first frame twice, t = 1/2")
        for name in args.weights:
            model = load_weights(resolve_weights(name)[0]).model
            if hasattr(model, "estimate_motion"):
                flow = still_flow(model.eval(), firsts)
                results.setdefault("still", {})[name] = flow
                print(f"{name}: mean |F_t0| {flow:.3f} px")
    if args.json:
        report = {"environment": header, "clips": [str(path) for path in clips], "results": results}
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
