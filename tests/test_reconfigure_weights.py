"""scripts/reconfigure_weights.py: a weights file with other PRIOR_FIELDS settings, the tensors
unchanged; anything that would need retraining is refused with one line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from conftest import TINY_MOTION_CONFIG_KWARGS
from safetensors import safe_open
from safetensors.torch import load_file

from sepconv.models.checkpoint import load_weights, save_safetensors
from sepconv.models.motion_sepconv import MotionSepConvConfig, MotionSepConvNet

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reconfigure_weights.py"


def _script():
    spec = importlib.util.spec_from_file_location("reconfigure_weights", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reconfigure_changes_the_setting_and_keeps_the_tensors(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    config = MotionSepConvConfig(**TINY_MOTION_CONFIG_KWARGS, classic_candidate=True)
    source = tmp_path / "motion.safetensors"
    save_safetensors(source, MotionSepConvNet(config), metadata={"step": "12"})
    before = source.read_bytes()
    output = tmp_path / "warps.safetensors"
    script = _script()
    assert script.main([str(source), str(output), "--set", "selection=warps"]) == 0
    assert source.read_bytes() == before  # the input is untouched
    assert load_weights(output).model.config == MotionSepConvConfig(
        **TINY_MOTION_CONFIG_KWARGS, classic_candidate=True, selection="warps"
    )
    old, new = load_file(source), load_file(output)
    assert old.keys() == new.keys()
    assert all(torch.equal(old[name], new[name]) for name in old)
    with safe_open(str(output), "pt") as handle:
        metadata = handle.metadata()
    assert metadata["step"] == "12" and metadata["reconfigured"] == '{"selection": "warps"}'
    capsys.readouterr()

    for argv, message in (
        ([str(source), str(tmp_path / "x.safetensors"), "--set", "widths=[4,4]"], "retraining"),
        ([str(source), str(tmp_path / "x.safetensors"), "--set", "selection=pixels"], "selection"),
        ([str(source), str(source), "--set", "selection=warps"], "is the input"),
        ([str(tmp_path / "none.safetensors"), str(output), "--set", "selection=warps"], "exist"),
    ):
        assert script.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "x.safetensors").exists()


def test_setting_values_parse_as_json_or_text() -> None:
    script = _script()
    assert script.parse_setting("classic_max_side=640") == ("classic_max_side", 640)
    assert script.parse_setting("train_kernels=true") == ("train_kernels", True)
    assert script.parse_setting("selection=warps") == ("selection", "warps")
    with pytest.raises(ValueError, match="NAME=VALUE"):
        script.parse_setting("selection")
