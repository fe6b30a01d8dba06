"""Prepare the bundle of extra files for a time-boxed remote GPU run: `.remote/` (ignored).

A remote GPU run (scripts/remote_gpu_run.sh) receives a copy of the repository tree plus a
small bundle of extra files; the data folder beside the repository (SEPCONV_DATA) is not sent.
This writes
  .remote/photos/         the training photographs, long side <= 512 (what the synthetic
                          generator uses anyway), JPEG q90: about 12 MB instead of 46 MB
  .remote/init.safetensors  optional: weights to continue from (fp16, ~43 MB for the paper
                          network), e.g. the previous run's model.safetensors; without it the
                          run continues from the bundled model, which is in the tree anyway
and prints the size of the bundle and of the repository tree, whose sum must stay within the
bundle budget of the remote run (--max-mib, default 64).

    python scripts/prepare_remote_bundle.py [--init runs/x/model.safetensors] [--max-mib 64]
Then run `bash scripts/remote_gpu_run.sh` from the repository root on the remote machine,
with `.remote/` sent along with the repository tree.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

from PIL import Image

from sepconv.data.files import data_root

DEFAULT_MAX_MIB = 64.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--photos",
        type=Path,
        default=data_root() / "photos",
        help="training photographs (default: $SEPCONV_DATA/photos, else ../shared/data/photos)",
    )
    parser.add_argument("--init", type=Path, default=None, help="weights to continue from")
    parser.add_argument("--long-side", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path(".remote"))
    parser.add_argument(
        "--max-mib",
        type=float,
        default=DEFAULT_MAX_MIB,
        help="bundle budget of the remote run: MiB it accepts for the repository tree plus the "
        f"bundle (default {DEFAULT_MAX_MIB:g})",
    )
    args = parser.parse_args()
    if not args.photos.is_dir():
        raise SystemExit(
            f"no photo folder {str(args.photos)!r}: pass --photos DIR or set SEPCONV_DATA"
        )

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
    bundle = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    tree = _working_tree_bytes()
    total = bundle + tree
    limit = args.max_mib * 2**20
    print(f"{len(sources)} photos -> {photos_out}; init: {args.init or 'none (bundled model)'}")
    print(
        f"{args.out} holds {bundle / 2**20:.1f} MiB, the repository tree {tree / 2**20:.1f} MiB: "
        f"{total / 2**20:.1f} MiB to send (budget {args.max_mib:g} MiB)"
    )
    if total > limit:
        raise SystemExit("too large for the bundle budget: lower --long-side, or drop --init")


def _working_tree_bytes() -> int:
    """Tracked plus untracked-not-ignored files: the repository tree a remote run receives."""
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
