"""Loading weights safely: our formats, the authors' format, and everything that must be refused."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from sepconv.errors import WeightsError
from sepconv.models.checkpoint import load_weights, save_checkpoint, save_safetensors
from sepconv.models.sepconv_net import SepConvConfig, SepConvNet

TINY = SepConvConfig(kernel_size=5, encoder_channels=(4, 8, 8, 8, 8))


def _tiny_model(seed: int = 0) -> SepConvNet:
    torch.manual_seed(seed)
    return SepConvNet(TINY)


def test_training_checkpoint_round_trip_keeps_config_and_extras(tmp_path):
    model = _tiny_model()
    path = tmp_path / "run" / "step.pt"
    save_checkpoint(path, model, step=7, seed=3)
    loaded = load_weights(path)
    assert loaded.kind == "sepconv" and loaded.model.config == TINY
    assert loaded.metadata["step"] == 7 and loaded.metadata["seed"] == 3
    assert "torch_version" in loaded.metadata and "sepconv_version" in loaded.metadata
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_safetensors_round_trip_in_half_precision(tmp_path):
    model = _tiny_model()
    path = tmp_path / "model.safetensors"
    save_safetensors(path, model, metadata={"note": "test"})
    loaded = load_weights(path)
    assert loaded.model.config == TINY and loaded.metadata["note"] == "test"
    weight = loaded.model.moduleConv1[0].weight
    torch.testing.assert_close(weight, model.moduleConv1[0].weight.half().float())


def test_authors_file_loads_with_bgr_config(authors_checkpoint):
    loaded = load_weights(authors_checkpoint)
    assert loaded.kind == "authors"
    assert loaded.model.config.channel_order == "bgr" and loaded.model.kernel_size == 51


def test_net_prefixed_keys_are_accepted(tmp_path):
    state = {k.replace("module", "net", 1): v for k, v in SepConvNet().state_dict().items()}
    path = tmp_path / "network-net.pytorch"
    torch.save(state, path)
    assert load_weights(path).kind == "authors"


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "network-l1.pytorch"
    payload = {"moduleConv1.0.weight": _RunsCode(str(marker))}
    if writer == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    # The payload really is live: plain pickle would run it.
    with pytest.raises(WeightsError, match="refused to load") as caught:
        load_weights(path)
    assert "\n" not in str(caught.value)
    assert not marker.exists()


def test_the_malicious_payload_would_run_without_the_guard(tmp_path):
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_RunsCode(str(marker))))
    assert marker.exists()  # proves the refusal test above tests something real


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable checkpoint"),
        (b"this is not a checkpoint at all", "not a readable checkpoint"),
        (b"PK\x03\x04garbage-zip", "not a readable checkpoint"),
    ],
)
def test_corrupt_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message) as caught:
        load_weights(path)
    assert "\n" not in str(caught.value)


def test_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "whole.pt"
    save_checkpoint(path, _tiny_model())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError):
        load_weights(truncated)


def test_wrong_architecture_names_what_is_missing(tmp_path):
    state = SepConvNet().state_dict()
    del state["moduleVertical2.7.bias"]
    path = tmp_path / "network-partial.pytorch"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"missing 1 tensors \(moduleVertical2\.7\.bias"):
        load_weights(path)


def test_wrong_shapes_are_named(tmp_path):
    model = _tiny_model()
    state = model.state_dict()
    path = tmp_path / "bad.pt"
    save_checkpoint(path, model)
    raw = torch.load(path, weights_only=True)
    raw["model"]["moduleConv1.0.bias"] = torch.zeros(3)
    torch.save(raw, path)
    with pytest.raises(WeightsError, match="moduleConv1.0.bias has shape"):
        load_weights(path)
    assert state  # the original is untouched


def test_foreign_state_dict_is_not_a_sepconv_network(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(WeightsError, match="not a SepConv checkpoint"):
        load_weights(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(tmp_path / "nope.pt")
    with pytest.raises(WeightsError, match="not a file"):
        load_weights(tmp_path)
