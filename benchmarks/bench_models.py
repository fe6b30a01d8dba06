"""The bundled models side by side, with DIS optical flow alone, at one size, in one run.

For each model (registry names or weights files; default: every bundled model) it prints

* video mode: ms per frame of the Interpolator as ``sepconv video`` builds it (fast CPU path,
  ``--precision`` as given, default float32 as the command's), steady state after one
  warm-up frame, uint8 frames in and out
  (for the flow-guided family this includes the DIS flow and the warps);
* one shot: wall-clock seconds of the whole ``sepconv interpolate A B -o C --weights NAME``
  command (interpreter start, imports, weights, one frame, PNG written);
* training: samples/s of ``Trainer.train_step`` with the model's own training config
  (batch 8 of 128x128 crops of the benchmark frames; for the flow-guided family the DIS flow
  of every crop is part of the step, as in training);
* peak memory: the video-mode process' peak resident set (Linux VmHWM after the warm-up).

and the same video-mode figure for the DIS baseline alone (``sepconv.baselines``). Every
measurement runs in its own subprocess. Frames: Middlebury Urban2 resized (or synthetic).

    python benchmarks/bench_models.py                       # 720p, every bundled model
    python benchmarks/bench_models.py --size 1080p --models sepconv-flow --repeat 5
    python benchmarks/bench_models.py --models sepconv-motion --reference-cost-volumes \
        --skip-video --train-steps 4     # training with the fast and the reference cost volumes
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, benchmark_frames, environment, peak_rss, reset_peak_rss

SIZES = {"tiny": (64, 96), "720p": (720, 1280), "1080p": (1080, 1920)}
# Training config of each bundled model (its recipe; the batch and crops are overridden).
TRAIN_CONFIGS = {
    "sepconv-l1": REPO / "configs" / "cpu-l1-continue.toml",
    "sepconv-flow": REPO / "configs" / "cpu-flow-fast.toml",
    "sepconv-motion": REPO / "configs" / "cpu-motion.toml",
}
# A weights file's recipe by its architecture.
ARCHITECTURE_CONFIGS = {
    "sepconv": TRAIN_CONFIGS["sepconv-l1"],
    "flow-sepconv": TRAIN_CONFIGS["sepconv-flow"],
    "motion-sepconv": TRAIN_CONFIGS["sepconv-motion"],
}


def _size(name: str) -> tuple[int, int]:
    return SIZES[name] if name in SIZES else tuple(int(v) for v in name.split("x"))  # type: ignore[return-value]


def measure_video(weights: str, size: str, repeat: int, precision: str = "float32") -> dict:
    """ms per frame of the video command's Interpolator; "dis" is the flow baseline alone."""
    import torch

    frames, _ = benchmark_frames(*_size(size))
    if weights == "dis":
        from sepconv.baselines import make_flow_predictor

        predict = make_flow_predictor()
    else:
        from sepconv.inference import Interpolator

        interpolator = Interpolator.from_weights(
            weights, device="cpu", precision=precision, optimize=True
        )
        predict = interpolator.interpolate
    predict(*frames)
    reset_peak_rss()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        predict(*frames)
        seconds.append(time.perf_counter() - start)
    return {
        "kind": "video",
        "weights": weights,
        "ms": round(statistics.median(seconds) * 1000, 1),
        "runs_ms": [round(value * 1000, 1) for value in seconds],
        "peak_mib": round(peak_rss() / 2**20, 1),
        "threads": torch.get_num_threads(),
    }


def measure_one_shot(weights: str, size: str) -> dict:
    """Wall-clock seconds of the whole ``sepconv interpolate`` command."""
    from PIL import Image

    frames, _ = benchmark_frames(*_size(size))
    with tempfile.TemporaryDirectory() as scratch:
        paths = [Path(scratch) / name for name in ("a.png", "b.png")]
        for path, frame in zip(paths, frames, strict=True):
            Image.fromarray(frame).save(path)
        output = Path(scratch) / "middle.png"
        command = [sys.executable, "-m", "sepconv", "interpolate", *map(str, paths)]
        command += ["-o", str(output), "--weights", weights, "--precision", "auto"]
        start = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if completed.returncode != 0:
            raise RuntimeError(completed.stderr.strip())
    return {"kind": "one_shot", "weights": weights, "seconds": round(seconds, 2)}


def measure_training(
    weights: str, batch: int, steps: int, warmup: int = 2, reference_cost_volumes: bool = False
) -> dict:
    """Samples/s of Trainer.train_step with the model's training config; with
    ``reference_cost_volumes`` the learned motion's cost volumes are the plain-PyTorch
    references (:mod:`sepconv.ops.cost_volume`), whose backward autograd derives slice by slice.
    """
    import numpy as np
    import torch

    from sepconv.engine.config import load_train_config
    from sepconv.engine.train import Trainer
    from sepconv.weights import resolve_weights

    if reference_cost_volumes:
        from sepconv.models import motion
        from sepconv.ops import cost_volume

        motion.bilateral_cost_volume = cost_volume.bilateral_cost_volume_reference
        motion.local_cost_volume = cost_volume.local_cost_volume_reference
    _, spec = resolve_weights(weights)
    config_path = TRAIN_CONFIGS.get(spec.name if spec else "")
    if config_path is None:
        config_path = ARCHITECTURE_CONFIGS.get(_architecture(weights), TRAIN_CONFIGS["sepconv-l1"])
    frames, _ = benchmark_frames(*_size("720p"))
    rng = np.random.default_rng(0)
    crops: dict[str, list] = {"first": [], "middle": [], "last": []}
    for _ in range(batch):
        top, left = rng.integers(0, 720 - 128), rng.integers(0, 1280 - 128)
        window = (slice(top, top + 128), slice(left, left + 128))
        first, last = (torch.from_numpy(frame[window].copy()) for frame in frames)
        middle = ((first.float() + last.float()) / 2).round().to(torch.uint8)
        for name, crop in (("first", first), ("middle", middle), ("last", last)):
            crops[name].append(crop.permute(2, 0, 1).float() / 255.0)
    data = {name: torch.stack(items) for name, items in crops.items()}
    with tempfile.TemporaryDirectory() as scratch:
        config = dataclasses.replace(
            load_train_config(config_path),
            init_weights="",
            batch_size=batch,
            crop_size=128,
            validate_every_steps=0,
            output_dir=scratch,
        )
        trainer = Trainer(config, device="cpu", log_stream=None)
        for _ in range(warmup):
            trainer.train_step(data)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(data)
        seconds = time.perf_counter() - start
    return {
        "kind": "training",
        "weights": weights,
        "config": str(config_path.relative_to(REPO)),
        "samples_per_s": round(batch * steps / seconds, 2),
    }


def _architecture(weights: str) -> str:
    """The registered family of a registry name or weights file."""
    from sepconv.models.checkpoint import load_weights
    from sepconv.models.registry import architecture_of
    from sepconv.weights import resolve_weights

    path, _ = resolve_weights(weights)
    return architecture_of(load_weights(path).model.config)


def _child(spec: dict) -> dict:
    command = [sys.executable, __file__, "--child", json.dumps(spec)]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        return {**spec, "error": (completed.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", help="registry names or files (default: bundled)")
    parser.add_argument("--size", default="720p", help="720p, 1080p, tiny or HxW")
    parser.add_argument("--repeat", type=int, default=3, help="timed video-mode frames (median)")
    parser.add_argument("--train-steps", type=int, default=5, help="timed training steps")
    parser.add_argument(
        "--precision",
        default="float32",
        choices=("float32", "bfloat16", "float16", "auto"),
        help="video mode's network precision (default: float32, the commands' default)",
    )
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-video", action="store_true", help="no video-mode, one-shot rows")
    parser.add_argument(
        "--reference-cost-volumes",
        action="store_true",
        help="also train each learned-motion model with the reference cost volumes (a row)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        kind = spec.pop("kind")
        measure = {
            "video": measure_video,
            "one_shot": measure_one_shot,
            "training": measure_training,
        }[kind]
        print(json.dumps(measure(**spec)))
        return

    from sepconv.weights import REGISTRY

    models = args.models or [spec.name for spec in REGISTRY if spec.source == "bundled"]
    header = environment("cpu")
    print(f"# {header['date']}  {header['device_name']}")
    print(f"# torch {header['torch']}, sepconv {header['sepconv']}, frames {args.size}")
    rows = []
    for weights in [*models] if args.skip_video else [*models, "dis"]:
        row: dict = {"model": weights, "video": None}
        if not args.skip_video:
            spec = {"weights": weights, "size": args.size, "repeat": args.repeat}
            row["video"] = _child({"kind": "video", **spec, "precision": args.precision})
        if weights != "dis" and not args.skip_video:
            row["one_shot"] = _child({"kind": "one_shot", "weights": weights, "size": args.size})
        training = {"kind": "training", "weights": weights, "batch": 8, "steps": args.train_steps}
        if weights != "dis" and not args.skip_training:
            row["training"] = _child(training)
        rows.append(row)
        if (
            args.reference_cost_volumes
            and weights != "dis"
            and _architecture(weights) == "motion-sepconv"
        ):
            reference = _child({**training, "reference_cost_volumes": True})
            rows.append({"model": f"{weights}, reference cost volumes", "training": reference})

    def cell(entry: dict | None, key: str, unit: str) -> str:
        if entry is None:
            return "-"
        if "error" in entry:
            return f"error: {entry['error'][:40]}"
        return f"{entry[key]} {unit}"

    print("| model | video mode, ms/frame | one-shot | training (batch 8, 128 px) | peak RSS |")
    print("|---|---|---|---|---|")
    for row in rows:
        name = "DIS flow alone" if row["model"] == "dis" else row["model"]
        cells = [
            cell(row.get("video"), "ms", "ms"),
            cell(row.get("one_shot"), "seconds", "s"),
            cell(row.get("training"), "samples_per_s", "samples/s"),
            cell(row.get("video"), "peak_mib", "MiB"),
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"environment": header, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
