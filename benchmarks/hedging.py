"""How much of a score on hand-held footage rewards blur: predictions blurred on purpose.

A hand-held camera shakes between frames in a way no method can predict from the two frames
around the missing one, so the true middle frame sits somewhere near the halfway position,
not exactly on it. Under plain PSNR the best answer to an uncertain position is a blurred one
(the mean over the positions it could be at), whatever the frame really looks like. This
script measures that: the model's predictions and DIS flow's, each also blurred by a Gaussian
of every ``--sigmas`` value, scored plainly and after the global alignment of ``sepconv eval
--align`` (which takes the unpredictable shift out), with the one ``evaluate()``.

Where blurring a sharp prediction raises its plain score but lowers its aligned score, the
plain score is paying for hedging, not for a better frame.

    python benchmarks/hedging.py $SEPCONV_DATA/triplets --clips realshort VID_20191220_170832
    python benchmarks/hedging.py DIR --clips ... --weights sepconv-flow --sigmas 0.5 0.8 1.2

(Frame gap 2 triplets: ``tools/make_triplets.py --step 2`` of the data folder, as in
``scripts/evaluate_model.sh``.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import environment

from sepconv.baselines import make_flow_predictor
from sepconv.data.triplets import folder_triplets, of_clips
from sepconv.engine.evaluate import evaluate
from sepconv.errors import InputError, SepconvError

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


def remembered(predict: Predictor) -> Predictor:
    """`predict`, computed once per frame pair (every blur of a method reuses its frames)."""
    cache: dict[str, np.ndarray] = {}

    def cached(first: np.ndarray, last: np.ndarray) -> np.ndarray:
        key = hashlib.sha1(first.tobytes() + last.tobytes()).hexdigest()
        if key not in cache:
            cache[key] = predict(first, last)
        return cache[key]

    return cached


def blurred(predict: Predictor, sigma: float) -> Predictor:
    """`predict` followed by a Gaussian blur of standard deviation `sigma` pixels (0: none)."""
    import cv2

    if sigma == 0:
        return predict
    return lambda first, last: cv2.GaussianBlur(predict(first, last), (0, 0), sigma)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="triplet folders CLIP_FRAME/im1..3.png")
    parser.add_argument("--clips", nargs="+", required=True, help="the clips to score")
    parser.add_argument("--weights", default=None, help="model (default: the default model)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.5, 0.8, 1.2])
    parser.add_argument("--json", type=Path, help="write the scores to this JSON file")
    args = parser.parse_args(argv)
    if any(sigma < 0 for sigma in args.sigmas):
        parser.error("--sigmas must not be negative")

    from sepconv.inference import Interpolator

    try:
        triplets = of_clips(folder_triplets(args.directory), args.clips)
        if not triplets:
            raise InputError(f"no triplets of {', '.join(args.clips)} in {args.directory}")
        interpolator = Interpolator.from_weights(args.weights, device="cpu")
        methods = {
            "sepconv": remembered(interpolator.interpolate),
            "dis-flow": remembered(make_flow_predictor()),
        }
        sigmas = [0.0, *(sigma for sigma in args.sigmas if sigma != 0)]
        rows = []
        for name, predict in methods.items():
            for sigma in sigmas:
                scores = {
                    kind: evaluate(blurred(predict, sigma), triplets, align=align).psnr
                    for kind, align in (("plain", False), ("aligned", True))
                }
                rows.append({"method": name, "sigma": sigma, **scores})
    except SepconvError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code

    header = environment("cpu")
    print(f"# {header['date']}  {header['device_name']}")
    print(
        f"{args.directory}: {len(triplets)} triplets of {', '.join(args.clips)}; "
        f"weights {args.weights or 'default'}"
    )
    print(f"{'method':<10} {'blur sigma':>10} {'plain PSNR':>11} {'aligned PSNR':>13}")
    for row in rows:
        print(
            f"{row['method']:<10} {row['sigma']:>10.2f} {row['plain']:>11.2f} "
            f"{row['aligned']:>13.2f}"
        )
    if args.json is not None:
        payload = {
            "environment": header,
            "weights": args.weights,
            "clips": args.clips,
            "rows": rows,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
