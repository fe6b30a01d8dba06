"""The custom operator behind gradient-free calls: same results, traceable by torch.compile."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_CONFIG_KWARGS, local_conv_inputs

from sepconv.models.sepconv_net import SepConvConfig, SepConvNet
from sepconv.ops import reference, separable_local_conv
from sepconv.ops.cpu import cpu_kernel_available
from sepconv.ops.library import separable_local_conv_forward

pytestmark = pytest.mark.usefixtures("one_thread")
CPU_BACKENDS = ["reference", "auto"] + (["cpu"] if cpu_kernel_available() else [])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_gradient_free_calls_match_the_reference(backend):
    frame, vertical, horizontal = local_conv_inputs(2, 3, 5, 19, 5)
    with torch.no_grad():
        result = separable_local_conv(frame, vertical, horizontal, backend=backend)
    torch.testing.assert_close(result, reference.forward(frame, vertical, horizontal))


def test_operator_passes_opcheck():
    frame, vertical, horizontal = local_conv_inputs(1, 3, 4, 6, 3, torch.float32)
    for backend in CPU_BACKENDS:
        concrete = "reference" if backend == "auto" else backend
        torch.library.opcheck(separable_local_conv_forward, (frame, vertical, horizontal, concrete))


def test_calls_that_need_gradients_keep_autograd():
    frame, vertical, horizontal = local_conv_inputs(1, 3, 4, 6, 3)
    vertical.requires_grad_(True)
    separable_local_conv(frame, vertical, horizontal).sum().backward()
    assert vertical.grad is not None and torch.isfinite(vertical.grad).all()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_the_whole_network_compiles_as_one_graph(backend):
    torch.manual_seed(0)
    config = SepConvConfig(
        **TINY_CONFIG_KWARGS, input_normalization=True, kernel_normalization=True
    )
    model = SepConvNet(config).eval()
    first, second = torch.rand(2, 1, 3, 32, 64)
    compiled = torch.compile(
        lambda a, b: model(a, b, backend=backend), backend="eager", fullgraph=True
    )
    with torch.no_grad():
        torch.testing.assert_close(compiled(first, second), model(first, second))


def test_eager_inference_leaves_torch_dynamo_unimported():
    """The custom operator's first call imports torch._dynamo (over a second); eager inference
    must not pay that, so a one-shot command starts fast."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from sepconv.ops import separable_local_conv\n"
        "frame, kernels = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 6, 6)\n"
        "with torch.no_grad():\n"
        "    separable_local_conv(frame, kernels, kernels, backend='reference')\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "False"
