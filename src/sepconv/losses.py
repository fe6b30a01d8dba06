"""Training losses: L1 (the paper's L1 model), Laplacian-pyramid L1, census (ternary) loss, and
the paper's feature loss on VGG-19 relu4_4 (its L_F model).

None of them needs torchvision: :class:`VGG19Features` defines VGG-19's layers up to relu4_4
with torchvision's indices, so its state dict keys are ``N.weight`` / ``N.bias`` exactly as in
``torchvision.models.vgg19().features`` (``features.N.weight`` in a whole-model state dict is
accepted too). The ImageNet weights come from a local file the user provides, loaded with
``torch.load(weights_only=True)``.

:func:`build_loss` turns a spec such as ``"l1"``, ``"l1+0.1*lap"``, ``"lf"`` or
``{"spec": "l1+0.01*vgg", "vgg_weights": "vgg19.pth"}`` into one module whose forward is
``loss(prediction, target) -> scalar``; frames are (B, 3, H, W) RGB in [0, 1].
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from sepconv.errors import SepconvError

__all__ = [
    "CensusLoss",
    "CombinedLoss",
    "L1Loss",
    "LaplacianL1Loss",
    "VGG19Features",
    "VGGFeatureLoss",
    "build_loss",
    "parse_loss_spec",
]

ENV_VGG_WEIGHTS = "SEPCONV_VGG19_WEIGHTS"


class L1Loss(nn.Module):
    """Mean absolute difference (the paper's L1 loss)."""

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return (prediction.float() - target.float()).abs().mean()


def _gaussian_kernel(channels: int, device: torch.device) -> Tensor:
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device) / 16.0
    kernel = taps[:, None] * taps[None, :]
    return kernel.expand(channels, 1, 5, 5).contiguous()


def laplacian_pyramid(image: Tensor, levels: int) -> list[Tensor]:
    """Band-pass levels (finest first) and the low-pass residual last: ``levels`` tensors."""
    kernel = _gaussian_kernel(image.shape[1], image.device).to(image.dtype)
    channels = image.shape[1]
    pyramid = []
    current = image
    for _ in range(levels - 1):
        if min(current.shape[-2:]) < 2:
            break
        blurred = F.conv2d(F.pad(current, [2, 2, 2, 2], mode="reflect"), kernel, groups=channels)
        down = blurred[:, :, ::2, ::2]
        up = F.interpolate(down, size=current.shape[-2:], mode="bilinear", align_corners=False)
        pyramid.append(current - up)
        current = down
    pyramid.append(current)
    return pyramid


class LaplacianL1Loss(nn.Module):
    """Sum over Laplacian pyramid levels of 2**level * L1 (as in Niklaus and Liu, CVPR 2020)."""

    def __init__(self, levels: int = 5) -> None:
        super().__init__()
        self.levels = levels

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        predicted = laplacian_pyramid(prediction.float(), self.levels)
        truth = laplacian_pyramid(target.float(), self.levels)
        return sum(
            (2.0**level) * (a - b).abs().mean()
            for level, (a, b) in enumerate(zip(predicted, truth, strict=True))
        )


class CensusLoss(nn.Module):
    """Soft ternary census distance over patch x patch neighbourhoods of the luminance
    (Meister et al., UnFlow, AAAI 2018), averaged over pixels away from the border."""

    def __init__(self, patch: int = 7) -> None:
        super().__init__()
        self.patch = patch
        eye = torch.eye(patch * patch).reshape(patch * patch, 1, patch, patch)
        self.register_buffer("neighbours", eye, persistent=False)

    def _transform(self, image: Tensor) -> Tensor:
        weights = torch.tensor([0.299, 0.587, 0.114], device=image.device).view(1, 3, 1, 1)
        gray = (image * weights).sum(1, keepdim=True) * 255.0
        patches = F.conv2d(gray, self.neighbours.to(gray.dtype), padding=self.patch // 2)
        difference = patches - gray
        return difference / torch.sqrt(0.81 + difference**2)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        a = self._transform(prediction.float())
        b = self._transform(target.float())
        squared = (a - b) ** 2
        distance = (squared / (0.1 + squared)).sum(1, keepdim=True)
        border = self.patch // 2
        inner = distance[:, :, border:-border, border:-border]
        if inner.numel() == 0:
            inner = distance
        return inner.mean() / (self.patch * self.patch)


# torchvision's vgg19 configuration up to relu4_4 (features[:27]).
_VGG19_LAYERS: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M")
_VGG19_LAYERS += (512, 512, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Sequential):
    """VGG-19 ``features[:27]`` (up to relu4_4), torchvision indices and key names."""

    def __init__(self) -> None:
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG19_LAYERS:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(item, int)
                layers.append(nn.Conv2d(channels, item, kernel_size=3, padding=1))
                layers.append(nn.ReLU(inplace=True))
                channels = item
        super().__init__(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def forward(self, image: Tensor) -> Tensor:  # type: ignore[override]
        """(B, 3, H, W) RGB in [0, 1] -> relu4_4 features (B, 512, H / 8, W / 8)."""
        return super().forward((image - self.mean) / self.std)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> VGG19Features:
        """Load torchvision-named ImageNet weights from a local file (weights-only unpickling).

        Raises:
            SepconvError: the file is missing, unreadable or lacks the layers.
        """
        path = Path(path)
        if not path.is_file():
            raise SepconvError(
                f"VGG-19 weights file {path} does not exist (the feature loss needs torchvision's "
                "vgg19 ImageNet weights, e.g. vgg19-dcbb9e9d.pth, as a local file)"
            )
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - torch fails in many ways on bad files
            reason = " ".join(str(error).split())[:160]
            raise SepconvError(f"cannot read VGG-19 weights {path}: {reason}") from None
        model = cls()
        model.load_features(raw, source=str(path))
        return model

    def load_features(self, raw: Any, source: str = "state dict") -> None:
        """Load ``N.weight`` or ``features.N.weight`` keys; everything past relu4_4 is ignored."""
        if not isinstance(raw, Mapping):
            raise SepconvError(f"{source} is not a VGG-19 state dict")
        state = {}
        for key, value in raw.items():
            name = key[len("features.") :] if key.startswith("features.") else key
            if re.fullmatch(r"\d+\.(weight|bias)", name) and int(name.split(".")[0]) < len(self):
                state[name] = value
        expected = {k for k in self.state_dict() if k not in ("mean", "std")}
        missing = sorted(expected - set(state))
        if missing:
            raise SepconvError(f"{source} is not a VGG-19 state dict (missing {missing[0]}...)")
        try:
            self.load_state_dict(state, strict=False)
        except RuntimeError as error:
            reason = " ".join(str(error).split())[:160]
            raise SepconvError(f"{source} does not match VGG-19: {reason}") from None


class VGGFeatureLoss(nn.Module):
    """Mean squared difference of VGG-19 relu4_4 features (the paper's feature loss)."""

    def __init__(self, features: VGG19Features) -> None:
        super().__init__()
        self.features = features.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> VGGFeatureLoss:
        super().train(mode)
        self.features.eval()  # frozen, always
        return self

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        with torch.no_grad():
            truth = self.features(target.float())
        return F.mse_loss(self.features(prediction.float()), truth)


class CombinedLoss(nn.Module):
    """Weighted sum of named terms; ``last_terms`` holds each term's last value (floats)."""

    def __init__(self, terms: list[tuple[float, str, nn.Module]]) -> None:
        super().__init__()
        self.weights = [weight for weight, _, _ in terms]
        self.names = [name for _, name, _ in terms]
        self.terms = nn.ModuleList([module for _, _, module in terms])
        self.last_terms: dict[str, Tensor] = {}

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        total = prediction.new_zeros((), dtype=torch.float32)
        self.last_terms = {}
        for weight, name, module in zip(self.weights, self.names, self.terms, strict=True):
            value = module(prediction, target)
            self.last_terms[name] = value.detach()
            total = total + weight * value
        return total


_ALIASES = {"l1": "l1", "lap": "lap", "laplacian": "lap", "census": "census", "ternary": "census"}
_ALIASES |= {"vgg": "vgg", "lf": "vgg", "feature": "vgg"}


def parse_loss_spec(spec: str) -> list[tuple[float, str]]:
    """``"l1+0.1*lap"`` -> ``[(1.0, "l1"), (0.1, "lap")]``; names are canonicalised."""
    terms = []
    for part in spec.replace(" ", "").lower().split("+"):
        found = re.fullmatch(r"(?:([0-9.eE-]+)\*)?([a-z0-9_]+)", part)
        if not found or found.group(2) not in _ALIASES:
            raise SepconvError(
                f"bad loss term {part!r} in {spec!r}: use [WEIGHT*]NAME joined by '+', NAME one "
                f"of {', '.join(sorted(_ALIASES))}"
            )
        try:
            weight = float(found.group(1)) if found.group(1) else 1.0
        except ValueError:
            raise SepconvError(f"bad weight in loss term {part!r}") from None
        terms.append((weight, _ALIASES[found.group(2)]))
    return terms


def build_loss(
    spec: str | Mapping[str, Any], *, vgg_weights: str | os.PathLike[str] | None = None
) -> CombinedLoss:
    """Build a loss from a spec.

    Args:
        spec: ``"l1"``, ``"lap"``, ``"census"``, ``"lf"``/``"vgg"`` (the feature loss), or a
            weighted sum such as ``"l1+0.1*lap"``; or a dict ``{"spec": str, "vgg_weights":
            path, "laplacian_levels": int, "census_patch": int}``, or a dict of name -> weight
            (with optional ``vgg_weights``).
        vgg_weights: local VGG-19 weights file for the feature loss (else the dict's
            ``vgg_weights``, else ``$SEPCONV_VGG19_WEIGHTS``).
    """
    options: dict[str, Any] = {}
    if isinstance(spec, Mapping):
        options = dict(spec)
        if "spec" in options:
            text = str(options.pop("spec"))
        else:
            weights = {
                k: v
                for k, v in options.items()
                if k not in ("vgg_weights", "laplacian_levels", "census_patch")
            }
            text = "+".join(f"{float(v)!r}*{k}" for k, v in weights.items())
    else:
        text = spec
    vgg_path = vgg_weights or options.get("vgg_weights") or os.environ.get(ENV_VGG_WEIGHTS)
    terms: list[tuple[float, str, nn.Module]] = []
    for weight, name in parse_loss_spec(text):
        module: nn.Module
        if name == "l1":
            module = L1Loss()
        elif name == "lap":
            module = LaplacianL1Loss(int(options.get("laplacian_levels", 5)))
        elif name == "census":
            module = CensusLoss(int(options.get("census_patch", 7)))
        else:
            if not vgg_path:
                raise SepconvError(
                    "the feature loss needs VGG-19 weights: set vgg_weights (a local torchvision "
                    f"vgg19 .pth file) or ${ENV_VGG_WEIGHTS}"
                )
            module = VGGFeatureLoss(VGG19Features.from_file(vgg_path))
        terms.append((weight, name, module))
    return CombinedLoss(terms)
