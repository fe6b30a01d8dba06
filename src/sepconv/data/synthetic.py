"""Synthetic-motion training triplets rendered from still photographs, batched in torch.

Every sample is a crop of a photograph moving under a random affine motion (the background),
with 0 to ``max_layers`` soft-edged elliptical foreground layers cut from other photographs and
moving independently on top of it, plus a small brightness/contrast drift. Frames are rendered
at t = -1 (``first``), 0 (``middle``) and +1 (``last``), i.e. in units of half the frame gap.

Motion model (linear in time, so ``middle`` is the true t = 0.5 frame of the pair): a point of
a layer (the background is a layer covering everything) at local position ``l`` is seen at

    p(t) = c + t * v + (I + t * D) @ l

in output pixels (origin at the crop centre, x right, y down), with ``v`` the translation per
half-step, ``D`` a small 2x2 matrix (rotation, zoom, shear per half-step) and ``c`` the layer's
centre at t = 0. Every scene point therefore moves at constant velocity; frames are rendered by
inverting this map per pixel and sampling the photograph with ``grid_sample``. All frames share
the same random sub-pixel phase, so ``middle`` is resampled like ``first`` and ``last`` (no
systematic sharpness difference the network could learn).

The translation magnitude is log-uniform between ``min_translation`` and ``max_translation``
(heavy-tailed: with the defaults 0.25 .. 24 px per half-step, the median is 2.4 px, ~30% move
less than 1 px and ~15% more than 12 px) in a uniform direction; the 51-tap kernels reach 25 px.

Photographs are loaded once (long side <= ``max_side``) as one padded uint8 tensor on the
device; a batch gathers integer-offset source windows large enough to contain the whole motion
(so no border shows), converts only those to float and warps them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image

from sepconv.data.files import list_files
from sepconv.errors import InputError

__all__ = [
    "PHOTO_SUFFIXES",
    "SyntheticMotion",
    "SyntheticMotionConfig",
    "list_photos",
    "load_photos",
    "render_layer",
]

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
TIMES = (-1.0, 0.0, 1.0)


@dataclass
class SyntheticMotionConfig:
    """Parameters of :class:`SyntheticMotion` (motion values are per half-step, i.e. between
    ``first`` and ``middle``; the motion between ``first`` and ``last`` is twice as large).

    Attributes:
        size: output crop size (square), 128 as the network's training patches. Set 150 and
            crop to 128 with :func:`sepconv.data.augment.augment_triplets` for the paper's
            150 -> 128 random crops (equivalent here, since crops are placed at random anyway).
        max_side: photographs are downscaled so that their long side is at most this.
        min_translation, max_translation: range of the log-uniform translation magnitude in
            pixels; ``max_translation = 0`` disables translation.
        max_rotation: rotation per half-step, uniform in +-degrees.
        max_zoom: zoom per half-step, log-scale uniform in +-max_zoom (0.04: +-4%).
        max_shear: shear per half-step, uniform in +-max_shear.
        affine_probability: probability that a layer gets rotation/zoom/shear (else translation
            only).
        layer_probabilities: probabilities of 0, 1, 2, ... foreground layers (its length - 1 is
            the maximum number of layers).
        layer_min_radius, layer_max_radius: ellipse semi-axes as fractions of ``size``.
        layer_softness: range of the edge width of the layers in pixels (anti-aliasing / soft
            edges; >= 1 px).
        photometric_probability: probability of a brightness/contrast drift.
        max_brightness: brightness change per half-step, uniform in +-(this), in [0, 1] units.
        max_contrast: contrast change per half-step, uniform in +-(this) (relative).
        mode: ``grid_sample`` interpolation, ``"bicubic"`` (sharper) or ``"bilinear"``.
        noise_probability: probability that a triplet gets sensor-like noise: independent
            Gaussian noise on each of its three frames (the middle one too, so that the noise
            of a real ground truth is as unpredictable as it is in footage), before the
            quantisation. 0 (the default) draws no extra random numbers, so the batches are
            those of a config without it.
        max_noise: the noise's standard deviation, uniform in [0, max_noise] per triplet, in
            [0, 1] units (0.01 is 2.55 8-bit levels).
        static_probability: probability that a scene's background does not move at all (a
            camera on a tripod: only the foreground layers move; with no layer, nothing
            moves). Real footage is full of exactly static pixels, which a moving background
            never shows. 0 (the default) draws no extra random numbers.
        quantize: round the frames to 8-bit levels, like decoded video frames.
        seed: seed of the generator used when :meth:`SyntheticMotion.sample` gets none.
    """

    size: int = 128
    max_side: int = 512
    min_translation: float = 0.25
    max_translation: float = 24.0
    max_rotation: float = 3.0
    max_zoom: float = 0.04
    max_shear: float = 0.03
    affine_probability: float = 0.5
    layer_probabilities: tuple[float, ...] = (0.4, 0.35, 0.25)
    layer_min_radius: float = 0.08
    layer_max_radius: float = 0.35
    layer_softness: tuple[float, float] = (1.0, 2.5)
    photometric_probability: float = 0.3
    max_brightness: float = 0.02
    max_contrast: float = 0.03
    mode: str = "bicubic"
    noise_probability: float = 0.0
    max_noise: float = 0.0
    static_probability: float = 0.0
    quantize: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"size must be at least 8, got {self.size}")
        if self.max_translation < 0 or self.min_translation < 0:
            raise ValueError("translations must be >= 0")
        if self.max_translation > 0 and not 0 < self.min_translation <= self.max_translation:
            raise ValueError("need 0 < min_translation <= max_translation")
        if not self.layer_probabilities or abs(sum(self.layer_probabilities) - 1.0) > 1e-6:
            raise ValueError("layer_probabilities must sum to 1")
        if self.mode not in ("bicubic", "bilinear"):
            raise ValueError(f"mode must be 'bicubic' or 'bilinear', got {self.mode!r}")
        if not 0.0 <= self.noise_probability <= 1.0 or self.max_noise < 0:
            raise ValueError("need 0 <= noise_probability <= 1 and max_noise >= 0")
        if not 0.0 <= self.static_probability <= 1.0:
            raise ValueError("need 0 <= static_probability <= 1")

    @property
    def max_layers(self) -> int:
        return len(self.layer_probabilities) - 1

    def _reach(self, radius: float) -> float:
        """Largest displacement (px) of a point at ``radius`` from the layer centre."""
        rot = math.radians(self.max_rotation)
        linear = math.sin(rot) + (math.exp(self.max_zoom) - 1.0) + self.max_shear
        # Inverting I + tD grows the reach a little; 1.5x covers it for the allowed ranges.
        return self.max_translation + 1.5 * linear * radius

    def background_window(self) -> int:
        """Side of the source window gathered for the background (covers all motion)."""
        half = (self.size - 1) / 2.0
        radius = half * math.sqrt(2.0)
        return int(2 * math.ceil(half + self._reach(radius) + 3))

    def layer_window(self) -> int:
        """Side of the source window gathered for one foreground layer."""
        radius = self.layer_max_radius * self.size
        inverse = 1.0 / max(1e-3, 1.0 - 2.0 * (math.exp(self.max_zoom) - 1.0) - self.max_shear)
        return int(2 * math.ceil(radius * inverse + 4))


def list_photos(folder: Path | str) -> list[Path]:
    """Image files directly in ``folder`` (sorted by name)."""
    return list_files(folder, PHOTO_SUFFIXES, "photo")


def _load_photo(path: Path, max_side: int, min_side: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            width, height = im.size
            if im.format == "JPEG" and max(width, height) > 2 * max_side:
                # Decode at a reduced DCT scale (still >= the target size): much faster.
                target = max_side / max(width, height)
                im.draft("RGB", (max(1, int(width * target)), max(1, int(height * target))))
            im = im.convert("RGB")
            width, height = im.size
            scale = min(1.0, max_side / max(width, height))
            scale = max(scale, min_side / min(width, height))  # tiny photos: upscale
            if scale != 1.0:
                size = (max(1, round(width * scale)), max(1, round(height * scale)))
                im = im.resize(size, Image.Resampling.LANCZOS)
            return np.asarray(im, dtype=np.uint8)
    except OSError as error:
        raise InputError(f"cannot read photo {str(path)!r}: {error}") from None


def load_photos(
    photos: Sequence[Path | str] | Path | str, max_side: int = 512, min_side: int = 0
) -> list[np.ndarray]:
    """Decode photographs (a folder or a list of files) to uint8 HxWx3 arrays, long side
    <= ``max_side`` (short side at least ``min_side``, upscaling the rare tiny photo)."""
    paths = list_photos(photos) if isinstance(photos, (str, Path)) else [Path(p) for p in photos]
    if not paths:
        raise InputError("no photos given")
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda p: _load_photo(p, max_side, min_side), paths))


def _pad_stack(images: Sequence[torch.Tensor], min_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,3,Hmax,Wmax) uint8 stack (zero padded) and the (N,2) true (height, width)."""
    height = max(max(im.shape[1] for im in images), min_side)
    width = max(max(im.shape[2] for im in images), min_side)
    stack = torch.zeros((len(images), 3, height, width), dtype=torch.uint8)
    sizes = torch.zeros((len(images), 2), dtype=torch.long)
    for i, im in enumerate(images):
        if im.shape[1] < min_side or im.shape[2] < min_side:
            im = (
                F.interpolate(
                    im[None].float(),
                    size=(max(im.shape[1], min_side), max(im.shape[2], min_side)),
                    mode="bilinear",
                    align_corners=False,
                )[0]
                .round()
                .clamp(0, 255)
                .to(torch.uint8)
            )
        stack[i, :, : im.shape[1], : im.shape[2]] = im
        sizes[i, 0], sizes[i, 1] = im.shape[1], im.shape[2]
    return stack, sizes


def _gather_windows(
    stack: torch.Tensor, sizes: torch.Tensor, index: torch.Tensor, u: torch.Tensor, window: int
) -> torch.Tensor:
    """Float (B,3,window,window) windows of photos ``index`` at uniform positions ``u`` (B,2)."""
    device = stack.device
    room = (sizes[index] - window + 1).clamp(min=1)  # (B,2): possible top-left positions
    top_left = (u * room).long().clamp(max=room - 1)
    ar = torch.arange(window, device=device)
    rows = (top_left[:, 0, None] + ar).clamp(max=stack.shape[2] - 1)
    cols = (top_left[:, 1, None] + ar).clamp(max=stack.shape[3] - 1)
    channels = torch.arange(3, device=device)
    windows = stack[
        index[:, None, None, None],
        channels[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    return windows.float().div_(255.0)


def _local_affine(
    linear: torch.Tensor,
    translation: torch.Tensor,
    center: torch.Tensor,
    t: float | torch.Tensor,
    size: int,
) -> torch.Tensor:
    """(B,2,3) affine map from normalised output coordinates (align_corners=True, in [-1, 1])
    to layer-local pixel coordinates ``l = (I + t*D)^-1 (p - c - t*v)``."""
    # Closed-form 2x2 inverse (no solver launch, no device synchronisation).
    a, b = 1.0 + t * linear[:, 0, 0], t * linear[:, 0, 1]
    c, d = t * linear[:, 1, 0], 1.0 + t * linear[:, 1, 1]
    determinant = a * d - b * c
    inverse = torch.stack((torch.stack((d, -b), -1), torch.stack((-c, a), -1)), -2)
    inverse = inverse / determinant[:, None, None]  # (B,2,2)
    half = (size - 1) / 2.0
    column = t[:, None] if isinstance(t, torch.Tensor) else t
    offset = torch.einsum("bij,bj->bi", inverse, -(center + column * translation))
    return torch.cat((inverse * half, offset[:, :, None]), dim=2)


def render_layer(
    source: torch.Tensor,
    linear: torch.Tensor,
    translation: torch.Tensor,
    center: torch.Tensor,
    source_center: torch.Tensor,
    t: float | torch.Tensor,
    size: int,
    mode: str = "bicubic",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render one moving layer at time ``t`` (in half-steps).

    A point at local position ``l`` of the layer is at ``center + t*translation + (I +
    t*linear) @ l`` (pixels, origin at the output crop centre); its colour is ``source`` at
    pixel ``source_center + l`` (x, y; pixel centres at integers).

    Args:
        source: (B,C,S,S') float source windows.
        linear: (B,2,2) the matrix ``D``; translation: (B,2) ``v``; center: (B,2) ``c``;
        source_center: (B,2) position of ``l = 0`` in ``source``.

    Returns:
        The (B,C,size,size) rendered layer (border padding outside ``source``) and the (B,2,3)
        affine map from normalised output coordinates to local coordinates ``l`` (for masks).
    """
    local = _local_affine(linear, translation, center, t, size)
    height, width = source.shape[-2:]
    theta = local.clone()
    theta[:, 0] *= 2.0 / (width - 1)
    theta[:, 1] *= 2.0 / (height - 1)
    theta[:, 0, 2] += source_center[:, 0] * (2.0 / (width - 1)) - 1.0
    theta[:, 1, 2] += source_center[:, 1] * (2.0 / (height - 1)) - 1.0
    batch, channels = source.shape[:2]
    grid = F.affine_grid(theta, [batch, channels, size, size], align_corners=True)
    image = F.grid_sample(source, grid, mode=mode, padding_mode="border", align_corners=True)
    return image, local


class SyntheticMotion:
    """Batched synthetic-motion triplet generator (see the module docstring).

    Args:
        photos: image files, or a folder of them, or an (N,3,H,W) tensor (uint8, or float in
            [0, 1]) of photographs.
        config: a :class:`SyntheticMotionConfig` (defaults if None).
        device: where the photographs live and the frames are rendered.
    """

    def __init__(
        self,
        photos: Sequence[Path | str] | Path | str | torch.Tensor,
        config: SyntheticMotionConfig | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = config or SyntheticMotionConfig()
        self.device = torch.device(device)
        self.background_window = self.config.background_window()
        self.layer_window = self.config.layer_window()
        min_side = max(self.background_window, self.layer_window)
        if isinstance(photos, torch.Tensor):
            if photos.ndim != 4 or photos.shape[1] != 3:
                raise ValueError(f"photos must be (N,3,H,W), got {tuple(photos.shape)}")
            if photos.dtype != torch.uint8:
                photos = (photos.float() * 255.0).round().clamp(0, 255).to(torch.uint8)
            images = list(photos.cpu())
        else:
            arrays = load_photos(photos, self.config.max_side)
            images = [torch.from_numpy(a.copy()).permute(2, 0, 1).contiguous() for a in arrays]
        stack, sizes = _pad_stack(images, min_side)
        self.photos = stack.to(self.device)
        self.sizes = sizes.to(self.device)
        self._generator = torch.Generator().manual_seed(self.config.seed)

    def __len__(self) -> int:
        """Number of photographs."""
        return self.photos.shape[0]

    # -- random parameters ----------------------------------------------------------------------

    def _rand(self, generator: torch.Generator, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=generator.device)

    def _rand_normal(self, generator: torch.Generator, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=generator.device)

    def _motion(self, generator: torch.Generator, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(count,2,2) linear part D and (count,2) translation v of random motions."""
        cfg = self.config
        u = self._rand(generator, count, 7)
        if cfg.max_translation > 0:
            low, high = math.log(cfg.min_translation), math.log(cfg.max_translation)
            magnitude = torch.exp(low + (high - low) * u[:, 0])
        else:
            magnitude = torch.zeros_like(u[:, 0])
        angle = 2 * math.pi * u[:, 1]
        translation = torch.stack((torch.cos(angle), torch.sin(angle)), dim=-1) * magnitude[:, None]
        use = (u[:, 2] < cfg.affine_probability).float()
        rotation = math.radians(cfg.max_rotation) * (2 * u[:, 3] - 1) * use
        zoom = torch.expm1(cfg.max_zoom * (2 * u[:, 4] - 1)) * use
        shear = cfg.max_shear * (2 * u[:, 5] - 1) * use
        # D = zoom*I + rotation*[[0,-1],[1,0]] + shear*[[0,1],[0,0]] (first order per half-step)
        linear = torch.zeros((count, 2, 2), device=u.device)
        linear[:, 0, 0] = zoom
        linear[:, 1, 1] = zoom
        linear[:, 0, 1] = -rotation + shear
        linear[:, 1, 0] = rotation
        return linear, translation

    # -- sampling -------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """A batch of triplets: {"first", "middle", "last"}, float (B,3,size,size) in [0, 1].

        All random numbers come from ``generator`` (a CPU or device generator; the internal one,
        seeded with ``config.seed``, if None), so a seeded generator gives the same batch.
        """
        generator = self._generator if generator is None else generator
        scene = self._draw_scene(batch_size, generator)
        frames = [self._render(scene, index, t)[0] for index, t in enumerate(TIMES)]
        return {"first": frames[0], "middle": frames[1], "last": frames[2]}

    @torch.no_grad()
    def sample_with_flow(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        middle_probability: float = 0.5,
        time_range: tuple[float, float] = (0.1, 0.9),
    ) -> dict[str, torch.Tensor]:
        """Frames at any time t between the two inputs, with the exact motion.

        t is 1/2 with probability ``middle_probability``, else uniform in ``time_range``
        (per sample). The scene is drawn as in :meth:`sample` (then the times), so ``first``
        and ``last`` are :meth:`sample`'s for the same generator state.

        Returns:
            ``first``, ``middle`` (the frame at t), ``last``: (B, 3, size, size) in [0, 1];
            ``time``: (B,) t in (0, 1); ``flow_t0``, ``flow_t1``: (B, 2, size, size) exact
            flows in pixels from the frame at t to the first and the last frame (x + flow is
            where the surface seen at x is in that frame), of the layer covering each pixel
            (blended over the layers' soft edges like the colours); ``visible_t0``,
            ``visible_t1``: (B, 1, size, size) 1 where that surface is the one seen there in
            that frame (not occluded, inside the crop), else 0; ``flow_valid``: (B,) ones.
        """
        generator = self._generator if generator is None else generator
        scene = self._draw_scene(batch_size, generator)
        device = self.device
        uniform = self._rand(generator, batch_size, 2).to(device)
        low, high = time_range
        times = torch.where(
            uniform[:, 0] < middle_probability,
            torch.full_like(uniform[:, 1], 0.5),
            low + (high - low) * uniform[:, 1],
        )
        half_steps = 2.0 * times - 1.0  # the renderer's time: -1 (first) .. +1 (last)
        first, owner_first, _ = self._render(scene, 0, -1.0)
        last, owner_last, _ = self._render(scene, 2, 1.0)
        middle, owner, layers = self._render(scene, 1, half_steps, flow_to=(-1.0, 1.0))
        flow_t0, flow_t1 = layers
        return {
            "first": first,
            "middle": middle,
            "last": last,
            "time": times,
            "flow_t0": flow_t0,
            "flow_t1": flow_t1,
            "visible_t0": _visible(owner, owner_first, flow_t0),
            "visible_t1": _visible(owner, owner_last, flow_t1),
            "flow_valid": torch.ones(batch_size, device=device),
        }

    def _draw_scene(self, batch_size: int, generator: torch.Generator) -> dict[str, Any]:
        """Every random parameter of a batch of scenes (see :meth:`sample`)."""
        cfg = self.config
        device = self.device
        count = len(self)
        size = cfg.size
        layers = cfg.max_layers
        to = {"device": device}
        scene: dict[str, Any] = {"batch_size": batch_size, "layers": layers}

        # Background.
        photo = (self._rand(generator, batch_size) * count).long().clamp(max=count - 1).to(**to)
        where = self._rand(generator, batch_size, 2).to(**to)
        phase = self._rand(generator, batch_size, 2).to(**to)  # shared sub-pixel phase
        linear, translation = (x.to(**to) for x in self._motion(generator, batch_size))
        if cfg.static_probability > 0:  # (no draws otherwise: the stream stays as it was)
            moving = self._rand(generator, batch_size).to(**to) >= cfg.static_probability
            linear = linear * moving[:, None, None].float()
            translation = translation * moving[:, None].float()
        scene["window"] = _gather_windows(
            self.photos, self.sizes, photo, where, self.background_window
        )
        scene["linear"], scene["translation"] = linear, translation
        scene["source_center"] = ((self.background_window - 1) / 2.0 + phase - 0.5).expand(
            batch_size, 2
        )
        scene["center"] = torch.zeros((batch_size, 2), device=device)

        # Foreground layers (always drawn, so the random stream does not depend on the counts).
        n = batch_size * layers
        lp = torch.tensor(cfg.layer_probabilities)
        cumulative = torch.cumsum(lp, 0)[:-1].to(**to)
        count_u = self._rand(generator, batch_size).to(**to)
        layer_count = (count_u[:, None] >= cumulative[None, :]).sum(dim=1)  # (B,)
        if layers:
            lu = self._rand(generator, n, 8).to(**to)
            # Layers cut from another photo than the background (when there are several).
            shift = 1 + (lu[:, 0] * max(count - 1, 1)).long().clamp(max=max(count - 2, 0))
            layer_photo = (photo.repeat_interleave(layers) + shift) % count
            layer_where = lu[:, 1:3]
            scene["layer_linear"], scene["layer_translation"] = (
                x.to(**to) for x in self._motion(generator, n)
            )
            scene["layer_window"] = _gather_windows(
                self.photos, self.sizes, layer_photo, layer_where, self.layer_window
            )
            half = (size - 1) / 2.0
            scene["layer_center"] = (lu[:, 3:5] * 2 - 1) * half * 0.8
            rmin, rmax = cfg.layer_min_radius * size, cfg.layer_max_radius * size
            scene["radii"] = rmin + (rmax - rmin) * lu[:, 5:7]  # (n,2) semi-axes
            scene["orientation"] = math.pi * lu[:, 7]
            soft_u = self._rand(generator, n).to(**to)
            scene["softness"] = (
                cfg.layer_softness[0] + (cfg.layer_softness[1] - cfg.layer_softness[0]) * soft_u
            )
            scene["active"] = (
                torch.arange(layers, device=device)[None, :] < layer_count[:, None]
            ).reshape(n)
            scene["layer_source_center"] = torch.full(
                (n, 2), (self.layer_window - 1) / 2.0, device=device
            )

        # Brightness / contrast drift, linear in time.
        pu = self._rand(generator, batch_size, 3).to(**to)
        use = (pu[:, 0] < cfg.photometric_probability).float()
        scene["brightness"] = cfg.max_brightness * (2 * pu[:, 1] - 1) * use
        scene["contrast"] = cfg.max_contrast * (2 * pu[:, 2] - 1) * use
        scene["noise_std"] = None
        if cfg.noise_probability > 0 and cfg.max_noise > 0:  # (no draws otherwise)
            nu = self._rand(generator, batch_size, 2).to(**to)
            scene["noise_std"] = (
                cfg.max_noise * nu[:, 1] * (nu[:, 0] < cfg.noise_probability).float()
            )
            scene["noise"] = self._rand_normal(generator, len(TIMES), batch_size, 3, size, size).to(
                **to
            )
        return scene

    def _render(
        self,
        scene: dict[str, Any],
        index: int,
        t: float | torch.Tensor,
        flow_to: tuple[float, float] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """One frame of drawn scenes at time ``t`` (half-steps; a number or (B,) tensor).

        Returns:
            The frame (B,3,size,size); the index of the layer seen at each pixel (B,1,size,size;
            0 the background, k the k-th foreground layer); and, when ``flow_to`` names two
            times, the exact flows (B,2,size,size) in pixels from this frame to each of them.
        """
        cfg = self.config
        size = cfg.size
        batch_size, layers = scene["batch_size"], scene["layers"]
        frame, local = render_layer(
            scene["window"],
            scene["linear"],
            scene["translation"],
            scene["center"],
            scene["source_center"],
            t,
            size,
            cfg.mode,
        )
        owner = torch.zeros((batch_size, 1, size, size), device=frame.device)
        flows: list[torch.Tensor] = []
        if flow_to is not None:
            flows = [
                _layer_flow(local, scene["linear"], scene["translation"], scene["center"], s, size)
                for s in flow_to
            ]
        if layers:
            layer_t = t.repeat_interleave(layers) if isinstance(t, torch.Tensor) else t
            color, layer_local = render_layer(
                scene["layer_window"],
                scene["layer_linear"],
                scene["layer_translation"],
                scene["layer_center"],
                scene["layer_source_center"],
                layer_t,
                size,
                cfg.mode,
            )
            alpha = _ellipse_alpha(
                layer_local, scene["radii"], scene["orientation"], scene["softness"], size
            )
            alpha = alpha * scene["active"][:, None, None]
            color = color.reshape(batch_size, layers, 3, size, size)
            alpha = alpha.reshape(batch_size, layers, 1, size, size)
            layer_flows = [
                _layer_flow(
                    layer_local,
                    scene["layer_linear"],
                    scene["layer_translation"],
                    scene["layer_center"],
                    s,
                    size,
                ).reshape(batch_size, layers, 2, size, size)
                for s in (flow_to or ())
            ]
            for k in range(layers):
                frame = torch.lerp(frame, color[:, k], alpha[:, k])
                owner = torch.where(alpha[:, k] >= 0.5, float(k + 1), owner)
                flows = [
                    torch.lerp(flow, layer_flow[:, k], alpha[:, k])
                    for flow, layer_flow in zip(flows, layer_flows, strict=True)
                ]
        times = t if isinstance(t, torch.Tensor) else torch.full((batch_size,), float(t))
        times = times.to(frame.device)[:, None, None, None]
        gain = 1.0 + times * scene["contrast"][:, None, None, None]
        offset = times * scene["brightness"][:, None, None, None]
        frame = (frame - 0.5) * gain + 0.5 + offset
        if scene["noise_std"] is not None:
            frame = frame + scene["noise_std"][:, None, None, None] * scene["noise"][index]
        frame = frame.clamp_(0.0, 1.0)
        if cfg.quantize:
            frame = frame.mul_(255.0).round_().div_(255.0)
        return frame, owner, tuple(flows)


def _layer_flow(
    local: torch.Tensor,
    linear: torch.Tensor,
    translation: torch.Tensor,
    center: torch.Tensor,
    target: float,
    size: int,
) -> torch.Tensor:
    """(B,2,size,size) flow in pixels from the frame whose (B,2,3) local map is ``local`` (from
    :func:`render_layer`) to time ``target``: a layer point at local ``l`` is at
    ``c + s*v + (I + s*D) @ l`` at time s."""
    half = (size - 1) / 2.0
    axis = torch.linspace(-1.0, 1.0, size, device=local.device)  # normalised u (align_corners)
    ux, uy = axis[None, None, :], axis[None, :, None]

    def column(matrix: torch.Tensor, row: int, col: int) -> torch.Tensor:
        return matrix[:, row, col][:, None, None]

    # Local position l = M u + o, then the position at time s: c + s v + l + s D l.
    lx = column(local, 0, 0) * ux + column(local, 0, 1) * uy + column(local, 0, 2)
    ly = column(local, 1, 0) * ux + column(local, 1, 1) * uy + column(local, 1, 2)
    x = center[:, 0, None, None] + target * translation[:, 0, None, None] + lx
    y = center[:, 1, None, None] + target * translation[:, 1, None, None] + ly
    x = x + target * (column(linear, 0, 0) * lx + column(linear, 0, 1) * ly)
    y = y + target * (column(linear, 1, 0) * lx + column(linear, 1, 1) * ly)
    return torch.stack((x - ux * half, y - uy * half), dim=1)


def _visible(owner: torch.Tensor, owner_there: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """(B,1,H,W) 1 where the surface seen at a pixel (``owner``) is the one seen where it moves
    to in the other frame (``owner_there`` read at x + flow, nearest) and that is inside it."""
    from sepconv.models.motion import backward_warp

    height, width = flow.shape[-2:]
    there = backward_warp(owner_there, flow, "nearest")
    columns = torch.arange(width, device=flow.device)[None, None, :] + flow[:, 0]
    rows = torch.arange(height, device=flow.device)[None, :, None] + flow[:, 1]
    inside = (columns > -0.5) & (columns < width - 0.5) & (rows > -0.5) & (rows < height - 0.5)
    return ((there == owner) & inside[:, None]).float()


def _ellipse_alpha(
    local: torch.Tensor,
    radii: torch.Tensor,
    orientation: torch.Tensor,
    softness: torch.Tensor,
    size: int,
) -> torch.Tensor:
    """Soft, anti-aliased ellipse coverage (n,size,size) given the (n,2,3) local affine map.

    The signed distance to the edge is approximated by ``(1 - r) * min_radius`` with ``r`` the
    normalised elliptical radius (exact on the minor axis), and ramped over ``softness`` px.
    """
    cos, sin = torch.cos(orientation), torch.sin(orientation)
    rotate = torch.stack((torch.stack((cos, sin), -1), torch.stack((-sin, cos), -1)), -2)
    axes = rotate / radii[:, :, None]  # (n,2,2): local -> (u, v) on the unit circle
    theta = torch.einsum("bij,bjk->bik", axes, local)
    uv = F.affine_grid(theta, [local.shape[0], 1, size, size], align_corners=True)
    r = torch.linalg.vector_norm(uv, dim=-1)
    scale = (radii.min(dim=1).values / softness)[:, None, None]
    return ((1.0 - r) * scale + 0.5).clamp_(0.0, 1.0)
