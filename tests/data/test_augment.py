"""Batched augmentation (crops, flips, time swap) and the mixed training batches."""

from __future__ import annotations

import pytest
import torch

from sepconv.data.augment import augment_triplets
from sepconv.data.mixture import TrainingBatches, split_counts
from sepconv.data.synthetic import SyntheticMotion, SyntheticMotionConfig


def _coordinate_batch(count: int = 64, height: int = 20, width: int = 24) -> dict:
    """Frames whose channels encode (row, column, time): first t=0, middle t=1, last t=2."""
    rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
    cols = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
    sample = torch.arange(count, dtype=torch.float32)[:, None, None]

    def frame(t: float) -> torch.Tensor:
        return torch.stack(
            (
                rows.expand(count, -1, -1),
                cols.expand(count, -1, -1),
                (t + 10 * sample).expand(-1, height, width),
            ),
            dim=1,
        )

    return {"first": frame(0.0), "middle": frame(1.0), "last": frame(2.0), "tag": "kept"}


def test_crop_flip_swap_keep_triplets_consistent() -> None:
    batch = _coordinate_batch()
    out = augment_triplets(batch, 16, torch.Generator().manual_seed(0))
    assert out["tag"] == "kept"
    flips_h = flips_v = swaps = 0
    for b in range(64):
        first, middle, last = (out[k][b] for k in ("first", "middle", "last"))
        assert first.shape == (3, 16, 16)
        # Same crop and flips for the three frames.
        assert torch.equal(first[:2], middle[:2]) and torch.equal(last[:2], middle[:2])
        # The middle frame stays the middle; first/last are swapped together.
        assert torch.all(middle[2] == 1 + 10 * b)
        times = (float(first[2, 0, 0]) - 10 * b, float(last[2, 0, 0]) - 10 * b)
        assert times in {(0.0, 2.0), (2.0, 0.0)}
        swaps += times == (2.0, 0.0)
        # Rows/columns are a contiguous window, possibly reversed.
        row, col = middle[0, :, 0], middle[1, 0, :]
        step_r, step_c = row[1] - row[0], col[1] - col[0]
        assert abs(float(step_r)) == 1 and abs(float(step_c)) == 1
        assert torch.equal(row, row[0] + step_r * torch.arange(16.0))
        assert torch.equal(col, col[0] + step_c * torch.arange(16.0))
        assert float(row.min()) >= 0 and float(row.max()) <= 19
        assert float(col.min()) >= 0 and float(col.max()) <= 23
        flips_v += float(step_r) < 0
        flips_h += float(step_c) < 0
    for n in (flips_h, flips_v, swaps):
        assert 16 <= n <= 48  # each about half of the time


def test_flip_matches_torch_flip() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 8, 8)
    batch = {"first": image, "middle": image + 1, "last": image + 2}
    seen = set()
    for seed in range(40):
        out = augment_triplets(batch, None, torch.Generator().manual_seed(seed), swap_time=False)
        flips = {
            (False, False): lambda x: x,
            (True, False): lambda x: x.flip(-1),
            (False, True): lambda x: x.flip(-2),
            (True, True): lambda x: x.flip(-1).flip(-2),
        }
        match = [k for k, f in flips.items() if torch.equal(out["middle"][0], f(image[0] + 1))]
        assert len(match) == 1
        flip = flips[match[0]]
        assert torch.equal(out["first"][0], flip(image[0]))
        assert torch.equal(out["last"][0], flip(image[0] + 2))
        seen.add(match[0])
    assert len(seen) == 4


def test_deterministic_and_options() -> None:
    batch = _coordinate_batch(8)
    a = augment_triplets(batch, 12, torch.Generator().manual_seed(3))
    b = augment_triplets(batch, 12, torch.Generator().manual_seed(3))
    assert all(torch.equal(a[k], b[k]) for k in ("first", "middle", "last"))
    plain = augment_triplets(
        batch,
        None,
        torch.Generator().manual_seed(3),
        flip_horizontal=False,
        flip_vertical=False,
        swap_time=False,
    )
    assert all(torch.equal(plain[k], batch[k]) for k in ("first", "middle", "last"))
    with pytest.raises(ValueError):
        augment_triplets(batch, 32)
    uint8 = {k: batch[k].to(torch.uint8) for k in ("first", "middle", "last")}
    assert augment_triplets(uint8, 12)["first"].dtype == torch.uint8


def test_split_counts() -> None:
    assert split_counts(32, [0.7, 0.3]) == [22, 10]
    assert split_counts(10, [1, 1, 1]) in ([4, 3, 3], [3, 4, 3], [3, 3, 4])
    assert sum(split_counts(7, [0.5, 0.25, 0.25])) == 7
    assert split_counts(8, [1.0, 0.0]) == [8, 0]
    with pytest.raises(ValueError):
        split_counts(8, [0.0, 0.0])


class _ConstantDataset(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 5

    def __getitem__(self, index: int) -> dict:
        frame = torch.full((3, 40, 40), index / 10)
        return {"first": frame, "middle": frame + 0.01, "last": frame + 0.02}


def test_training_batches_mix_sources() -> None:
    generator = torch.Generator().manual_seed(0)
    photos = (torch.rand((2, 3, 120, 120), generator=generator) * 255).to(torch.uint8)
    synthetic = SyntheticMotion(photos, SyntheticMotionConfig(size=40, max_translation=4.0))

    def make(**kwargs) -> TrainingBatches:
        sources = [synthetic, _ConstantDataset()]
        return TrainingBatches(sources, [0.75, 0.25], 8, "cpu", seed=1, size=32, **kwargs)

    iterator = iter(make())
    first = next(iterator)
    second = next(iterator)
    iterator.close()
    for batch in (first, second):
        assert set(batch) == {"first", "middle", "last"}
        assert batch["middle"].shape == (8, 3, 32, 32)
        # The last two samples come from the constant dataset (middle = frame + 0.01).
        constant = batch["middle"][6:]
        assert torch.all(constant.amax((1, 2, 3)) == constant.amin((1, 2, 3)))
    # Step-indexed: batch s is the s-th batch of the stream, whatever the threads.
    unthreaded = make(num_workers=0, prefetch=False)
    assert all(torch.equal(first[k], unthreaded.batch(0)[k]) for k in first)
    assert all(torch.equal(second[k], make().batch(1)[k]) for k in first)
    assert all(torch.equal(second[k], next(iter(make(start_step=1)))[k]) for k in first)
    assert not torch.equal(first["middle"], second["middle"])
