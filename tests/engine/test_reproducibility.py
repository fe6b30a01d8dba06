from __future__ import annotations

import random

import numpy as np
import torch

from sepconv import __version__
from sepconv.engine.reproducibility import capture_rng_state, code_version, restore_rng_state


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
