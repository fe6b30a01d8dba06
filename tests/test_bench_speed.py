"""benchmarks/bench_speed.py: its options parse, and one tiny in-process inference measurement."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "bench_speed.py"


def _module():
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))  # the script imports benchmarks/_common.py
    spec = importlib.util.spec_from_file_location("bench_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_lists_the_options():
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    )
    for option in ("--device", "--sizes", "--repeat", "--skip-4k", "--skip-training", "--json"):
        assert option in completed.stdout


def test_tiny_inference_measurement_is_uint8_to_uint8_and_saves_the_frame(tmp_path, one_thread):
    bench = _module()
    save = tmp_path / "middle.npy"
    result = bench.measure_inference("cpu", "fast-fp32", "tiny", repeat=1, save=str(save))
    assert result["ms"] > 0 and result["peak_mib"] > 0
    assert result["precision"] == "float32"
    middle = np.load(save)
    assert middle.shape == (*bench.SIZES["tiny"], 3)
    assert middle.min() >= 0.0 and middle.max() <= 255.0
    assert bench._levels(str(save), str(save)) == (0.0, 0, 0.0)


def test_levels_reports_max_before_and_after_rounding_and_the_mean(tmp_path):
    bench = _module()
    expected = np.full((2, 2, 3), 10.4, dtype=np.float32)
    actual = expected.copy()
    actual[0, 0, 0] = 11.0  # 0.6 levels off; rounds to 11 against 10
    actual_path, expected_path = tmp_path / "actual.npy", tmp_path / "expected.npy"
    np.save(actual_path, actual)
    np.save(expected_path, expected)
    before, after, mean = bench._levels(str(actual_path), str(expected_path))
    assert before == pytest.approx(0.6, abs=1e-5)
    assert after == 1
    assert mean == pytest.approx(0.6 / 12, abs=1e-6)
