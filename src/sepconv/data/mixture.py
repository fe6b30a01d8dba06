"""Training batches mixed from several sources (synthetic motion, video and file triplets).

Every batch holds a fixed number of samples from each source, proportional to its weight
(largest-remainder rounding, e.g. 70% synthetic / 30% video), each part augmented with
:func:`sepconv.data.augment.augment_triplets` (random crop to ``size``, flips, time swap) and
concatenated on ``device``. Sources are :class:`~sepconv.data.synthetic.SyntheticMotion`
(anything with ``sample(n, generator)``), rendered where it lives, or map-style datasets of
{"first", "middle", "last"} items of one size (at least ``size``).

Batches are step-indexed: batch ``s`` of rank ``r`` is drawn entirely (dataset indices with
replacement, synthetic samples, augmentation) from a generator seeded with
``step_seed(seed, r, s)``, and datasets with random crops of their own (``set_epoch``) get
``set_epoch(step_seed(seed, r, s))`` first. Batch ``s`` is therefore a function of
``(seed, rank, s)`` alone, which lets a resumed training run continue bitwise where it stopped.
Dataset items are read by a small thread pool (PIL and PyAV decoding release the GIL) and the
iterator builds the next batch in a background thread while the caller trains on the current
one; neither changes the result.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from sepconv.data.augment import FRAMES, augment_triplets

__all__ = ["TrainingBatches", "split_counts", "step_seed"]


def step_seed(seed: int, rank: int, step: int) -> int:
    """Seed of the data generator for batch ``step`` of ``rank`` (distinct per rank and step)."""
    return ((seed * 1_000_003 + rank) * 1_000_000_007 + step) % (2**63 - 1)


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


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class TrainingBatches:
    """Step-indexed {"first", "middle", "last"} (B,3,size,size) float batches; iterating
    yields batches ``start_step``, ``start_step + 1``, ... without end.

    Args:
        sources: ``SyntheticMotion`` generators and/or datasets.
        weights: relative share of each source in every batch.
        batch_size: samples per batch.
        device: where the batches are delivered.
        seed, rank: with the step, seed everything random in a batch (see :func:`step_seed`).
        start_step: the first batch the iterator yields.
        size: crop size (every source must give samples at least this large).
        augment: apply flips and time swap (the crop to ``size`` is always done).
        num_workers: threads reading dataset items (0: read them in the building thread).
        prefetch: the iterator builds the next batch in a background thread.

    A dataset object belongs to one ``TrainingBatches`` (its crop epoch is set per batch).
    """

    def __init__(
        self,
        sources: Sequence[Any],
        weights: Sequence[float],
        batch_size: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        *,
        rank: int = 0,
        start_step: int = 0,
        size: int = 128,
        augment: bool = True,
        num_workers: int | None = None,
        prefetch: bool = True,
    ) -> None:
        if len(sources) != len(weights):
            raise ValueError(f"{len(sources)} sources but {len(weights)} weights")
        self.sources = list(sources)
        self.weights = [float(w) for w in weights]
        self.counts = split_counts(batch_size, self.weights)
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.seed = seed
        self.rank = rank
        self.start_step = start_step
        self.size = size
        self.augment = augment
        self.num_workers = _default_workers() if num_workers is None else max(0, num_workers)
        self.prefetch = prefetch
        self._lock = threading.Lock()  # one batch at a time: set_epoch is shared state
        self._pool: ThreadPoolExecutor | None = None

    # -- one batch -------------------------------------------------------------------------

    def _items(self, dataset: Any, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        if self.num_workers > 0 and len(indices) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="sepconv-data")
            return list(self._pool.map(dataset.__getitem__, indices))  # keeps the order
        return [dataset[index] for index in indices]

    def _dataset_part(
        self, dataset: Any, count: int, generator: torch.Generator, epoch: int
    ) -> dict[str, torch.Tensor]:
        indices = torch.randint(len(dataset), (count,), generator=generator).tolist()
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        items = self._items(dataset, indices)
        part = {k: torch.stack([item[k] for item in items]) for k in FRAMES}
        if self.device.type == "cuda":
            part = {k: v.pin_memory() for k, v in part.items()}
        return part

    @torch.no_grad()
    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """Batch ``step``: a function of (seed, rank, step) only."""
        seed = step_seed(self.seed, self.rank, step)
        generator = torch.Generator().manual_seed(seed)
        parts = []
        with self._lock:
            for source, count in zip(self.sources, self.counts, strict=True):
                if count == 0:
                    continue
                if hasattr(source, "sample"):
                    part = source.sample(count, generator)
                else:
                    part = self._dataset_part(source, count, generator, seed)
                part = {k: part[k].to(self.device, non_blocking=True) for k in FRAMES}
                part = augment_triplets(
                    part,
                    self.size,
                    generator,
                    flip_horizontal=self.augment,
                    flip_vertical=self.augment,
                    swap_time=self.augment,
                )
                parts.append({k: part[k] for k in FRAMES})
        return {k: torch.cat([p[k] for p in parts]) for k in FRAMES}

    # -- the stream ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        step = self.start_step
        if not self.prefetch:
            while True:
                yield self.batch(step)
                step += 1
        builder = ThreadPoolExecutor(1, thread_name_prefix="sepconv-prefetch")
        pending: Future | None = None
        try:
            pending = builder.submit(self.batch, step)
            while True:
                batch = pending.result()
                step += 1
                pending = builder.submit(self.batch, step)
                yield batch
        finally:
            if pending is not None:
                pending.cancel()
            # Wait for a batch in flight, unless collected by the builder thread itself.
            inside = threading.current_thread().name.startswith("sepconv-prefetch")
            builder.shutdown(wait=not inside)

    def close(self) -> None:
        """Stop the item-reading threads (they also end when this object is collected)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
