"""The learned-motion family's classic candidate alone, under several settings: which frames
DIS sees (the half-size frames, or a long side of at most N pixels), DIS's finest scale and
variational refinement, and how its two flows become flows from time t (Super SloMo's linear
motion, or splatted to time t).

Each variant is the model's own code path (:func:`sepconv.models.motion.scaled_candidate`,
:func:`~sepconv.models.motion.resize_flows`),
its flows warp both frames (bicubic, as the model does) and the warps are blended by the
time, ``(1 - t) * first + t * last``: no network, so the variants are compared on their own.
Scored with the same ``evaluate()`` as every benchmark, on the windows of
``benchmarks/times.py`` (frames i, i + 2g for t = 1/2; i, i + 3g for 1/3 and 2/3) and, with
``--middlebury``, on Middlebury at t = 1/2.

    python benchmarks/candidates.py CLIP ... --gaps 1 2 --windows 3 --middlebury
    python benchmarks/candidates.py CLIP ... --variants half-fs1-average max640-fs0-splat-r0
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from _common import DATA, environment, missing_data
from times import clip_windows

from sepconv.engine.evaluate import EvalResult, evaluate
from sepconv.flow import FlowSettings

#: name -> (max_side: 0 for the half-size frames, finest_scale, halfway, refinement_iterations)
VARIANTS: dict[str, tuple[int, int, str, int]] = {
    "half-fs1-average": (0, 1, "average", -1),  # run 13's candidate
    "half-fs1-splat": (0, 1, "splat", -1),
    "half-fs0-average": (0, 0, "average", -1),
    "half-fs0-splat": (0, 0, "splat", -1),
    "max640-fs1-splat": (640, 1, "splat", -1),
    "max640-fs0-average": (640, 0, "average", -1),
    "max640-fs0-splat": (640, 0, "splat", -1),
    "max640-fs0-splat-r0": (640, 0, "splat", 0),  # run 14's candidate
}


def scored_cells(
    clips: list[Path], gaps: list[int], windows: int, max_side: int, middlebury: bool
) -> dict[str, list]:
    """The scored items by cell, ``"gap G t=T"`` (windows of the clips as
    :func:`times.clip_windows` cuts them, at t = 1/3, 1/2, 2/3) and ``"middlebury"``; exits
    with one line when a clip or the Middlebury folder is missing."""
    times = (Fraction(1, 3), Fraction(1, 2), Fraction(2, 3))
    found: dict[tuple[int, Fraction], list] = {}
    for path in clips:
        if not path.is_file():
            sys.exit(f"error: no clip {path}")
        for key, items in clip_windows(path, gaps, windows, max_side, times).items():
            found.setdefault(key, []).extend(items)
    cells = {f"gap {gap} t={time}": found[(gap, time)] for gap, time in sorted(found)}
    cells = {key: items for key, items in cells.items() if items}
    if middlebury:
        from sepconv.data.triplets import middlebury_triplets

        folder = DATA / "middlebury"
        if not folder.is_dir():
            sys.exit(missing_data(folder))
        cells["middlebury"] = middlebury_triplets(folder)
    return cells


def cell_time(key: str) -> float:
    """The time t of a :func:`scored_cells` key (Middlebury: 1/2)."""
    return 0.5 if key == "middlebury" else float(Fraction(key.split("t=")[1]))


def candidate_predictor(max_side: int, finest_scale: int, halfway: str, refinement: int):
    """``predict(first, last, time) -> frame`` of one variant (uint8 (H, W, 3) frames)."""
    import torch

    from sepconv.models.motion import resize_flows, scaled_candidate
    from sepconv.models.motion_sepconv import warped_blend

    settings = FlowSettings(
        finest_scale=finest_scale, halfway=halfway, refinement_iterations=refinement
    )

    def predict(first: np.ndarray, last: np.ndarray, time: float) -> np.ndarray:
        a, b = (
            torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0
            for frame in (first, last)
        )
        flows = scaled_candidate(a, b, torch.tensor([float(time)]), settings, max_side)
        flows = resize_flows(flows, tuple(a.shape[-2:]))
        blend = torch.full_like(a[:, :1], 1.0 - float(time))
        frame = warped_blend(a, b, (flows[:, 0:2], flows[:, 2:4]), blend, "bicubic")
        return (frame[0].permute(1, 2, 0) * 255.0).round().clamp(0, 255).byte().numpy()

    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", type=Path, nargs="*", help="videos (none: Middlebury alone)")
    parser.add_argument("--gaps", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--windows", type=int, default=3, help="scored windows per clip and gap")
    parser.add_argument("--max-side", type=int, default=640, help="clips downscaled to this")
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="NAME"
    )
    parser.add_argument("--middlebury", action="store_true", help="also Middlebury, t = 1/2")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    if not args.clips and not args.middlebury:
        parser.error("give clips, --middlebury or both")
    if any(gap < 1 for gap in args.gaps) or args.windows < 1:
        parser.error("--gaps and --windows must be at least 1")
    cells = scored_cells(args.clips, args.gaps, args.windows, args.max_side, args.middlebury)
    header = environment("cpu")
    print(f"# {header['date']}  {header['device_name']}; torch {header['torch']}")
    print(f"# {len(args.clips)} clips, long side <= {args.max_side}, {args.windows} windows each")
    print("| candidate | " + " | ".join(cells) + " | s per frame |")
    print("|---|" + "---:|" * (len(cells) + 1))
    results: dict[str, dict] = {}
    for name in args.variants:
        predict = candidate_predictor(*VARIANTS[name])
        scored: dict[str, EvalResult] = {}
        for key, items in cells.items():
            time = cell_time(key)
            scored[key] = evaluate(lambda a, b, t=time, p=predict: p(a, b, t), items)
        seconds = np.mean([result.seconds for result in scored.values()])
        row = " | ".join(f"{result.psnr:.2f}" for result in scored.values())
        print(f"| {name} | {row} | {seconds:.3f} |", flush=True)
        results[name] = {key: result.to_dict() for key, result in scored.items()}
    if args.json:
        report = {"environment": header, "clips": [str(path) for path in args.clips]}
        args.json.write_text(json.dumps({**report, "variants": VARIANTS, "results": results}))


if __name__ == "__main__":
    main()
