"""Training batches mixed from several sources (synthetic motion, video and file triplets).

Every batch holds a fixed number of samples from each source, proportional to its weight
(largest-remainder rounding, e.g. 70% synthetic / 30% video), each part augmented with
:func:`sepconv.data.augment.augment_triplets` (random crop to ``size``, flips, time swap) and
concatenated on ``device``. Sources are :class:`~sepconv.data.synthetic.SyntheticMotion`
(anything with ``sample(n, generator)``), rendered where it lives, or map-style datasets of
{"first", "middle", "last"} items of one size, read with a ``DataLoader`` (random indices with
replacement, ``num_workers`` processes). A given seed gives the same stream of batches (with
``num_workers=0``; with workers, the datasets' own random crops still depend only on indices).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from sepconv.data.augment import FRAMES, augment_triplets

__all__ = ["TrainingBatches", "split_counts"]


def split_counts(batch_size: int, weights: Sequence[float]) -> list[int]:
    """Samples per source: proportional to ``weights``, summing to ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {weights}")
    total = float(sum(weights))
    exact = [batch_size * w / total for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: counts[i] - exact[i])
    for i in order[: batch_size - sum(counts)]:
        counts[i] += 1
    return counts


class TrainingBatches:
    """An endless iterable of {"first", "middle", "last"} (B,3,size,size) float batches.

    Args:
        sources: ``SyntheticMotion`` generators and/or datasets.
        weights: relative share of each source in every batch.
        batch_size: samples per batch.
        device: where the batches are delivered.
        seed: seeds synthetic sampling, dataset indices and augmentation.
        size: crop size (every source must give samples at least this large).
        augment: apply flips and time swap (the crop to ``size`` is always done).
        num_workers: ``DataLoader`` worker processes per dataset source.
    """

    def __init__(
        self,
        sources: Sequence[Any],
        weights: Sequence[float],
        batch_size: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        *,
        size: int = 128,
        augment: bool = True,
        num_workers: int = 0,
    ) -> None:
        if len(sources) != len(weights):
            raise ValueError(f"{len(sources)} sources but {len(weights)} weights")
        self.sources = list(sources)
        self.counts = split_counts(batch_size, weights)
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.seed = seed
        self.size = size
        self.augment = augment
        self.num_workers = num_workers

    def _loader(self, dataset: Dataset, count: int, index: int) -> Iterator[dict]:
        generator = torch.Generator().manual_seed(self.seed * 1000 + 2 * index + 1)
        sampler = RandomSampler(dataset, replacement=True, num_samples=1 << 40, generator=generator)
        loader = DataLoader(
            dataset,
            batch_size=count,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=self.num_workers > 0,
        )
        return iter(loader)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        augment_generator = torch.Generator().manual_seed(self.seed * 1000)
        streams: list[Any] = []
        for index, (source, count) in enumerate(zip(self.sources, self.counts, strict=True)):
            if count == 0:
                streams.append(None)
            elif hasattr(source, "sample"):
                seed = self.seed * 1000 + 2 * index + 2
                streams.append(torch.Generator().manual_seed(seed))
            else:
                streams.append(self._loader(source, count, index))
        while True:
            parts = []
            for source, count, stream in zip(self.sources, self.counts, streams, strict=True):
                if count == 0:
                    continue
                part = source.sample(count, stream) if hasattr(source, "sample") else next(stream)
                part = {k: part[k].to(self.device, non_blocking=True) for k in FRAMES}
                part = augment_triplets(
                    part,
                    self.size,
                    augment_generator,
                    flip_horizontal=self.augment,
                    flip_vertical=self.augment,
                    swap_time=self.augment,
                )
                parts.append(part)
            yield {k: torch.cat([p[k] for p in parts]) for k in FRAMES}
