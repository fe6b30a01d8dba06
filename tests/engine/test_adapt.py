"""Adapting a model to a clip (sepconv.engine.adapt) and the windows it reads
(sepconv.data.clip_windows), on tiny moving textures with a tiny flow-guided model."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_flow_model, moving_clip, tiny_adapt_settings

from sepconv.data.clip_windows import evenly_spaced, read_windows
from sepconv.engine import adapt as adapt_module
from sepconv.engine.adapt import AdaptSettings, adapt, adaptation_triplets
from sepconv.errors import SepconvError, WorkInterruptedError
from sepconv.inference import Interpolator


def base_interpolator(seed: int | None = 1) -> Interpolator:
    torch.manual_seed(0)  # the network's initialisation: the same model on every call
    return Interpolator(make_flow_model(seed), device="cpu", optimize=False)


# -- reading windows ---------------------------------------------------------------------------


def test_evenly_spaced_takes_the_ends_and_everything_when_short() -> None:
    assert evenly_spaced(10, 3) == [0, 4, 9] or evenly_spaced(10, 3) == [0, 5, 9]
    assert evenly_spaced(3, 5) == [0, 1, 2]
    assert evenly_spaced(7, 1) == [3]


def test_windows_are_spread_over_the_clip_and_memory_stays_bounded() -> None:
    converted = []

    def convert(index: int) -> torch.Tensor:
        converted.append(index)
        return torch.full((3, 2, 2), index % 256, dtype=torch.uint8)

    clip = read_windows(((i / 25.0, i) for i in range(1000)), convert=convert, windows=4, span=3)
    starts = [int(clip.times[k] * 25 + 0.5) for k in range(0, len(clip.times), 3)]
    assert len(starts) == 4 and starts[0] == 0 and starts[-1] > 900  # spread to the end
    for k, start in enumerate(starts):  # each window: consecutive frames, start at k * span
        assert start % 3 == 0
        assert [round(t * 25) for t in clip.times[3 * k : 3 * k + 3]] == [
            start,
            start + 1,
            start + 2,
        ]
    assert clip.breaks == (3, 6, 9)
    assert len(converted) < 200  # only the frames of kept windows were converted


def test_a_clip_shorter_than_a_window_is_one_window_and_two_frames_none() -> None:
    def frames(count: int):
        return ((i, torch.zeros(3, 4, 4, dtype=torch.uint8)) for i in range(count))

    clip = read_windows(frames(5), span=8)
    assert clip.frames.shape[0] == 5 and clip.breaks == ()
    assert read_windows(frames(2), span=8).frames.shape[0] == 0


# -- triplets and the held-out guard -----------------------------------------------------------


def test_training_triplets_never_use_a_frame_of_a_held_out_triplet() -> None:
    clip = moving_clip(count=30)
    train, held = adaptation_triplets(clip, held_out=4)
    assert len(held) == 4 and train
    held_frames = {f for middle, gap in held for f in range(middle - gap, middle + gap + 1)}
    for middle, gap in train:
        assert not held_frames & set(range(middle - gap, middle + gap + 1))


def test_triplets_never_span_a_break_between_windows() -> None:
    clip = moving_clip(count=16)
    clip.breaks = (8,)
    train, held = adaptation_triplets(clip, held_out=2)
    for middle, gap in train + held:
        assert not (middle - gap < 8 <= middle + gap)


def test_adaptation_is_deterministic_and_leaves_the_model_alone() -> None:
    base = base_interpolator()
    before = {name: value.clone() for name, value in base.model.state_dict().items()}
    first = adapt(base, moving_clip(), tiny_adapt_settings(), quiet=True)
    second = adapt(base_interpolator(), moving_clip(), tiny_adapt_settings(), quiet=True)
    assert first.steps == second.steps == 3 and not first.skipped
    for name, value in first.adapted.model.state_dict().items():
        assert torch.equal(value, second.adapted.model.state_dict()[name]), name
    assert any(
        not torch.equal(value, before[name])
        for name, value in first.adapted.model.state_dict().items()
    )
    for name, value in base.model.state_dict().items():  # the given model is untouched
        assert torch.equal(value, before[name]), name
    assert first.psnr_before == second.psnr_before and np.isfinite(first.psnr_after)


def test_the_guard_reverts_a_harmful_adaptation() -> None:
    base = base_interpolator(seed=None)  # the DIS baseline: exact on a pan
    settings = tiny_adapt_settings(lr=0.5, steps=4, choose_prior=False)
    result = adapt(base, moving_clip(), settings, quiet=True)
    assert result.psnr_final < result.psnr_before - 1.0  # training did harm
    assert not result.kept and result.interpolator is base and result.best_step == 0
    assert "reverted" in result.summary and f"{result.psnr_before:.2f}" in result.summary


def test_the_best_check_is_kept() -> None:
    """Early stopping: with a learning rate that first helps and then harms, the weights kept
    are those of the best check, not the last."""
    settings = tiny_adapt_settings(steps=6, checks=3, choose_prior=False)
    result = adapt(base_interpolator(), moving_clip(), settings, quiet=True)
    assert result.best_step in (0, 2, 4, 6)
    assert result.psnr_after >= result.psnr_final or result.best_step == 6
    assert result.psnr_after >= result.psnr_before


def test_the_reading_time_counts_against_the_budget() -> None:
    """A budget already spent on reading the clip leaves no time to train (the scoring of the
    starting weights still runs, so the guard has its before-PSNR)."""
    settings = tiny_adapt_settings(seconds=30.0, steps=None, choose_prior=False)
    result = adapt(base_interpolator(), moving_clip(), settings, quiet=True, reading_seconds=30.0)
    assert result.steps == 0 and not result.kept and result.seconds >= 30.0
    assert result.psnr_before == result.psnr_before  # scored, not NaN


def test_a_static_clip_is_skipped_not_refused() -> None:
    clip = moving_clip(speed=0)
    base = base_interpolator()
    result = adapt(base, clip, tiny_adapt_settings(), quiet=True)
    assert result.skipped and result.interpolator is base and result.steps == 0
    assert result.summary.startswith("adaptation skipped")


def test_settings_are_checked() -> None:
    with pytest.raises(SepconvError, match="positive"):
        AdaptSettings(seconds=0)
    with pytest.raises(SepconvError, match="multiple of 32"):
        AdaptSettings(crop_size=100)


def test_an_interrupted_adaptation_resumes_to_the_same_weights(tmp_path: Path, monkeypatch):
    settings = tiny_adapt_settings(steps=6)
    whole = adapt(base_interpolator(), moving_clip(), settings, quiet=True)
    original = adapt_module._progress

    def interrupting(batches, *args, **kwargs):
        for index, batch in enumerate(original(batches, *args, **kwargs)):
            if index == 2:
                os.kill(os.getpid(), signal.SIGINT)  # arrives during step 3
            yield batch

    monkeypatch.setattr(adapt_module, "_progress", interrupting)
    work = tmp_path / "work"
    with pytest.raises(WorkInterruptedError, match="--resume"):
        adapt(base_interpolator(), moving_clip(), settings, work_dir=work, quiet=True)
    assert (work / "last.pt").is_file()
    monkeypatch.setattr(adapt_module, "_progress", original)
    resumed = adapt(base_interpolator(), moving_clip(), settings, work_dir=work, resume=True)
    assert resumed.steps == 6
    for name, value in whole.adapted.model.state_dict().items():
        assert torch.equal(value, resumed.adapted.model.state_dict()[name]), name
    assert resumed.psnr_after == whole.psnr_after

    def no_training(*args, **kwargs):
        raise AssertionError("a finished adaptation is reused, not rerun")

    monkeypatch.setattr(adapt_module, "_progress", no_training)
    again = adapt(base_interpolator(), moving_clip(), settings, work_dir=work, resume=True)
    assert again.psnr_after == whole.psnr_after and again.kept == whole.kept
