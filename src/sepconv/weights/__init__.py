"""Named weights: ``name -> file, sha256, config``, as in timm's registry.

Two kinds of entries:

* ``bundled``: trained by this project and shipped inside the package
  (``sepconv/weights/files/``, fp16 safetensors), each with a model card in ``docs/models/``.
  ``sepconv-motion`` (the learned-motion family, frames at any time t, still in training)
  is the default model, as it measures best (docs/models/sepconv-motion.md); ``sepconv-flow``
  (the flow-guided family) is the previous default; ``sepconv-l1`` is the paper's network.
* ``authors``: the authors' released ``network-l1.pytorch`` / ``network-lf.pytorch``. They
  cannot be downloaded here; a user who has them puts them in the weights folder
  (``$SEPCONV_WEIGHTS_DIR``, default ``~/.cache/sepconv``) to use them by name, or passes
  the file path to ``--weights``. Their sha256 is not known to us, so it is shown, not checked.

A weights argument is a registry name or a path to a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sepconv.errors import WeightsError
from sepconv.models.flow_sepconv import FlowSepConvConfig
from sepconv.models.motion_sepconv import MotionSepConvConfig
from sepconv.models.registry import ModelConfig
from sepconv.models.sepconv_net import SepConvConfig

WEIGHTS_DIR_ENV = "SEPCONV_WEIGHTS_DIR"


@dataclass(frozen=True)
class WeightsSpec:
    """One registry entry.

    Attributes:
        name: what users type after ``--weights``.
        filename: file name inside the package folder (bundled) or the weights folder.
        sha256: expected digest, checked before use; None when unknown (authors' files).
        config: the network config the file was trained with (its family's config class).
        source: ``bundled`` or ``authors``.
        description: one line for ``sepconv weights``.
        middlebury_psnr: mean PSNR on the 12 Middlebury sequences, as its model card
            measures it with ``sepconv eval middlebury`` (None where not measured here).
    """

    name: str
    filename: str
    sha256: str | None
    config: ModelConfig
    source: str
    description: str
    middlebury_psnr: float | None = None


_AUTHORS = SepConvConfig(kernel_size=51, channel_order="bgr")

REGISTRY: tuple[WeightsSpec, ...] = (
    WeightsSpec(
        name="sepconv-flow",
        filename="sepconv-flow.safetensors",
        sha256="486b3225e1e5f24fa9d240e16471cbdd077ca2979da5ddc930dffc48330276a0",
        config=FlowSepConvConfig(
            kernel_size=11,
            widths=(16, 32, 64, 96, 128),
            flow_preset="medium",
            flow_finest_scale=0,
            flow_refinement_iterations=0,
            warp_interpolation="cubic",
            flow_halfway="splat",
        ),
        source="bundled",
        description="flow-guided SepConv, trained by this project (docs/models/sepconv-flow.md)",
        middlebury_psnr=35.74,
    ),
    WeightsSpec(
        name="sepconv-l1",
        filename="sepconv-l1.safetensors",
        sha256="e3d0b9776355e269d445b8f46707a5159b95210276e34cc8266b210688ab689c",
        config=SepConvConfig(
            kernel_size=51, channel_order="rgb", input_normalization=True, kernel_normalization=True
        ),
        source="bundled",
        description="the paper's network, trained by this project (docs/models/sepconv-l1.md)",
        middlebury_psnr=32.55,
    ),
    WeightsSpec(
        name="sepconv-motion",
        filename="sepconv-motion.safetensors",
        sha256="ac7c1943b7bd1d34d976a20aba88a35098adcbe9114ef6859ab5b1717495e260",
        config=MotionSepConvConfig(
            train_kernels=False,
            classic_candidate=True,
            classic_finest_scale=0,
            classic_max_side=640,
            classic_halfway="splat",
            classic_refinement_iterations=0,
            selection="warps",
            flow_loss_weight=0.0,
            time_symmetric=True,
            symmetric_levels=1,
        ),
        source="bundled",
        description="learned motion at any time t, in training (docs/models/sepconv-motion.md)",
        middlebury_psnr=35.91,
    ),
    WeightsSpec(
        name="authors-l1",
        filename="network-l1.pytorch",
        sha256=None,
        config=_AUTHORS,
        source="authors",
        description="authors' ICCV 2017 L1 model (best for benchmarks), if you have the file",
        middlebury_psnr=None,
    ),
    WeightsSpec(
        name="authors-lf",
        filename="network-lf.pytorch",
        sha256=None,
        config=_AUTHORS,
        source="authors",
        description="authors' ICCV 2017 perceptual-loss model (sharper), if you have the file",
    ),
)

# Name of the bundled model used when no --weights is given (None: commands ask for weights).
DEFAULT_WEIGHTS: str | None = "sepconv-motion"


def bundled_dir() -> Path:
    return Path(__file__).resolve().parent / "files"


def user_weights_dir() -> Path:
    """Folder searched for the authors' files: $SEPCONV_WEIGHTS_DIR or ~/.cache/sepconv."""
    configured = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "sepconv"


def get_spec(name: str) -> WeightsSpec | None:
    return next((spec for spec in REGISTRY if spec.name == name), None)


def spec_path(spec: WeightsSpec) -> Path:
    folder = bundled_dir() if spec.source == "bundled" else user_weights_dir()
    return folder / spec.filename


def resolve_weights(name_or_path: str | os.PathLike[str] | None) -> tuple[Path, WeightsSpec | None]:
    """Turn ``--weights`` into a file path (verifying its sha256 when the registry knows it).

    ``None`` means the default bundled model. An existing path wins over a registry name.

    Raises:
        WeightsError: no default model yet, unknown name, registered file absent, bad digest.
    """
    if name_or_path is None:
        if DEFAULT_WEIGHTS is None:
            raise WeightsError(
                "no trained weights ship with this version of sepconv yet: pass --weights "
                "PATH_OR_NAME (for example the authors' network-l1.pytorch; "
                "`sepconv weights` lists the names)"
            )
        name_or_path = DEFAULT_WEIGHTS
    text = os.fspath(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.exists():
        return candidate, None
    spec = get_spec(text)
    if spec is None:
        names = ", ".join(entry.name for entry in REGISTRY)
        raise WeightsError(
            f"weights {text!r} is neither an existing file nor a known name ({names})"
        )
    path = spec_path(spec)
    if not path.is_file():
        raise WeightsError(
            f"weights {spec.name!r} are not installed: expected {path} "
            f"(put the file there or set ${WEIGHTS_DIR_ENV})"
        )
    verify_sha256(path, spec)
    return path, spec


def verify_sha256(path: Path, spec: WeightsSpec) -> None:
    if spec.sha256 is None:
        return
    from sepconv.models.checkpoint import sha256_of

    actual = sha256_of(path)
    if actual != spec.sha256:
        raise WeightsError(
            f"{path} does not match the registry's sha256 for {spec.name!r} "
            f"(expected {spec.sha256[:12]}..., got {actual[:12]}...): corrupt or replaced"
        )


@dataclass(frozen=True)
class InstalledWeights:
    spec: WeightsSpec
    path: Path
    installed: bool
    default: bool


def list_weights() -> list[InstalledWeights]:
    """Every registry entry with where its file would be and whether it is there."""
    return [
        InstalledWeights(
            spec, spec_path(spec), spec_path(spec).is_file(), spec.name == DEFAULT_WEIGHTS
        )
        for spec in REGISTRY
    ]
