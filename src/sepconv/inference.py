"""The Interpolator: one object that turns two frames into the frame halfway between them.

It owns everything around the network: device and precision, conversion of user inputs
(numpy, PIL, tensors; grayscale, alpha, 16-bit), padding to the sizes the network needs, and
tiling of frames too large to run at once. The CLI commands are thin layers on top of it.

Example::

    from sepconv import Interpolator
    interpolator = Interpolator.from_weights("network-l1.pytorch")  # CPU fast path by default
    middle = interpolator.interpolate(first, second)  # numpy HxWx3 uint8 in, same kind out
    # the plain float32 reference path (what the CLI's --exact runs):
    reference = Interpolator.from_weights("network-l1.pytorch", optimize=False)

On CPUs the default (``optimize=True``, as the CLI) runs a fused inference copy of the network
and the compiled local convolution; ``optimize=False`` keeps the plain PyTorch path.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from sepconv.errors import InputError, SepconvError
from sepconv.models.sepconv_net import NETWORK_STRIDE, pad_to_multiple
from sepconv.models.synthesis import Kernels, KernelSynthesisModel, joint_statistics
from sepconv.ops import Backend

if TYPE_CHECKING:
    from PIL import Image

Padding = Literal["improved", "paper"]
Precision = Literal["float32", "float16", "bfloat16", "auto"]
PADDINGS: tuple[str, ...] = ("improved", "paper")
# The precision of every entry point (the Python API and each command) unless asked otherwise:
# float32. It gives the same frames on every CPU, where "auto" depends on the instruction set;
# bfloat16 scores the same on Middlebury but changes pixels by up to 2-3 levels, and makes the
# default model only about 1.2x faster (its DIS flow and warps do not change; sepconv-l1 1.7x).
# docs/inference.md, "Precision", from benchmarks/precision.py.
DEFAULT_PRECISION: Precision = "float32"
PRECISIONS: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
# The authors pad the network input to multiples of 128 ("more than necessary": 32 would do);
# we keep 128 so their checkpoints give their exact results.
PAD_MULTIPLE = 128
# torch.compile backend of Interpolator(compile=True); tests use "eager" (tracing only).
COMPILE_BACKEND = "inductor"
DEFAULT_TILE_MARGIN = 128
MIN_TILE_SIZE = 4 * NETWORK_STRIDE
# Tile sizes tried, in order, when a whole-frame pass runs out of GPU memory.
OUT_OF_MEMORY_TILE_SIZES = (512, 256)


class OutOfMemoryFallbackWarning(UserWarning):
    """A pass ran out of GPU memory and is being retried in tiles (shown once per Interpolator)."""


def _free_gpu_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_bfloat16() -> bool:
    """True when this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX) for oneDNN."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - older or unusual builds
        pass
    try:  # pragma: no cover - fallback
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    except OSError:  # pragma: no cover
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags  # pragma: no cover


def resolve_precision(precision: str, device: str | torch.device, bit_depth: int = 8) -> str:
    """``auto`` -> ``bfloat16`` on CPUs with native bfloat16, else ``float32``; others as given.

    ``auto`` stays ``float32`` on CUDA (pass ``bfloat16``/``float16`` explicitly there) and for
    outputs of more than 8 bits (`bit_depth`): bfloat16 kernels carry 8 significant bits, so
    their error (measured up to about 1/4 of an 8-bit level, ``benchmarks/bench_cpu.py``) is
    invisible at 8 bits but many 16-bit levels.
    """
    if precision != "auto":
        return precision
    device = torch.device(device)
    native = device.type == "cpu" and cpu_has_bfloat16()
    return "bfloat16" if native and bit_depth <= 8 else "float32"


class _FusedConv2d(nn.Module):
    """A Conv2d (and the ReLU after it, if any) as one oneDNN call, weights in `dtype`.

    Uses ``torch.ops.mkldnn._convolution_pointwise`` (what Inductor emits for conv + ReLU on
    CPU): the ReLU is applied while the output is still in cache instead of in another pass.
    Falls back to ``conv2d`` + ``relu`` where that op is missing. Inputs are cast to `dtype`.
    """

    def __init__(self, conv: nn.Conv2d, relu: bool, dtype: torch.dtype, fused: bool) -> None:
        super().__init__()
        weight = conv.weight.detach().to(dtype, copy=True)
        self.register_buffer("weight", weight.contiguous(memory_format=torch.channels_last))
        bias = conv.bias.detach().to(dtype, copy=True) if conv.bias is not None else None
        self.register_buffer("bias", bias)
        self.padding = list(conv.padding)  # type: ignore[arg-type]
        self.stride = list(conv.stride)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.relu = relu
        self.fused = fused

    def forward(self, x: Tensor) -> Tensor:
        x = x.to(self.weight.dtype)
        if self.fused:
            return torch.ops.mkldnn._convolution_pointwise(
                x,
                self.weight,
                self.bias,
                self.padding,
                self.stride,
                self.dilation,
                self.groups,
                "relu" if self.relu else "none",
                [],
                "",
            )
        out = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        return F.relu(out) if self.relu else out


def _pointwise_conv_works(dtype: torch.dtype) -> bool:
    """Whether oneDNN's fused conv + ReLU runs here in `dtype` (checked on a tiny input)."""
    try:
        conv = nn.Conv2d(2, 2, 3, padding=1)
        x = torch.rand(1, 2, 4, 4).to(dtype).contiguous(memory_format=torch.channels_last)
        fused = _FusedConv2d(conv, True, dtype, fused=True)(x)
        plain = _FusedConv2d(conv, True, dtype, fused=False)(x)
        return bool(torch.allclose(fused.float(), plain.float(), atol=5e-2))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def optimized_cpu_copy(
    model: KernelSynthesisModel, dtype: torch.dtype = torch.float32
) -> KernelSynthesisModel:
    """An inference-only copy of `model` for CPUs: weights in `dtype`, channels_last layout,
    every conv (+ ReLU) one oneDNN call. Same forward code, so same results to rounding.

    The copy is a snapshot: later changes to `model`'s weights do not reach it.
    """
    fused = _pointwise_conv_works(dtype)
    # Copy the modules but not the float32 weights (the original's tensors are shared until
    # each is replaced below by a converted copy, so the original is never modified).
    shared = {id(tensor): tensor for tensor in (*model.parameters(), *model.buffers())}
    optimized = copy.deepcopy(model, shared).eval()
    for module in optimized.modules():
        if not isinstance(module, nn.Sequential):
            continue
        layers = list(module)
        for index, layer in enumerate(layers):
            if not isinstance(layer, nn.Conv2d):
                continue
            relu = index + 1 < len(layers) and isinstance(layers[index + 1], nn.ReLU)
            module[index] = _FusedConv2d(layer, relu, dtype, fused)
            if relu:
                module[index + 1] = nn.Identity()
    for module in optimized.modules():
        for name, parameter in list(module._parameters.items()):
            if parameter is not None and id(parameter) in shared:
                converted = parameter.detach().to(dtype, copy=True)
                module._parameters[name] = nn.Parameter(converted, requires_grad=False)
        for name, buffer in list(module._buffers.items()):
            if buffer is not None and id(buffer) in shared:
                floating = buffer.is_floating_point()
                module._buffers[name] = buffer.to(dtype, copy=True) if floating else buffer.clone()
    return optimized.to(memory_format=torch.channels_last)  # type: ignore[return-value]


@dataclass(frozen=True)
class _FrameKind:
    """How a user's frame looked, so the result can be handed back the same way."""

    container: str  # "numpy", "pil", "tensor"
    dtype: Any  # numpy dtype, or torch dtype for tensors
    channels: int  # 1 (gray), 2 (gray + alpha), 3 (RGB), 4 (RGBA)
    batched: bool = False  # tensors only: (B, C, H, W) instead of (C, H, W)
    pil_mode: str | None = None
    ndim: int = 3  # numpy: 2 for an HxW gray array, returned as HxW


def _numpy_to_float(array: np.ndarray) -> tuple[np.ndarray, _FrameKind]:
    """HxW or HxWxC array (uint8, uint16 or float in [0, 1]) -> float32 HxWxC, C in {1..4}."""
    ndim = array.ndim
    if ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"expected an HxW or HxWxC image with C in 1..4, got shape {array.shape}")
    kind = _FrameKind("numpy", array.dtype, array.shape[2], ndim=ndim)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0, kind
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0, kind
    if np.issubdtype(array.dtype, np.floating):
        return np.clip(array.astype(np.float32), 0.0, 1.0), kind
    raise InputError(f"unsupported image dtype {array.dtype} (use uint8, uint16 or float)")


def _pil_to_float(image: Image.Image) -> tuple[np.ndarray, _FrameKind]:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        array = np.asarray(image).astype(np.uint16)
    elif mode in ("RGB", "RGBA", "L", "LA"):
        array = np.asarray(image)
    elif mode == "I":
        array = np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    else:
        has_alpha = "A" in mode or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        array = np.asarray(image)
        mode = image.mode
    floats, kind = _numpy_to_float(array)
    return floats, _FrameKind("pil", kind.dtype, kind.channels, pil_mode=mode, ndim=kind.ndim)


def _from_float(frame: np.ndarray, kind: _FrameKind) -> Any:
    """float32 HxWxC in [0, 1] -> the container/dtype/channels described by `kind`."""
    if kind.channels == 1 and kind.ndim == 2:
        frame = frame[:, :, 0]
    if kind.dtype == np.uint8:
        result: np.ndarray = np.rint(frame * 255.0).astype(np.uint8)
    elif kind.dtype == np.uint16:
        result = np.rint(frame * 65535.0).astype(np.uint16)
    else:
        result = frame.astype(kind.dtype)
    if kind.container == "pil":
        from PIL import Image

        if kind.pil_mode and kind.pil_mode.startswith("I"):
            return Image.fromarray(result.astype(np.uint16))
        return Image.fromarray(result)
    return result


def _to_network_channels(frame: Tensor) -> Tensor:
    """(B, C, H, W), C in 1..4 -> (B, 3 or 4, H, W): gray expands to RGB, alpha stays last."""
    channels = frame.shape[1]
    if channels == 1:
        return frame.expand(-1, 3, -1, -1)
    if channels == 2:
        return torch.cat([frame[:, :1].expand(-1, 3, -1, -1), frame[:, 1:]], dim=1)
    return frame


def _from_network_channels(frame: Tensor, channels: int) -> Tensor:
    """Inverse of :func:`_to_network_channels` (gray is the mean of the three colours)."""
    if channels == 1:
        return frame[:, :3].mean(dim=1, keepdim=True)
    if channels == 2:
        return torch.cat([frame[:, :3].mean(dim=1, keepdim=True), frame[:, 3:]], dim=1)
    return frame


def _tile_windows(
    length: int, window: int, margin: int, align: int = 1
) -> list[tuple[int, int, int]]:
    """Split [0, length) into windows of size `window` whose cores tile the axis.

    Returns (window_start, core_start, core_end) triples: the window is
    [window_start, window_start + window) and its result is used on [core_start, core_end),
    which lies at least `margin` pixels inside the window except at the axis' own ends.
    Window starts are multiples of `align`, except a last window flush with the end when
    `length - window` is not. Requires window >= 2 * margin + align.
    """
    if length <= window:
        return [(0, 0, length)]
    if window < 2 * margin + align:
        raise ValueError(f"window {window} must be at least 2 * margin + align")
    windows = []
    core_start = 0
    while core_start < length:
        window_start = max(core_start - margin, 0)
        window_start = min(window_start - window_start % align, length - window)
        core_end = window_start + window - margin
        if window_start + window >= length:
            core_end = length  # this window reaches the end: use it to the end
        windows.append((window_start, core_start, core_end))
        core_start = core_end
    return windows


# Self-ensembling: (dimensions to flip, swap the frames' order), in the order they are added.
# Each variant is an equally valid view of the same pair; averaging them cancels part of the
# network's asymmetric errors (SepConv++ reports gains of tenths of a dB).
ENSEMBLE_VARIANTS: tuple[tuple[tuple[int, ...], bool], ...] = (
    ((), False),
    ((), True),
    ((-1,), False),
    ((-1,), True),
    ((-2,), False),
    ((-2,), True),
    ((-2, -1), False),
    ((-2, -1), True),
)
ENSEMBLE_SIZES = (1, 2, 4, 8)


class Interpolator:
    """Interpolates the frame halfway between two frames with a SepConv network.

    Args:
        model: the network (float32 weights; moved to `device`).
        device: "cpu", "cuda", "cuda:1"...; default CUDA when available, else CPU.
        precision: "float32" (the default, :data:`DEFAULT_PRECISION`), or
            "float16"/"bfloat16" autocast for the network (the local convolution always runs
            in float32), or "auto": "bfloat16" on CPUs with native bfloat16 (AVX512-BF16/AMX),
            "float32" elsewhere (see :func:`resolve_precision`).
        padding: "improved" (pad right/bottom to a multiple of 128; the authors' default) or
            "paper" (also 25 pixels left/top, as in the paper's evaluation).
        tile_size: run frames larger than this (in either dimension) as overlapping windows of
            this size; None runs whole frames. docs/inference.md (Tiling) gives the difference
            this makes (measured by ``benchmarks/tiling.py``). With None, a whole-frame pass
            that runs out of GPU memory is retried in 512-, then 256-pixel tiles (with an
            :class:`OutOfMemoryFallbackWarning`, once), and later frames keep that tile size.
        tile_margin: context kept around each window's used core (at most a quarter of the
            window is spent on it).
        backend: local-convolution backend, see :func:`sepconv.ops.separable_local_conv`.
        ensemble: average this many symmetric variants of the pass (self-ensembling): 1
            (off), 2 (the frames in both temporal orders), 4 (also mirrored left-right) or 8
            (also upside down); costs that many passes. See :data:`ENSEMBLE_VARIANTS`.
        compile: compile the whole-canvas pass (network, local convolution, normalisation)
            with ``torch.compile(fullgraph=True, dynamic=False)``, once per canvas size (the
            first frame of a size pays the compile, seconds to minutes); meant for CUDA and
            long videos. On the CPU it replaces ``optimize``'s inference copy of the network.
            Tiled passes stay eager.
        optimize: CPU speed-ups, on by default as in the CLI (ignored on other devices): the
            network runs from an inference copy of the model (see :func:`optimized_cpu_copy`:
            channels_last, conv + ReLU fused in oneDNN, bfloat16 weights when precision is
            "bfloat16" instead of autocast), and ``backend="auto"`` uses the compiled ``cpu``
            local convolution where it builds. In float32 results change only at float
            rounding. The copy is a snapshot of the weights taken here: build a new
            Interpolator after changing them (or pass False). False runs the plain PyTorch
            path, which reads the model's current weights (in float32: the reference path,
            the CLI's ``--exact``).
    """

    def __init__(
        self,
        model: KernelSynthesisModel,
        *,
        device: str | torch.device | None = None,
        precision: Precision = DEFAULT_PRECISION,
        padding: Padding = "improved",
        tile_size: int | None = None,
        tile_margin: int = DEFAULT_TILE_MARGIN,
        backend: Backend = "auto",
        ensemble: int = 1,
        compile: bool = False,  # noqa: A002 - the torch.compile option of the same name
        optimize: bool = True,
    ) -> None:
        if ensemble not in ENSEMBLE_SIZES:
            raise ValueError(f"ensemble must be one of {ENSEMBLE_SIZES}, got {ensemble!r}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if precision not in PRECISIONS and precision != "auto":
            raise ValueError(f"precision must be one of {(*PRECISIONS, 'auto')}, got {precision!r}")
        if tile_size is not None and tile_size < MIN_TILE_SIZE:
            raise ValueError(f"tile_size must be at least {MIN_TILE_SIZE}, got {tile_size}")
        self._options: dict[str, Any] = {
            "device": device,
            "precision": precision,
            "padding": padding,
            "tile_size": tile_size,
            "tile_margin": tile_margin,
            "backend": backend,
            "ensemble": ensemble,
            "compile": compile,
            "optimize": optimize,
        }
        self.device = torch.device(device) if device is not None else default_device()
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise InputError("--device cuda was asked for, but no CUDA device is available")
        self.model = model.to(self.device).eval()
        self.precision = resolve_precision(precision, self.device)
        self.padding = padding
        self.tile_size = tile_size
        self.tile_margin = tile_margin
        self.backend = backend
        self.ensemble = ensemble
        # Where the weights came from (set by from_weights; the digest when the registry
        # checked it), for reports.
        self.weights_path: Path | None = None
        self.weights_sha256: str | None = None
        self.optimize = optimize and self.device.type == "cpu"
        self._fast_model: KernelSynthesisModel | None = None
        if self.optimize and not compile and self.precision in ("float32", "bfloat16"):
            self._fast_model = optimized_cpu_copy(self.model, PRECISIONS[self.precision])
        self._out_of_memory_tile: int | None = None  # set by the out-of-memory fallback
        self._synthesis_backend: Backend = backend
        if self.optimize and backend == "auto":
            from sepconv.ops.cpu import cpu_kernel_available

            if cpu_kernel_available():
                self._synthesis_backend = "cpu"
        self._direct_bfloat16 = (
            self._fast_model is not None
            and self.precision == "bfloat16"
            and self._synthesis_backend == "cpu"
        )
        self._whole_canvas = self._whole_canvas_eager
        if compile:
            self._whole_canvas = torch.compile(
                self._whole_canvas_eager, fullgraph=True, dynamic=False, backend=COMPILE_BACKEND
            )

    @classmethod
    def from_weights(
        cls, weights: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> Interpolator:
        """Build from a registry name or weights file (None: the bundled default model)."""
        from sepconv.models.checkpoint import load_weights
        from sepconv.weights import resolve_weights

        path, spec = resolve_weights(weights)
        interpolator = cls(load_weights(path).model, **kwargs)
        interpolator.weights_path = path
        interpolator.weights_sha256 = spec.sha256 if spec is not None else None
        return interpolator

    def with_model(self, model: KernelSynthesisModel) -> Interpolator:
        """A new Interpolator with the same settings around another network (e.g. one adapted
        to a clip by :func:`sepconv.engine.adapt.adapt`)."""
        return type(self)(model, **self._options)

    # -- public API ------------------------------------------------------------------------

    @property
    def takes_time(self) -> bool:
        """Whether the model makes frames at any time t (else only the middle one)."""
        return bool(getattr(self.model, "TAKES_TIME", False))

    def interpolate(self, first: Any, second: Any, time: float = 0.5) -> Any:
        """The frame at ``time`` (default the middle one), returned in the kind of `first`.

        Accepts numpy arrays (HxW, HxWxC with C 1-4; uint8, uint16 or float in [0, 1]),
        PIL images (any mode; 16-bit kept), or tensors ((C, H, W) or (B, C, H, W) floats in
        [0, 1]). Grayscale is run as RGB and returned as grayscale; an alpha channel is
        interpolated with the same per-pixel kernels as the colours.

        ``time`` in [0, 1] is the output's place between the frames (0 and 1 give back the
        inputs themselves); other times than 0, 1/2 and 1 need a model that takes t
        (:attr:`takes_time`).

        Raises:
            InputError: the two frames differ in size, or are not images.
            ValueError: a time outside [0, 1], or inside and other than 1/2 for a middle-frame
                model.
        """
        if isinstance(first, Tensor) and isinstance(second, Tensor):
            return self._interpolate_user_tensor(first, second, time)
        first_float, kind = self._as_float_array(first)
        second_float, _ = self._as_float_array(second)
        if first_float.shape[:2] != second_float.shape[:2]:
            raise InputError(
                f"frames differ in size: {first_float.shape[1]}x{first_float.shape[0]} and "
                f"{second_float.shape[1]}x{second_float.shape[0]}"
            )
        channels = _common_channels(first_float.shape[2], second_float.shape[2])
        first_tensor = self._to_tensor(_pad_channels(first_float, channels))
        second_tensor = self._to_tensor(_pad_channels(second_float, channels))
        middle = self.interpolate_tensor(first_tensor, second_tensor, time)
        result = middle[0].permute(1, 2, 0).float().cpu().numpy()
        return _from_float(result, replace(kind, channels=channels))

    @torch.inference_mode()
    def interpolate_tensor(self, first: Tensor, second: Tensor, time: float = 0.5) -> Tensor:
        """Core entry point: (B, C, H, W) float frames in [0, 1] -> the frame at ``time``
        (default the middle), (B, C, H, W) in [0, 1].

        C may be 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA). Any H, W >= 1.
        """
        time = self._checked_time(time)
        if first.shape != second.shape:
            raise InputError(
                f"frames differ in size: {tuple(first.shape)} and {tuple(second.shape)}"
            )
        if first.dim() != 4 or first.shape[1] not in (1, 2, 3, 4):
            raise InputError(
                f"expected (B, C, H, W) frames with C in 1..4, got {tuple(first.shape)}"
            )
        if time in (0.0, 1.0):  # the frame at either end is that input itself, exactly
            return (first if time == 0.0 else second).to(self.device, torch.float32).clamp(0, 1)
        channels = first.shape[1]
        first = _to_network_channels(first.to(self.device, torch.float32))
        second = _to_network_channels(second.to(self.device, torch.float32))
        middle = self._run_ensemble(first, second, time)
        return _from_network_channels(middle.clamp_(0.0, 1.0), channels)

    def _checked_time(self, time: float) -> float:
        time = float(time)
        if not 0.0 <= time <= 1.0:
            raise ValueError(f"time must be between 0 and 1, got {time}")
        if time not in (0.0, 0.5, 1.0) and not self.takes_time:
            raise ValueError(
                f"this model makes only the middle frame (time 0.5), not time {time:g}"
            )
        return time

    def _run_ensemble(self, first: Tensor, second: Tensor, time: float = 0.5) -> Tensor:
        """Mean of the first ``ensemble`` variants' results, each mapped back (see
        :data:`ENSEMBLE_VARIANTS`); the plain pass when ``ensemble`` is 1."""
        total: Tensor | None = None
        for flip_dims, swap in ENSEMBLE_VARIANTS[: self.ensemble]:
            one, two = (second, first) if swap else (first, second)
            if flip_dims:
                one, two = one.flip(flip_dims), two.flip(flip_dims)
            middle = self._run_with_memory_fallback(one, two, 1.0 - time if swap else time)
            if flip_dims:
                middle = middle.flip(flip_dims)
            total = middle if total is None else total.add_(middle)
        assert total is not None
        return total.div_(self.ensemble) if self.ensemble > 1 else total

    # -- internals -------------------------------------------------------------------------

    def _run_with_memory_fallback(self, first: Tensor, second: Tensor, time: float = 0.5) -> Tensor:
        """:meth:`_run_padded`; when a whole-frame pass runs out of GPU memory (and tiling is
        off), retry in tiles of 512, then 256 pixels (warning once), and keep the size that
        worked for later calls. Raises SepconvError (suggesting ``--tile``) if none fits."""
        height, width = first.shape[-2:]
        tile = self.tile_size or self._out_of_memory_tile
        try:
            return self._run_padded(first, second, tile, time)
        except torch.OutOfMemoryError:
            _free_gpu_memory()
            if self.tile_size is not None:
                raise SepconvError(
                    f"out of GPU memory at {width}x{height} in {tile}-pixel tiles; "
                    "try a smaller --tile (or --device cpu)"
                ) from None
        for size in OUT_OF_MEMORY_TILE_SIZES:
            if size >= max(height, width) or (tile is not None and size >= tile):
                continue  # not tiled at this size, or already failed: the pass would fail again
            if self._out_of_memory_tile is None:
                warnings.warn(
                    f"out of GPU memory at {width}x{height}: retrying in {size}-pixel tiles",
                    OutOfMemoryFallbackWarning,
                    stacklevel=3,
                )
            self._out_of_memory_tile = size
            try:
                return self._run_padded(first, second, size, time)
            except torch.OutOfMemoryError:
                _free_gpu_memory()
        raise SepconvError(
            f"out of GPU memory at {width}x{height}, even in "
            f"{min(OUT_OF_MEMORY_TILE_SIZES)}-pixel tiles; try --tile {MIN_TILE_SIZE}, "
            "a smaller --batch, or --device cpu"
        )

    def _as_float_array(self, image: Any) -> tuple[np.ndarray, _FrameKind]:
        if isinstance(image, np.ndarray):
            return _numpy_to_float(image)
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - pillow is a dependency
            Image = None  # noqa: N806
        if Image is not None and isinstance(image, Image.Image):
            return _pil_to_float(image)
        raise InputError(
            f"cannot interpolate a {type(image).__name__}: pass numpy arrays, PIL images or tensors"
        )

    def _to_tensor(self, frame: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].to(self.device)

    def _interpolate_user_tensor(self, first: Tensor, second: Tensor, time: float = 0.5) -> Tensor:
        batched = first.dim() == 4
        if first.dim() == 3:
            first, second = first[None], second[None]
        middle = self.interpolate_tensor(first, second, time).to(first.dtype)
        return middle if batched else middle[0]

    def _padding_amounts(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) replicate padding in the authors' two modes."""
        lead = self.model.kernel_size // 2 if self.padding == "paper" else 0
        right = pad_to_multiple(lead + width + lead, PAD_MULTIPLE) - width - lead
        bottom = pad_to_multiple(lead + height + lead, PAD_MULTIPLE) - height - lead
        return lead, right, lead, bottom

    def _run_padded(
        self, first: Tensor, second: Tensor, tile_size: int | None = None, time: float = 0.5
    ) -> Tensor:
        """Frames of any size: the model's whole-frame preparation (flow, once, on the real
        frame), every prepared input padded to the network's canvas, the network run whole or
        tiled (in windows of `tile_size`, default the Interpolator's), the result cropped
        back."""
        tile_size = tile_size if tile_size is not None else self.tile_size
        height, width = first.shape[-2:]
        left, right, top, bottom = self._padding_amounts(height, width)
        padding = [left, right, top, bottom]
        # Only models that take t get it (the others make the middle frame).
        timing = {"time": time} if self.takes_time else {}
        inputs = {
            name: F.pad(tensor, padding, mode="replicate")
            for name, tensor in self.model.prepare(first, second, **timing).items()
        }
        blended = self.model.blend_synthesis(inputs)  # kernels that would add nothing
        if blended is not None:
            middle = blended
        elif tile_size is not None and max(height, width) > tile_size:
            middle = self._run_tiled(inputs, tile_size)
        else:
            middle = self._whole_canvas(inputs)
        return middle[:, :, top : top + height, left : left + width]

    def _whole_canvas_eager(self, inputs: dict[str, Tensor]) -> Tensor:
        """Network and synthesis on whole padded canvases (what ``compile`` compiles)."""
        statistics = self._statistics(inputs)
        kernels = self._predict_kernels(inputs, statistics)
        return self._apply_kernels(
            self.model.pad_for_synthesis(inputs["first"]),
            self.model.pad_for_synthesis(inputs["second"]),
            kernels,
            statistics,
        )

    def _statistics(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor] | None:
        """Input-normalisation statistics of whole float32 canvases, shared by all tiles."""
        if not getattr(self.model.config, "input_normalization", False):
            return None
        return joint_statistics(inputs["first"][:, :3], inputs["second"][:, :3])

    def _apply_kernels(
        self,
        first_padded: Tensor,
        second_padded: Tensor,
        kernels: Kernels,
        statistics: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """The model's apply_kernels, or its bfloat16-kernel shortcut (same result, exactly).

        The shortcut reads a bfloat16 network's kernels as they are, in the compiled ``cpu``
        local convolution, instead of first casting them to 4 full-size float32 copies.
        """
        if self._direct_bfloat16 and kernels.vertical1.dtype == torch.bfloat16:
            from sepconv.ops.cpu import forward_bfloat16_kernels

            one = forward_bfloat16_kernels(first_padded, kernels.vertical1, kernels.horizontal1)
            two = forward_bfloat16_kernels(second_padded, kernels.vertical2, kernels.horizontal2)
            if one is not None and two is not None:
                return self.model.finish_synthesis(
                    one + two, first_padded, second_padded, kernels, statistics
                )
        kernels = Kernels(*(tensor.float() for tensor in astuple_shallow(kernels)))
        return self.model.apply_kernels(
            first_padded,
            second_padded,
            kernels,
            backend=self._synthesis_backend,
            statistics=statistics,
        )

    def _predict_kernels(
        self, inputs: dict[str, Tensor], statistics: tuple[Tensor, Tensor] | None = None
    ) -> Kernels:
        """Network pass on (a window of) the prepared canvases (multiples of 32); float32
        kernels (or, for :meth:`_apply_kernels`'s shortcut, the bfloat16 network's own)."""
        if self._fast_model is not None:
            dtype = PRECISIONS[self.precision]
            cast = {
                name: tensor.to(dtype).contiguous(memory_format=torch.channels_last)
                for name, tensor in inputs.items()
            }
            kernels = self._fast_model.kernels_for(cast, statistics=statistics)
            if self._direct_bfloat16:
                return kernels
            # Kept channels_last: the "cpu" local convolution reads that layout directly.
            return Kernels(*(tensor.float() for tensor in astuple_shallow(kernels)))
        autocast = torch.autocast(
            device_type=self.device.type,
            dtype=PRECISIONS[self.precision],
            enabled=self.precision != "float32",
        )
        with autocast:
            kernels = self.model.kernels_for(inputs, statistics=statistics)
        return Kernels(*(tensor.float() for tensor in astuple_shallow(kernels)))

    def _tile_margin_for(self, window: int) -> int:
        """Context kept around a window's core: tile_margin, at most a quarter of the window."""
        return min(self.tile_margin, window // 4)

    def _run_tiled(self, inputs: dict[str, Tensor], tile_size: int | None = None) -> Tensor:
        """Overlapping windows over the padded canvases; each pixel comes from one window's core.
        Every prepared input (frames, and for the flow-guided family the whole frame's flow
        and warps) is cut into the same windows.

        Windows start on the network's 32-pixel grid, so their pooling cells coincide with the
        whole canvas'; the local convolution reads real neighbouring pixels across window
        edges. What differs from a whole-canvas pass is only the network's context beyond
        each window, which the margin keeps far from the used core.
        """
        tile_size = tile_size if tile_size is not None else self.tile_size
        assert tile_size is not None
        window = max(NETWORK_STRIDE * 4, tile_size - tile_size % NETWORK_STRIDE)
        margin = self._tile_margin_for(window)
        first = inputs["first"]
        height, width = first.shape[-2:]
        first_padded = self.model.pad_for_synthesis(first)
        second_padded = self.model.pad_for_synthesis(inputs["second"])
        statistics = self._statistics(inputs)  # the whole canvas', not each tile's
        reach = self.model.kernel_size - 1
        middle = torch.empty_like(first)
        for row_start, core_top, core_bottom in _tile_windows(
            height, window, margin, NETWORK_STRIDE
        ):
            rows = slice(row_start, min(row_start + window, height))
            padded_rows = slice(rows.start, rows.stop + reach)
            for column_start, core_left, core_right in _tile_windows(
                width, window, margin, NETWORK_STRIDE
            ):
                columns = slice(column_start, min(column_start + window, width))
                padded_columns = slice(columns.start, columns.stop + reach)
                window_inputs = {
                    name: tensor[:, :, rows, columns] for name, tensor in inputs.items()
                }
                kernels = self._predict_kernels(window_inputs, statistics)
                result = self._apply_kernels(
                    first_padded[:, :, padded_rows, padded_columns],
                    second_padded[:, :, padded_rows, padded_columns],
                    kernels,
                    statistics,
                )
                middle[:, :, core_top:core_bottom, core_left:core_right] = result[
                    :,
                    :,
                    core_top - row_start : core_bottom - row_start,
                    core_left - column_start : core_right - column_start,
                ]
        return middle


def astuple_shallow(kernels: Kernels) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return kernels.vertical1, kernels.horizontal1, kernels.vertical2, kernels.horizontal2


def _common_channels(first: int, second: int) -> int:
    """Channel count holding both frames: colour if either has colour, alpha if either has it."""
    has_color = first >= 3 or second >= 3
    has_alpha = first in (2, 4) or second in (2, 4)
    return (3 if has_color else 1) + (1 if has_alpha else 0)


def _pad_channels(frame: np.ndarray, channels: int) -> np.ndarray:
    """Bring a float HxWxC frame to `channels` (adding opaque alpha / expanding gray)."""
    current = frame.shape[2]
    if current == channels:
        return frame
    has_alpha = current in (2, 4)
    color = frame[:, :, : current - 1] if has_alpha else frame
    alpha = frame[:, :, -1:] if has_alpha else np.ones_like(frame[:, :, :1])
    if channels in (3, 4) and color.shape[2] == 1:
        color = np.repeat(color, 3, axis=2)
    if channels in (1, 2) and color.shape[2] == 3:
        color = color.mean(axis=2, keepdims=True)
    return np.concatenate([color, alpha], axis=2) if channels in (2, 4) else color
