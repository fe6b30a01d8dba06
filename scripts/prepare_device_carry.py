"""Prepare what a GPU window needs that the working tree does not hold: `.device/` (ignored).

The device tool copies the working tree plus up to 64 MiB of `carry` paths; ../shared does not
travel. This writes
  .device/photos/         the training photographs, long side <= 512 (what the synthetic
                          generator uses anyway), JPEG q90: about 12 MB instead of 46 MB
  .device/init.safetensors  optional: weights to continue from (fp16, ~43 MB for the paper
                          network), e.g. the last window's model.safetensors; without it the
                          window continues from the bundled model, which travels anyway
and prints the total with the working tree, which must stay under the 64 MiB limit.

    python scripts/prepare_device_carry.py [--init runs/x/model.safetensors]
Then, with the device tool: command `bash scripts/device_window.sh`, carry [".device"].
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

from PIL import Image

CARRY_LIMIT = 64 * 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path("../shared/data/photos"))
    parser.add_argument("--init", type=Path, default=None, help="weights to continue from")
    parser.add_argument("--long-side", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path(".device"))
    args = parser.parse_args()

    photos_out = args.out / "photos"
    if photos_out.exists():
        shutil.rmtree(photos_out)
    photos_out.mkdir(parents=True)
    sources = sorted(
        p for p in args.photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    for index, source in enumerate(sources):
        with Image.open(source) as image:
            image = image.convert("RGB")
            image.thumbnail((args.long_side, args.long_side), Image.Resampling.LANCZOS)
            image.save(photos_out / f"{index:04d}.jpg", quality=90)
    init_out = args.out / "init.safetensors"
    init_out.unlink(missing_ok=True)
    if args.init is not None:
        shutil.copy(args.init, init_out)
    carried = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    tree = _working_tree_bytes()
    total = carried + tree
    print(f"{len(sources)} photos -> {photos_out}; init: {args.init or 'none (bundled model)'}")
    print(
        f".device holds {carried / 2**20:.1f} MiB, the working tree {tree / 2**20:.1f} MiB: "
        f"{total / 2**20:.1f} MiB travel (limit {CARRY_LIMIT / 2**20:.0f} MiB)"
    )
    if total > CARRY_LIMIT:
        raise SystemExit("too large to travel: lower --long-side, or drop --init")


def _working_tree_bytes() -> int:
    """Tracked plus untracked-not-ignored files: what the device tool copies besides carry."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return sum(
        Path(os.fsdecode(name)).stat().st_size
        for name in listed
        if name and Path(os.fsdecode(name)).is_file()
    )


if __name__ == "__main__":
    main()
