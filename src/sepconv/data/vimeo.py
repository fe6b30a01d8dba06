"""Datasets over triplets of image files: any list of :class:`Triplet`, and Vimeo-90k.

:class:`TripletDataset` decodes a triplet's three images per item (optionally cached in memory
as uint8) and returns {"first", "middle", "last"} float (3,H,W) in [0, 1], optionally a random
crop (the same for the three frames) whose position is fixed by (seed, epoch, index).
:class:`VimeoTriplets` is that dataset over Vimeo-90k's ``sequences/XXXXX/XXXX/im1..im3.png``
listed in ``tri_trainlist.txt`` / ``tri_testlist.txt``; ``folder_triplets(root)`` without a
split (any tree of im1/im2/im3.png folders, e.g. shared/data/triplets) works the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from sepconv.data.triplets import Split, Triplet, folder_triplets
from sepconv.errors import InputError

__all__ = ["TripletDataset", "VimeoTriplets", "read_rgb8"]


def read_rgb8(path: Path | str) -> torch.Tensor:
    """An image file as a (3,H,W) uint8 RGB tensor."""
    try:
        with Image.open(path) as im:
            array = np.array(im.convert("RGB"), dtype=np.uint8)
    except OSError as error:
        raise InputError(f"cannot read image {str(path)!r}: {error}") from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


class TripletDataset(Dataset):
    """Items {"first", "middle", "last"} (float (3,H,W) in [0, 1]) of a list of triplets.

    Args:
        triplets: the triplets (e.g. from :func:`folder_triplets`).
        crop_size: side of a square random crop (None: whole frames).
        cache: keep decoded frames in memory as uint8 (for small sets read every epoch).
        seed: seeds the crop positions together with the epoch and the index.
    """

    def __init__(
        self,
        triplets: Sequence[Triplet],
        crop_size: int | None = None,
        *,
        cache: bool = False,
        seed: int = 0,
    ) -> None:
        if not triplets:
            raise InputError("no triplets given")
        self.triplets = list(triplets)
        self.crop_size = crop_size
        self.cache = cache
        self.seed = seed
        self.epoch = 0
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.triplets)

    def set_epoch(self, epoch: int) -> None:
        """Change the crop positions (they depend on seed, epoch and index)."""
        self.epoch = int(epoch)

    def frames(self, index: int) -> torch.Tensor:
        """The (3 frames, 3 channels, H, W) uint8 stack of item ``index`` (first, middle, last)."""
        if index in self._cache:
            return self._cache[index]
        triplet = self.triplets[index]
        images = [read_rgb8(p) for p in (triplet.first, triplet.middle, triplet.last)]
        if any(im.shape != images[0].shape for im in images):
            raise InputError(f"the frames of triplet {triplet.name!r} differ in size")
        stack = torch.stack(images)
        if self.cache:
            self._cache[index] = stack
        return stack

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        stack = self.frames(index)
        if self.crop_size is not None:
            size = self.crop_size
            height, width = stack.shape[-2:]
            if min(height, width) < size:
                name = self.triplets[index].name
                raise InputError(f"triplet {name!r} ({width}x{height}) is smaller than {size}")
            rng = np.random.default_rng((self.seed, self.epoch, index))
            top = int(rng.integers(0, height - size + 1))
            left = int(rng.integers(0, width - size + 1))
            stack = stack[:, :, top : top + size, left : left + size]
        stack = stack.float().div_(255.0)
        return {"first": stack[0], "middle": stack[1], "last": stack[2]}


class VimeoTriplets(TripletDataset):
    """Vimeo-90k triplets (``root/sequences/XXXXX/XXXX/im1..3.png``) of ``split``.

    ``split`` is "train" (``tri_trainlist.txt``) or "test" (``tri_testlist.txt``); see
    :func:`folder_triplets` for the errors. Other arguments: :class:`TripletDataset`.
    """

    def __init__(
        self,
        root: Path | str,
        split: Split = "train",
        crop_size: int | None = None,
        *,
        cache: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(folder_triplets(root, split=split), crop_size, cache=cache, seed=seed)
        self.root = Path(root)
        self.split = split
