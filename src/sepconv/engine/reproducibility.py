"""What a checkpoint records to be reproducible: the RNG states (as tensors and lists, so a
weights-only ``torch.load`` reads them) and the code version."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sepconv import __version__

__all__ = ["capture_rng_state", "code_version", "restore_rng_state"]


def capture_rng_state() -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def _git(root: Path, *args: str) -> str:
    """Output of ``git -C root ARGS`` (raises OSError or SubprocessError when unavailable)."""
    completed = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5, check=True
    )
    return completed.stdout.strip()


def code_version(package_dir: Path | None = None) -> str:
    """``<version>+g<commit>`` (``.dirty`` when tracked files are modified) when the package is
    imported from a source checkout (``<root>/src/sepconv`` beside ``<root>/pyproject.toml``),
    else just the package version.

    Args:
        package_dir: the ``sepconv`` package folder; by default the imported one. An installed
            copy (``site-packages/sepconv``) reports the bare version even where the
            environment lies inside some other git repository.
    """
    package_dir = package_dir or Path(__file__).resolve().parents[1]
    root = package_dir.parents[1]
    if package_dir.parent.name != "src" or not (root / "pyproject.toml").is_file():
        return __version__
    try:
        commit = _git(root, "rev-parse", "--short=12", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}{'.dirty' if dirty else ''}"
