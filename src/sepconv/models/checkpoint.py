"""Saving and safely loading SepConv weights.

Three formats load, none of which can execute code:

* ``.safetensors`` written by :func:`save_safetensors` (the format we ship): tensors plus
  metadata ``{"format": "sepconv", "format_version": ..., "config": <json>, ...}``.
* ``.pt`` / ``.pth`` dicts written by :func:`save_checkpoint` (training checkpoints):
  ``{"format": "sepconv", "format_version", "config", "model", ...}`` loaded with
  ``torch.load(weights_only=True)``.
* The authors' released files ``network-l1.pytorch`` / ``network-lf.pytorch``: a plain state
  dict with ``module``-prefixed keys (``moduleConv1.0.weight`` ...; ``net`` prefixes, as in
  their later code, are accepted too). Their network reads BGR, so the config says so.

A pickle that would run code is refused by PyTorch's weights-only unpickler before anything
runs; we turn that into a one-line :class:`~sepconv.errors.WeightsError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sepconv import __version__
from sepconv.errors import WeightsError
from sepconv.models.registry import ModelConfig, config_from_dict, create_model
from sepconv.models.sepconv_net import SepConvConfig
from sepconv.models.synthesis import KernelSynthesisModel

FORMAT_NAME = "sepconv"
FORMAT_VERSION = 1
AUTHORS_CONFIG = SepConvConfig(kernel_size=51, channel_order="bgr")


@dataclass
class LoadedWeights:
    """A network ready for inference, and where it came from."""

    model: KernelSynthesisModel
    path: Path
    kind: str  # "sepconv" or "authors"
    metadata: dict[str, Any] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def save_checkpoint(path: Path, model: KernelSynthesisModel, **extra: Any) -> None:
    """Save a loadable training checkpoint atomically (model, config, version, and `extra`).

    `extra` may hold anything ``torch.load(weights_only=True)`` accepts: tensors, numbers,
    strings, lists and dicts of those (optimizer state dicts qualify).
    """
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sepconv_version": __version__,
        "torch_version": str(torch.__version__),
        "config": model.config.to_dict(),
        "model": model.state_dict(),
        **extra,
    }
    _atomic_torch_save(payload, Path(path))


def save_safetensors(
    path: Path,
    model: KernelSynthesisModel,
    *,
    dtype: torch.dtype = torch.float16,
    metadata: dict[str, str] | None = None,
) -> None:
    """Save inference weights (fp16 by default) as safetensors with the config in metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {
        name: value.detach().to(dtype).contiguous() for name, value in model.state_dict().items()
    }
    meta = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "sepconv_version": __version__,
        "config": json.dumps(model.config.to_dict()),
        **(metadata or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(temporary), metadata=meta)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _torch_load_safely(path: Path) -> Any:
    """torch.load with the weights-only unpickler; every failure becomes one WeightsError line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol chatter on non-torch files
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"unsupported GLOBAL ([\w.]+)", str(error))
        if found:
            raise WeightsError(
                f"refused to load {path}: it asks to import {found.group(1)}, which a weights "
                "file never needs (unpickling it could run code)"
            ) from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(error))
        reason = detail.group(1).strip() if detail else "unsupported pickle content"
        raise WeightsError(
            f"refused to load {path}: not a plain tensor checkpoint ({reason[:120]})"
        ) from None
    except Exception as error:  # noqa: BLE001 - corrupt files fail in many ways inside torch
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise WeightsError(f"{path} is not a readable checkpoint ({reason})") from None


def _authors_state_dict(raw: dict[str, Any]) -> dict[str, Tensor] | None:
    """Map the authors' keys onto ours, or None if this is not their format."""
    if not raw or not all(isinstance(value, Tensor) for value in raw.values()):
        return None
    keys = list(raw)
    if all(key.startswith("module") for key in keys):
        return dict(raw)
    if all(key.startswith("net") for key in keys):
        return {"module" + key[len("net") :]: value for key, value in raw.items()}
    return None


def build_model(
    config: ModelConfig, state_dict: dict[str, Tensor], source: Path
) -> KernelSynthesisModel:
    """A float32 eval-mode network of the config's family with `state_dict` loaded; clear
    error on any mismatch."""
    model = create_model(config)
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors ({', '.join(missing[:3])}...)")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensors ({', '.join(unexpected[:3])}...)")
        raise WeightsError(f"{source} is not a SepConv network: {'; '.join(parts)}")
    for key, value in expected.items():
        if tuple(state_dict[key].shape) != tuple(value.shape):
            raise WeightsError(
                f"{source} does not match the SepConv architecture: {key} has shape "
                f"{tuple(state_dict[key].shape)}, expected {tuple(value.shape)}"
            )
    model.load_state_dict({key: value.float() for key, value in state_dict.items()})
    return model.eval()


def _parse_config(raw: Any, source: Path) -> ModelConfig:
    try:
        data = json.loads(raw) if isinstance(raw, str) else dict(raw)
        return config_from_dict(data)
    except (TypeError, ValueError) as error:
        raise WeightsError(f"{source} has an invalid config ({error})") from None


def load_weights(path: str | os.PathLike[str]) -> LoadedWeights:
    """Load any supported weights file into an eval-mode float32 network on the CPU, of the
    family its config names (:mod:`sepconv.models.registry`).

    Raises:
        WeightsError: missing file, unsafe pickle, corrupt file, or not a SepConv network.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file {path} does not exist")
    if not path.is_file():
        raise WeightsError(f"weights path {path} is not a file")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    raw = _torch_load_safely(path)
    if isinstance(raw, dict) and raw.get("format") == FORMAT_NAME:
        if int(raw.get("format_version", 0)) > FORMAT_VERSION:
            raise WeightsError(
                f"{path} was written by a newer sepconv (format {raw['format_version']}); upgrade"
            )
        config = _parse_config(raw.get("config", {}), path)
        state = raw.get("model")
        if not isinstance(state, dict):
            raise WeightsError(f"{path} is a sepconv checkpoint without model weights")
        metadata = {key: value for key, value in raw.items() if key not in ("model", "optimizer")}
        return LoadedWeights(build_model(config, state, path), path, "sepconv", metadata)
    if isinstance(raw, dict):
        authors = _authors_state_dict(raw)
        if authors is not None:
            return LoadedWeights(build_model(AUTHORS_CONFIG, authors, path), path, "authors")
    raise WeightsError(
        f"{path} is not a SepConv checkpoint (expected a sepconv checkpoint or the authors' "
        "network-l1/lf.pytorch state dict)"
    )


def _load_safetensors(path: Path) -> LoadedWeights:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise WeightsError(f"{path} is not a readable safetensors file ({reason[:200]})") from None
    if metadata.get("format") == FORMAT_NAME:
        config = _parse_config(metadata.get("config", "{}"), path)
        return LoadedWeights(build_model(config, state, path), path, "sepconv", metadata)
    authors = _authors_state_dict(state)
    if authors is not None:
        return LoadedWeights(build_model(AUTHORS_CONFIG, authors, path), path, "authors", metadata)
    raise WeightsError(f"{path} is a safetensors file but not SepConv weights")
