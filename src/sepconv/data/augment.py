"""The paper's training augmentation, batched: random crops, flips and temporal order swap.

Each sample of a batch gets its own crop position, horizontal flip, vertical flip and
first <-> last swap, applied identically to its three frames, so the triplet stays consistent.
All random numbers come from one generator: a seeded generator gives the same batch.
"""

from __future__ import annotations

import torch

__all__ = ["FRAMES", "augment_triplets"]

FRAMES = ("first", "middle", "last")


@torch.no_grad()
def augment_triplets(
    batch: dict[str, torch.Tensor],
    size: int | None = 128,
    generator: torch.Generator | None = None,
    *,
    flip_horizontal: bool = True,
    flip_vertical: bool = True,
    swap_time: bool = True,
) -> dict[str, torch.Tensor]:
    """Randomly crop, flip and time-reverse a batch of triplets.

    Args:
        batch: {"first", "middle", "last"}: (B,C,H,W) tensors of the same shape (any dtype);
            other keys are passed through unchanged.
        size: side of the square random crop (None or the full size: no crop).
        generator: random numbers (CPU or on the batch's device); torch's default if None.
        flip_horizontal, flip_vertical: flip each sample with probability 1/2.
        swap_time: exchange first and last with probability 1/2 (the middle stays the truth).

    Returns:
        A new dict with (B,C,size,size) frames on the batch's device.
    """
    first = batch["first"]
    if any(batch[k].shape != first.shape for k in FRAMES):
        raise ValueError("first, middle and last must have the same shape")
    count, channels, height, width = first.shape
    crop_h = height if size is None else size
    crop_w = width if size is None else size
    if crop_h > height or crop_w > width:
        raise ValueError(f"crop {size} is larger than the frames ({height}x{width})")
    device = first.device
    gen_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand((count, 5), generator=generator, device=gen_device).to(device)
    top = (u[:, 0] * (height - crop_h + 1)).long().clamp(max=height - crop_h)
    left = (u[:, 1] * (width - crop_w + 1)).long().clamp(max=width - crop_w)
    flip_h = (u[:, 2] < 0.5) & flip_horizontal
    flip_v = (u[:, 3] < 0.5) & flip_vertical
    swap = (u[:, 4] < 0.5) & swap_time

    ar_h = torch.arange(crop_h, device=device)
    ar_w = torch.arange(crop_w, device=device)
    rows = top[:, None] + torch.where(flip_v[:, None], crop_h - 1 - ar_h, ar_h)
    cols = left[:, None] + torch.where(flip_h[:, None], crop_w - 1 - ar_w, ar_w)
    index_b = torch.arange(count, device=device)[:, None, None, None]
    index_c = torch.arange(channels, device=device)[None, :, None, None]
    index_r = rows[:, None, :, None]
    index_w = cols[:, None, None, :]

    out = dict(batch)
    crops = {k: batch[k][index_b, index_c, index_r, index_w] for k in FRAMES}
    swap4 = swap[:, None, None, None]
    out["first"] = torch.where(swap4, crops["last"], crops["first"])
    out["last"] = torch.where(swap4, crops["first"], crops["last"])
    out["middle"] = crops["middle"]
    return out
