"""The compiled CPU local convolution (backend "cpu") against the reference and a naive loop."""

from __future__ import annotations

import pytest
import torch
from conftest import local_conv_inputs
from hypothesis import given, settings
from hypothesis import strategies as st

from sepconv import ops
from sepconv.ops import BACKENDS, BackendUnavailableError, resolve_backend, separable_local_conv
from sepconv.ops import cpu as cpu_ops
from sepconv.ops.reference import separable_local_conv as reference_conv
from sepconv.ops.reference import separable_local_conv_naive

needs_kernel = pytest.mark.skipif(
    not cpu_ops.cpu_kernel_available(),
    reason=f"the CPU kernel does not build here: {cpu_ops.cpu_kernel_error()}",
)


# Widths below, at and above the 16-pixel block (with an overlapping last block), channel
# counts that use every register-block size (1..4 and 4 + 1), even and odd kernels.
SHAPES = [
    (1, 3, 5, 7, 3),
    (2, 4, 6, 20, 5),
    (1, 1, 3, 16, 1),
    (2, 2, 4, 17, 4),
    (1, 5, 3, 33, 5),
    (1, 3, 2, 35, 51),
]


@needs_kernel
@pytest.mark.parametrize(("batch", "channels", "height", "width", "kernel"), SHAPES)
def test_cpu_forward_matches_naive_loop_float64(batch, channels, height, width, kernel):
    frame, vertical, horizontal = local_conv_inputs(batch, channels, height, width, kernel)
    expected = separable_local_conv_naive(frame, vertical, horizontal)
    actual = cpu_ops.forward(frame, vertical, horizontal)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


@needs_kernel
@pytest.mark.parametrize(("batch", "channels", "height", "width", "kernel"), SHAPES)
def test_cpu_forward_matches_reference_float32(batch, channels, height, width, kernel):
    frame, vertical, horizontal = local_conv_inputs(
        batch, channels, height, width, kernel, torch.float32
    )
    expected = reference_conv(frame, vertical, horizontal)
    actual = separable_local_conv(frame, vertical, horizontal, backend="cpu")
    assert actual.dtype == torch.float32
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


@needs_kernel
def test_cpu_forward_at_sepconv_scale_matches_reference():
    # Kernels like a trained network's (non-negative, summing to about one), K = 51.
    generator = torch.Generator().manual_seed(1)
    frame = torch.rand(1, 3, 40 + 50, 70 + 50, generator=generator)
    vertical = torch.rand(1, 51, 40, 70, generator=generator) / 25.5
    horizontal = torch.rand(1, 51, 40, 70, generator=generator) / 25.5
    expected = reference_conv(frame, vertical, horizontal)
    actual = cpu_ops.separable_local_conv_cpu(frame, vertical, horizontal)
    assert (actual - expected).abs().max().item() < 1e-6


@needs_kernel
def test_cpu_backward_matches_reference():
    inputs = local_conv_inputs(2, 3, 5, 19, 5, torch.float32, seed=3)
    grad = torch.randn(2, 3, 5, 19, generator=torch.Generator().manual_seed(4))
    results = []
    for function in (reference_conv, cpu_ops.separable_local_conv_cpu):
        leaves = [tensor.clone().requires_grad_(True) for tensor in inputs]
        function(*leaves).backward(grad)
        results.append([leaf.grad for leaf in leaves])
    for expected, actual in zip(*results, strict=True):
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("batch", "channels", "height", "width", "kernel"), SHAPES)
def test_cpu_kernel_gradients_match_reference(batch, channels, height, width, kernel, dtype):
    from sepconv.ops import reference

    frame, vertical, horizontal = local_conv_inputs(batch, channels, height, width, kernel, dtype)
    grad = torch.randn(batch, channels, height, width, dtype=dtype)
    compiled = cpu_ops.backward_kernels(grad, frame, vertical, horizontal)
    assert compiled is not None
    _, expected_vertical, expected_horizontal = reference.backward(
        grad, frame, vertical, horizontal, (False, True, True)
    )
    tolerance = 1e-12 if dtype == torch.float64 else 2e-5
    for actual, expected in zip(compiled, (expected_vertical, expected_horizontal), strict=True):
        scale = expected.abs().max().clamp_min(1.0)
        assert (actual - expected).abs().max() <= tolerance * scale


@needs_kernel
def test_cpu_kernel_gradients_do_not_depend_on_the_thread_count():
    frame, vertical, horizontal = local_conv_inputs(2, 3, 7, 40, 5, torch.float32, seed=9)
    grad = torch.randn(2, 3, 7, 40)
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(cpu_ops.backward_kernels(grad, frame, vertical, horizontal))
    finally:
        torch.set_num_threads(previous)
    for other in results[1:]:
        for actual, expected in zip(other, results[0], strict=True):
            assert torch.equal(actual, expected)


@needs_kernel
@pytest.mark.parametrize("kernel", [1, 3, 4])
def test_cpu_gradcheck_float64(kernel):
    frame, vertical, horizontal = local_conv_inputs(2, 2, 3, 17, kernel, seed=kernel)
    for tensor in (frame, vertical, horizontal):
        tensor.requires_grad_(True)
    assert torch.autograd.gradcheck(cpu_ops.separable_local_conv_cpu, (frame, vertical, horizontal))


@needs_kernel
def test_cpu_backward_only_computes_requested_gradients():
    frame, vertical, horizontal = local_conv_inputs(1, 3, 4, 4, 3)
    horizontal.requires_grad_(True)
    separable_local_conv(frame, vertical, horizontal, backend="cpu").sum().backward()
    assert horizontal.grad is not None and frame.grad is None and vertical.grad is None


@needs_kernel
def test_cpu_accepts_non_contiguouslocal_conv_inputs():
    frame, vertical, horizontal = local_conv_inputs(1, 3, 6, 18, 3, torch.float32)
    expected = reference_conv(frame, vertical, horizontal)
    frame_cl = frame.contiguous(memory_format=torch.channels_last)
    wide = torch.cat([vertical, vertical], dim=3)[..., :18]  # a strided view
    actual = cpu_ops.forward(frame_cl, wide, horizontal)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


@needs_kernel
def test_cpu_result_does_not_depend_on_the_thread_count():
    frame, vertical, horizontal = local_conv_inputs(2, 3, 7, 21, 5, torch.float32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = cpu_ops.forward(frame, vertical, horizontal)
        torch.set_num_threads(3)
        several = cpu_ops.forward(frame, vertical, horizontal)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(single, several)


def test_other_dtypes_fall_back_to_the_reference_forward():
    frame, vertical, horizontal = local_conv_inputs(1, 3, 3, 17, 3, torch.bfloat16)
    expected = reference_conv(frame, vertical, horizontal)
    assert torch.equal(cpu_ops.forward(frame, vertical, horizontal), expected)


@needs_kernel
def test_dispatch_reaches_the_cpu_kernel(monkeypatch):
    calls = []

    def spy(name, original):
        def wrapped(*args):
            calls.append(name)
            return original(*args)

        return wrapped

    monkeypatch.setattr(cpu_ops, "forward", spy("forward", cpu_ops.forward))
    monkeypatch.setattr(
        cpu_ops, "separable_local_conv_cpu", spy("autograd", cpu_ops.separable_local_conv_cpu)
    )
    frame, vertical, horizontal = local_conv_inputs(1, 3, 3, 17, 3, torch.float32)
    separable_local_conv(frame, vertical, horizontal, backend="cpu")  # through the custom op
    assert calls == ["forward"]
    vertical.requires_grad_(True)
    separable_local_conv(frame, vertical, horizontal, backend="cpu")
    assert calls[1] == "autograd"  # (whose forward then calls the compiled forward)
    assert resolve_backend("cpu", "cpu") == "cpu"


def test_backend_is_listed_and_refuses_other_devices():
    assert "cpu" in BACKENDS
    with pytest.raises(BackendUnavailableError, match="CPU tensors"):
        resolve_backend("cuda", "cpu")
    # auto keeps the reference op on CPU; the Interpolator's optimize=True opts in.
    assert resolve_backend("cpu", "auto") == "reference"


def test_failed_build_makes_the_backend_unavailable(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu_ops, "_library", None)
    monkeypatch.setattr(cpu_ops, "_load_error", None)
    monkeypatch.setenv(cpu_ops.CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    assert not cpu_ops.cpu_kernel_available()
    assert cpu_ops.cpu_kernel_error()
    with pytest.raises(BackendUnavailableError, match="C compiler"):
        resolve_backend("cpu", "cpu")
    # The forward still works, through the reference.
    frame, vertical, horizontal = local_conv_inputs(1, 2, 3, 17, 3, torch.float32)
    expected = reference_conv(frame, vertical, horizontal)
    assert torch.equal(cpu_ops.forward(frame, vertical, horizontal), expected)
    assert ops.BackendUnavailableError is BackendUnavailableError


@needs_kernel
@pytest.mark.parametrize(("batch", "channels", "height", "width", "kernel"), SHAPES)
def test_cpu_reads_channels_last_kernels_directly(batch, channels, height, width, kernel):
    """Kernels as a channels_last network returns them (B, H, W, K in memory): same result."""
    frame, vertical, horizontal = local_conv_inputs(batch, channels, height, width, kernel)
    expected = separable_local_conv_naive(frame, vertical, horizontal)
    vertical, horizontal = (
        tensor.contiguous(memory_format=torch.channels_last) for tensor in (vertical, horizontal)
    )
    actual = cpu_ops.forward(frame, vertical, horizontal)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


@needs_kernel
@pytest.mark.parametrize(("batch", "channels", "height", "width", "kernel"), SHAPES[1:])
def test_bfloat16_kernels_are_read_exactly_as_if_cast_first(batch, channels, height, width, kernel):
    frame, vertical, horizontal = local_conv_inputs(
        batch, channels, height, width, kernel, torch.float32
    )
    vertical, horizontal = (
        tensor.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        for tensor in (vertical, horizontal)
    )
    actual = cpu_ops.forward_bfloat16_kernels(frame, vertical, horizontal)
    if width < 16 or kernel == 1:  # (with K = 1 channels_last is also contiguous)
        assert actual is None  # not this path: the caller casts and uses forward()
        return
    expected = cpu_ops.forward(frame, vertical.float(), horizontal.float())
    assert actual is not None and torch.equal(actual, expected)


def _sliced_from_one_head(vertical, horizontal):
    """The two kernels as channel slices of one channels_last (B, 4K, H, W) tensor, the layout
    of a network whose single head predicts all four kernels."""
    kernel = vertical.shape[1]
    head = torch.cat([vertical, horizontal, horizontal, vertical], dim=1)
    head = head.contiguous(memory_format=torch.channels_last)
    return head[:, :kernel], head[:, kernel : 2 * kernel]


@needs_kernel
@pytest.mark.parametrize(("batch", "channels", "height", "width", "kernel"), SHAPES[1:])
def test_kernels_sliced_from_one_channels_last_head_are_read_in_place(
    batch, channels, height, width, kernel
):
    frame, vertical, horizontal = local_conv_inputs(batch, channels, height, width, kernel)
    expected = separable_local_conv_naive(frame, vertical, horizontal)
    sliced = _sliced_from_one_head(vertical, horizontal)
    stride = cpu_ops._pixel_stride(*sliced)
    assert stride == (4 * kernel if kernel > 1 else None)  # read in place, no copies
    torch.testing.assert_close(cpu_ops.forward(frame, *sliced), expected, rtol=1e-12, atol=1e-12)
    frame32 = frame.float()
    bfloat = _sliced_from_one_head(vertical.to(torch.bfloat16), horizontal.to(torch.bfloat16))
    actual = cpu_ops.forward_bfloat16_kernels(frame32, *bfloat)
    if width < 16 or kernel == 1:
        assert actual is None
        return
    assert actual is not None and cpu_ops._pixel_stride(*bfloat) == 4 * kernel
    assert torch.equal(actual, cpu_ops.forward(frame32, *(t.float() for t in bfloat)))


def test_bfloat16_kernel_path_refuses_what_it_does_not_handle():
    frame, vertical, horizontal = local_conv_inputs(1, 3, 4, 20, 3, torch.float32)
    contiguous = [tensor.to(torch.bfloat16) for tensor in (vertical, horizontal)]
    assert cpu_ops.forward_bfloat16_kernels(frame, *contiguous) is None
    assert cpu_ops.forward_bfloat16_kernels(frame, vertical, horizontal) is None
    if cpu_ops.cpu_kernel_available():
        channels_last = [t.contiguous(memory_format=torch.channels_last) for t in contiguous]
        with pytest.raises(ValueError, match="do not fit"):
            cpu_ops.forward_bfloat16_kernels(frame[:, :, 1:], *channels_last)


@needs_kernel
@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_cpu_kernel_works_in_a_forked_child():
    """A forked child (a DataLoader worker, say) makes its own thread pool instead of hanging."""
    import os

    frame, vertical, horizontal = local_conv_inputs(1, 3, 8, 20, 3, torch.float32)
    expected = cpu_ops.forward(frame, vertical, horizontal)  # the parent's pool exists now
    threads = torch.get_num_threads()
    pid = os.fork()
    if pid == 0:  # child: exit 0 only if the result is right
        status = 1
        try:
            torch.set_num_threads(max(2, threads))
            status = 0 if torch.equal(cpu_ops.forward(frame, vertical, horizontal), expected) else 1
        finally:
            os._exit(status)
    import signal
    import time

    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0


@needs_kernel
@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 2),
    channels=st.integers(1, 5),
    height=st.integers(1, 12),
    width=st.integers(1, 40),
    kernel=st.integers(1, 7),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    channels_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_cpu_random_shapes_match_reference(
    batch, channels, height, width, kernel, dtype, channels_last, seed
):
    frame, vertical, horizontal = local_conv_inputs(
        batch, channels, height, width, kernel, dtype, seed
    )
    if channels_last:  # the layout the Interpolator's fast path hands over
        vertical = vertical.contiguous(memory_format=torch.channels_last)
        horizontal = horizontal.contiguous(memory_format=torch.channels_last)
    expected = reference_conv(frame, vertical, horizontal)
    actual = separable_local_conv(frame, vertical, horizontal, backend="cpu")
    assert actual.dtype == dtype and actual.shape == (batch, channels, height, width)
    tolerance = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(actual, expected, rtol=tolerance, atol=tolerance)
