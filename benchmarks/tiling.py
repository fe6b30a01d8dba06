"""How far tiled inference is from whole-frame inference, on the full-size network.

Runs the Interpolator on a real frame pair twice, whole and with ``tile_size``, and prints the
largest and mean absolute difference in 8-bit gray levels (before quantisation) and the time
of each. Weights: ``--weights FILE`` (any supported file), or by default the authors'
architecture with plausible random weights (the oracle's, see tests/authors_transcription.py)
since no trained weights ship yet.

    python benchmarks/tiling.py [SEQUENCE] --tile 256 512

SEQUENCE defaults to ``$SEPCONV_DATA/middlebury/Urban2`` (SEPCONV_DATA: the data folder, by
default ../shared/data beside the repository).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import URBAN2, load_model, missing_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sequence",
        type=Path,
        nargs="?",
        default=URBAN2,
        help="folder with frame10.png and frame11.png (default: $SEPCONV_DATA/middlebury/Urban2)",
    )
    parser.add_argument("--tile", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--weights")
    args = parser.parse_args()
    if not (args.sequence / "frame10.png").is_file():
        raise SystemExit(f"error: {missing_data(args.sequence / 'frame10.png', 'SEQUENCE')}")

    from sepconv.imageio import read_image
    from sepconv.inference import Interpolator

    first, _ = read_image(args.sequence / "frame10.png")
    second, _ = read_image(args.sequence / "frame11.png")
    model, described = load_model(args.weights)
    print(f"# {args.sequence} {first.shape[1]}x{first.shape[0]}, {described}")
    start = time.perf_counter()
    whole = Interpolator(model, device="cpu").interpolate(first, second)
    print(f"whole frame: {time.perf_counter() - start:.1f} s")
    print(f"{'tile':>5} {'margin':>6} {'max diff':>9} {'mean diff':>10} {'seconds':>8}")
    for tile in args.tile:
        interpolator = Interpolator(model, device="cpu", tile_size=tile)
        start = time.perf_counter()
        tiled = interpolator.interpolate(first, second)
        seconds = time.perf_counter() - start
        difference = np.abs(tiled.astype(np.float64) - whole) * 255.0
        margin = interpolator._tile_margin_for(tile - tile % 32)
        print(
            f"{tile:>5} {margin:>6} {difference.max():>9.4f} {difference.mean():>10.5f} "
            f"{seconds:>8.1f}"
        )
    print("# differences in 8-bit gray levels (0-255) before rounding")


if __name__ == "__main__":
    main()
