"""The model options every model-running command shares, and the Interpolator they ask for.

``add_model_options(parser)`` adds ``--weights``, ``--device``, ``--precision``, ``--exact``,
``--padding``, ``--tile``, ``--compile`` and ``--ensemble``; ``build_interpolator(args)`` turns
the parsed options into an :class:`sepconv.inference.Interpolator`. Both :mod:`sepconv.cli`
and :mod:`sepconv.commands_video` import them from here (neither imports the other at module
level). Heavy imports (torch) happen inside :func:`build_interpolator`.
"""

from __future__ import annotations

import argparse
from typing import Any

from sepconv.errors import UsageError

# sepconv.inference.DEFAULT_PRECISION (checked by the tests), here without importing torch.
DEFAULT_PRECISION = "float32"

__all__ = ["add_model_options", "build_interpolator", "check_model_options"]


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs a model (one precision default for all:
    :data:`sepconv.inference.DEFAULT_PRECISION`, as the Python API)."""
    parser.add_argument(
        "--weights",
        metavar="NAME_OR_PATH",
        help="registry name (see `sepconv weights`) or weights file; default: the bundled model",
    )
    parser.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available, else cpu)"
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "float32", "float16", "bfloat16"),
        default=DEFAULT_PRECISION,
        help="network precision (default: float32, the same frames on every CPU); on CPUs "
        "with native bfloat16, bfloat16 is about 1.2x faster with the default model and 1.7x "
        "with sepconv-l1, within 3/255; auto = bfloat16 on such CPUs for 8-bit output, else "
        "float32",
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help="run the plain float32 reference path (no CPU fusions or compiled kernel)",
    )
    parser.add_argument(
        "--padding",
        choices=("improved", "paper"),
        default="improved",
        help="the authors' padding modes (default: improved)",
    )
    parser.add_argument(
        "--tile",
        type=int,
        metavar="N",
        default=None,
        help="process frames larger than N pixels in overlapping N x N windows (saves memory)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network pass (for CUDA and long videos: the first frame of "
        "each size pays a compile of seconds to minutes)",
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        choices=(1, 2, 4, 8),
        default=1,
        help="average N flipped / time-reversed passes (self-ensembling; N times slower; "
        "default: 1, off)",
    )


def check_model_options(args: argparse.Namespace) -> None:
    """Refuse (exit 2) model options out of range, before any input is read."""
    from sepconv.inference import MIN_TILE_SIZE

    if args.tile is not None and args.tile < MIN_TILE_SIZE:
        raise UsageError(f"--tile must be at least {MIN_TILE_SIZE} pixels")


def build_interpolator(args: argparse.Namespace, bit_depth: int = 8) -> Any:
    """The Interpolator the model options ask for; `bit_depth` of the output (8 or 16)."""
    import torch

    from sepconv.inference import Interpolator, default_device, resolve_precision

    check_model_options(args)
    try:
        device = torch.device(args.device) if args.device else default_device()
    except RuntimeError:
        raise UsageError(f"unknown device {args.device!r} (use cpu, cuda or cuda:N)") from None
    exact = getattr(args, "exact", False)
    precision = "float32" if exact else resolve_precision(args.precision, device, bit_depth)
    return Interpolator.from_weights(
        args.weights,
        device=device,
        precision=precision,
        padding=args.padding,
        tile_size=args.tile,
        ensemble=args.ensemble,
        compile=args.compile,
        optimize=not exact,
    )
