from __future__ import annotations

import random

import numpy as np
import torch

from sepconv import __version__
from sepconv.engine.reproducibility import (
    _git,
    capture_rng_state,
    code_version,
    restore_rng_state,
)


def test_rng_state_round_trips():
    state = capture_rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(state)
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])
    assert first[2] == second[2]


def test_code_version_names_the_commit_in_a_checkout():
    version = code_version()
    assert version == __version__ or version.startswith(f"{__version__}+g")


def test_code_version_reads_the_checkout_it_was_imported_from(tmp_path):
    root = tmp_path / "checkout"
    (root / "src" / "sepconv").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\n")
    _git(root, "init", "-q")
    _git(root, "add", "pyproject.toml")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x")
    version = code_version(root / "src" / "sepconv")
    assert version.startswith(f"{__version__}+g") and not version.endswith(".dirty")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert code_version(root / "src" / "sepconv").endswith(".dirty")


def test_code_version_of_an_installed_copy_ignores_an_enclosing_repository(tmp_path):
    # A virtual environment inside some git checkout: the commit is not the package's.
    installed = tmp_path / ".venv" / "lib" / "python3" / "site-packages" / "sepconv"
    installed.mkdir(parents=True)
    _git(tmp_path, "init", "-q")
    assert code_version(installed) == __version__
