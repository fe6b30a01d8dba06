"""Network precision on the CPU: quality and speed of each precision for each model, one run.

For every model (``--models``; default: every bundled model) and precision (``--precisions``;
default float32, bfloat16 and float16; float16 has no fast CPU path and is slow there, so
``--limit`` runs it on a few sequences) it prints, on this machine:

* Middlebury (the 12 "other" sequences), PSNR / SSIM / IE through the same ``evaluate()`` as
  ``sepconv eval``, and the largest and mean difference of the 8-bit outputs from float32's;
* whether a second pass over the first ``--repeat-items`` sequences gives the very same
  frames (deterministic results on this machine);
* seconds per frame with the model loaded once (what ``sepconv video`` pays per frame): the
  mean over the Middlebury sequences (640x480 and so on), and the median of ``--repeat``
  frames at 1280x720 (Urban2 resized, else synthetic frames).

Every Interpolator is built as the commands build it (``Interpolator.from_weights``, the CPU
fast path on). ``auto`` is not a precision of its own: it resolves to bfloat16 where the CPU
has native bfloat16 (the header says whether this one does), float32 elsewhere.

    python benchmarks/precision.py                           # every bundled model
    python benchmarks/precision.py --precisions float32 float16 --limit 2 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from _common import DATA, benchmark_frames, environment, missing_data

PRECISIONS = ("float32", "bfloat16", "float16")


def _rgb(path: Path):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def measure(
    model: str, precision: str, items: list, repeat: int, repeat_items: int
) -> tuple[dict, list]:
    """One model at one precision: its row (quality, determinism, speed) and its Middlebury
    outputs (uint8 arrays, in the order of ``items``)."""
    import numpy as np

    from sepconv.engine.evaluate import evaluate
    from sepconv.inference import Interpolator

    interpolator = Interpolator.from_weights(model, device="cpu", precision=precision)
    outputs: list[np.ndarray] = []

    def predict(first: np.ndarray, last: np.ndarray) -> np.ndarray:
        outputs.append(interpolator.interpolate(first, last))
        return outputs[-1]

    row: dict = {"model": model, "precision": interpolator.precision}
    if items:
        interpolator.interpolate(_rgb(items[0].first), _rgb(items[0].last))  # warm-up
        scored = evaluate(predict, items)
        row |= {
            "psnr": scored.psnr,
            "ssim": scored.ssim,
            "ie": scored.ie,
            "middlebury_s_per_frame": scored.seconds,
        }
        row["deterministic"] = all(
            np.array_equal(interpolator.interpolate(_rgb(item.first), _rgb(item.last)), output)
            for item, output in zip(items[:repeat_items], outputs, strict=False)
        )
    frames, source = benchmark_frames(720, 1280)
    interpolator.interpolate(*frames)  # warm-up at this size
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        interpolator.interpolate(*frames)
        seconds.append(time.perf_counter() - start)
    row |= {"720p_s_per_frame": statistics.median(seconds), "720p_frames": source}
    return row, outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", help="registry names or files (default: bundled)")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument(
        "--middlebury", type=Path, default=DATA / "middlebury", help="Middlebury folder"
    )
    parser.add_argument("--repeat", type=int, default=5, help="1280x720 frames timed")
    parser.add_argument("--limit", type=int, help="only the first N Middlebury sequences")
    parser.add_argument(
        "--repeat-items", type=int, default=3, help="sequences run twice (determinism)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    import numpy as np

    from sepconv.data.triplets import middlebury_triplets
    from sepconv.weights import REGISTRY

    models = args.models or [spec.name for spec in REGISTRY if spec.source == "bundled"]
    items = []
    if args.middlebury.is_dir():
        items = middlebury_triplets(args.middlebury)[: args.limit]
    else:
        print(f"no quality figures: {missing_data(args.middlebury, '--middlebury')}")
    header = environment("cpu")
    print(" | ".join(f"{key} {value}" for key, value in header.items()))
    print(f"python benchmarks/precision.py {' '.join(sys.argv[1:])}".rstrip())
    rows = []
    for model in models:
        reference: list[np.ndarray] = []
        for precision in args.precisions:
            row, outputs = measure(model, precision, items, args.repeat, args.repeat_items)
            if precision == "float32":
                reference = outputs
            if reference and outputs:
                differences = [
                    np.abs(output.astype(np.int16) - expected)
                    for output, expected in zip(outputs, reference, strict=True)
                ]
                row["max_levels_from_float32"] = int(max(d.max() for d in differences))
                row["mean_levels_from_float32"] = float(
                    statistics.fmean(float(d.mean()) for d in differences)
                )
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)

    print()
    print(
        "| model | precision | Middlebury PSNR | SSIM | IE | max / mean difference from "
        "float32 (8-bit levels) | same frames twice | s per Middlebury frame | s per 720p frame |"
    )
    print("|---|---|---:|---:|---:|---:|---|---:|---:|")
    for row in rows:
        quality = (
            f"{row['psnr']:.2f} | {row['ssim']:.4f} | {row['ie']:.2f}"
            if "psnr" in row
            else "- | - | -"
        )
        difference = (
            f"{row['max_levels_from_float32']} / {row['mean_levels_from_float32']:.3f}"
            if "max_levels_from_float32" in row
            else "-"
        )
        same = {True: "yes", False: "NO"}.get(row.get("deterministic"), "-")
        middlebury = f"{row['middlebury_s_per_frame']:.3f}" if "psnr" in row else "-"
        print(
            f"| {row['model']} | {row['precision']} | {quality} | {difference} | {same} | "
            f"{middlebury} | {row['720p_s_per_frame']:.3f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"environment": header, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
