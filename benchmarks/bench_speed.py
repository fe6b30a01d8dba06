"""Speed and peak memory of inference and training, against our own slowest path, one device.

Prints one table for the device given (``--device cpu|cuda``; default CUDA when available):

* inference, batch 1, ms per frame at 1280x720 and 1920x1080, end to end from two uint8
  HxWx3 frames already on the device to the uint8 middle frame on the device (uint8 -> float
  in [0, 1], the Interpolator's padding, network and local convolution, clamp, x255, round,
  uint8; no host <-> device copies), for
  (a) our slowest path: float32, ``Interpolator(optimize=False, backend="reference")`` (on a
      GPU the plain PyTorch reference op on CUDA tensors: slow, that is the point), and
  (b) the fast paths of the device: on the CPU ``optimize=True`` in float32 and with
      ``precision="auto"`` (bfloat16 on CPUs with native bfloat16); on the GPU the Triton
      local convolution in float32 and under bfloat16 / float16 autocast;
  with the ratio of (a)'s time to each, the largest difference from (a) in 8-bit levels
  (before rounding, and after rounding to uint8), and the peak memory;
* training samples/s (forward + backward + AdaMax step + EMA, L1 loss, 128x128 crops) of the
  paper network through ``Trainer.train_step`` (configs/sepconv-l1.toml with batch size,
  ``bf16`` and ``backend`` overridden): float32 reference op against the defaults (CPU:
  bf16 autocast with the reference op, and with the compiled ``cpu`` op (forward and kernel
  gradients); GPU: Triton,
  float32 and bf16 autocast);
* 3840x2160 (``--sizes ... 2160p``): time and peak memory whole-frame and in ``--tile``
  tiles, on the float32 fast path, and the tiled frame's difference from the whole one.

Peak memory: each measurement runs in its own subprocess. CPU: the process' peak resident set
(Linux VmHWM, reset through /proc/self/clear_refs after the warm-up, as bench_op.py does),
the whole process (Python, torch, model, frames, buffers). GPU: torch.cuda.max_memory_allocated
(reset after the warm-up), model and frames included.

Timing: one warm-up run at the measured size (4K on the CPU: at 512x512; ``--repeat-4k`` runs),
then the median of ``--repeat`` runs (GPU: torch.cuda.synchronize around each run).
Network weights: ``--weights FILE``, or the authors' architecture with plausible random
weights (tests/authors_transcription.py), since no trained weights ship yet. Frames:
Middlebury Urban2 ($SEPCONV_DATA, else ../shared/data) resized, or smooth synthetic frames
when that is absent.

    python benchmarks/bench_speed.py --device cpu --repeat 3
    python benchmarks/bench_speed.py --device cuda --sizes 720p 1080p 2160p --json speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import benchmark_frames as _frames
from _common import environment as _header
from _common import load_model, peak_rss, reset_peak_rss

REPO = Path(__file__).resolve().parent.parent
SIZES = {"tiny": (64, 96), "720p": (720, 1280), "1080p": (1080, 1920), "2160p": (2160, 3840)}
# name -> (Interpolator keyword arguments, description); per device.
CPU_PATHS = {
    "reference": (
        {"precision": "float32", "optimize": False, "backend": "reference"},
        "(a) fp32, reference op",
    ),
    "fast-fp32": ({"precision": "float32", "optimize": True}, "optimize=True fp32"),
    "fast-auto": ({"precision": "auto", "optimize": True}, "optimize=True auto"),
}
GPU_PATHS = {
    "reference": (
        {"precision": "float32", "optimize": False, "backend": "reference"},
        "(a) fp32, reference op",
    ),
    "triton-fp32": ({"precision": "float32", "backend": "triton"}, "triton fp32"),
    "triton-bf16": ({"precision": "bfloat16", "backend": "triton"}, "triton bf16 autocast"),
    "triton-fp16": ({"precision": "float16", "backend": "triton"}, "triton fp16 autocast"),
    "triton-bf16-compiled": (
        {"precision": "bfloat16", "backend": "triton", "compile": True},
        "triton bf16 + torch.compile",
    ),
}
FAST_FP32 = {"cpu": "fast-fp32", "cuda": "triton-fp32"}
# name -> (TrainConfig overrides, description); per device.
CPU_TRAIN = {
    "reference": ({"bf16": False, "backend": "reference"}, "(a) fp32, reference op"),
    "bf16-auto": ({"bf16": True, "backend": "auto"}, "bf16 autocast, config default"),
    "bf16-cpu": ({"bf16": True, "backend": "cpu"}, "bf16 autocast, cpu op"),
}
GPU_TRAIN = {
    "reference": ({"bf16": False, "backend": "reference"}, "(a) fp32, reference op"),
    "triton-fp32": ({"bf16": False, "backend": "triton"}, "triton fp32"),
    "triton-bf16": ({"bf16": True, "backend": "triton"}, "triton bf16 (default)"),
}


# -- memory -------------------------------------------------------------------------------------


def _reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return
    reset_peak_rss()


def _peak_mib(device: str) -> float:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return peak_rss() / 2**20


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


# -- inputs -------------------------------------------------------------------------------------


# -- measurements (each in its own process when run through main) ------------------------------


def measure_inference(
    device: str,
    path: str,
    size: str,
    repeat: int,
    weights: str | None = None,
    tile: int | None = None,
    save: str | None = None,
    warmup_size: str | None = None,
) -> dict:
    """Median ms per frame of one path at one size, uint8 on the device to uint8 on it."""
    import numpy as np
    import torch

    from sepconv.inference import Interpolator

    paths = GPU_PATHS if device == "cuda" else CPU_PATHS
    options, _ = paths[path]
    model, _ = load_model(weights)
    interpolator = Interpolator(model, device=device, tile_size=tile, **options)

    def frames_on_device(name: str):
        height, width = SIZES[name] if name in SIZES else map(int, name.split("x"))
        frames, _ = _frames(height, width)
        return [torch.from_numpy(frame.copy()).to(device) for frame in frames]

    def run(first, second):
        # uint8 HxWx3 on the device -> float (1, 3, H, W) in [0, 1] -> uint8 HxWx3 on it.
        first, second = (f.permute(2, 0, 1)[None].float().div_(255.0) for f in (first, second))
        middle = interpolator.interpolate_tensor(first, second)[0].permute(1, 2, 0)
        scaled = middle.float().mul(255.0)
        return scaled.round().to(torch.uint8), scaled

    if warmup_size is not None:
        run(*frames_on_device(warmup_size))
    first, second = frames_on_device(size)
    if warmup_size is None:
        run(first, second)
    _sync(device)
    _reset_peak(device)
    seconds = []
    for _ in range(repeat):
        _sync(device)
        start = time.perf_counter()
        out, scaled = run(first, second)
        _sync(device)
        seconds.append(time.perf_counter() - start)
    peak = _peak_mib(device)
    if save:
        np.save(save, scaled.cpu().numpy())
    assert out.dtype == torch.uint8 and out.device.type == torch.device(device).type
    return {
        "kind": "inference",
        "device": device,
        "path": path,
        "size": size,
        "tile": tile,
        "precision": interpolator.precision,
        "local_conv": interpolator._synthesis_backend,
        "ms": round(statistics.median(seconds) * 1000, 1),
        "runs_ms": [round(s * 1000, 1) for s in seconds],
        "peak_mib": round(peak, 1),
        "threads": torch.get_num_threads(),
    }


def measure_training(
    device: str, path: str, batch: int, steps: int, warmup: int, crop: int = 128
) -> dict:
    """Samples/s of Trainer.train_step on random batches (the data pipeline is not timed)."""
    import dataclasses

    import torch

    from sepconv.engine.config import load_train_config
    from sepconv.engine.train import Trainer

    overrides, _ = (GPU_TRAIN if device == "cuda" else CPU_TRAIN)[path]
    with tempfile.TemporaryDirectory() as scratch:
        config = load_train_config(REPO / "configs" / "sepconv-l1.toml")
        config = dataclasses.replace(
            config,
            batch_size=batch,
            crop_size=crop,
            validate_every_steps=0,
            output_dir=scratch,
            **overrides,
        )
        trainer = Trainer(config, device=device, log_stream=None)
        generator = torch.Generator().manual_seed(0)
        shape = (batch, 3, crop, crop)
        data = {
            name: torch.rand(shape, generator=generator).to(device)
            for name in ("first", "middle", "last")
        }
        for _ in range(warmup):
            trainer.train_step(data)
        _sync(device)
        _reset_peak(device)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(data)
        _sync(device)
        seconds = time.perf_counter() - start
        peak = _peak_mib(device)
        trainer.close()
    return {
        "kind": "training",
        "device": device,
        "path": path,
        "batch": batch,
        "crop": crop,
        "steps": steps,
        "samples_per_s": round(batch * steps / seconds, 2),
        "ms_per_step": round(seconds / steps * 1000, 1),
        "peak_mib": round(peak, 1),
    }


# -- the parent ---------------------------------------------------------------------------------


def _child(spec: dict) -> dict:
    command = [sys.executable, __file__, "--child", json.dumps(spec)]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        return {**spec, "error": completed.stderr.strip().splitlines()[-1:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _levels(path: str, reference: str) -> tuple[float, int, float]:
    """Abs difference in 8-bit levels: max before rounding, max after rounding to uint8, mean."""
    import numpy as np

    actual, expected = np.load(path), np.load(reference)
    difference = np.abs(actual - expected)
    after = int(np.abs(np.rint(actual) - np.rint(expected)).max())
    return float(difference.max()), after, float(difference.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    parser.add_argument(
        "--sizes", nargs="+", default=["720p", "1080p"], choices=[s for s in SIZES if s != "tiny"]
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (median)")
    parser.add_argument("--repeat-4k", type=int, default=1, help="timed runs at 2160p")
    parser.add_argument("--tile", type=int, default=1024, help="tile size at 2160p")
    parser.add_argument("--skip-4k", action="store_true", help="drop 2160p from --sizes")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-inference", action="store_true", help="training figures only")
    parser.add_argument("--skip-reference", action="store_true", help="skip path (a)")
    parser.add_argument("--batch", type=int, help="training batch (default: 32 GPU, 8 CPU)")
    parser.add_argument("--train-steps", type=int, help="timed steps (default: 10 GPU, 2 CPU)")
    parser.add_argument("--weights", help="weights file (default: plausible random weights)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument(
        "--dry-run", action="store_true", help="96x64 frames, batch 1 of 64x64: checks it runs"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        kind = spec.pop("kind")
        result = (measure_inference if kind == "inference" else measure_training)(**spec)
        print(json.dumps(result))
        return

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    gpu = device == "cuda"
    paths = GPU_PATHS if gpu else CPU_PATHS
    train_paths = GPU_TRAIN if gpu else CPU_TRAIN
    sizes = [s for s in args.sizes if not (args.skip_4k and s == "2160p")]
    batch = args.batch or (32 if gpu else 8)
    steps = args.train_steps or (10 if gpu else 2)
    crop = 128
    if args.dry_run:
        sizes, batch, steps, crop, args.repeat = ["tiny"], 1, 1, 64, 1
    header = _header(device)
    _, frames_source = _frames(8, 8)
    weights_source = (
        f"weights {args.weights}"
        if args.weights
        else "authors' architecture, plausible random weights"
    )
    print(
        f"# {header['date']}; {device}: {header['device_name']}; python {header['python']}, "
        f"torch {header['torch']}, triton {header['triton']}, sepconv {header['sepconv']}, "
        f"{header['threads']} threads, load average {header['load_average']}"
    )
    print(f"# frames: {frames_source}; network: {weights_source}")
    if gpu and not args.skip_reference:
        print("# (a) runs the plain PyTorch reference op on the GPU: slow, and it is meant to be")
    results: list[dict] = []
    rows: list[tuple[str, ...]] = []
    memory = "peak alloc MiB" if gpu else "peak RSS MiB"
    if args.skip_inference:
        sizes = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            if size == "2160p":
                continue
            reference_ms = reference_npy = None
            for path, (_, described) in paths.items():
                if path == "reference" and args.skip_reference:
                    continue
                save = str(Path(scratch) / f"{size}-{path}.npy")
                spec = {"kind": "inference", "device": device, "path": path, "size": size}
                spec |= {"repeat": args.repeat, "weights": args.weights, "save": save}
                result = _child(spec)
                results.append(result)
                if "error" in result:
                    rows.append((f"infer {size}", described, "error", "", "", "", ""))
                    print(f"# {size} {path} failed: {result['error']}", file=sys.stderr)
                    continue
                if path == "reference":
                    reference_ms, reference_npy = result["ms"], save
                ratio = f"{reference_ms / result['ms']:.2f}x" if reference_ms else ""
                levels = ""
                if reference_npy and path != "reference":
                    before, after, mean = _levels(save, reference_npy)
                    result["max_diff_levels"] = before
                    result["max_diff_levels_rounded"] = after
                    result["mean_diff_levels"] = mean
                    levels = f"{before:.2g} / {after} ({mean:.2g})"
                rows.append(
                    (
                        f"infer {size} ms/frame",
                        f"{described} [{result['precision']}, {result['local_conv']}]",
                        f"{result['ms']:.1f}",
                        ratio,
                        levels,
                        f"{result['peak_mib']:.0f}",
                        f"{args.repeat}",
                    )
                )
        if "2160p" in sizes:
            path = FAST_FP32[device]
            described = paths[path][1]
            whole_npy = None
            for tile in (None, args.tile):
                save = str(Path(scratch) / f"2160p-{tile}.npy")
                spec = {"kind": "inference", "device": device, "path": path, "size": "2160p"}
                spec |= {"repeat": args.repeat_4k, "weights": args.weights, "save": save}
                spec |= {"tile": tile, "warmup_size": None if gpu else "512x512"}
                result = _child(spec)
                results.append(result)
                label = f"tile {tile}" if tile else "whole frame"
                if "error" in result:
                    rows.append(("infer 2160p", f"{described}, {label}", "error", "", "", "", ""))
                    print(f"# 2160p {label} failed: {result['error']}", file=sys.stderr)
                    continue
                levels = ""
                if tile is None:
                    whole_npy = save
                elif whole_npy:
                    before, after, mean = _levels(save, whole_npy)
                    result["max_diff_levels_vs_whole"] = before
                    result["max_diff_levels_vs_whole_rounded"] = after
                    result["mean_diff_levels_vs_whole"] = mean
                    levels = f"{before:.2g} / {after} ({mean:.2g}) vs whole"
                rows.append(
                    (
                        "infer 2160p ms/frame",
                        f"{described}, {label} [{result['precision']}]",
                        f"{result['ms']:.1f}",
                        "",
                        levels,
                        f"{result['peak_mib']:.0f}",
                        f"{args.repeat_4k}",
                    )
                )
    if not args.skip_training:
        reference_rate = None
        for path, (_, described) in train_paths.items():
            if path == "reference" and args.skip_reference:
                continue
            spec = {"kind": "training", "device": device, "path": path, "batch": batch}
            spec |= {"steps": steps, "warmup": 1, "crop": crop}
            result = _child(spec)
            results.append(result)
            if "error" in result:
                rows.append(("train", described, "error", "", "", "", ""))
                print(f"# training {path} failed: {result['error']}", file=sys.stderr)
                continue
            if path == "reference":
                reference_rate = result["samples_per_s"]
            ratio = f"{result['samples_per_s'] / reference_rate:.2f}x" if reference_rate else ""
            rows.append(
                (
                    f"train samples/s, b{batch} {crop}px",
                    described,
                    f"{result['samples_per_s']:.2f}",
                    ratio,
                    f"{result['ms_per_step']:.0f} ms/step",
                    f"{result['peak_mib']:.0f}",
                    f"{steps}",
                )
            )
    titles = ("measurement", "path", "value", "vs (a)", "diff (levels)", memory, "runs")
    widths = [max(len(row[i]) for row in [titles, *rows]) for i in range(len(titles))]
    print()
    for row in [titles, *rows]:
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells))
    print()
    print(
        "# inference: median ms per frame, batch 1, uint8 frames on the device to the uint8 "
        "middle frame on it; 'vs (a)': (a)'s time / this time (inference), this rate / (a)'s "
        "(training); diff: |this - (a)| in 8-bit levels, largest before / after rounding "
        "(mean before rounding)"
    )
    print(
        f"# training: Trainer.train_step (fwd + bwd + AdaMax + EMA, L1) after 1 warm-up step; "
        f"memory: {memory} of the measurement's own process, after warm-up"
    )
    print(f"# load average at end {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "results": results}, indent=2))


if __name__ == "__main__":
    main()
