"""``sepconv train``: the command-line face of :class:`sepconv.engine.train.Trainer`.

Wired into the CLI by ``add_train_command(commands)`` (``commands`` being the parser's
subparsers object). Multi-GPU runs go through torchrun, e.g.
``torchrun --nproc_per_node=8 -m sepconv train --config configs/sepconv-l1.toml --resume auto``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from sepconv.errors import SepconvError, UsageError, WorkInterruptedError

__all__ = ["add_train_command", "run_train"]


def add_train_command(commands: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to ``commands`` (an argparse subparsers object)."""
    train = commands.add_parser(
        "train",
        help="train (or continue training) a SepConv network from a config file",
        description="Train a SepConv network as a TOML/JSON config says (see configs/). Each "
        "call runs until the config's total_steps, or --steps more steps, then saves "
        "OUTPUT_DIR/last.pt (the full training state) and exports OUTPUT_DIR/model.safetensors "
        "(fp16, EMA weights if enabled). Under torchrun it trains with DDP.",
    )
    train.add_argument("--config", type=Path, required=True, help="training config (.toml/.json)")
    train.add_argument(
        "--resume",
        metavar="PATH|auto",
        default=None,
        help="continue from a training checkpoint; 'auto': OUTPUT_DIR/last.pt if it exists",
    )
    train.add_argument(
        "--steps", type=int, default=None, metavar="N", help="run at most N steps in this call"
    )
    train.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop (saving and exporting) after the step that ends past SECONDS; leave a "
        "margin for the final save and export",
    )
    train.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)"
    )
    train.add_argument(
        "--export-only",
        type=Path,
        metavar="FILE",
        default=None,
        help="with --resume: write the checkpoint's (EMA) weights to FILE (fp16 safetensors) "
        "and exit without training (e.g. to evaluate a run that is still going)",
    )
    train.set_defaults(handler=run_train)
    return train


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``sepconv train``; returns the exit code."""
    from sepconv.engine.config import load_train_config
    from sepconv.engine.train import CHECKPOINT_NAME, Trainer

    if args.steps is not None and args.steps < 1:
        raise UsageError("--steps must be at least 1")
    if args.time_limit is not None and args.time_limit <= 0:
        raise UsageError("--time-limit must be positive")
    config = load_train_config(args.config)
    existing = Path(config.output_dir) / CHECKPOINT_NAME
    if args.export_only is not None:
        return _export_only(config, args)
    if args.resume is None and existing.exists():
        raise SepconvError(
            f"{existing} exists: pass --resume auto to continue that run, or change output_dir"
        )
    trainer = Trainer(config, device=args.device)
    try:
        if args.resume is not None:
            resumed = trainer.resume(args.resume)
            if trainer.dist.is_main:
                where = f"step {trainer.step}" if resumed else "nothing to resume, starting fresh"
                print(f"sepconv train: {where}", file=sys.stderr)
        if trainer.step >= config.total_steps:
            if trainer.dist.is_main:
                print(f"sepconv train: already at total_steps = {config.total_steps}")
            return 0
        result = trainer.run(steps=args.steps, max_seconds=args.time_limit)
    finally:
        trainer.close()
    if trainer.dist.is_main:
        summary = {
            "step": result["step"],
            "samples": result["samples"],
            "loss": result["loss"] if math.isfinite(result["loss"]) else None,
            "seconds": round(result["seconds"], 3),
            "stopped": result["stopped"],
            "checkpoint": str(trainer.checkpoint_path()),
            "weights": str(Path(config.output_dir) / "model.safetensors"),
        }
        print(json.dumps(summary))
    if result["stopped"] == "interrupted":
        raise WorkInterruptedError(
            f"interrupted at step {result['step']}; the checkpoint is saved: run the same "
            "command with --resume auto to continue"
        )
    return 0


def _export_only(config: Any, args: argparse.Namespace) -> int:
    """``--export-only FILE``: the resumed checkpoint's weights, exported; no training."""
    from sepconv.engine.train import Trainer
    from sepconv.imageio import check_output_path

    if args.resume is None:
        raise UsageError("--export-only needs --resume PATH|auto (the checkpoint to export)")
    target = check_output_path(args.export_only, [], overwrite=True)
    trainer = Trainer(replace(config, validate_every_steps=0), device="cpu", log_stream=None)
    try:
        if not trainer.resume(args.resume):
            raise SepconvError(f"no checkpoint to export in {config.output_dir}")
        trainer.export(target)
    finally:
        trainer.close()
    print(f"wrote {target} (step {trainer.step}, {trainer.samples} samples)", file=sys.stderr)
    return 0
