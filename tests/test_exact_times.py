"""Models that take the time t: every output frame at its exact time, in one pass per frame."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from sepconv.video import (
    FrameStore,
    OutputFrame,
    Timed,
    find_anchors,
    max_timing_error,
    output_times,
    plan_frames,
    referenced_inputs,
    render,
    required_nodes,
)


def _plan(factor: int, count: int = 4, exact: bool = True) -> list[OutputFrame]:
    times = [Fraction(i) for i in range(count)]
    anchors = find_anchors([False] * count, [False] * count)
    targets = output_times(Fraction(0), Fraction(count - 1) + Fraction(1, 2 * factor), factor)
    return plan_frames(times, anchors, targets, 3, exact_times=exact)


def test_factor_three_gets_exact_thirds() -> None:
    plan = _plan(3)
    timed = [frame.source for frame in plan if isinstance(frame.source, Timed)]
    assert {source.position for source in timed} == {Fraction(1, 3), Fraction(2, 3)}
    assert len(timed) == 2 * 3
    times = [Fraction(i) for i in range(4)]
    assert max_timing_error(plan, times) == 0
    assert max_timing_error(_plan(3, exact=False), times) > 0  # the midpoint tree rounds
    assert referenced_inputs(plan) == {0, 1, 2, 3}
    levels = required_nodes(frame.source for frame in plan)
    assert len(levels) == 1 and len(levels[0]) == 6  # one pass each, no tree


def test_render_passes_each_time_and_batches_by_time() -> None:
    plan = _plan(3)
    frames = [torch.full((1, 2, 2), float(i)) for i in range(4)]
    calls: list[tuple[int, float]] = []

    def interpolate(first: torch.Tensor, second: torch.Tensor, time: float = 0.5) -> torch.Tensor:
        calls.append((first.shape[0], time))
        return first + time * (second - first)

    out: list[float] = []

    def emit(frame: OutputFrame, picture: torch.Tensor) -> None:
        out.append(float(picture.mean()))

    render(plan, FrameStore(iter(frames), set(range(4))), interpolate, emit, batch_pairs=2)
    assert out == pytest.approx([k / 3 for k in range(len(plan))])
    assert sorted({time for _, time in calls}) == pytest.approx([1 / 3, 2 / 3])
    assert sum(size for size, _ in calls) == 6


def test_sequence_at_factor_three_with_a_motion_model(tmp_path) -> None:
    from PIL import Image

    from sepconv.inference import Interpolator
    from sepconv.models.motion_sepconv import MotionSepConvConfig, MotionSepConvNet
    from sepconv.video import convert_sequence

    rng = np.random.default_rng(0)
    files = []
    for index in range(3):
        path = tmp_path / f"{index}.png"
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(path)
        files.append(path)
    config = MotionSepConvConfig(
        kernel_size=3, widths=(4, 8), feature_widths=(4, 4, 4), estimator_widths=(4, 4, 4)
    )
    interpolator = Interpolator(MotionSepConvNet(config), device="cpu")
    seen: list[float] = []

    def interpolate(first: torch.Tensor, second: torch.Tensor, time: float = 0.5) -> torch.Tensor:
        seen.append(time)
        return interpolator.interpolate_tensor(first, second, time)

    out = tmp_path / "out"
    written = convert_sequence(
        files, out, interpolate, 3, quiet=True, exact_times=interpolator.takes_time
    )
    assert written == 7 == len(list(out.glob("*.png")))
    assert sorted(set(seen)) == pytest.approx([1 / 3, 2 / 3])
