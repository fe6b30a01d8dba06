"""Does ``--adapt`` help? Adaptation to a clip scored on frames it never saw.

For each clip: decode every frame; keep only the even frames and adapt on those alone, as
``sepconv video --adapt`` would on a video of half the frame rate (their own triplets are at
twice the frame gap of the task); then interpolate the odd frames from their even neighbours,
with the given weights and with the result of the adaptation, in the same run, and score both
against the real odd frames with ``evaluate()``. The odd frames are never adapted on (but
with ``--oracle``, below). Scored
are at most ``--max-scored`` odd frames per clip, evenly spread (all of them for short clips),
each with both neighbours.

Per clip it prints the PSNR before and after (after: what the guard chose), the adapted
weights' PSNR whether kept or not, the seconds spent reading and adapting, and whether the
guard kept the result; then the mean gain and how many clips improved. With ``--align`` it
also scores before and after with ``evaluate(..., align=True)`` (each output's global shift
removed: the camera shake of hand-held clips, see docs/evaluation.md) and prints that gain too.

    python benchmarks/adapt.py $SEPCONV_DATA/videos/*            # every clip, 60 s each
    python benchmarks/adapt.py CLIP --seconds 30 --json adapt.json
    python benchmarks/adapt.py $SEPCONV_DATA/videos/* --align    # also scored aligned
    python benchmarks/adapt.py CLIP... --overhead    # what --adapt adds to `sepconv video`
    python benchmarks/adapt.py $SEPCONV_DATA/videos/* --oracle   # the upper bound

``--oracle`` adapts on every frame instead, the scored odd frames among them, at the
task's own motion (full resolution unless ``--half-scale`` is given): not a fair score, but an
upper bound of what fine-tuning on the clip can gain at the budget.

``--overhead`` instead times the whole command, ``sepconv video CLIP -o OUT -q`` with and
without ``--adapt SECONDS`` (subprocesses, one after the other), and prints the difference.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from _common import environment

from sepconv.errors import SepconvError

#: Video file names the folder's listing holds that are not clips.
NOT_CLIPS = (".md", ".txt", ".json")


def decode_halves(path: Path, max_scored: int, every_frame: bool = False):
    """(even-frame clip, scored items): the even frames as a VideoClip (every frame with
    ``every_frame``: the oracle), and up to ``max_scored`` FrameTriplets (even neighbour, true
    odd frame, even neighbour)."""
    import numpy as np
    import torch

    from sepconv.data.clip_windows import evenly_spaced
    from sepconv.data.triplets import FrameTriplet
    from sepconv.data.video_triplets import VideoClip
    from sepconv.video import decode_video

    frames, times = [], []
    for stamp, frame in decode_video(path):
        frames.append(frame.to_ndarray(format="rgb24"))
        times.append(float(stamp))
    if len(frames) < 5:
        raise SepconvError(f"{path.name}: {len(frames)} frames; need at least 5")
    step = 1 if every_frame else 2
    clip = VideoClip(
        path=path,
        frames=torch.from_numpy(np.stack(frames[::step])).permute(0, 3, 1, 2).contiguous(),
        times=np.asarray(times[::step]),
    )
    odd = list(range(1, len(frames) - 1, 2))  # each has both even neighbours
    items = [
        FrameTriplet(
            name=f"{path.stem}/{index}",
            first=frames[index - 1],
            middle=frames[index],
            last=frames[index + 1],
        )
        for index in (odd[k] for k in evenly_spaced(len(odd), max_scored))
    ]
    return clip, items


def recording(predict, outputs: list[np.ndarray]):
    """``predict`` that also appends each of its outputs to ``outputs``."""

    def predict_and_keep(first: np.ndarray, last: np.ndarray) -> np.ndarray:
        outputs.append(predict(first, last))
        return outputs[-1]

    return predict_and_keep


def replay(outputs: list[np.ndarray]):
    """A predictor that returns ``outputs`` in turn (the frames it is given are ignored)."""
    remaining = iter(outputs)
    return lambda first, last: next(remaining)


def run_clip(path: Path, args: argparse.Namespace, base) -> dict:
    from sepconv.data.clip_windows import read_windows
    from sepconv.engine.adapt import AdaptSettings, adapt
    from sepconv.engine.evaluate import evaluate

    clip, items = decode_halves(path, args.max_scored, every_frame=args.oracle)
    options = {"lr": args.lr, "half_scale": args.half_scale, "held_out": args.held_out}
    settings = AdaptSettings(
        seconds=args.seconds,
        steps=args.steps,
        seed=args.seed,
        **{name: value for name, value in options.items() if value is not None},
    )
    started = time.perf_counter()
    # The command's own reading: windows of the (even-frame) clip, in order.
    windows = read_windows(
        ((float(t), frame) for t, frame in zip(clip.times, clip.frames, strict=True)),
        path=path,
        max_seconds=15.0,
    )
    read_seconds = time.perf_counter() - started
    result = adapt(base, windows, settings, quiet=True)
    base_outputs: list[np.ndarray] = []
    after_outputs: list[np.ndarray] = []
    before = evaluate(recording(base.interpolate, base_outputs), items).psnr
    after = evaluate(recording(result.interpolator.interpolate, after_outputs), items).psnr
    if result.adapted is None:
        adapted = math.nan
    elif result.kept:
        adapted = after
    else:
        adapted = evaluate(result.adapted.interpolate, items).psnr
    aligned: dict[str, float] = {}
    if args.align:
        # The same outputs, scored again: evaluate() asks for them in the items' order.
        aligned["psnr_before_aligned"] = evaluate(replay(base_outputs), items, align=True).psnr
        aligned["psnr_after_aligned"] = evaluate(replay(after_outputs), items, align=True).psnr
        aligned["gain_aligned"] = aligned["psnr_after_aligned"] - aligned["psnr_before_aligned"]
    return {
        "clip": path.name,
        "scored": len(items),
        "psnr_before": before,
        "psnr_after": after,
        "psnr_adapted": adapted,
        "gain": after - before,
        "kept": result.kept,
        "skipped": result.skipped,
        "guard_before": result.psnr_before,
        "guard_after": result.psnr_after,
        "steps": result.steps,
        "best_step": result.best_step,
        "prior": result.prior,
        "train_triplets": result.train_triplets,
        "read_seconds": read_seconds,
        "adapt_seconds": result.seconds,
        **aligned,
    }


def command_overhead(clips: list[Path], seconds: float) -> None:
    """Time `sepconv video` on each clip with and without --adapt; print the difference."""
    import subprocess
    import tempfile

    print(f"{'clip':<28} {'plain s':>8} {'--adapt s':>9} {'added s':>8}")
    for clip in clips:
        timings = []
        with tempfile.TemporaryDirectory(prefix="sepconv-overhead-") as folder:
            for extra in ([], ["--adapt", f"{seconds:g}"]):
                output = Path(folder) / f"out{len(timings)}.mp4"
                command = [sys.executable, "-m", "sepconv", "video", str(clip), "-o", str(output)]
                started = time.perf_counter()
                subprocess.run([*command, "-q", *extra], check=True)
                timings.append(time.perf_counter() - started)
        plain, adapted = timings
        print(f"{clip.name:<28} {plain:>8.1f} {adapted:>9.1f} {adapted - plain:>8.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", type=Path, nargs="+", help="video files")
    parser.add_argument("--weights", default=None, help="default: the bundled default model")
    parser.add_argument("--seconds", type=float, default=60.0, help="adaptation budget")
    parser.add_argument("--steps", type=int, default=None, help="cap on adaptation steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=None, help="default: AdaptSettings' lr")
    parser.add_argument(
        "--half-scale", type=float, default=None, help="default: AdaptSettings' half_scale"
    )
    parser.add_argument(
        "--held-out", type=int, default=None, help="guard triplets (default: AdaptSettings')"
    )
    parser.add_argument("--max-scored", type=int, default=24, help="odd frames scored per clip")
    parser.add_argument("--precision", default="auto", help="as sepconv video (default auto)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument(
        "--overhead", action="store_true", help="time `sepconv video` with and without --adapt"
    )
    parser.add_argument(
        "--oracle",
        action="store_true",
        help="adapt on every frame, the scored ones included (an upper bound, not a fair score)",
    )
    parser.add_argument(
        "--align",
        action="store_true",
        help="also score before and after with each output's global shift removed",
    )
    args = parser.parse_args()
    if args.oracle and args.half_scale is None:
        args.half_scale = 0.0  # every frame: its triplets already move as much as the task
    from sepconv.inference import Interpolator

    clips = [c for c in args.clips if c.is_file() and c.suffix.lower() not in NOT_CLIPS]
    if not clips:
        sys.exit("adapt.py: no video files given")
    header = environment("cpu")
    print(f"# {header['date']}  {header['device_name']}")
    print(f"# torch {header['torch']}, sepconv {header['sepconv']}")
    if args.overhead:
        command_overhead(clips, args.seconds)
        return
    from sepconv.engine.adapt import AdaptSettings

    defaults = AdaptSettings()
    print(
        f"adaptation budget {args.seconds:g} s, steps cap {args.steps}, seed {args.seed}, "
        f"lr {args.lr or defaults.lr:g}, half_scale "
        f"{defaults.half_scale if args.half_scale is None else args.half_scale:g}"
        f"{', oracle' if args.oracle else ''}, "
        f"held out {args.held_out or defaults.held_out}, "
        f"precision {args.precision}, up to {args.max_scored} odd frames scored per clip"
    )
    rows = []
    header = (
        f"{'clip':<28} {'scored':>6} {'before':>7} {'after':>7} {'gain':>6} {'adapted':>7} "
        f"{'best/steps':>9} {'read s':>6} {'adapt s':>7}  guard"
    )
    print(header)
    for path in clips:
        base = Interpolator.from_weights(args.weights, precision=args.precision)
        try:
            row = run_clip(path, args, base)
        except SepconvError as error:
            print(f"{path.name:<28} skipped: {error}")
            continue
        rows.append(row)
        guard = (
            f"skipped ({row['skipped']})"
            if row["skipped"]
            else f"{'kept' if row['kept'] else 'reverted'} "
            f"({row['guard_before']:.2f} -> {row['guard_after']:.2f} on held-out, "
            f"{row['prior']})"
        )
        print(
            f"{row['clip']:<28} {row['scored']:>6} {row['psnr_before']:>7.2f} "
            f"{row['psnr_after']:>7.2f} {row['gain']:>+6.2f} {row['psnr_adapted']:>7.2f} "
            f"{row['best_step']:>4}/{row['steps']:<4} {row['read_seconds']:>6.1f} "
            f"{row['adapt_seconds']:>7.1f}  {guard}"
            + (
                f"; aligned {row['psnr_before_aligned']:.2f} -> {row['psnr_after_aligned']:.2f}"
                if args.align
                else ""
            ),
            flush=True,
        )
    if not rows:
        sys.exit("adapt.py: no clip could be scored")
    gains = [row["gain"] for row in rows]
    improved = sum(gain > 0 for gain in gains)
    worst = max(row["read_seconds"] + row["adapt_seconds"] for row in rows)
    print(
        f"mean gain {sum(gains) / len(gains):+.3f} dB over {len(rows)} clips; improved on "
        f"{improved}, worse on {sum(gain < 0 for gain in gains)}; longest reading + "
        f"adaptation {worst:.1f} s"
    )
    if args.align:
        aligned_gains = [row["gain_aligned"] for row in rows]
        print(
            f"aligned: mean gain {sum(aligned_gains) / len(aligned_gains):+.3f} dB; improved on "
            f"{sum(gain > 0 for gain in aligned_gains)}, worse on "
            f"{sum(gain < 0 for gain in aligned_gains)}"
        )
    if args.json:
        settings = {**vars(args), "clips": [str(c) for c in clips]}
        document = {"environment": header, "settings": settings, "rows": rows}
        args.json.write_text(json.dumps(document, indent=1, default=str))


if __name__ == "__main__":
    main()
