"""GPU check of the Triton separable local convolution against the PyTorch reference.

Run on a CUDA machine (not part of CI)::

    python benchmarks/gpu_check_ops.py [--repeats 10] [--warmup 3] [--skip-reference-timing]

1. Agreement at K = 51 (float32 and bfloat16, forward and all three gradients): prints the
   max abs error of the Triton op against a float64 reference computed from the same
   inputs, and that error relative to the reference's max magnitude.
2. Timings of forward and forward + backward for the Triton op and the reference op at
   1 x 3 x 720 x 1280 and 32 x 3 x 128 x 128 (float32, K = 51): median milliseconds over
   ``--repeats`` runs (CUDA events) and the peak CUDA memory of one run
   (``torch.cuda.max_memory_allocated``, absolute and above the inputs already allocated).

Exits with status 0 and a message when no CUDA device (or no triton) is available.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable

import torch
from torch import Tensor

from sepconv.ops import reference, triton_available

KERNEL_SIZE = 51


def make_inputs(
    batch: int,
    channels: int,
    height: int,
    width: int,
    kernel_size: int,
    dtype: torch.dtype,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Model-like inputs on CUDA: frame in [0, 1), softmax-normalized kernels, random grad."""
    gen = torch.Generator(device="cuda").manual_seed(seed)
    pad = kernel_size - 1
    opts = {"device": "cuda", "generator": gen}
    frame = torch.rand(batch, channels, height + pad, width + pad, **opts)
    vertical = torch.randn(batch, kernel_size, height, width, **opts).softmax(dim=1)
    horizontal = torch.randn(batch, kernel_size, height, width, **opts).softmax(dim=1)
    grad_out = torch.randn(batch, channels, height, width, **opts)
    return frame.to(dtype), vertical.to(dtype), horizontal.to(dtype), grad_out.to(dtype)


def run_with_grads(
    op: Callable[[Tensor, Tensor, Tensor], Tensor],
    frame: Tensor,
    vertical: Tensor,
    horizontal: Tensor,
    grad_out: Tensor,
) -> list[Tensor]:
    inputs = [t.detach().clone().requires_grad_() for t in (frame, vertical, horizontal)]
    out = op(*inputs)
    grads = torch.autograd.grad(out, inputs, grad_out)
    return [out.detach(), *grads]


def check_agreement(dtype: torch.dtype) -> bool:
    """Print the Triton op's errors against a float64 reference; True when within bounds."""
    from sepconv.ops.triton_kernels import separable_local_conv_triton

    bound = {torch.float32: 2e-5, torch.bfloat16: 2e-2}[dtype]
    ok = True
    for shape in ((1, 3, 64, 96), (2, 4, 33, 70)):
        inputs = make_inputs(*shape, KERNEL_SIZE, dtype, seed=1)
        got = run_with_grads(separable_local_conv_triton, *inputs)
        want = run_with_grads(reference.separable_local_conv, *(t.double() for t in inputs))
        for name, actual, expected in zip(
            ("out", "grad_frame", "grad_vertical", "grad_horizontal"), got, want, strict=True
        ):
            abs_err = (actual.double() - expected).abs().max().item()
            rel_err = abs_err / max(expected.abs().max().item(), 1e-30)
            flag = "ok" if rel_err <= bound else "FAIL"
            ok &= rel_err <= bound
            print(
                f"  {str(dtype):15s} {'x'.join(map(str, shape)):10s} {name:16s} "
                f"max abs err {abs_err:.3e}  rel to max {rel_err:.3e}  [{flag}, bound {bound:.0e}]"
            )
    return ok


def time_cuda(fn: Callable[[], object], warmup: int, repeats: int) -> float:
    """Median wall time of fn() in milliseconds, measured with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def peak_memory_mib(fn: Callable[[], object]) -> tuple[float, float]:
    """(peak allocated MiB during one fn() call, peak above what was allocated before)."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    return peak / 2**20, (peak - before) / 2**20


def benchmark(
    name: str,
    op: Callable[[Tensor, Tensor, Tensor], Tensor],
    shape: tuple[int, int, int, int],
    warmup: int,
    repeats: int,
) -> None:
    frame, vertical, horizontal, grad_out = make_inputs(*shape, KERNEL_SIZE, torch.float32, seed=2)
    leaves = [t.requires_grad_() for t in (frame, vertical, horizontal)]

    def forward() -> None:
        with torch.no_grad():
            op(frame, vertical, horizontal)

    def forward_backward() -> None:
        out = op(frame, vertical, horizontal)
        torch.autograd.grad(out, leaves, grad_out)

    label = f"{name:9s} {'x'.join(map(str, shape)):14s}"
    for what, fn in (("fwd", forward), ("fwd+bwd", forward_backward)):
        ms = time_cuda(fn, warmup, repeats)
        peak, extra = peak_memory_mib(fn)
        print(
            f"  {label} {what:8s} {ms:10.3f} ms   peak {peak:9.1f} MiB "
            f"(+{extra:8.1f} MiB over inputs)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument(
        "--skip-reference-timing", action="store_true", help="time only the Triton op"
    )
    args = parser.parse_args(argv)

    if not torch.cuda.is_available():
        print("gpu_check_ops: no CUDA device available; nothing to check.")
        return 0
    if not triton_available():
        print("gpu_check_ops: the triton package is not installed; nothing to check.")
        return 0

    import triton

    from sepconv.ops.triton_kernels import separable_local_conv_triton

    props = torch.cuda.get_device_properties(0)
    print(f"device: {props.name} ({props.total_memory / 2**30:.1f} GiB)")
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), triton {triton.__version__}")
    print(f"kernel size K = {KERNEL_SIZE}")

    print("\nagreement with the float64 reference:")
    ok = all([check_agreement(torch.float32), check_agreement(torch.bfloat16)])

    print(f"\ntimings, float32, median of {args.repeats} (after {args.warmup} warm-up runs):")
    ops: list[tuple[str, Callable[[Tensor, Tensor, Tensor], Tensor]]] = [
        ("triton", separable_local_conv_triton)
    ]
    if not args.skip_reference_timing:
        ops.append(("reference", reference.separable_local_conv))
    for shape in ((1, 3, 720, 1280), (32, 3, 128, 128)):
        for name, op in ops:
            benchmark(name, op, shape, args.warmup, args.repeats)
            torch.cuda.empty_cache()

    print("\nall agreement checks passed" if ok else "\nSOME AGREEMENT CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
