"""Time and peak memory of the separable local convolution at 720p and 1080p (K = 51).

Each measurement runs in a fresh subprocess so the peak is the op's own. On the CPU the extra
memory is the process' peak resident set during the op (Linux VmHWM, reset just before it
through /proc/self/clear_refs) minus the resident set with the inputs allocated; on CUDA it
is torch.cuda.max_memory_allocated above the inputs.

    python benchmarks/bench_op.py                   # reference op, CPU, forward
    python benchmarks/bench_op.py --backward        # forward + backward
    python benchmarks/bench_op.py --backend cpu --backward --no-frame-grad   # as in training
    python benchmarks/bench_op.py --device cuda --backend triton
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
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
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
