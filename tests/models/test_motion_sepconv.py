"""The learned-motion family: its motion op beside the reference warp, gradients, the network's
start as a plain blend, times other than 1/2, checkpoints and the training pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from conftest import TINY_MOTION_CONFIG_KWARGS

from sepconv.flow import FlowSettings
from sepconv.inference import Interpolator
from sepconv.models.checkpoint import load_weights, save_safetensors
from sepconv.models.motion import (
    SELECTOR_INITIAL_LOGIT,
    MotionEstimator,
    MotionOutput,
    backward_warp,
    backward_warp_at,
    bilateral_cost_volume,
    candidate_offsets,
    candidate_size,
    classic_candidate,
    local_cost_volume,
    resize_flows,
    time_tensor,
)
from sepconv.models.motion_sepconv import (
    NEGLIGIBLE_SHARE,
    MotionSepConvConfig,
    MotionSepConvNet,
    flow_loss,
    mixed_warp,
    selection_loss,
    time_symmetry_loss,
)
from sepconv.models.registry import config_from_dict, create_model

TINY = TINY_MOTION_CONFIG_KWARGS


def _texture(height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand((1, 3, height // 4 + 2, width // 4 + 2), generator=generator)
    return F.interpolate(coarse, size=(height, width), mode="bicubic").clamp(0, 1)


def test_backward_warp_matches_integer_shift() -> None:
    frame = _texture(16, 20)
    flow = torch.zeros(1, 2, 16, 20)
    flow[:, 0] = 3.0  # read 3 pixels to the right
    warped = backward_warp(frame, flow)
    assert torch.allclose(warped[..., :-3], frame[..., 3:], atol=1e-5)
    assert torch.allclose(backward_warp(frame, torch.zeros_like(flow)), frame, atol=1e-6)


def test_backward_warp_and_cost_volume_gradcheck() -> None:
    generator = torch.Generator().manual_seed(0)
    frame = torch.rand(1, 2, 5, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    flow = (
        0.7 * torch.randn(1, 2, 5, 6, dtype=torch.float64, generator=generator)
    ).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: backward_warp(a, b), (frame, flow))
    other = torch.rand(1, 2, 5, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    time = torch.tensor([0.3], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a, b: bilateral_cost_volume(a, b, time, radius=1, step=1), (frame, other)
    )
    assert torch.autograd.gradcheck(lambda a, b: local_cost_volume(a, b, 1), (frame, other))


def test_local_cost_volume_matches_its_definition() -> None:
    generator = torch.Generator().manual_seed(1)
    first = torch.rand(1, 3, 6, 7, generator=generator)
    second = torch.rand(1, 3, 6, 7, generator=generator)
    cost = local_cost_volume(first, second, 1)
    offsets = candidate_offsets(1, 1.0, torch.device("cpu"))
    for index, (dx, dy) in enumerate(offsets.long().tolist()):
        shifted = backward_warp(second, torch.tensor([float(dx), float(dy)]).view(1, 2, 1, 1) + 0)
        inside = (slice(1, -1), slice(1, -1))
        expected = (first * shifted).sum(1)[0][inside]
        assert torch.allclose(cost[0, index][inside], expected, atol=1e-5)


@pytest.mark.parametrize("time", [0.5, 0.25])
def test_cost_volume_peaks_at_the_true_motion(time: float) -> None:
    features = F.normalize(_texture(24, 24, seed=1), dim=1)
    motion = 2  # the last frame is the first moved right by 2 pixels
    first, last = features, torch.roll(features, motion, dims=3)
    offsets = candidate_offsets(2, 1.0, torch.device("cpu"))
    cost = bilateral_cost_volume(first, last, torch.tensor([time]), radius=2, step=1)
    best = offsets[cost[..., 6:-6, 6:-6].mean(dim=(0, 2, 3)).argmax()]
    assert best.tolist() == [motion, 0.0]
    aligned = local_cost_volume(first, last, 2)
    assert offsets[aligned[..., 6:-6, 6:-6].mean(dim=(0, 2, 3)).argmax()].tolist() == [motion, 0]


def test_estimator_any_size_and_time() -> None:
    estimator = MotionEstimator((4, 4, 6), (8, 8, 8), coarse_radius=1, fine_radius=1)
    first, last = _texture(37, 53), _texture(37, 53, seed=2)
    output = estimator(first, last, torch.tensor([0.25]))
    assert output.flow_t0.shape == output.flow_t1.shape == (1, 2, 37, 53)
    assert len(output.levels) == 3
    # Zero-initialised output layers: the blend starts at the nearer frame's weight 1 - t.
    assert torch.allclose(torch.sigmoid(output.blend_logit), torch.full((1, 1, 37, 53), 0.75))
    with pytest.raises(ValueError, match="times for a batch"):
        time_tensor(torch.tensor([0.5, 0.5]), 3, torch.device("cpu"))


@pytest.mark.parametrize("halfway", ["average", "splat"])
@pytest.mark.parametrize("time", [0.5, 0.25])
def test_classic_candidate_splits_the_motion_at_t(time: float, halfway: str) -> None:
    """DIS on a pure 4-px translation: the flows from time t are -4t and 4(1 - t), whether
    they are read at time t's pixel (linear motion) or splatted there."""
    pytest.importorskip("cv2")
    from sepconv.flow import FlowSettings

    texture = _texture(64, 96)
    first, last = texture[..., 8:-8], torch.roll(texture, 4, dims=3)[..., 8:-8]
    settings = FlowSettings(finest_scale=0, halfway=halfway)
    flows = classic_candidate(first, last, torch.tensor([time]), settings)
    assert flows.shape == (1, 4, 64, 80)
    inner = flows[..., 12:-12, 12:-12].mean(dim=(2, 3))[0]
    expected = torch.tensor([-4 * time, 0.0, 4 * (1 - time), 0.0])
    torch.testing.assert_close(inner, expected, atol=0.3, rtol=0)


def test_candidate_size_halves_or_caps_the_long_side() -> None:
    assert candidate_size(64, 96, 0) == (32, 48)
    assert candidate_size(720, 1280, 640) == (360, 640)
    assert candidate_size(480, 640, 640) == (480, 640)  # never enlarged
    assert candidate_size(388, 584, 640) == (388, 584)


def test_resize_flows_keeps_the_motion_in_the_new_pixels() -> None:
    """A uniform motion of (3, -2) pixels is (6, -4) pixels of a frame twice as large, (1.5,
    -1) of one half as large; both flows of a (B, 4, h, w) pair are scaled."""
    flows = torch.tensor([3.0, -2.0, -1.0, 0.5])[None, :, None, None].expand(1, 4, 8, 12)
    larger = resize_flows(flows, (16, 24))
    smaller = resize_flows(flows, (4, 6))
    assert larger.shape == (1, 4, 16, 24) and smaller.shape == (1, 4, 4, 6)
    torch.testing.assert_close(larger[0, :, 5, 7], torch.tensor([6.0, -4.0, -2.0, 1.0]))
    torch.testing.assert_close(smaller[0, :, 1, 2], torch.tensor([1.5, -1.0, -0.5, 0.25]))
    torch.testing.assert_close(
        resize_flows(flows, (12, 12))[0, :, 3, 3], torch.tensor([3.0, -3.0, -1.0, 0.75])
    )  # x and y scaled apart
    assert resize_flows(flows, (8, 12)) is flows


def test_candidate_frames_follow_classic_max_side() -> None:
    """The candidate's frames: a long-side cap equal to half the frame is the half-size frames
    exactly; a cap at the frame's size computes DIS on the frames themselves."""
    pytest.importorskip("cv2")
    from sepconv.flow import FlowSettings

    settings = FlowSettings(finest_scale=0, halfway="splat")
    first = _texture(64, 96)
    last = torch.roll(first, 6, dims=3)
    time = torch.tensor([0.5])
    outputs = {}
    for max_side in (0, 48, 96):
        torch.manual_seed(0)
        estimator = MotionEstimator(
            (4, 4, 6),
            (8, 8, 8),
            1,
            2,
            1,
            classic=settings,
            selector_width=8,
            classic_max_side=max_side,
        )
        with torch.no_grad():
            outputs[max_side] = estimator(first, last, time)
    torch.testing.assert_close(outputs[48].candidate[0], outputs[0].candidate[0])
    full = classic_candidate(first, last, time, settings)
    torch.testing.assert_close(outputs[96].candidate[0], full[:, 0:2])
    torch.testing.assert_close(outputs[96].candidate[1], full[:, 2:4])
    inner = (slice(None), slice(0, 1), slice(16, -16), slice(16, -16))
    assert abs(float(outputs[96].candidate[0][inner].mean()) + 3.0) < 0.3


def test_estimator_with_the_classic_candidate_starts_from_it() -> None:
    """With the candidate, the selector starts out keeping about 5% of the learned flows: the
    output flows are close to DIS's; the mix is a fourth level for the flow loss."""
    pytest.importorskip("cv2")
    from sepconv.flow import FlowSettings

    settings = FlowSettings(finest_scale=1)
    estimator = MotionEstimator((4, 4, 6), (8, 8, 8), 1, 2, 1, classic=settings, selector_width=8)
    first = _texture(64, 96)  # a multiple of 32: no padding, DIS sees these frames
    last = torch.roll(first, 6, dims=3)
    with torch.no_grad():
        output = estimator(first, last, torch.tensor([0.5]))
        half = F.avg_pool2d(first, 2), F.avg_pool2d(last, 2)
        candidate = 2 * F.interpolate(
            classic_candidate(*half, torch.tensor([0.5]), settings),
            scale_factor=2.0,
            mode="bilinear",
        )
    assert output.kept is not None and output.kept.shape == (1, 1, 64, 96)
    assert 0.03 < float(output.kept.mean()) < 0.07
    assert len(output.levels) == 4
    inner = (slice(None), slice(None), slice(16, -16), slice(16, -16))
    learned = MotionEstimator((4, 4, 6), (8, 8, 8), 1, 2, 1)
    learned.load_state_dict(estimator.state_dict(), strict=False)
    with torch.no_grad():
        alone = learned(first, last, torch.tensor([0.5]))
    kept = float(torch.sigmoid(torch.tensor(SELECTOR_INITIAL_LOGIT)))
    mix = (1 - kept) * candidate[:, 0:2] + kept * alone.flow_t0
    assert float((output.flow_t0 - mix).abs().max()) < 1e-4
    assert float(output.flow_t0[inner][:, 0].mean()) < -2.0  # DIS's -3 dominates


def test_learned_flows_train_whatever_the_selector_keeps() -> None:
    """With the classic candidate all but chosen, the learned flows still get the frame
    loss's gradient (their own plain blend), not only the synthetic flows'."""
    pytest.importorskip("cv2")
    config = MotionSepConvConfig(
        **TINY,
        classic_candidate=True,
        selector_width=8,
        train_kernels=False,
        flow_loss_weight=0,
        selector_loss_weight=0.1,
    )
    net = MotionSepConvNet(config)
    with torch.no_grad():
        net.motion.selector.out.bias[0] = -30.0  # keeps none of the learned flows
        net.motion.estimators[-1].out.weight.normal_(0.0, 0.01)
    first = _texture(32, 32)
    batch = {"first": first, "last": torch.roll(first, 3, dims=3), "middle": first}
    prediction, extra = net.training_forward(batch, backend="reference")
    assert extra is not None and float(extra.detach()) > 0
    ((prediction - batch["middle"]).abs().mean() + extra).backward()
    assert float(net.motion.estimators[-1].out.weight.grad.abs().sum()) > 0
    assert float(net.motion.selector.out.weight.grad.abs().sum()) > 0


def test_warp_selection_mixes_the_two_warps() -> None:
    """selection = "warps": each warp is kept * warp(learned) + (1 - kept) * warp(candidate),
    not a warp by the mixed flow; with the selector's share all 0 or all 1 both selections
    agree; the selector gets the frame loss's gradient."""
    pytest.importorskip("cv2")
    base = {**TINY, "classic_candidate": True, "selector_width": 8, "train_kernels": False}
    by_flows = MotionSepConvNet(MotionSepConvConfig(**base)).eval()
    by_warps = MotionSepConvNet(MotionSepConvConfig(**base, selection="warps")).eval()
    by_warps.load_state_dict(by_flows.state_dict())
    first = _texture(32, 32)
    last = torch.roll(first, 5, dims=3)
    with torch.no_grad():
        motion = by_warps.estimate_motion(first, last, 0.4)
        inputs = by_warps.inputs_from_motion(first, last, motion)
        kept = motion.kept
        assert kept is not None and motion.learned is not None and motion.candidate is not None
        expected = kept * backward_warp(first, motion.learned[0], "bicubic") + (
            1 - kept
        ) * backward_warp(first, motion.candidate[0], "bicubic")
        assert torch.allclose(inputs["first"], expected, atol=1e-6)
        flows = by_flows.inputs_from_motion(first, last, motion)
        assert float((inputs["first"] - flows["first"]).abs().max()) > 1e-4
        for logit in (-30.0, 30.0):
            for net in (by_flows, by_warps):
                net.motion.selector.out.weight[0].zero_()
                net.motion.selector.out.bias[0] = logit
            one, other = (net.prepare(first, last, 0.4) for net in (by_flows, by_warps))
            for key in ("first", "second", "flow", "blend"):
                assert torch.allclose(one[key], other[key], atol=1e-5), (logit, key)
    with pytest.raises(ValueError, match="selection"):
        MotionSepConvConfig(selection="pixels")
    train = MotionSepConvNet(MotionSepConvConfig(**base, selection="warps", flow_loss_weight=0))
    with torch.no_grad():
        train.motion.estimators[-1].out.weight.normal_(0.0, 0.01)
    batch = {"first": first, "last": last, "middle": torch.roll(first, 2, dims=3)}
    prediction, extra = train.training_forward(batch, backend="reference")
    (prediction - batch["middle"]).abs().mean().backward()
    assert float(train.motion.selector.out.weight.grad.abs().sum()) > 0


def test_candidate_refiner_starts_as_the_candidate_and_learns_a_residual() -> None:
    """refiner_width > 0: at initialisation the model's output is exactly that of the same
    weights without a refiner; the refined candidate at 1/4 is one more level for the flow
    loss; the refiner gets the frame loss's gradient, and its residual moves the candidate
    (upsampled from 1/4) once it is not zero."""
    pytest.importorskip("cv2")
    base = {**TINY, "classic_candidate": True, "selector_width": 8, "train_kernels": False}
    plain = MotionSepConvNet(MotionSepConvConfig(**base, selection="warps")).eval()
    refined = MotionSepConvNet(MotionSepConvConfig(**base, selection="warps", refiner_width=8))
    missing, unexpected = refined.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(".refiner." in name for name in missing)
    refined.eval()
    first = _texture(32, 64)
    last = torch.roll(first, 4, dims=3)
    with torch.no_grad():
        one, other = (net.estimate_motion(first, last, 0.3) for net in (plain, refined))
        assert len(other.levels) == len(one.levels) + 1
        for key in ("flow_t0", "flow_t1", "blend_logit", "kept"):
            assert torch.equal(getattr(one, key), getattr(other, key)), key
        refined.motion.refiner.out.bias.copy_(torch.tensor([1.0, 0.0, -1.0, 0.5]))
        moved = refined.estimate_motion(first, last, 0.3)
    assert moved.candidate is not None and one.candidate is not None
    shift = moved.candidate[0] - one.candidate[0]  # a constant 1/4-level residual: 4 pixels
    assert torch.allclose(shift[:, 0], torch.full_like(shift[:, 0], 4.0), atol=1e-4)
    assert torch.allclose(shift[:, 1], torch.zeros_like(shift[:, 1]), atol=1e-4)
    refined.train()
    with torch.no_grad():
        refined.motion.refiner.out.bias.zero_()
    batch = {"first": first, "last": last, "middle": torch.roll(first, 1, dims=3)}
    prediction, _ = refined.training_forward(batch, backend="reference")
    (prediction - batch["middle"]).abs().mean().backward()
    assert float(refined.motion.refiner.out.weight.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="refiner_width"):
        MotionSepConvConfig(**TINY, refiner_width=8)  # no classic candidate to refine
    with pytest.raises(ValueError, match="refiner_width"):
        MotionSepConvConfig(**TINY, classic_candidate=True, refiner_width=2)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_warp_at_some_pixels_matches_the_whole_warp(mode: str) -> None:
    """backward_warp_at samples exactly what backward_warp does, at the chosen pixels of each
    batch item (none chosen in one of them)."""
    generator = torch.Generator().manual_seed(3)
    frame = torch.rand((3, 4, 12, 17), generator=generator)
    flow = 6 * torch.randn((3, 2, 12, 17), generator=generator)  # some reads past the border
    where = torch.rand((3, 12, 17), generator=generator) > 0.7
    where[1] = False
    values, (batch, rows, columns) = backward_warp_at(frame, flow, where, mode)
    assert values.shape == (int(where.sum()), 4) and not bool((batch == 1).any())
    whole = backward_warp(frame, flow, mode)
    assert torch.allclose(values, whole[batch, :, rows, columns], atol=1e-6)


def test_mixed_warp_skips_the_learned_warp_only_where_its_share_is_negligible() -> None:
    """Without gradients, mixed_warp matches the dense mix to within NEGLIGIBLE_SHARE (exactly
    the candidate's warp where nothing is kept), and with gradients it is the dense mix."""
    generator = torch.Generator().manual_seed(4)
    frame = torch.rand((2, 3, 16, 20), generator=generator)
    learned = 4 * torch.randn((2, 2, 16, 20), generator=generator)
    candidate = 4 * torch.randn((2, 2, 16, 20), generator=generator)
    kept = torch.rand((2, 1, 16, 20), generator=generator)
    kept[kept < 0.6] = 0.0  # most pixels keep none of the learned flow, as on real footage
    kept[0, 0, :4] = NEGLIGIBLE_SHARE / 2  # kept, but too little to matter
    dense = kept * backward_warp(frame, learned, "bicubic") + (1 - kept) * backward_warp(
        frame, candidate, "bicubic"
    )
    with torch.no_grad():
        sparse = mixed_warp(frame, learned, candidate, kept, "bicubic")
        nothing = mixed_warp(frame, learned, candidate, torch.zeros_like(kept), "bicubic")
    assert float((sparse - dense).abs().max()) <= NEGLIGIBLE_SHARE * 2
    assert float((sparse - dense).abs().max()) > 0  # the negligible share was skipped
    assert torch.equal(nothing, backward_warp(frame, candidate, "bicubic"))
    share = kept.clone().requires_grad_(True)
    with_grad = mixed_warp(frame, learned, candidate, share, "bicubic")
    assert torch.allclose(with_grad, dense, atol=1e-6)
    with_grad.sum().backward()
    assert share.grad is not None and float(share.grad.abs().sum()) > 0


def test_selection_loss_pushes_the_selector_towards_the_better_flows() -> None:
    """Where the learned flows' blend is better, the loss raises the keep logit; where the
    candidate's is, it lowers it."""
    target = _texture(32, 32)
    frames = (target + 0.1).clamp(0, 1)  # the candidate (zero flows) is off by 0.1
    learned = target.clone()
    learned[..., 16:] += 0.5  # the learned blend: exact on the left, far off on the right
    zero = torch.zeros(1, 2, 32, 32)
    logit = torch.zeros(1, 1, 8, 8, requires_grad=True)
    motion = MotionOutput(zero, zero, zero[:, :1], candidate=(zero, zero), keep_logit=logit)
    loss = selection_loss(motion, learned, frames, frames, zero[:, :1] + 0.5, target, "bilinear")
    loss.backward()
    assert logit.grad is not None
    assert float(logit.grad[..., :3].max()) < 0  # left: keep more of the learned flows
    assert float(logit.grad[..., 5:].min()) > 0  # right: keep more of the candidate


def test_network_starts_as_the_plain_blend() -> None:
    torch.manual_seed(0)
    net = MotionSepConvNet(MotionSepConvConfig(**TINY)).eval()
    first, last = _texture(32, 32), _texture(32, 32, seed=3)
    with torch.no_grad():
        inputs = net.prepare(first, last, 0.3)
        blend = inputs["blend"]
        plain = blend * inputs["first"] + (1 - blend) * inputs["second"]
        output = net.synthesize(
            inputs["first"], inputs["second"], net.kernels_for(inputs), backend="reference"
        )
    assert torch.allclose(output, plain, atol=1e-5)


def test_config_round_trip_and_checkpoint(tmp_path) -> None:
    config = MotionSepConvConfig(**TINY)
    assert config_from_dict(config.to_dict()) == config
    net = create_model(config)
    assert isinstance(net, MotionSepConvNet)
    path = save_safetensors(tmp_path / "motion.safetensors", net)
    loaded = load_weights(path or tmp_path / "motion.safetensors").model
    assert loaded.config == config
    with pytest.raises(ValueError, match="warp_mode"):
        MotionSepConvConfig(warp_mode="nearest")
    for bad, match in (
        ({"classic_halfway": "nearest"}, "classic_halfway"),
        ({"classic_max_side": 1}, "classic_max_side"),
        ({"classic_refinement_iterations": -2}, "classic_refinement_iterations"),
    ):
        with pytest.raises(ValueError, match=match):
            MotionSepConvConfig(**bad)
    finer = MotionSepConvConfig(
        classic_candidate=True,
        classic_finest_scale=0,
        classic_max_side=640,
        classic_halfway="splat",
        classic_refinement_iterations=0,
    )
    assert config_from_dict(finer.to_dict()) == finer
    assert finer.classic_settings == FlowSettings(
        finest_scale=0, halfway="splat", refinement_iterations=0
    )
    # Weights saved before the candidate's settings existed load with the old candidate.
    older = {k: v for k, v in finer.to_dict().items() if not k.startswith("classic_")}
    assert config_from_dict({**older, "classic_candidate": True}).classic_settings == (
        FlowSettings(finest_scale=1)
    )


def test_training_pass_reaches_the_motion() -> None:
    torch.manual_seed(0)
    net = MotionSepConvNet(MotionSepConvConfig(**TINY))
    first, last = _texture(32, 32), _texture(32, 32, seed=4)
    batch = {
        "first": first.repeat(2, 1, 1, 1),
        "last": last.repeat(2, 1, 1, 1),
        "middle": first.repeat(2, 1, 1, 1),
        "time": torch.tensor([0.5, 0.3]),
        "flow_t0": torch.ones(2, 2, 32, 32),
        "flow_t1": -torch.ones(2, 2, 32, 32),
        "flow_valid": torch.tensor([1.0, 0.0]),
    }
    prediction, extra = net.training_forward(batch, backend="reference")
    assert prediction.shape == (2, 3, 32, 32)
    assert extra is not None and torch.isfinite(extra)
    ((prediction - batch["middle"]).abs().mean() + extra).backward()
    assert net.motion.estimators[0].out.weight.grad.abs().sum() > 0
    assert net.head[0].weight.grad.abs().sum() > 0
    # Motion alone: the prediction is the plain blend and the kernel network gets nothing.
    motion_only = MotionSepConvNet(MotionSepConvConfig(**TINY, train_kernels=False))
    prediction, _ = motion_only.training_forward(batch, backend="reference")
    prediction.mean().backward()
    assert motion_only.head[0].weight.grad is None


class _LinearMotion:
    """A motion symmetric in time by construction: a uniform motion ``shift`` (B, 2) from the
    first frame to the last, split at t (F_t0 = -t d, F_t1 = (1 - t) d), the blend 1 - t, or
    ``blend`` everywhere when given (then asymmetric unless it is 1/2)."""

    def __init__(self, blend: float | None = None) -> None:
        self.blend = blend

    def estimate_motion(self, first, last, time) -> MotionOutput:
        batch, _, height, width = first.shape
        t = time_tensor(time, batch, first.device)[:, None, None, None]
        shift = (last - first).mean(dim=(1, 2, 3))[:, None, None, None]
        d = shift.expand(batch, 2, height, width) * 10.0
        weight = 1.0 - t if self.blend is None else torch.full_like(t, self.blend)
        return MotionOutput(
            -t * d, (1.0 - t) * d, torch.logit(weight).expand(batch, 1, height, width)
        )


def test_time_symmetry_loss_is_zero_for_a_symmetric_motion_only() -> None:
    first, last = _texture(16, 16), _texture(16, 16, seed=3)
    time = torch.tensor([0.3])
    for model, expected_zero in ((_LinearMotion(), True), (_LinearMotion(blend=0.7), False)):
        motion = model.estimate_motion(first, last, time)
        loss = float(time_symmetry_loss(model, motion, first, last, time, 16.0))
        assert (loss < 1e-5) == expected_zero, loss
    # A network's motion: finite, positive at initialisation, and it trains both passes.
    torch.manual_seed(0)
    config = {**TINY, "train_kernels": False, "symmetry_loss_weight": 1.0}
    net = MotionSepConvNet(MotionSepConvConfig(**config))
    batch = {"first": first, "last": last, "middle": first, "time": time}
    _, with_symmetry = net.training_forward(batch, backend="reference")
    plain = MotionSepConvNet(MotionSepConvConfig(**{**config, "symmetry_loss_weight": 0.0}))
    plain.load_state_dict(net.state_dict())
    _, without = plain.training_forward(batch, backend="reference")
    assert float(with_symmetry.detach()) > float(without.detach())
    with_symmetry.backward()
    assert net.motion.estimators[0].out.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="loss weights"):
        MotionSepConvConfig(**{**TINY, "symmetry_loss_weight": -1.0})


def _randomised_outputs(estimator: MotionEstimator, seed: int) -> MotionEstimator:
    """The estimator with random output layers (they start at zero: a near-symmetric start)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in estimator.modules():
            if isinstance(module, torch.nn.Conv2d) and not module.weight.any():
                module.weight.copy_(0.3 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.3 * torch.randn(module.bias.shape, generator=generator))
    return estimator.eval()


def _asked_both_ways(classic: bool, **options: bool | int) -> tuple[MotionOutput, MotionOutput]:
    """A tiny estimator with random outputs on a 32 x 64 pair, asked at t = 0.3 and the other
    way round (last frame first, 1 - t)."""
    first, last = _texture(32, 64), _texture(32, 64, seed=7)
    time = torch.tensor([0.3])
    torch.manual_seed(0)
    estimator = MotionEstimator(
        (4, 4, 6),
        (8, 8, 8),
        coarse_radius=1,
        fine_radius=1,
        classic=FlowSettings(finest_scale=0, halfway="splat") if classic else None,
        classic_max_side=64,
        refiner_width=8 if classic else 0,
        **options,
    )
    estimator = _randomised_outputs(estimator, seed=1)
    with torch.no_grad():
        return estimator(first, last, time), estimator(last, first, 1 - time)


@pytest.mark.parametrize("classic", [False, True])
def test_time_symmetric_estimator_gives_the_same_motion_asked_the_other_way_round(
    classic: bool,
) -> None:
    first, last = _texture(32, 64), _texture(32, 64, seed=7)
    time = torch.tensor([0.3])
    outputs = {
        symmetric: _asked_both_ways(classic, time_symmetric=symmetric)
        for symmetric in (False, True)
    }
    for symmetric, (asked, reversed_) in outputs.items():
        gap = max(
            float((asked.flow_t0 - reversed_.flow_t1).abs().max()),
            float((asked.flow_t1 - reversed_.flow_t0).abs().max()),
            float((asked.blend_logit + reversed_.blend_logit).abs().max()),
        )
        if classic:
            keep_gap = float((asked.kept - reversed_.kept).abs().max())
            gap = max(gap, keep_gap)
        # Exact by construction (float rounding), and far from it for the plain estimator.
        assert (gap < 1e-4) == symmetric, (symmetric, gap)
    # The same parameters: a file trained without it loads with it.
    plain = MotionEstimator((4, 4, 6), (8, 8, 8), coarse_radius=1, fine_radius=1)
    both = MotionEstimator(
        (4, 4, 6), (8, 8, 8), coarse_radius=1, fine_radius=1, time_symmetric=True
    )
    both.load_state_dict(plain.state_dict())
    output = both(first, last, time)
    assert output.flow_t0.shape == (1, 2, 32, 64) and len(output.levels) == 3


@pytest.mark.parametrize("symmetric_levels", [1, 2])
def test_partly_symmetric_estimator_is_symmetric_on_its_coarse_levels_only(
    symmetric_levels: int,
) -> None:
    asked, reversed_ = _asked_both_ways(
        True, time_symmetric=True, symmetric_levels=symmetric_levels
    )
    gaps = [
        max(float((a0 - r1).abs().max()), float((a1 - r0).abs().max()))
        for (a0, a1), (r0, r1) in zip(asked.levels, reversed_.levels, strict=True)
    ]
    # The symmetric levels match exactly (float rounding); the finer ones run once, as asked.
    assert max(gaps[:symmetric_levels]) < 1e-4, gaps
    assert min(gaps[symmetric_levels:]) > 1e-3, gaps
    assert asked.flow_t0.shape == (1, 2, 32, 64) and asked.kept.shape == (1, 1, 32, 64)
    with pytest.raises(ValueError, match="symmetric_levels"):
        MotionEstimator((4, 4, 6), (8, 8, 8), time_symmetric=True, symmetric_levels=4)
    with pytest.raises(ValueError, match="symmetric_levels"):
        MotionSepConvConfig(**{**TINY, "symmetric_levels": 0})
    assert "symmetric_levels" in MotionSepConvConfig.PRIOR_FIELDS


def test_time_symmetric_model_trains_and_reconfigures() -> None:
    torch.manual_seed(0)
    config = MotionSepConvConfig(**{**TINY, "train_kernels": False, "time_symmetric": True})
    net = MotionSepConvNet(config)
    first, last = _texture(32, 32), _texture(32, 32, seed=3)
    batch = {"first": first, "last": last, "middle": first, "time": torch.tensor([0.25])}
    prediction, extra = net.training_forward(batch, backend="reference")
    ((prediction - last).abs().mean() + extra).backward()
    assert net.motion.estimators[-1].out.weight.grad.abs().sum() > 0
    assert "time_symmetric" in MotionSepConvConfig.PRIOR_FIELDS


def test_flow_loss_is_zero_for_exact_flows_and_ignores_invalid_samples() -> None:
    estimator = MotionEstimator((4, 4, 6), (8, 8, 8), coarse_radius=1, fine_radius=1)
    output = estimator(_texture(32, 32), _texture(32, 32, seed=5), torch.tensor([0.5]))
    zero = torch.zeros(1, 2, 32, 32)
    valid = torch.ones(1)
    loss_valid = flow_loss(output, zero + 5.0, zero - 5.0, valid)
    assert float(loss_valid.detach()) > 1.0
    assert float(flow_loss(output, zero + 5.0, zero - 5.0, torch.zeros(1)).detach()) == 0.0


def test_interpolator_takes_any_time_for_this_family_only(fixture_pair) -> None:
    from conftest import make_flow_model

    first, _, last = (frame[:40, :56] for frame in fixture_pair)
    net = MotionSepConvNet(MotionSepConvConfig(**TINY))
    interpolator = Interpolator(net, device="cpu")
    assert interpolator.takes_time
    third = interpolator.interpolate(first, last, time=1 / 3)
    assert third.shape == first.shape and third.dtype == np.uint8
    swapped = Interpolator(net, device="cpu", ensemble=2).interpolate(first, last, time=1 / 3)
    assert swapped.shape == first.shape
    # The frames at t = 0 and 1 are the inputs themselves, for any model.
    assert np.array_equal(interpolator.interpolate(first, last, time=0.0), first)
    assert np.array_equal(interpolator.interpolate(first, last, time=1.0), last)
    with pytest.raises(ValueError, match="between 0 and 1"):
        interpolator.interpolate(first, last, time=1.5)
    flow = Interpolator(make_flow_model(), device="cpu")
    assert not flow.takes_time
    assert np.array_equal(flow.interpolate(first, last, time=1.0), last)
    with pytest.raises(ValueError, match="only the middle frame"):
        flow.interpolate(first, last, time=0.25)


def test_kernels_that_add_nothing_are_skipped_exactly() -> None:
    """A zero kernel head (the motion-only stage) makes centre taps: the Interpolator's plain
    blend equals the kernel synthesis; a trained head runs the kernels."""
    torch.manual_seed(0)
    net = MotionSepConvNet(MotionSepConvConfig(**TINY)).eval()
    first, last = _texture(64, 96), _texture(64, 96, seed=6)
    with torch.no_grad():
        inputs = net.prepare(first, last, 0.4)
        through_kernels = net.kernel_synthesis(inputs, backend="reference").clamp(0, 1)
        assert net.blend_synthesis(inputs) is not None
        skipped = Interpolator(net, device="cpu").interpolate_tensor(first, last, 0.4)
        torch.testing.assert_close(skipped, through_kernels, atol=1e-5, rtol=0)
        net.head[0].bias[0] = 0.1
        assert net.blend_synthesis(inputs) is None


@pytest.mark.parametrize("kernel_resolution", [1, 2])
def test_tiles_match_the_whole_frame_while_kernels_ignore_context(kernel_resolution: int) -> None:
    # Kernels from the head's bias alone (zero weights) do not depend on context, so tiling
    # (motion on the whole frame, only the kernel network tiled) must give the whole frame.
    torch.manual_seed(0)
    net = MotionSepConvNet(MotionSepConvConfig(**TINY, kernel_resolution=kernel_resolution))
    with torch.no_grad():
        net.head[0].bias.normal_(0.0, 0.05)
    first, last = _texture(150, 200), _texture(150, 200, seed=6)
    whole = Interpolator(net, device="cpu").interpolate_tensor(first, last, 0.4)
    tiled = Interpolator(net, device="cpu", tile_size=128, tile_margin=16).interpolate_tensor(
        first, last, 0.4
    )
    assert torch.allclose(whole, tiled, atol=1e-5)


def test_low_resolution_kernels_cover_every_pixel_and_train() -> None:
    """``kernel_resolution = 2``: the U-Net sees half-size inputs, the kernels come back at
    every pixel (a zero head still gives the plain blend, on a size the Interpolator pads),
    and a kernel-stage training pass reaches the kernel head."""
    torch.manual_seed(0)
    config = MotionSepConvConfig(**{**TINY, "kernel_resolution": 2})
    assert config.stride == 2 * MotionSepConvConfig(**TINY).stride
    net = MotionSepConvNet(config).eval()
    seen: list[tuple[int, ...]] = []
    hook = net.encoders[0].register_forward_hook(lambda _m, args, _o: seen.append(args[0].shape))
    first, last = _texture(64, 96), _texture(64, 96, seed=6)
    with torch.no_grad():
        inputs = net.prepare(first, last, 0.4)
        kernels = net.kernels_for(inputs)
        plain = inputs["blend"] * inputs["first"] + (1 - inputs["blend"]) * inputs["second"]
        through_kernels = net.synthesize(inputs["first"], inputs["second"], kernels)
    hook.remove()
    assert seen[0][-2:] == (32, 48)
    assert kernels.vertical1.shape == (1, config.kernel_size, 64, 96)
    torch.testing.assert_close(through_kernels, plain, atol=1e-5, rtol=0)
    odd = Interpolator(net, device="cpu").interpolate_tensor(_texture(37, 53), _texture(37, 53, 2))
    assert odd.shape == (1, 3, 37, 53)

    net.train()
    batch = {"first": first, "last": last, "middle": first, "time": torch.tensor([0.5])}
    prediction, extra = net.training_forward(batch, backend="reference")
    ((prediction - last).abs().mean() + extra).backward()
    assert net.head[0].weight.grad.abs().sum() > 0
    assert "kernel_resolution" in MotionSepConvConfig.PRIOR_FIELDS
    with pytest.raises(ValueError, match="kernel_resolution"):
        MotionSepConvConfig(**{**TINY, "kernel_resolution": 3})


def test_bfloat16_precision_runs_close_to_float32() -> None:
    torch.manual_seed(0)
    net = MotionSepConvNet(MotionSepConvConfig(**TINY))
    with torch.no_grad():
        for parameter in net.head.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    first, last = _texture(64, 64), _texture(64, 64, seed=7)
    exact = Interpolator(net, device="cpu").interpolate_tensor(first, last)
    half = Interpolator(net, device="cpu", precision="bfloat16").interpolate_tensor(first, last)
    assert (exact - half).abs().mean() < 0.02


def test_adapt_trains_this_family() -> None:
    from conftest import moving_clip, tiny_adapt_settings

    from sepconv.engine.adapt import adapt

    torch.manual_seed(0)
    base = Interpolator(MotionSepConvNet(MotionSepConvConfig(**TINY)), device="cpu")
    result = adapt(base, moving_clip(), tiny_adapt_settings(), quiet=True)
    assert result.steps == 3 and not result.skipped
    assert np.isfinite(result.psnr_before) and np.isfinite(result.psnr_after)
