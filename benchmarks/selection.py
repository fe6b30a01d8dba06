"""How a learned-motion model chooses between its two motions, and how much a better choice
could gain.

Per scored item, the model's motion runs once; then, each as the plain blend of the two warps
with the model's blending weight (the family's output while its kernels are centre taps):

* the selector's share applied to the flows (``selection = "flows"``) and to the warps
  (``selection = "warps"``);
* the learned flows alone, and the classic candidate alone;
* an *oracle* per N x N block: the truth picks, in each block, the blend of the learned
  flows' warps or of the candidate's, whichever is closer (an upper bound on any selector that
  chooses between the two motions at that granularity; not a method);
* an *agreement* chooser per N x N block, a classic cue without the truth: in each block, the
  motion whose two warps (first frame and last) differ less (mean absolute difference).

Also the mean share of the learned flows the selector keeps. With ``--reversed`` every item is
asked the other way round, the last frame first and t -> 1 - t: the same frame is wanted, so a
model symmetric in time scores as it does forward. Items are those of
``benchmarks/candidates.py`` (clip windows at t = 1/3, 1/2, 2/3 and, with ``--middlebury``,
Middlebury at t = 1/2). PSNR as :func:`sepconv.engine.evaluate.evaluate` scores it (uint8
frames, the mean over items).

    python benchmarks/selection.py CLIP ... --weights sepconv-motion --gaps 1 2 --windows 3
    python benchmarks/selection.py --middlebury --weights FILE
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import environment
from candidates import cell_time, scored_cells

from sepconv import metrics


def item_scores(
    model, first: np.ndarray, truth: np.ndarray, last: np.ndarray, time: float, blocks: list[int]
) -> dict[str, float]:
    """PSNR of every row (and each oracle block size) on one item, and the kept share.

    Args:
        model: a learned-motion network with a classic candidate (eval mode).
        first, truth, last: uint8 (H, W, 3) RGB.
        time: t in (0, 1).
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    from sepconv.models.motion import backward_warp
    from sepconv.models.motion_sepconv import mixed_warp, warped_blend

    a, b = (torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255.0 for x in (first, last))
    target = torch.from_numpy(truth).permute(2, 0, 1)[None].float()
    with torch.inference_mode():
        motion = model.estimate_motion(a, b, time)
        weight = torch.sigmoid(motion.blend_logit)
        mode = model.config.warp_mode
        frames = {
            "selection = flows": warped_blend(a, b, (motion.flow_t0, motion.flow_t1), weight, mode),
            "selection = warps": weight
            * mixed_warp(a, motion.learned[0], motion.candidate[0], motion.kept, mode)
            + (1 - weight)
            * mixed_warp(b, motion.learned[1], motion.candidate[1], motion.kept, mode),
        }
        warps = {
            name: (backward_warp(a, flows[0], mode), backward_warp(b, flows[1], mode))
            for name, flows in (("learned", motion.learned), ("candidate", motion.candidate))
        }
        for name, label in (("learned", "learned flows alone"), ("candidate", "candidate alone")):
            frames[label] = weight * warps[name][0] + (1 - weight) * warps[name][1]
        disagreement = torch.cat(
            [(first - last).abs().sum(1, keepdim=True) for first, last in warps.values()], dim=1
        )
        quantised = {name: metrics.to_uint8(frame.clamp(0, 1)) for name, frame in frames.items()}
        learned = quantised["learned flows alone"].float()
        candidate = quantised["candidate alone"].float()
        errors = torch.cat(
            [((x - target) ** 2).sum(1, keepdim=True) for x in (learned, candidate)], dim=1
        )
        for size in blocks:
            for label, costs in (("oracle", errors), ("agreement", disagreement)):
                pooled = F.avg_pool2d(costs, size, ceil_mode=True)
                pick = (pooled[:, :1] <= pooled[:, 1:]).float()
                pick = F.interpolate(pick, scale_factor=float(size), mode="nearest")
                pick = pick[..., : errors.shape[-2], : errors.shape[-1]]
                chosen = pick * learned + (1 - pick) * candidate
                quantised[f"{label} per {size}x{size} block"] = chosen.byte()
    scores = {
        name: metrics.psnr(truth, frame[0].permute(1, 2, 0).cpu().numpy())
        for name, frame in quantised.items()
    }
    scores["kept share"] = float(motion.kept.mean())
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", type=Path, nargs="*", help="videos (none: Middlebury alone)")
    parser.add_argument("--weights", default="sepconv-motion", help="a learned-motion model")
    parser.add_argument("--gaps", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--windows", type=int, default=3, help="scored windows per clip and gap")
    parser.add_argument("--max-side", type=int, default=640, help="clips downscaled to this")
    parser.add_argument("--blocks", type=int, nargs="+", default=[4, 16], help="oracle blocks")
    parser.add_argument("--middlebury", action="store_true", help="also Middlebury, t = 1/2")
    parser.add_argument(
        "--reversed", action="store_true", help="ask each item with its frames swapped, 1 - t"
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    if not args.clips and not args.middlebury:
        parser.error("give clips, --middlebury or both")
    if any(gap < 1 for gap in args.gaps) or args.windows < 1 or min(args.blocks) < 1:
        parser.error("--gaps, --windows and --blocks must be at least 1")

    from sepconv.engine.evaluate import load_rgb8
    from sepconv.errors import SepconvError
    from sepconv.models.checkpoint import load_weights
    from sepconv.weights import resolve_weights

    try:
        model = load_weights(resolve_weights(args.weights)[0]).model.eval()
    except SepconvError as error:
        raise SystemExit(f"error: {error}") from None
    if not getattr(model.config, "classic_candidate", False):
        raise SystemExit(f"error: {args.weights} is not a learned-motion model with a candidate")
    cells = scored_cells(args.clips, args.gaps, args.windows, args.max_side, args.middlebury)
    header = environment("cpu")
    print(f"# {header['date']}  {header['device_name']}; torch {header['torch']}")
    order = "; reversed (last frame first, 1 - t)" if args.reversed else ""
    print(f"# {args.weights}; {len(args.clips)} clips, long side <= {args.max_side}{order}")
    results: dict[str, dict[str, float]] = {}
    for key, items in cells.items():
        time = cell_time(key)
        rows = []
        for item in items:
            first, truth, last = (
                x if isinstance(x, np.ndarray) else load_rgb8(x)
                for x in (item.first, item.middle, item.last)
            )
            if args.reversed:
                first, last, time_asked = last, first, 1.0 - time
            else:
                time_asked = time
            rows.append(item_scores(model, first, truth, last, time_asked, args.blocks))
        results[key] = {name: float(np.mean([row[name] for row in rows])) for name in rows[0]}
    names = list(next(iter(results.values())))
    print("| | " + " | ".join(cells) + " |")
    print("|---|" + "---:|" * len(cells))
    for name in names:
        digits = 3 if name == "kept share" else 2
        row = " | ".join(f"{results[key][name]:.{digits}f}" for key in cells)
        print(f"| {name} | {row} |")
    if args.json:
        report = {
            "environment": header,
            "weights": args.weights,
            "reversed": args.reversed,
            "results": results,
        }
        args.json.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
