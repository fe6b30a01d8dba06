"""The pure scheduling of sepconv.video: timestamps and flags in, output frame sources out."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from sepconv.video import (
    Analysis,
    Anchors,
    FrameStore,
    Node,
    OutputFrame,
    VideoJob,
    duplicate_score,
    factor_levels,
    factor_timing_error,
    find_anchors,
    is_power_of_two,
    job_levels,
    make_source,
    max_timing_error,
    output_times,
    plan_frames,
    plan_video,
    render,
    required_nodes,
    scene_change_score,
    split_segments,
    thumbnail,
)


def cfr_times(count: int, rate: int) -> list[Fraction]:
    return [Fraction(i, rate) for i in range(count)]


def no_flags(count: int) -> Anchors:
    return find_anchors([False] * count, [False] * count)


def test_make_source_reduces_and_parents():
    assert make_source(3, 4, 0, 3) == 3
    assert make_source(3, 4, 8, 3) == 4
    assert make_source(3, 4, 4, 3) == Node(3, 4, 1, 1)
    assert make_source(3, 4, 6, 3) == Node(3, 4, 3, 2)
    assert Node(3, 4, 1, 1).parents() == (3, 4)
    assert Node(3, 4, 3, 2).parents() == (Node(3, 4, 1, 1), 4)
    assert Node(3, 4, 3, 3).parents() == (Node(3, 4, 1, 2), Node(3, 4, 1, 1))
    with pytest.raises(ValueError):
        make_source(0, 1, 9, 3)


def test_factor_two_holds_last_frame():
    times = cfr_times(12, 25)
    targets = output_times(times[0], Fraction(12, 25), Fraction(50))
    plan = plan_frames(times, no_flags(12), targets, max_level=3)
    assert len(plan) == 24
    for k, frame in enumerate(plan):
        assert frame.time == Fraction(k, 50)
        if k % 2 == 0 or k == 23:
            assert frame.source == min(k // 2, 11)
        else:
            assert frame.source == Node(k // 2, k // 2 + 1, 1, 1)
    assert max_timing_error(plan, times) == 0


def test_factor_eight_needs_each_node_once():
    times = cfr_times(3, 10)
    targets = output_times(times[0], Fraction(3, 10), Fraction(80))
    plan = plan_frames(times, no_flags(3), targets, max_level=5)
    levels = required_nodes(frame.source for frame in plan)
    assert [len(level) for level in levels] == [2, 4, 8]  # two pairs: 1 + 2 + 4 nodes each
    everything = [node for level in levels for node in level]
    assert len(everything) == len(set(everything)) == 14
    for number, level in enumerate(levels, start=1):
        assert all(node.level == number for node in level)


def test_factor_levels_keep_powers_of_two_and_use_levels_otherwise():
    assert [is_power_of_two(n) for n in (1, 2, 3, 4, 6, 8, 12, 16)] == [
        True, True, False, True, False, True, False, True,
    ]  # fmt: skip
    for factor, depth in ((2, 3), (4, 4), (8, 5), (16, 6)):  # log2(factor) + 2, as before
        assert factor_levels(factor, levels=1) == depth
        assert job_levels(VideoJob(factor=factor, levels=1)) == depth
        assert factor_timing_error(factor, depth) == 0
    assert factor_levels(3) == 3 and factor_levels(3, levels=5) == 5
    assert job_levels(VideoJob(factor=6, levels=2)) == 2
    assert job_levels(VideoJob(fps=Fraction(60), levels=4)) == 4
    with pytest.raises(ValueError):
        factor_levels(0)


def test_factor_timing_error_is_the_plans_worst_case():
    assert factor_timing_error(3, 3) == Fraction(1, 24)  # 1/3 -> 3/8, 2/3 -> 5/8
    assert factor_timing_error(5, 3) == Fraction(1, 20)
    assert factor_timing_error(3, 1) == Fraction(1, 6)  # both new frames are the midpoint
    times = cfr_times(4, 1)  # one-second intervals: errors in seconds are in intervals
    for factor in (3, 5, 6, 7, 12, 20):
        for levels in (1, 3, 6):
            targets = output_times(times[0], Fraction(4), Fraction(factor))
            plan = plan_frames(times, no_flags(4), targets, factor_levels(factor, levels))
            shown = [
                times[frame.source]
                if isinstance(frame.source, int)
                else frame.source.left + frame.source.position
                for frame in plan[: 3 * factor]  # not the held end
            ]
            worst = max(abs(time - frame.time) for time, frame in zip(shown, plan, strict=False))
            error = factor_timing_error(factor, levels)
            assert worst == error <= Fraction(1, 2 ** (levels + 1)), (factor, levels)


def test_factor_three_is_scheduled_like_fps():
    times = cfr_times(4, 25)
    analysis = Analysis(
        times=times, same_as_previous=[False] * 4, cut_before=[False] * 4, end_time=Fraction(4, 25)
    )
    plan, rate = plan_video(analysis, Fraction(25), VideoJob(factor=3))
    assert rate == 75 and len(plan) == 12  # N input frames -> 3N, same duration
    assert [frame.time for frame in plan] == [Fraction(k, 75) for k in range(12)]
    assert [frame.source for frame in plan] == [
        0, Node(0, 1, 3, 3), Node(0, 1, 5, 3),
        1, Node(1, 2, 3, 3), Node(1, 2, 5, 3),
        2, Node(2, 3, 3, 3), Node(2, 3, 5, 3),
        3, 3, 3,  # the last frame held
    ]  # fmt: skip
    assert max_timing_error(plan, times) == Fraction(1, 24 * 25)
    fps_plan, _ = plan_video(analysis, Fraction(25), VideoJob(fps=Fraction(75)))
    assert fps_plan == plan
    deeper, _ = plan_video(analysis, Fraction(25), VideoJob(factor=3, levels=5))
    assert deeper[1].source == Node(0, 1, 11, 5)  # 1/3 -> 11/32
    assert max_timing_error(deeper, times) == Fraction(1, 96 * 25)


def test_fps_24_to_60_nearest_midpoint():
    times = cfr_times(12, 24)
    targets = output_times(times[0], Fraction(12, 24), Fraction(60))
    plan = plan_frames(times, no_flags(12), targets, max_level=3)
    assert len(plan) == 30
    assert [frame.time for frame in plan] == [Fraction(k, 60) for k in range(30)]
    for frame in plan[::5]:  # every 5th output frame is an input frame (k/60 = i/24)
        assert isinstance(frame.source, int)
    # u in {0.4, 0.8, 0.2, 0.6} -> 3/8, 3/4, 1/4, 5/8: error <= 1/16 of 1/24 s
    error = max_timing_error(plan, times)
    assert 0 < error <= Fraction(1, 16 * 24)
    assert plan[1].source == Node(0, 1, 3, 3)
    assert plan[2].source == Node(0, 1, 3, 2)
    # one level less: error up to 1/8 of an interval
    coarse = plan_frames(times, no_flags(12), targets, max_level=2)
    assert max_timing_error(coarse, times) <= Fraction(1, 8 * 24)


def test_variable_frame_rate_uses_timestamps():
    times = [Fraction(0), Fraction(1, 10), Fraction(4, 10), Fraction(5, 10)]
    targets = output_times(times[0], Fraction(6, 10), Fraction(20))
    plan = plan_frames(times, no_flags(4), targets, max_level=4)
    sources = [frame.source for frame in plan]
    assert sources[:3] == [0, Node(0, 1, 1, 1), 1]
    # 0.15, 0.2, 0.25, 0.3, 0.35 between 0.1 and 0.4 -> 1/6, 1/3, 1/2, 2/3, 5/6
    assert sources[3:8] == [
        Node(1, 2, 3, 4),
        Node(1, 2, 5, 4),
        Node(1, 2, 1, 1),
        Node(1, 2, 11, 4),
        Node(1, 2, 13, 4),
    ]
    assert sources[8:] == [2, Node(2, 3, 1, 1), 3, 3]
    assert max_timing_error(plan, times) <= Fraction(3, 10) / 32


def test_scene_cut_is_held_not_morphed():
    cut = [False] * 6
    cut[3] = True
    anchors = find_anchors([False] * 6, cut)
    assert anchors.interpolate == [True, True, False, True, True]
    times = cfr_times(6, 25)
    plan = plan_frames(times, anchors, output_times(Fraction(0), Fraction(6, 25), 100), 3)
    for frame in plan:
        if isinstance(frame.source, Node):
            assert (frame.source.left, frame.source.right) != (2, 3)
    assert [frame.source for frame in plan[8:12]] == [2, 2, 2, 2]  # held until the cut
    assert plan[12].source == 3


def test_duplicate_runs_collapse_and_freezes_hold():
    # A A B B C: animation on twos -> anchors 0, 2, 4
    anchors = find_anchors([False, True, False, True, False], [False] * 5)
    assert anchors == Anchors([0, 2, 4], [True, True])
    times = cfr_times(5, 10)
    plan = plan_frames(times, anchors, output_times(Fraction(0), Fraction(5, 10), 20), 4)
    assert plan[2].source == Node(0, 2, 1, 1)  # at input frame 1's time: halfway A -> B
    assert plan[1].source == Node(0, 2, 1, 2)
    # a freeze of 6 identical frames keeps its last frame and holds in between
    same = [False, True, True, True, True, True, False]
    anchors = find_anchors(same, [False] * 7, max_dup_run=4)
    assert anchors == Anchors([0, 5, 6], [False, True])


def test_split_segments_keeps_groups_whole():
    plan = [
        OutputFrame(i, Fraction(i), Node(g, g + 1, 1, 1), g)
        for i, g in enumerate([0, 0, 0, 1, 1, 1, 2, 2, 2, 3])
    ]
    segments = split_segments(plan, 4)
    assert segments == [(0, 6), (6, 10)]
    assert split_segments(plan, 1) == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_render_computes_each_node_once_and_releases_frames():
    times = cfr_times(6, 10)
    plan = plan_frames(times, no_flags(6), output_times(Fraction(0), Fraction(6, 10), 40), 4)
    frames = [torch.full((1, 2, 2), float(i)) for i in range(6)]
    calls = []

    def interpolate(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        calls.append(first.shape[0])
        return (first + second) / 2

    store = FrameStore(iter(frames), set(range(6)))
    held = []
    out: list[float] = []

    def emit(frame: OutputFrame, picture: torch.Tensor) -> None:
        out.append(float(picture.mean()))
        held.append(store.held)

    render(plan, store, interpolate, emit, batch_pairs=2)
    assert sum(calls) == 5 * 3  # 3 nodes per pair, 5 pairs
    assert max(calls) <= 4
    expected = [min(k / 4, 5.0) for k in range(24)]
    assert out == pytest.approx(expected)
    assert max(held) <= 4


def test_similarity_scores():
    rng = np.random.default_rng(0)
    frame = rng.random((48, 64)).astype(np.float32)
    assert duplicate_score(frame, frame.copy()) == 0
    moved = frame.copy()
    moved[8:16, 8:16] = 1.0 - moved[8:16, 8:16]
    assert duplicate_score(frame, moved) > 0.1  # a small change still shows
    assert thumbnail(frame).shape == (12, 16)
    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    scene = 0.5 + 0.4 * np.sin(x / 7.0) * np.cos(y / 9.0)
    shifted = 0.5 + 0.4 * np.sin((x + 3) / 7.0) * np.cos(y / 9.0)  # camera pan
    other = np.clip(scene * 0.2 + 0.7, 0, 1)  # another scene
    assert scene_change_score(thumbnail(scene), thumbnail(shifted)) < 0.12
    assert scene_change_score(thumbnail(scene), thumbnail(other)) > 0.12


def test_render_stacks_inputs_and_nodes_on_the_nodes_device():
    """Inputs stay on the CPU while computed nodes live on the model's device (GPU)."""
    times = cfr_times(2, 10)
    plan = plan_frames(times, no_flags(2), output_times(Fraction(0), Fraction(2, 10), 40), 4)
    devices = []

    def interpolate(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        devices.append((first.device.type, second.device.type))
        return ((first + second) / 2).to("meta")  # stands in for a CUDA device

    store = FrameStore(iter([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)]), {0, 1})
    render(plan, store, interpolate, lambda frame, picture: None, batch_pairs=1)
    assert devices == [("cpu", "cpu"), ("meta", "meta")]
