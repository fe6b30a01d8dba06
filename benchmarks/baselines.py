"""Score the non-learned baselines (frame averaging, DIS optical flow) on a dataset.

Usage (from the repository root)::

    python benchmarks/baselines.py middlebury [DIR]
    python benchmarks/baselines.py folder [DIR] [--split test] [--table]
    python benchmarks/baselines.py middlebury --priors

DIR defaults to ``$SEPCONV_DATA/middlebury`` or ``$SEPCONV_DATA/triplets`` (SEPCONV_DATA: the
data folder, by default ../shared/data beside the repository).

Prints, per baseline, the mean PSNR (dB), SSIM and interpolation error (0-255 RMS) and the mean
seconds per frame; ``--table`` adds the per-item table and ``--json FILE`` writes all scores.
``--priors`` adds the motion priors the flow-guided models start from: DIS refined to full
resolution with bicubic warps, its halfway flow averaged or splatted (:mod:`sepconv.flow`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import DATA, missing_data

from sepconv.baselines import average_predictor, make_flow_predictor
from sepconv.data.triplets import folder_triplets, middlebury_triplets
from sepconv.engine.evaluate import evaluate
from sepconv.errors import SepconvError
from sepconv.flow import FlowSettings

# The flow-guided models' motion priors (--priors): name -> DIS settings.
PRIORS = {
    "dis-fine-cubic": FlowSettings(finest_scale=0, interpolation="cubic"),
    "dis-fine-cubic-splat": FlowSettings(finest_scale=0, interpolation="cubic", halfway="splat"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["middlebury", "folder"], help="dataset layout")
    parser.add_argument(
        "root",
        type=Path,
        nargs="?",
        help="dataset folder (default: $SEPCONV_DATA/middlebury or $SEPCONV_DATA/triplets)",
    )
    parser.add_argument("--split", choices=["test", "train"], help="Vimeo-90k list to use")
    parser.add_argument("--table", action="store_true", help="print the per-item tables")
    parser.add_argument(
        "--priors", action="store_true", help="also score the flow-guided models' motion priors"
    )
    parser.add_argument("--json", type=Path, help="write all scores to this JSON file")
    args = parser.parse_args(argv)
    if args.root is None:
        args.root = DATA / ("middlebury" if args.kind == "middlebury" else "triplets")
        if not args.root.is_dir():
            print(f"error: {missing_data(args.root, 'the dataset folder')}", file=sys.stderr)
            return 2

    try:
        if args.kind == "middlebury":
            triplets = middlebury_triplets(args.root)
        else:
            triplets = folder_triplets(args.root, split=args.split)
        predictors = {"average": average_predictor, "dis-flow": make_flow_predictor()}
        if args.priors:
            predictors |= {name: make_flow_predictor(prior) for name, prior in PRIORS.items()}
        results = {name: evaluate(predict, triplets) for name, predict in predictors.items()}
    except SepconvError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code

    print(f"{args.kind} {args.root}: {len(triplets)} triplets")
    for name, result in results.items():
        if args.table:
            print(f"\n{name}\n{result.to_table()}\n")
        print(
            f"{name:<20} PSNR {result.psnr:.2f} dB  SSIM {result.ssim:.4f}  IE {result.ie:.3f}  "
            f"({result.seconds:.3f} s/frame)"
        )
    if args.json is not None:
        payload = {name: result.to_dict() for name, result in results.items()}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
