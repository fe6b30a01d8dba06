"""Tests of the Triton separable local convolution (sepconv.ops.triton_kernels).

Three groups:

* Interpreter tests (``test_interp_*``): the kernels run on CPU tensors in Triton's
  interpreter and are compared with :mod:`sepconv.ops.reference`. ``@triton.jit`` decides
  between the compiled and the interpreted kernel when the kernel module is *imported* (it
  reads ``TRITON_INTERPRET`` at decoration time, triton/runtime/jit.py), so setting the
  variable inside a running pytest is not reliable. These tests therefore only run in a
  process started with ``TRITON_INTERPRET=1`` (skipped otherwise);
  :func:`test_kernels_under_interpreter` starts such a process (a nested pytest on this
  file, ``-k test_interp_``) so the rest of the suite is unaffected.
* Dispatch tests, in-process.
* GPU tests (``@pytest.mark.gpu``), skipped without CUDA.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor

import sepconv.ops as ops
from sepconv.ops import BackendUnavailableError, reference

INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"
HAS_CUDA = torch.cuda.is_available()
REPO_ROOT = Path(__file__).resolve().parents[2]

needs_triton = pytest.mark.skipif(not ops.triton_available(), reason="triton is not installed")
interp_only = pytest.mark.skipif(
    not INTERPRETING,
    reason="runs in the TRITON_INTERPRET=1 subprocess started by test_kernels_under_interpreter",
)
requires_gpu = pytest.mark.skipif(
    not HAS_CUDA or INTERPRETING or not ops.triton_available(),
    reason="needs a CUDA device, triton, and the compiled (not interpreted) kernels",
)


def make_inputs(
    batch: int,
    channels: int,
    kernel_size: int,
    height: int,
    width: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    seed: int = 0,
    normalized: bool = False,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(frame, vertical, horizontal, grad_out); normalized=True mimics the model's kernels."""
    gen = torch.Generator().manual_seed(seed)
    pad = kernel_size - 1
    shape_k = (batch, kernel_size, height, width)
    if normalized:
        frame = torch.rand(batch, channels, height + pad, width + pad, generator=gen)
        vertical = torch.randn(shape_k, generator=gen).softmax(dim=1)
        horizontal = torch.randn(shape_k, generator=gen).softmax(dim=1)
    else:
        frame = torch.randn(batch, channels, height + pad, width + pad, generator=gen)
        vertical = torch.randn(shape_k, generator=gen)
        horizontal = torch.randn(shape_k, generator=gen)
    grad_out = torch.randn(batch, channels, height, width, generator=gen)
    frame, vertical, horizontal, grad_out = (
        t.to(device=device, dtype=dtype) for t in (frame, vertical, horizontal, grad_out)
    )
    return frame, vertical, horizontal, grad_out


def reference_float64(
    frame: Tensor, vertical: Tensor, horizontal: Tensor, grad_out: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Reference output and (frame, vertical, horizontal) grads in float64."""
    inputs = [t.detach().double() for t in (frame, vertical, horizontal)]
    out = reference.forward(*inputs)
    grads = reference.backward(grad_out.double(), *inputs)
    return (out, *grads)  # type: ignore[return-value]


def triton_with_grads(
    frame: Tensor, vertical: Tensor, horizontal: Tensor, grad_out: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from sepconv.ops.triton_kernels import separable_local_conv_triton

    inputs = [t.detach().clone().requires_grad_() for t in (frame, vertical, horizontal)]
    out = separable_local_conv_triton(*inputs)
    grads = torch.autograd.grad(out, inputs, grad_out)
    return (out.detach(), *grads)  # type: ignore[return-value]


def relative_error(actual: Tensor, expected: Tensor) -> float:
    """max |actual - expected| / max |expected| (expected in float64)."""
    scale = expected.abs().max().clamp_min(1e-30)
    return ((actual.double() - expected).abs().max() / scale).item()


def assert_agrees(actual: Tensor, expected: Tensor, rel: float, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: {actual.shape} vs {expected.shape}"
    err = relative_error(actual, expected)
    assert err <= rel, f"{what}: max error {err:.3e} relative to max |ref| > {rel:.1e}"


# --------------------------------------------------------------------------- interpreter


@needs_triton
@pytest.mark.skipif(INTERPRETING, reason="already inside an interpreter process")
def test_kernels_under_interpreter() -> None:
    """Run this file's interpreter tests in a fresh process with TRITON_INTERPRET=1."""
    env = dict(os.environ, TRITON_INTERPRET="1")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(Path(__file__).resolve()),
        "-q",
        "-k",
        "test_interp_",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
    ]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    report = proc.stdout[-8000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, f"interpreter tests failed:\n{report}"
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, report


SHAPES = [
    # (batch, channels, kernel_size, height, width)
    (2, 3, 3, 5, 7),
    (2, 4, 5, 9, 6),
    (1, 3, 4, 6, 5),  # even K
    (1, 1, 1, 3, 4),  # K = 1, one channel
    (1, 10, 2, 3, 17),  # two channel groups (C_BLOCK = 8)
    (1, 3, 5, 2, 140),  # two x blocks of 128, j range clipped per block in grad_frame
]


@interp_only
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}C{}K{}H{}W{}".format(*s))
def test_interp_float32_matches_reference(shape: tuple[int, int, int, int, int]) -> None:
    inputs = make_inputs(*shape)
    got = triton_with_grads(*inputs)
    want = reference_float64(*inputs)
    for name, actual, expected in zip(
        ("out", "grad_frame", "grad_vertical", "grad_horizontal"), got, want, strict=True
    ):
        assert actual.dtype == torch.float32
        assert_agrees(actual, expected, 1e-5, name)


@interp_only
def test_interp_forward_matches_naive_loop() -> None:
    frame, vertical, horizontal, _ = make_inputs(2, 3, 3, 4, 6, seed=1)
    from sepconv.ops.triton_kernels import separable_local_conv_triton

    got = separable_local_conv_triton(frame, vertical, horizontal)
    want = reference.separable_local_conv_naive(
        frame.double(), vertical.double(), horizontal.double()
    )
    assert_agrees(got, want, 1e-5, "out")


@interp_only
@pytest.mark.parametrize(
    ("dtype", "rel"),
    [(torch.float64, 1e-12), (torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)],
    ids=str,
)
def test_interp_other_dtypes(dtype: torch.dtype, rel: float) -> None:
    inputs = make_inputs(2, 3, 3, 5, 6, dtype=dtype, seed=2)
    got = triton_with_grads(*inputs)
    want = reference_float64(*inputs)  # from the same (rounded) inputs
    for name, actual, expected in zip(
        ("out", "grad_frame", "grad_vertical", "grad_horizontal"), got, want, strict=True
    ):
        assert actual.dtype == dtype
        assert_agrees(actual, expected, rel, name)


@interp_only
@pytest.mark.parametrize(
    "needs", [(True, False, False), (False, True, False), (False, False, True)]
)
def test_interp_only_requested_grads(needs: tuple[bool, bool, bool]) -> None:
    from sepconv.ops.triton_kernels import triton_backward

    frame, vertical, horizontal, grad_out = make_inputs(1, 3, 3, 4, 5, seed=3)
    got = triton_backward(grad_out, frame, vertical, horizontal, needs)
    want = reference_float64(frame, vertical, horizontal, grad_out)[1:]
    for need, actual, expected in zip(needs, got, want, strict=True):
        if need:
            assert_agrees(actual, expected, 1e-5, "grad")
        else:
            assert actual is None


@interp_only
def test_interp_autograd_skips_unneeded_inputs() -> None:
    from sepconv.ops.triton_kernels import separable_local_conv_triton

    frame, vertical, horizontal, grad_out = make_inputs(1, 4, 5, 5, 5, seed=4)
    vertical.requires_grad_()
    out = separable_local_conv_triton(frame, vertical, horizontal)
    out.backward(grad_out)
    assert frame.grad is None and horizontal.grad is None
    want = reference_float64(frame, vertical, horizontal, grad_out)[2]
    assert_agrees(vertical.grad, want, 1e-5, "grad_vertical")


@interp_only
def test_interp_non_contiguous_inputs() -> None:
    from sepconv.ops.triton_kernels import separable_local_conv_triton

    frame, vertical, horizontal, grad_out = make_inputs(2, 3, 3, 6, 7, seed=5)
    frame_nc = frame.transpose(2, 3).contiguous().transpose(2, 3)
    vertical_nc = vertical.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert not frame_nc.is_contiguous() and not vertical_nc.is_contiguous()
    got = separable_local_conv_triton(frame_nc, vertical_nc, horizontal)
    assert_agrees(got, reference_float64(frame, vertical, horizontal, grad_out)[0], 1e-5, "out")


@interp_only
def test_interp_dispatch_runs_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    import sepconv.ops.triton_kernels as tk

    calls = []
    original = tk.triton_forward

    def spy(*args: Tensor) -> Tensor:
        calls.append(args[0].shape)
        return original(*args)

    monkeypatch.setattr(tk, "triton_forward", spy)
    frame, vertical, horizontal, grad_out = make_inputs(1, 3, 3, 5, 5, seed=6)
    got = ops.separable_local_conv(frame, vertical, horizontal, backend="triton")
    assert calls, "backend='triton' did not reach the Triton kernels"
    assert_agrees(got, reference_float64(frame, vertical, horizontal, grad_out)[0], 1e-5, "out")


# --------------------------------------------------------------------------- dispatch


@pytest.mark.skipif(INTERPRETING, reason="checks the behaviour without the interpreter")
def test_dispatch_triton_on_cpu_without_interpreter_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    frame, vertical, horizontal, _ = make_inputs(1, 3, 3, 4, 4)
    with pytest.raises(BackendUnavailableError, match="triton"):
        ops.separable_local_conv(frame, vertical, horizontal, backend="triton")


@needs_triton
@pytest.mark.skipif(INTERPRETING, reason="checks the behaviour without the interpreter")
def test_direct_call_on_cpu_without_interpreter_raises() -> None:
    from sepconv.ops.triton_kernels import separable_local_conv_triton

    frame, vertical, horizontal, _ = make_inputs(1, 3, 3, 4, 4)
    with pytest.raises(BackendUnavailableError, match="TRITON_INTERPRET=1"):
        separable_local_conv_triton(frame, vertical, horizontal)


@needs_triton
def test_direct_call_checks_the_contract() -> None:
    from sepconv.ops.triton_kernels import separable_local_conv_triton

    frame, vertical, horizontal, _ = make_inputs(1, 3, 3, 4, 4)
    with pytest.raises(ValueError, match="frame must be"):
        separable_local_conv_triton(frame[:, :, 1:], vertical, horizontal)


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("normalized", [True, False], ids=["model-like", "gaussian"])
def test_gpu_float32_k51_matches_reference(normalized: bool) -> None:
    inputs = make_inputs(1, 3, 51, 64, 96, device="cuda", normalized=normalized, seed=7)
    got = triton_with_grads(*inputs)
    want = reference_float64(*inputs)
    for name, actual, expected in zip(
        ("out", "grad_frame", "grad_vertical", "grad_horizontal"), got, want, strict=True
    ):
        assert_agrees(actual, expected, 2e-5, name)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize(
    ("dtype", "rel"), [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)], ids=str
)
def test_gpu_half_precision_k51(dtype: torch.dtype, rel: float) -> None:
    from sepconv.ops.triton_kernels import separable_local_conv_triton

    frame, vertical, horizontal, grad_out = make_inputs(
        2, 4, 51, 48, 80, device="cuda", dtype=dtype, normalized=True, seed=8
    )
    got = separable_local_conv_triton(frame, vertical, horizontal)
    assert got.dtype == dtype
    want = reference_float64(frame, vertical, horizontal, grad_out)[0]
    assert_agrees(got, want, rel, f"out {dtype}")
