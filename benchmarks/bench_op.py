"""Time and peak memory of the separable local convolution at 720p and 1080p (K = 51).

Each measurement runs in a fresh subprocess so the peak is the op's own. On the CPU the extra
memory is the process' peak resident set during the op (Linux VmHWM, reset just before it
through /proc/self/clear_refs) minus the resident set with the inputs allocated; on CUDA it
is torch.cuda.max_memory_allocated above the inputs.

    python benchmarks/bench_op.py                   # reference op, CPU, forward
    python benchmarks/bench_op.py --backward        # forward + backward
    python benchmarks/bench_op.py --backend cpu --backward --no-frame-grad   # as in training
    python benchmarks/bench_op.py --device cuda --backend triton
    python benchmarks/bench_op.py --kernel-memory   # the paper's 26 GB vs 1.27 GB claim

``--kernel-memory`` checks the paper's headline claim (per-pixel 2D kernels for one 1080p frame
pair need 26 GB, separable ones 1.27 GB, at K = 41): for K = 41 and 51 it measures the resident
memory the four separable kernels of a 1080p frame take when allocated (float32), and the
memory of the two 2D kernels (outer products) materialised on a 128x128 tile, scaled to 1080p
(no machine here holds the real thing), each beside the arithmetic (4 K H W and 2 K^2 H W
float32 values).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

from _common import peak_rss, reset_peak_rss

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}


def measure(
    size: str, device: str, backend: str, backward: bool, kernel: int, frame_grad: bool = True
) -> dict:
    import torch

    from sepconv.ops import separable_local_conv

    height, width = SIZES[size]
    generator = torch.Generator().manual_seed(0)
    frame = torch.rand(1, 3, height + kernel - 1, width + kernel - 1, generator=generator)
    vertical = torch.rand(1, kernel, height, width, generator=generator) / kernel
    horizontal = torch.rand(1, kernel, height, width, generator=generator) / kernel
    frame, vertical, horizontal = (t.to(device) for t in (frame, vertical, horizontal))
    if backward:
        for tensor in (frame, vertical, horizontal) if frame_grad else (vertical, horizontal):
            tensor.requires_grad_(True)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    base_rss = reset_peak_rss()
    start = time.perf_counter()
    out = separable_local_conv(frame, vertical, horizontal, backend=backend)
    if backward:
        out.backward(torch.ones_like(out))
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    extra = torch.cuda.max_memory_allocated() - base if device == "cuda" else peak_rss() - base_rss
    inputs = sum(t.numel() * t.element_size() for t in (frame, vertical, horizontal))
    return {
        "size": size,
        "device": device,
        "backend": backend,
        "pass": ("forward+backward" + ("" if frame_grad else "(k)")) if backward else "forward",
        "ms": round(seconds * 1000, 1),
        "extra_memory_mib": round(extra / 2**20, 1),
        "inputs_mib": round(inputs / 2**20, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def measure_kernel_memory(kernel: int, tile: int = 128) -> dict:
    """Resident bytes of 1080p separable kernels, and of 2D kernels on a tile (scaled)."""
    import torch

    height, width = SIZES["1080p"]
    base = reset_peak_rss()
    separable = [torch.ones(1, kernel, height, width) for _ in range(4)]
    separable_bytes = peak_rss() - base
    del separable
    vertical = torch.ones(1, kernel, tile, tile)
    horizontal = torch.ones(1, kernel, tile, tile)
    base = reset_peak_rss()
    # per pixel the K x K outer product of its vertical and horizontal kernel, for both frames
    two_d = [torch.einsum("bihw,bjhw->bijhw", vertical, horizontal) for _ in range(2)]
    tile_bytes = peak_rss() - base
    del two_d
    scale = height * width / (tile * tile)
    return {
        "kernel": kernel,
        "separable_measured_gib": round(separable_bytes / 2**30, 3),
        "separable_arithmetic_gib": round(4 * kernel * height * width * 4 / 2**30, 3),
        "two_d_measured_gib": round(tile_bytes * scale / 2**30, 2),
        "two_d_arithmetic_gib": round(2 * kernel**2 * height * width * 4 / 2**30, 2),
        "tile": tile,
    }


def kernel_memory_table() -> None:
    """One subprocess per kernel size; prints the table."""
    print(
        "# per-pixel kernels of one 1080p frame pair, float32 (the paper: K = 41, 26 GB vs 1.27 GB)"
    )
    columns = [
        "K",
        "separable, measured",
        "separable, 4 K H W x 4 B",
        "2D, measured on 128x128, scaled",
        "2D, 2 K^2 H W x 4 B",
    ]
    print("| " + " | ".join(columns) + " |")
    print("|---:|---:|---:|---:|---:|")
    for kernel in (41, 51):
        command = [sys.executable, __file__, "--child-kernel-memory", str(kernel)]
        completed = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(completed.stdout.strip().splitlines()[-1])
        keys = ("separable_measured_gib", "separable_arithmetic_gib")
        keys += ("two_d_measured_gib", "two_d_arithmetic_gib")
        print(f"| {kernel} | " + " | ".join(f"{row[key]} GiB" for key in keys) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--backward", action="store_true")
    parser.add_argument(
        "--no-frame-grad",
        action="store_true",
        help="backward for the kernels only (as in training, where frames are inputs)",
    )
    parser.add_argument("--kernel", type=int, default=51)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument(
        "--kernel-memory", action="store_true", help="the 2D vs separable kernel memory claim"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-kernel-memory", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_kernel_memory:
        print(json.dumps(measure_kernel_memory(args.child_kernel_memory)))
        return
    if args.kernel_memory:
        kernel_memory_table()
        return
    if args.child:
        result = measure(
            args.child,
            args.device,
            args.backend,
            args.backward,
            args.kernel,
            frame_grad=not args.no_frame_grad,
        )
        print(json.dumps(result))
        return
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(
        f"{'size':<6} {'device':<6} {'backend':<9} {'pass':<20} {'ms':>9} {'extra MiB':>10} "
        f"{'inputs MiB':>11}"
    )
    for size in args.sizes:
        command = [
            sys.executable,
            __file__,
            "--child",
            size,
            "--device",
            args.device,
            "--backend",
            args.backend,
            "--kernel",
            str(args.kernel),
        ]
        if args.backward:
            command.append("--backward")
        if args.no_frame_grad:
            command.append("--no-frame-grad")
        completed = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(completed.stdout.strip().splitlines()[-1])
        print(
            f"{row['size']:<6} {row['device']:<6} {row['backend']:<9} {row['pass']:<20} "
            f"{row['ms']:>9.1f} {row['extra_memory_mib']:>10.1f} {row['inputs_mib']:>11.1f}"
        )
    print(f"# torch {row['torch']}, {row['threads']} threads")


if __name__ == "__main__":
    main()
