"""evaluate() on a tiny synthetic set of triplets written as PNG files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sepconv import metrics
from sepconv.data.triplets import Triplet, folder_triplets
from sepconv.engine.evaluate import EvalResult, evaluate, load_rgb8
from sepconv.errors import InputError

SHAPE = (12, 16, 3)


def _write(path: Path, frame: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame).save(path)


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[list[Triplet], dict[bytes, np.ndarray]]:
    """Three triplets in nested folders and a map from the first frame's bytes to the truth."""
    rng = np.random.default_rng(0)
    truth_of = {}
    for name in ["clipA/1", "clipA/2", "clipB/1"]:
        frames = [rng.integers(0, 256, size=SHAPE, dtype=np.uint8) for _ in range(3)]
        for index, frame in enumerate(frames, start=1):
            _write(tmp_path / "data" / name / f"im{index}.png", frame)
        truth_of[frames[0].tobytes()] = frames[1]
    return folder_triplets(tmp_path / "data"), truth_of


def test_exact_predictor(dataset, tmp_path: Path) -> None:
    triplets, truth_of = dataset
    calls = []
    result = evaluate(
        lambda first, last: truth_of[first.tobytes()].copy(),
        triplets,
        progress=lambda done, total, name: calls.append((done, total, name)),
    )
    assert [row.name for row in result.rows] == ["clipA/1", "clipA/2", "clipB/1"]
    assert all(row.psnr == math.inf and row.ie == 0.0 for row in result.rows)
    assert result.psnr == math.inf
    assert result.ssim == pytest.approx(1.0)
    assert result.ie == 0.0
    assert calls == [(1, 3, "clipA/1"), (2, 3, "clipA/2"), (3, 3, "clipB/1")]


def test_first_frame_predictor(dataset) -> None:
    triplets, _ = dataset
    result = evaluate(lambda first, last: first, triplets)
    for row, triplet in zip(result.rows, triplets, strict=True):
        truth, first = load_rgb8(triplet.middle), load_rgb8(triplet.first)
        assert row.psnr == pytest.approx(metrics.psnr(truth, first))
        assert row.ssim == pytest.approx(metrics.ssim(truth, first))
        assert row.ie == pytest.approx(metrics.interpolation_error(truth, first))
        assert row.seconds >= 0.0
    assert result.psnr == pytest.approx(np.mean([row.psnr for row in result.rows]))
    assert result.ie == pytest.approx(np.mean([row.ie for row in result.rows]))
    assert 5.0 < result.psnr < 15.0  # independent uniform noise: about 7.7 dB

    table = result.to_table()
    lines = table.splitlines()
    assert len(lines) == 2 + 3 + 2
    assert lines[-1].startswith("mean") and f"{result.psnr:.2f}" in lines[-1]
    assert "clipB/1" in table
    assert len({len(line) for line in lines}) == 1  # fixed width

    data = json.loads(json.dumps(result.to_dict()))
    assert data["count"] == 3
    assert data["mean"]["psnr"] == pytest.approx(result.psnr)
    assert [item["name"] for item in data["items"]] == ["clipA/1", "clipA/2", "clipB/1"]
    assert set(data["items"][0]) == {"name", "psnr", "ssim", "ie", "seconds"}


def test_save_dir(dataset, tmp_path: Path) -> None:
    triplets, _ = dataset
    out = tmp_path / "out" / "nested"
    evaluate(lambda first, last: last, triplets, save_dir=out)
    assert sorted(p.name for p in out.iterdir()) == ["clipA_1.png", "clipA_2.png", "clipB_1.png"]
    assert np.array_equal(load_rgb8(out / "clipB_1.png"), load_rgb8(triplets[2].last))
    # Overwrites in place, leaving no temporary files behind.
    evaluate(lambda first, last: first, triplets, save_dir=out)
    assert len(list(out.iterdir())) == 3
    assert np.array_equal(load_rgb8(out / "clipA_1.png"), load_rgb8(triplets[0].first))


def test_bad_predictions_raise(dataset) -> None:
    triplets, _ = dataset
    with pytest.raises(ValueError, match="uint8"):
        evaluate(lambda first, last: first.astype(np.float32), triplets)
    with pytest.raises(ValueError, match="shape"):
        evaluate(lambda first, last: first[:-1], triplets)
    with pytest.raises(ValueError, match="list"):
        evaluate(lambda first, last: first.tolist(), triplets)
    with pytest.raises(ValueError, match="no triplets"):
        evaluate(lambda first, last: first, [])


def test_unreadable_frames_raise(dataset, tmp_path: Path) -> None:
    triplets, _ = dataset
    triplets[1].middle.unlink()
    with pytest.raises(InputError, match="no such file"):
        evaluate(lambda first, last: first, triplets)
    triplets[1].middle.write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read"):
        evaluate(lambda first, last: first, triplets)
    _write(triplets[1].middle, np.zeros((5, 5, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="differ in size"):
        evaluate(lambda first, last: first, triplets)


def test_load_rgb8_converts_to_rgb(tmp_path: Path) -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    rgb = load_rgb8(tmp_path / "grey.png")
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[..., 1], grey)
    rgba = np.full((3, 4, 4), 9, dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert load_rgb8(tmp_path / "rgba.png").shape == (3, 4, 3)


def test_empty_result_means_are_nan() -> None:
    assert math.isnan(EvalResult().psnr)


def test_aligned_evaluation_removes_a_global_shift(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    # A smooth random texture, so that a one-pixel roll is a clean translation.
    texture = np.kron(rng.integers(0, 256, size=(8, 10, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    folder = tmp_path / "shaken"
    for index, frame in enumerate([texture, texture, texture], start=1):
        _write(folder / "clip_1" / f"im{index}.png", frame)
    triplets = folder_triplets(folder)

    def shaken(first: np.ndarray, last: np.ndarray) -> np.ndarray:
        return np.roll(first, 1, axis=1)

    plain = evaluate(shaken, triplets)
    aligned = evaluate(shaken, triplets, align=True)
    assert plain.rows[0].shift is None
    assert aligned.rows[0].shift == pytest.approx((-1.0, 0.0), abs=0.1)
    assert aligned.psnr > plain.psnr + 10.0
    assert "dx" in aligned.to_table() and "dx" not in plain.to_table()
    assert aligned.to_dict()["items"][0]["shift"] == aligned.rows[0].shift


def test_by_clip_groups_rows_by_clip() -> None:
    from sepconv.engine.evaluate import EvalRow

    rows = [
        EvalRow(name, psnr, 0.9, 1.0, 0.1)
        for name, psnr in [("tree_6", 30.0), ("vtest_50", 40.0), ("tree_17", 32.0)]
    ]
    groups = EvalResult(rows=rows).by_clip()
    assert list(groups) == ["tree", "vtest"]
    assert [row.name for row in groups["tree"].rows] == ["tree_6", "tree_17"]
    assert groups["tree"].psnr == pytest.approx(31.0)


def test_aligned_evaluation_refuses_frames_too_small_to_align(dataset) -> None:
    triplets, _ = dataset  # 16 x 12 frames: below the 2 * 4 + 7 pixels aligning needs
    with pytest.raises(InputError, match="cannot align 'clipA/1'.*too small"):
        evaluate(lambda first, last: first, triplets, align=True)
