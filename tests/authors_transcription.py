"""An independent transcription of the authors' SepConv inference (sniklaus/sepconv-slomo run.py).

Used only as an oracle in tests: it does not import sepconv. It follows their code path:
BGR frames in [0, 1], replicate padding ("paper": 25 px left/top, then right/bottom up to a
multiple of 128; "improved": right/bottom only), their network with module-prefixed layer
names, the local convolution on frames replicate-padded by 25, crop, clip, and their 8-bit
conversion (truncation).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

KERNEL = 51


def _basic(cin: int, cout: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index in range(3):
        layers += [nn.Conv2d(cin if index == 0 else cout, cout, 3, 1, 1), nn.ReLU(inplace=False)]
    return nn.Sequential(*layers)


def _upsample(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        nn.Conv2d(channels, channels, 3, 1, 1),
        nn.ReLU(inplace=False),
    )


def _subnet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(inplace=False),
        nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(inplace=False),
        nn.Conv2d(64, KERNEL, 3, 1, 1), nn.ReLU(inplace=False),
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        nn.Conv2d(KERNEL, KERNEL, 3, 1, 1),
    )  # fmt: skip


def local_conv_unfold(frame: torch.Tensor, vertical: torch.Tensor, horizontal: torch.Tensor):
    """Per-row-block unfold + einsum: materialises the 51x51 patches of a few rows at a time."""
    batch, channels = frame.shape[:2]
    height, width = vertical.shape[-2:]
    out = frame.new_zeros(batch, channels, height, width)
    block = 4
    for top in range(0, height, block):
        rows = min(block, height - top)
        band = frame[:, :, top : top + rows + KERNEL - 1]
        patches = F.unfold(band, KERNEL)  # (B, C*K*K, rows*W)
        patches = patches.view(batch, channels, KERNEL, KERNEL, rows, width)
        v = vertical[:, :, top : top + rows]
        h = horizontal[:, :, top : top + rows]
        out[:, :, top : top + rows] = torch.einsum("bcijyx,biyx,bjyx->bcyx", patches, v, h)
    return out


class AuthorsNetwork(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.moduleConv1 = _basic(6, 32)
        self.moduleConv2 = _basic(32, 64)
        self.moduleConv3 = _basic(64, 128)
        self.moduleConv4 = _basic(128, 256)
        self.moduleConv5 = _basic(256, 512)
        self.moduleDeconv5 = _basic(512, 512)
        self.moduleDeconv4 = _basic(512, 256)
        self.moduleDeconv3 = _basic(256, 128)
        self.moduleDeconv2 = _basic(128, 64)
        self.moduleUpsample5 = _upsample(512)
        self.moduleUpsample4 = _upsample(256)
        self.moduleUpsample3 = _upsample(128)
        self.moduleUpsample2 = _upsample(64)
        self.moduleVertical1 = _subnet()
        self.moduleVertical2 = _subnet()
        self.moduleHorizontal1 = _subnet()
        self.moduleHorizontal2 = _subnet()
        self.modulePad = nn.ReplicationPad2d([KERNEL // 2] * 4)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        pool = nn.AvgPool2d(kernel_size=2, stride=2)
        conv1 = self.moduleConv1(torch.cat([first, second], 1))
        conv2 = self.moduleConv2(pool(conv1))
        conv3 = self.moduleConv3(pool(conv2))
        conv4 = self.moduleConv4(pool(conv3))
        conv5 = self.moduleConv5(pool(conv4))
        combine = self.moduleUpsample5(self.moduleDeconv5(pool(conv5))) + conv5
        combine = self.moduleUpsample4(self.moduleDeconv4(combine)) + conv4
        combine = self.moduleUpsample3(self.moduleDeconv3(combine)) + conv3
        combine = self.moduleUpsample2(self.moduleDeconv2(combine)) + conv2
        dot1 = local_conv_unfold(
            self.modulePad(first), self.moduleVertical1(combine), self.moduleHorizontal1(combine)
        )
        dot2 = local_conv_unfold(
            self.modulePad(second), self.moduleVertical2(combine), self.moduleHorizontal2(combine)
        )
        return dot1 + dot2


@torch.no_grad()
def authors_estimate(
    network: AuthorsNetwork, first_rgb: np.ndarray, second_rgb: np.ndarray, padding: str
) -> np.ndarray:
    """uint8 HxWx3 RGB frames -> uint8 HxWx3 RGB middle frame, as their run.py computes it."""

    def to_tensor(image: np.ndarray) -> torch.Tensor:
        bgr = image[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) * (1.0 / 255.0)
        return torch.from_numpy(np.ascontiguousarray(bgr))[None]

    first, second = to_tensor(first_rgb), to_tensor(second_rgb)
    height, width = first_rgb.shape[:2]
    lead = int(math.floor(KERNEL / 2.0)) if padding == "paper" else 0
    padded_width = lead + width + lead
    padded_height = lead + height + lead
    if padded_width != ((padded_width >> 7) << 7):
        padded_width = ((padded_width >> 7) + 1) << 7
    if padded_height != ((padded_height >> 7) << 7):
        padded_height = ((padded_height >> 7) + 1) << 7
    right = padded_width - width - lead
    bottom = padded_height - height - lead
    pad = [lead, right, lead, bottom]
    output = network(F.pad(first, pad, mode="replicate"), F.pad(second, pad, mode="replicate"))
    output = output[0, :, lead : lead + height, lead : lead + width]
    bgr = output.clip(0.0, 1.0).numpy().transpose(1, 2, 0)
    return (bgr[:, :, ::-1] * 255.0).astype(np.uint8)


def plausible_random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in the authors' format whose output is a plausible image.

    Each subnet's last layer gets small weights and a bias of 1/(sqrt(2) K), so every pixel's
    two 2D kernels sum to about 1/2 each: the output is near a blend of local averages,
    mostly inside [0, 1], and still depends on every layer of the network.
    """
    torch.manual_seed(seed)
    network = AuthorsNetwork()
    state = network.state_dict()
    for name in list(state):
        if name.endswith(".7.weight"):
            state[name] = state[name] * 0.05
        if name.endswith(".7.bias"):
            state[name] = torch.full_like(state[name], 1.0 / (math.sqrt(2.0) * KERNEL))
    return state
