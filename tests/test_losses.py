"""Losses: values on known inputs, the spec parser, and the VGG-19 plumbing (random weights)."""

from __future__ import annotations

import pytest
import torch

from sepconv.errors import SepconvError
from sepconv.losses import (
    CensusLoss,
    LaplacianL1Loss,
    VGG19Features,
    build_loss,
    laplacian_pyramid,
    parse_loss_spec,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 32, 32, generator=generator), torch.rand(
        2, 3, 32, 32, generator=generator
    )


def test_l1_value() -> None:
    a = torch.zeros(1, 3, 8, 8)
    assert build_loss("l1")(a, a + 0.25).item() == pytest.approx(0.25)


@pytest.mark.parametrize("name", ["l1", "lap", "census"])
def test_zero_on_equal_positive_otherwise_and_differentiable(name: str) -> None:
    loss = build_loss(name)
    a, b = _pair()
    assert loss(a, a).item() == pytest.approx(0.0, abs=1e-7)
    prediction = a.clone().requires_grad_(True)
    value = loss(prediction, b)
    assert value.item() > 0
    value.backward()
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0


def test_laplacian_pyramid_reconstructs() -> None:
    a, _ = _pair()
    pyramid = laplacian_pyramid(a, 4)
    assert len(pyramid) == 4 and pyramid[-1].shape[-1] == 4
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = band + torch.nn.functional.interpolate(
            image, size=band.shape[-2:], mode="bilinear", align_corners=False
        )
    torch.testing.assert_close(image, a)
    assert LaplacianL1Loss(4)(a, a + 0.1).item() > 0


def test_census_ignores_brightness_offset() -> None:
    a, _ = _pair()
    census = CensusLoss()
    assert census(a * 0.5, a * 0.5 + 0.2).item() == pytest.approx(0.0, abs=1e-6)
    assert build_loss("l1")(a * 0.5, a * 0.5 + 0.2).item() > 0.1


def test_spec_parser() -> None:
    assert parse_loss_spec("l1") == [(1.0, "l1")]
    assert parse_loss_spec("l1 + 0.1*lap+2e-3*census") == [
        (1.0, "l1"),
        (0.1, "lap"),
        (0.002, "census"),
    ]
    assert parse_loss_spec("lf") == [(1.0, "vgg")]
    for bad in ("", "l2", "x*l1", "l1+"):
        with pytest.raises(SepconvError):
            parse_loss_spec(bad)


def test_weighted_sum_and_dict_specs() -> None:
    a, b = _pair()
    combined = build_loss("l1+0.5*lap")
    expected = build_loss("l1")(a, b) + 0.5 * build_loss("lap")(a, b)
    torch.testing.assert_close(combined(a, b), expected)
    assert set(combined.last_terms) == {"l1", "lap"}
    torch.testing.assert_close(build_loss({"l1": 1.0, "lap": 0.5})(a, b), expected)
    torch.testing.assert_close(build_loss({"spec": "l1+0.5*lap"})(a, b), expected)


def test_vgg_layers_match_torchvision_indices() -> None:
    features = VGG19Features()
    keys = [k for k in features.state_dict() if k.endswith(".weight")]
    assert keys[0] == "0.weight" and keys[-1] == "25.weight" and len(keys) == 12
    assert len(features) == 27 and isinstance(features[26], torch.nn.ReLU)
    assert features(torch.rand(1, 3, 32, 32)).shape == (1, 512, 4, 4)


def test_vgg_feature_loss_from_file(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("SEPCONV_VGG19_WEIGHTS", raising=False)
    with pytest.raises(SepconvError, match="does not exist"):
        build_loss("lf", vgg_weights=tmp_path / "missing.pth")
    with pytest.raises(SepconvError, match="VGG-19 weights"):
        build_loss("lf")
    torch.manual_seed(0)
    source = VGG19Features()
    # A whole-model torchvision-style state dict: features.N.*, plus classifier keys.
    state = {f"features.{k}": v for k, v in source.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    loss = build_loss({"spec": "lf", "vgg_weights": str(path)})
    feature_module = loss.terms[0].features
    torch.testing.assert_close(feature_module[25].weight, source[25].weight)
    a, b = _pair()
    assert loss(a, a).item() == pytest.approx(0.0, abs=1e-8)
    prediction = a.clone().requires_grad_(True)
    loss(prediction, b).backward()
    assert prediction.grad.abs().sum() > 0
    assert all(p.grad is None for p in feature_module.parameters())
    torch.save({"0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(SepconvError, match="not a VGG-19"):
        build_loss("lf", vgg_weights=tmp_path / "bad.pth")
