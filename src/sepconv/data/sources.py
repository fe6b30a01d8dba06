"""Training data sources and the ``data`` table of a training config.

:func:`build_batches` turns a config's ``data`` table into an endless iterable of batches
{"first", "middle", "last"} ((B, 3, H, W) floats in [0, 1]) that starts at a given step; batch
``s`` of rank ``r`` depends only on ``(seed, r, s)`` (see :func:`sepconv.data.mixture.step_seed`),
which is what makes a resumed training run exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sepconv.data.mixture import TrainingBatches, step_seed
from sepconv.data.motion_batches import MotionBatches
from sepconv.errors import InputError, SepconvError

__all__ = ["Batch", "SyntheticBatches", "TranslationBatches", "build_batches"]

Batch = dict[str, Tensor]


# -- data sources ------------------------------------------------------------------------------


class TranslationBatches:
    """Built-in data: random smooth textures translated by integer shifts.

    ``first`` is the texture shifted by ``-d``, ``last`` by ``+d``, ``middle`` unshifted, with
    ``d`` uniform in ``[-max_shift, max_shift]^2`` per sample: exactly solvable by a network
    whose kernels reach ``max_shift`` pixels. Batch ``s`` comes from ``step_seed(seed, rank, s)``.
    """

    def __init__(
        self,
        batch_size: int,
        crop_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        start_step: int = 0,
        max_shift: int = 2,
        device: torch.device | str = "cpu",
    ) -> None:
        self.batch_size = batch_size
        self.crop_size = crop_size
        self.seed = seed
        self.rank = rank
        self.step = start_step
        self.max_shift = max_shift
        self.device = torch.device(device)

    def batch(self, step: int) -> Batch:
        generator = torch.Generator().manual_seed(step_seed(self.seed, self.rank, step))
        m, size = self.max_shift, self.crop_size
        coarse = torch.rand(self.batch_size, 3, size // 8 + 2, size // 8 + 2, generator=generator)
        texture = nn.functional.interpolate(
            coarse, size=(size + 2 * m + 16, size + 2 * m + 16), mode="bicubic"
        )
        texture = (texture + 0.15 * torch.rand(texture.shape, generator=generator)).clamp(0, 1)
        shifts = torch.randint(-m, m + 1, (self.batch_size, 2), generator=generator).tolist()
        frames: dict[str, list[Tensor]] = {"first": [], "middle": [], "last": []}
        base = m + 8
        for index, (dy, dx) in enumerate(shifts):
            for name, sign in (("first", -1), ("middle", 0), ("last", 1)):
                top, left = base + sign * dy, base + sign * dx
                frames[name].append(texture[index, :, top : top + size, left : left + size])
        return {name: torch.stack(items).to(self.device) for name, items in frames.items()}

    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.batch(self.step)
            self.step += 1


def _synthetic_motion(
    spec: dict[str, Any], crop_size: int, device: torch.device, where: str = "data"
) -> Any:
    """The :class:`~sepconv.data.synthetic.SyntheticMotion` a synthetic spec describes."""
    try:
        from sepconv.data.synthetic import SyntheticMotion, SyntheticMotionConfig
    except ImportError as error:  # pragma: no cover - the data layer ships with the package
        raise SepconvError(f"synthetic data is unavailable: {error}") from None
    if "photos" not in spec:
        raise SepconvError(f'{where}.kind = "synthetic" needs {where}.photos (a folder of photos)')
    options_spec = spec.get("options", {})
    if not isinstance(options_spec, dict):
        raise SepconvError(f"{where}.options must be a table of SyntheticMotionConfig fields")
    options = {"size": crop_size, **dict(options_spec)}
    if "layer_probabilities" in options:
        options["layer_probabilities"] = tuple(options["layer_probabilities"])
    if "layer_softness" in options:
        options["layer_softness"] = tuple(options["layer_softness"])
    try:
        motion_config = SyntheticMotionConfig(**options)
    except (TypeError, ValueError) as error:
        raise SepconvError(f"invalid {where}.options: {error}") from None
    try:
        return SyntheticMotion(spec["photos"], motion_config, device)
    except InputError as error:
        raise SepconvError(f"{where}.photos: {error}") from None


class SyntheticBatches:
    """``data.kind = "synthetic"``: :class:`sepconv.data.synthetic.SyntheticMotion` batches from
    a folder of photographs; batch ``s`` of rank ``r`` from ``step_seed(seed, r, s)``."""

    def __init__(
        self,
        spec: dict[str, Any],
        batch_size: int,
        crop_size: int,
        *,
        seed: int,
        rank: int,
        start_step: int,
        device: torch.device,
    ) -> None:
        self.source = _synthetic_motion(spec, crop_size, device)
        self.batch_size, self.seed, self.rank, self.step = batch_size, seed, rank, start_step

    def __iter__(self) -> Iterator[Batch]:
        while True:
            generator = torch.Generator().manual_seed(step_seed(self.seed, self.rank, self.step))
            yield self.source.sample(self.batch_size, generator)
            self.step += 1


# -- data specs ----------------------------------------------------------------------------------

#: Datasets are read at ``crop_size + READ_MARGIN`` (the paper's 150 -> 128) and cropped to
#: ``crop_size`` by the augmentation.
READ_MARGIN = 22

DATA_KEYS: dict[str, frozenset[str]] = {
    "translation": frozenset({"max_shift"}),
    "synthetic": frozenset({"photos", "options"}),
    "videos": frozenset({"path", "gaps", "max_side", "crop_candidates"}),
    "triplets": frozenset({"path", "cache"}),
    "vimeo": frozenset({"path", "split"}),
    "mixture": frozenset({"sources"}),
    "motion": MotionBatches.KEYS,
}
MIXTURE_KINDS = ("synthetic", "videos", "triplets", "vimeo")


def _check_keys(spec: dict[str, Any], kind: str, where: str, extra: Sequence[str] = ()) -> None:
    allowed = {"kind", *DATA_KEYS[kind], *extra}
    unknown = sorted(str(key) for key in set(spec) - allowed)
    if unknown:
        names = ", ".join(f"{where}.{key}" for key in unknown)
        raise SepconvError(
            f"unknown key {names} for data kind {kind!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _integer(spec: dict[str, Any], key: str, default: int, where: str, minimum: int = 1) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SepconvError(f"{where}.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _data_path(spec: dict[str, Any], kind: str, where: str, *, files: bool = False) -> Any:
    """``spec["path"]``: an existing folder (or, with ``files``, a file or a list of files)."""
    if "path" not in spec:
        raise SepconvError(f"{where}.path is missing (data kind {kind!r} needs a folder)")
    value = spec["path"]
    if files and isinstance(value, list):
        if not value or not all(isinstance(item, str) and item for item in value):
            raise SepconvError(f"{where}.path must be a folder or a non-empty list of files")
        for item in value:
            if not Path(item).is_file():
                raise SepconvError(f"{where}.path: file {item!r} does not exist")
        return [Path(item) for item in value]
    if not isinstance(value, str) or not value:
        what = "a folder or a list of files" if files else "a folder"
        raise SepconvError(f"{where}.path must be {what}, got {value!r}")
    path = Path(value)
    if not path.exists():
        raise SepconvError(f"{where}.path: {value!r} does not exist")
    if path.is_file() and files:
        return [path]
    if not path.is_dir():
        raise SepconvError(f"{where}.path: {value!r} is not a folder")
    return path


def _check_triplet_sizes(triplets: Sequence[Any], read_size: int, where: str) -> None:
    """The first frames of (up to 256 of) the triplets are at least ``read_size`` square."""
    from PIL import Image

    for triplet in triplets[:256]:
        try:
            with Image.open(triplet.first) as image:
                width, height = image.size
        except OSError as error:
            raise SepconvError(f"{where}: cannot read {str(triplet.first)!r}: {error}") from None
        if min(width, height) < read_size:
            raise SepconvError(
                f"{where}: triplet {triplet.name!r} ({width}x{height}) is smaller than the "
                f"{read_size}x{read_size} frames read for crop_size {read_size - READ_MARGIN}"
            )


def _dataset(spec: dict[str, Any], kind: str, crop_size: int, seed: int, where: str) -> Any:
    """The dataset of a ``videos``, ``triplets`` or ``vimeo`` spec (items of crop + margin)."""
    read_size = crop_size + READ_MARGIN
    if kind == "videos":
        from sepconv.data.video_triplets import VideoTriplets

        paths = _data_path(spec, kind, where, files=True)
        gaps = spec.get("gaps", [1, 2])
        if isinstance(gaps, int) and not isinstance(gaps, bool):
            gaps = [gaps]
        if (
            not isinstance(gaps, list)
            or not gaps
            or not all(isinstance(g, int) and not isinstance(g, bool) and g >= 1 for g in gaps)
        ):
            raise SepconvError(f"{where}.gaps must be a list of integers >= 1, got {gaps!r}")
        max_side = _integer(spec, "max_side", 640, where)
        if max_side < read_size:
            raise SepconvError(
                f"{where}.max_side {max_side} is smaller than the {read_size} px frames read "
                f"for crop_size {crop_size}"
            )
        candidates = _integer(spec, "crop_candidates", 4, where)
        try:
            return VideoTriplets(
                paths,
                gaps=tuple(gaps),
                max_side=max_side,
                crop_size=read_size,
                crop_candidates=candidates,
                seed=seed,
            )
        except InputError as error:
            hint = (
                f" (a usable triplet has motion, no scene cut and frames of at least {read_size} "
                f"px after max_side {max_side})"
                if "usable" in str(error)
                else ""
            )
            raise SepconvError(f"{where}.path {str(spec['path'])!r}: {error}{hint}") from None
    from sepconv.data.triplets import folder_triplets, middlebury_triplets
    from sepconv.data.vimeo import TripletDataset, VimeoTriplets

    root = _data_path(spec, kind, where)
    if kind == "vimeo":
        split = spec.get("split", "train")
        if split not in ("train", "test"):
            raise SepconvError(f'{where}.split must be "train" or "test", got {split!r}')
        try:
            dataset = VimeoTriplets(root, split, crop_size=read_size, seed=seed)
        except InputError as error:
            raise SepconvError(f"{where}.path: {error}") from None
        _check_triplet_sizes(dataset.triplets, read_size, where)
        return dataset
    cache = spec.get("cache", False)
    if not isinstance(cache, bool):
        raise SepconvError(f"{where}.cache must be true or false, got {cache!r}")
    try:
        if any(root.glob("*/frame10i11.png")):
            triplets = middlebury_triplets(root)
        else:
            triplets = folder_triplets(root)
    except InputError as error:
        raise SepconvError(f"{where}.path: {error}") from None
    _check_triplet_sizes(triplets, read_size, where)
    return TripletDataset(triplets, crop_size=read_size, cache=cache, seed=seed)


def _motion_batches(
    spec: dict[str, Any],
    batch_size: int,
    crop_size: int,
    seed: int,
    rank: int,
    start_step: int,
    device: torch.device,
) -> MotionBatches:
    """The :class:`~sepconv.data.motion_batches.MotionBatches` of a ``motion`` spec."""
    from sepconv.data.motion_batches import RealWindows

    weight = spec.get("synthetic_weight", 0.5)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise SepconvError(f"data.synthetic_weight must be in [0, 1], got {weight!r}")
    synthetic = _synthetic_motion(spec, crop_size, device)
    real = None
    if weight < 1:
        if "videos" not in spec:
            raise SepconvError('data.kind = "motion" needs data.videos (or synthetic_weight = 1)')
        try:
            real = RealWindows(
                spec["videos"],
                tuple(int(gap) for gap in spec.get("gaps", (1, 2, 3))),
                max_side=_integer(spec, "max_side", 640, "data"),
                crop_size=crop_size,
                quadruplets=bool(spec.get("quadruplets", True)),
            )
        except (InputError, TypeError, ValueError) as error:
            raise SepconvError(f"data.videos: {error}") from None
    return MotionBatches(
        synthetic,
        real,
        batch_size,
        synthetic_weight=float(weight),
        seed=seed,
        rank=rank,
        start_step=start_step,
        device=device,
    )


def _weight(spec: dict[str, Any], where: str) -> float:
    value = spec.get("weight", 1.0)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise SepconvError(f"{where}.weight must be a positive number, got {value!r}")
    return float(value)


def _mixture_sources(
    spec: dict[str, Any], crop_size: int, seed: int, device: torch.device
) -> tuple[list[Any], list[float]]:
    sources_spec = spec.get("sources")
    if not isinstance(sources_spec, list) or not sources_spec:
        raise SepconvError(
            'data.kind = "mixture" needs data.sources, a non-empty array of tables '
            "({kind = ..., weight = ..., ...})"
        )
    sources, weights = [], []
    for index, source_spec in enumerate(sources_spec):
        where = f"data.sources[{index}]"
        if not isinstance(source_spec, dict):
            raise SepconvError(f"{where} must be a table, got {source_spec!r}")
        kind = source_spec.get("kind")
        if kind is None:
            raise SepconvError(f"{where}.kind is missing (use {', '.join(MIXTURE_KINDS)})")
        if kind not in MIXTURE_KINDS:
            raise SepconvError(
                f"unknown data kind {kind!r} in {where}.kind (use {', '.join(MIXTURE_KINDS)})"
            )
        _check_keys(source_spec, kind, where, extra=("weight",))
        weights.append(_weight(source_spec, where))
        if kind == "synthetic":
            source = _synthetic_motion(source_spec, crop_size, device, where)
            if source.config.size < crop_size:
                raise SepconvError(
                    f"{where}.options.size {source.config.size} is smaller than crop_size "
                    f"{crop_size}"
                )
            sources.append(source)
        else:
            sources.append(_dataset(source_spec, kind, crop_size, seed, where))
    return sources, weights


def build_batches(
    spec: dict[str, Any],
    *,
    batch_size: int,
    crop_size: int,
    seed: int,
    rank: int = 0,
    start_step: int = 0,
    device: torch.device | str = "cpu",
) -> Iterable[Batch]:
    """The batches a config's ``data`` table describes, starting at ``start_step``.

    Kinds (and their keys):

    * ``"translation"``: built-in random textures (``max_shift``, default 2), for tests.
    * ``"synthetic"``: synthetic motion rendered from photographs (``photos``: a folder;
      ``options``: :class:`~sepconv.data.synthetic.SyntheticMotionConfig` fields).
    * ``"videos"``: triplets of real footage (:class:`~sepconv.data.video_triplets.VideoTriplets`;
      ``path``: a folder of videos, a video file or a list of files; ``gaps``, default [1, 2];
      ``max_side``, default 640; ``crop_candidates``, default 4).
    * ``"triplets"``: a folder of triplets, ``im1/im2/im3.png`` folders at any depth or the
      Middlebury layout (``path``; ``cache``: keep decoded frames in memory, default false).
    * ``"vimeo"``: Vimeo-90k (``path``: the folder with ``sequences/`` and the lists;
      ``split``: "train" (default) or "test").
    * ``"motion"``: frames at any time t with exact flow where known, for learned motion
      (:class:`~sepconv.data.motion_batches.MotionBatches`: ``photos``, ``options``,
      ``videos``, ``gaps``, ``max_side``, ``synthetic_weight``, ``quadruplets``).
    * ``"mixture"``: ``sources``, an array of tables ``{kind, weight, ...}`` of the kinds
      synthetic, videos, triplets and vimeo with their keys; every batch holds samples of
      each in proportion to ``weight`` (positive, default 1).

    Videos and triplets are read at ``crop_size + 22`` pixels (the paper's 150 -> 128), then
    :class:`~sepconv.data.mixture.TrainingBatches` crops them to ``crop_size`` with random
    flips and first/last swaps. Every kind draws batch ``s`` of ``rank`` from
    ``step_seed(seed, rank, s)`` alone, so a resumed run continues bitwise.

    Raises:
        SepconvError: an unknown kind or key, a missing path, no usable triplets, a weight that
            is not positive; the message names the key (``data.sources[1].path``, ...).
    """
    kind = spec.get("kind", "translation")
    if not isinstance(kind, str) or kind not in DATA_KEYS:
        raise SepconvError(f"unknown data kind {kind!r} (use {', '.join(DATA_KEYS)})")
    _check_keys(spec, kind, "data")
    device = torch.device(device)
    if kind == "translation":
        return TranslationBatches(
            batch_size,
            crop_size,
            seed=seed,
            rank=rank,
            start_step=start_step,
            max_shift=int(spec.get("max_shift", 2)),
            device=device,
        )
    if kind == "synthetic":
        return SyntheticBatches(
            spec,
            batch_size,
            crop_size,
            seed=seed,
            rank=rank,
            start_step=start_step,
            device=device,
        )
    if kind == "motion":
        return _motion_batches(spec, batch_size, crop_size, seed, rank, start_step, device)
    if kind == "mixture":
        sources, weights = _mixture_sources(spec, crop_size, seed, device)
    else:
        sources, weights = [_dataset(spec, kind, crop_size, seed, "data")], [1.0]
    return TrainingBatches(
        sources,
        weights,
        batch_size,
        device,
        seed,
        rank=rank,
        start_step=start_step,
        size=crop_size,
    )
