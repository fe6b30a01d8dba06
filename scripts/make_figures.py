"""Render the README's comparison figure: crops of hard Middlebury motion, method by method.

For each sequence (default Beanbags, MiniCooper and Urban2: large motion), one row of crops side
by side: the two inputs overlaid, frame averaging, DIS optical flow, ffmpeg ``minterpolate``
(mci/aobmc, when ffmpeg is on PATH), every bundled model, and the ground truth; each labelled
with its PSNR on the whole frame (``sepconv.metrics.psnr``, as ``sepconv eval``). Written to
``docs/images/comparison.png`` (PIL only).

With ``--peers FILE`` (the ``--json`` of ``benchmarks/peers.py``) it also plots every method's
mean PSNR against its seconds per frame (log scale) to ``docs/images/psnr_vs_time.png``.

    python scripts/make_figures.py                    # data from $SEPCONV_DATA/middlebury
    python scripts/make_figures.py --sequences Walking Grove3 --crop 200
    python benchmarks/peers.py middlebury --json runs/peers.json
    python scripts/make_figures.py --peers runs/peers.json --skip-comparison
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sepconv.baselines import comparison_baselines
from sepconv.data.files import data_root
from sepconv.imageio import atomic_write
from sepconv.metrics import psnr

REPO = Path(__file__).resolve().parents[1]
Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]
LABEL_HEIGHT = 32  # two lines: the method, its PSNR
# Pillow's default font at its own size (10 px) draws some spaces zero wide ("inputsoverlaid");
# at 12 px every space shows.
LABEL_FONT_SIZE = 12


def methods() -> list[tuple[str, Predictor]]:
    """(label, predict) of every method shown, in column order."""
    from sepconv.inference import Interpolator
    from sepconv.weights import REGISTRY

    chosen, missing = comparison_baselines(cubic=False)
    for reason in missing:
        print(f"left out: {reason}", file=sys.stderr)
    for spec in REGISTRY:
        if spec.source == "bundled":
            interpolator = Interpolator.from_weights(spec.name, device="cpu")
            chosen.append((spec.name, interpolator.interpolate))
    return chosen


def _crop_box(first: np.ndarray, last: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the size x size window where the two frames differ most."""
    difference = np.abs(first.astype(np.float32) - last.astype(np.float32)).mean(axis=2)
    height, width = difference.shape
    size = min(size, height, width)
    integral = difference.cumsum(0).cumsum(1)
    best, corner = -1.0, (0, 0)
    for top in range(0, height - size + 1, 8):
        for left in range(0, width - size + 1, 8):
            bottom, right = top + size - 1, left + size - 1
            total = integral[bottom, right]
            total -= integral[top - 1, right] if top else 0.0
            total -= integral[bottom, left - 1] if left else 0.0
            total += integral[top - 1, left - 1] if top and left else 0.0
            if total > best:
                best, corner = float(total), (top, left)
    return corner


def _label_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=LABEL_FONT_SIZE)
    except TypeError:  # Pillow < 10.1: the bitmap font, which has no sizes
        return ImageFont.load_default()


def _labelled(crop: np.ndarray, label: str) -> Image.Image:
    tile = Image.new("RGB", (crop.shape[1], crop.shape[0] + LABEL_HEIGHT), "white")
    tile.paste(Image.fromarray(crop), (0, LABEL_HEIGHT))
    draw = ImageDraw.Draw(tile)
    draw.multiline_text((3, 1), label, fill="black", spacing=2, font=_label_font())
    return tile


def plot_psnr_against_time(peers: dict, out: Path) -> None:
    """Scatter plot of mean PSNR (y) against seconds per frame (x, log scale), labelled."""
    import math

    points = [
        (name, result["mean"]["seconds"], result["mean"]["psnr"])
        for name, result in peers["results"].items()
    ]
    width, height, margin = 720, 420, 60
    seconds = [max(point[1], 1e-4) for point in points]
    low, high = math.log10(min(seconds)) - 0.2, math.log10(max(seconds)) + 0.2
    bottom, top = (
        math.floor(min(p[2] for p in points)) - 1,
        math.ceil(max(p[2] for p in points)) + 1,
    )
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)

    def position(time: float, value: float) -> tuple[float, float]:
        x = margin + (math.log10(max(time, 1e-4)) - low) / (high - low) * (width - 2 * margin)
        y = height - margin - (value - bottom) / (top - bottom) * (height - 2 * margin)
        return x, y

    draw.rectangle([margin, margin, width - margin, height - margin], outline="black")
    for value in range(bottom, top + 1):
        _, y = position(1.0, value)
        draw.line([margin - 4, y, margin, y], fill="black")
        draw.text((margin - 28, y - 6), f"{value}", fill="black")
    for exponent in range(math.ceil(low), math.floor(high) + 1):
        x, _ = position(10.0**exponent, bottom)
        draw.line([x, height - margin, x, height - margin + 4], fill="black")
        draw.text((x - 12, height - margin + 8), f"{10.0**exponent:g} s", fill="black")
    draw.text(
        (margin, 20),
        f"Middlebury mean PSNR (dB) against seconds per frame, {peers['environment']['date']}",
        fill="black",
    )
    for name, time, value in points:
        x, y = position(time, value)
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill="black")
        label = f"{name} ({value:.2f})"
        if x > width / 2:  # right half: label on the left of the point
            draw.text((x - 7 - draw.textlength(label), y - 7), label, fill="black")
        else:
            draw.text((x + 7, y - 7), label, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as temporary:
        image.save(temporary, format="PNG", optimize=True)
    print(f"wrote {out}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--middlebury", type=Path, default=data_root() / "middlebury")
    parser.add_argument("--sequences", nargs="+", default=["Beanbags", "MiniCooper", "Urban2"])
    parser.add_argument("--crop", type=int, default=200, help="crop size in pixels")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "comparison.png")
    parser.add_argument("--peers", type=Path, help="benchmarks/peers.py --json output to plot")
    parser.add_argument("--skip-comparison", action="store_true", help="only the plot")
    args = parser.parse_args()
    if args.peers is not None:
        import json

        peers = json.loads(args.peers.read_text())
        plot_psnr_against_time(peers, args.out.parent / "psnr_vs_time.png")
    if args.skip_comparison:
        return
    if not args.middlebury.is_dir():
        sys.exit(f"{args.middlebury} not found: pass --middlebury DIR or set SEPCONV_DATA")
    chosen = methods()
    rows = []
    for name in args.sequences:
        folder = args.middlebury / name

        def load(file: str, folder: Path = folder) -> np.ndarray:
            return np.asarray(Image.open(folder / file).convert("RGB"))

        first, truth, last = load("frame10.png"), load("frame10i11.png"), load("frame11.png")
        top, left = _crop_box(first, last, args.crop)
        window = (slice(top, top + args.crop), slice(left, left + args.crop))
        overlay = ((first.astype(np.uint16) + last) // 2).astype(np.uint8)
        tiles = [_labelled(overlay[window], f"{name}\ninputs overlaid")]
        for label, predict in chosen:
            middle = predict(first, last)
            tiles.append(_labelled(middle[window], f"{label}\n{psnr(middle, truth):.2f} dB"))
            print(f"{name} {label}: {psnr(middle, truth):.2f} dB", file=sys.stderr)
        tiles.append(_labelled(truth[window], "ground truth\n"))
        rows.append(tiles)
    width = sum(tile.width for tile in rows[0]) + 2 * (len(rows[0]) - 1)
    height = sum(row[0].height for row in rows) + 2 * (len(rows) - 1)
    figure = Image.new("RGB", (width, height), "white")
    y = 0
    for row in rows:
        x = 0
        for tile in row:
            figure.paste(tile, (x, y))
            x += tile.width + 2
        y += row[0].height + 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out) as temporary:
        figure.save(temporary, format="PNG", optimize=True)
    print(f"wrote {args.out} ({width}x{height})", file=sys.stderr)


if __name__ == "__main__":
    main()
