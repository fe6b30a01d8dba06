"""The network's architecture, and parity with an independent transcription of the authors' code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from authors_transcription import AuthorsNetwork, authors_estimate, plausible_random_state_dict

from sepconv.inference import Interpolator
from sepconv.models.checkpoint import load_weights
from sepconv.models.sepconv_net import SepConvConfig, SepConvNet, count_parameters


def test_parameter_count_matches_the_paper_network():
    assert count_parameters(SepConvNet()) == 21_675_452


def test_state_dict_uses_the_authors_layer_names():
    keys = set(SepConvNet().state_dict())
    assert {"moduleConv1.0.weight", "moduleUpsample5.1.weight", "moduleVertical1.7.bias"} <= keys
    assert keys == set(AuthorsNetwork().state_dict())


def test_forward_shapes_and_size_check():
    model = SepConvNet(SepConvConfig(kernel_size=5, encoder_channels=(4, 8, 8, 8, 8))).eval()
    first, second = torch.rand(2, 3, 64, 32), torch.rand(2, 3, 64, 32)
    with torch.no_grad():
        assert model(first, second).shape == (2, 3, 64, 32)
    with pytest.raises(ValueError, match="multiple of 32"):
        model(torch.rand(1, 3, 40, 32), torch.rand(1, 3, 40, 32))


def test_network_is_differentiable_end_to_end():
    torch.manual_seed(0)  # a 4-channel ReLU network can start with every unit dead
    model = SepConvNet(SepConvConfig(kernel_size=3, encoder_channels=(4, 4, 4, 4, 4)))
    first, second = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    model(first, second).abs().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.moduleConv1[0].weight.grad.abs().sum() > 0


def test_config_round_trips_through_a_dict():
    config = SepConvConfig(kernel_size=7, channel_order="bgr")
    assert SepConvConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError):
        SepConvConfig(channel_order="yuv")


@pytest.mark.parametrize("padding", ["improved", "paper"])
def test_matches_the_authors_forward_pass_within_one_level(
    padding, authors_checkpoint, fixture_pair
):
    """Our pipeline on an authors'-format file == their code path, to within 1/255."""
    first, _, second = fixture_pair
    network = AuthorsNetwork()
    network.load_state_dict(plausible_random_state_dict(seed=0))
    expected = authors_estimate(network.eval(), first, second, padding)
    assert 60 < expected.mean() < 200  # the random weights give a plausible image

    model = load_weights(authors_checkpoint).model
    interpolator = Interpolator(model, padding=padding, optimize=False)  # the reference path
    ours = interpolator.interpolate(first, second)
    assert ours.dtype == np.uint8 and ours.shape == first.shape
    difference = np.abs(ours.astype(int) - expected.astype(int))
    assert difference.max() <= 1  # they truncate to 8 bits, we round

    # Before quantisation the two agree far more tightly.
    ours_float = interpolator.interpolate(first / 255.0, second / 255.0)
    assert np.abs(ours_float * 255.0 - (expected + 0.5)).max() <= 0.5 + 1e-3


def test_bgr_flag_flips_the_channels_inside():
    torch.manual_seed(0)
    rgb_model = SepConvNet(SepConvConfig(kernel_size=3, encoder_channels=(4, 4, 4, 4, 4))).eval()
    bgr_model = SepConvNet(
        SepConvConfig(kernel_size=3, encoder_channels=(4, 4, 4, 4, 4), channel_order="bgr")
    ).eval()
    bgr_model.load_state_dict(rgb_model.state_dict())
    first, second = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        rgb_kernels = rgb_model.predict_kernels(first, second)
        bgr_kernels = bgr_model.predict_kernels(first.flip(1), second.flip(1))
    torch.testing.assert_close(rgb_kernels.vertical1, bgr_kernels.vertical1)
