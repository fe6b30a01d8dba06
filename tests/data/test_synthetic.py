"""Synthetic-motion triplets: shapes, determinism, true midpoint, identity, occlusion."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DATA_ROOT, needs_data
from PIL import Image

from sepconv.data.synthetic import SyntheticMotion, SyntheticMotionConfig, render_layer

DATA_PHOTOS = DATA_ROOT / "photos"

SMALL = {"size": 32, "max_translation": 6.0, "min_translation": 0.25, "max_side": 256}


def _textures(count: int = 3, size: int = 160, seed: int = 0) -> torch.Tensor:
    """Smooth random colour textures (N,3,size,size) uint8."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand((count, 3, size // 8, size // 8), generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic")
    return (smooth.clamp(0, 1) * 255).round().to(torch.uint8)


def _sample(config: SyntheticMotionConfig, photos: torch.Tensor, batch: int = 8, seed: int = 0):
    return SyntheticMotion(photos, config).sample(batch, torch.Generator().manual_seed(seed))


def test_shapes_dtype_range() -> None:
    out = _sample(SyntheticMotionConfig(**SMALL), _textures())
    assert set(out) == {"first", "middle", "last"}
    for frame in out.values():
        assert frame.shape == (8, 3, 32, 32)
        assert frame.dtype == torch.float32
        assert frame.device.type == "cpu"
        assert float(frame.min()) >= 0.0 and float(frame.max()) <= 1.0
        # quantize=True: 8-bit levels
        assert torch.equal(frame, (frame * 255).round() / 255)


def test_deterministic_with_seed() -> None:
    photos = _textures()
    config = SyntheticMotionConfig(**SMALL)
    a = _sample(config, photos, seed=5)
    b = _sample(config, photos, seed=5)
    c = _sample(config, photos, seed=6)
    for key in a:
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["first"], c["first"])
    # The internal generator (config.seed) is reproducible too.
    x = SyntheticMotion(photos, config).sample(4)
    y = SyntheticMotion(photos, config).sample(4)
    assert torch.equal(x["last"], y["last"])


def test_zero_motion_gives_identical_frames() -> None:
    config = SyntheticMotionConfig(
        size=32,
        max_translation=0.0,
        affine_probability=0.0,
        layer_probabilities=(1.0,),
        photometric_probability=0.0,
    )
    out = _sample(config, _textures())
    assert torch.equal(out["first"], out["middle"])
    assert torch.equal(out["last"], out["middle"])
    assert float(out["middle"].std()) > 0.01  # real content, not a constant


def test_noise_is_independent_per_frame_and_off_by_default() -> None:
    """With zero motion the three frames differ only by their own noise, of about the asked
    standard deviation; without noise the batches are exactly those of the old config."""
    still = {
        "size": 32,
        "max_translation": 0.0,
        "affine_probability": 0.0,
        "layer_probabilities": (1.0,),
        "photometric_probability": 0.0,
        "quantize": False,
    }
    photos = _textures()
    clean = _sample(SyntheticMotionConfig(**still), photos, batch=16)
    noisy = _sample(
        SyntheticMotionConfig(**still, noise_probability=1.0, max_noise=0.02), photos, batch=16
    )
    difference = noisy["first"] - noisy["middle"]
    assert float(difference.abs().mean()) > 1e-3  # each frame has its own noise
    spread = float((noisy["middle"] - clean["middle"]).std())
    assert 0.003 < spread < 0.02  # std uniform in [0, 0.02]: about 0.0115 overall
    off = _sample(SyntheticMotionConfig(**SMALL, noise_probability=0.0, max_noise=0.05), photos)
    base = _sample(SyntheticMotionConfig(**SMALL), photos)
    for key in base:
        assert torch.equal(off[key], base[key])
    with pytest.raises(ValueError):
        SyntheticMotionConfig(noise_probability=1.5)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_integer_translation_middle_is_shifted_first(mode: str) -> None:
    source = _textures(2, 80).float() / 255
    shift = torch.tensor([[3.0, -2.0], [-5.0, 4.0]])  # (x, y) per half-step
    zero = torch.zeros(2, 2)
    linear = torch.zeros(2, 2, 2)
    center = torch.full((2, 2), 39.5) + 0.3  # a sub-pixel phase shared by all frames
    first, _ = render_layer(source, linear, shift, zero, center, -1.0, 32, mode)
    middle, _ = render_layer(source, linear, shift, zero, center, 0.0, 32, mode)
    last, _ = render_layer(source, linear, shift, zero, center, 1.0, 32, mode)
    for b in range(2):
        dx, dy = int(shift[b, 0]), int(shift[b, 1])
        m = 6  # interior, away from the shifted borders
        # first(p) = S(p - (-1) v) = middle(p + v)
        expected = middle[b, :, m + dy : 32 - m + dy, m + dx : 32 - m + dx]
        assert torch.allclose(first[b, :, m : 32 - m, m : 32 - m], expected, atol=1e-5)
        expected = middle[b, :, m - dy : 32 - m - dy, m - dx : 32 - m - dx]
        assert torch.allclose(last[b, :, m : 32 - m, m : 32 - m], expected, atol=1e-5)


def test_points_move_linearly_under_affine_motion() -> None:
    """A blob's centroid at t=0 is the midpoint of its centroids at t=-1 and t=+1."""
    size = 64
    ar = torch.arange(120, dtype=torch.float32)
    y, x = torch.meshgrid(ar, ar, indexing="ij")
    blob = torch.exp(-((x - 72.0) ** 2 + (y - 50.0) ** 2) / (2 * 3.0**2))  # off-centre blob
    source = blob.expand(1, 1, 120, 120).contiguous()
    angle, zoom, shear = math.radians(3.0), 0.04, 0.03
    linear = torch.tensor([[[zoom, -angle + shear], [angle, zoom]]])
    translation = torch.tensor([[7.5, -4.25]])
    center = torch.tensor([[2.0, -3.0]])
    source_center = torch.tensor([[59.5, 59.5]])
    pixels = torch.arange(size, dtype=torch.float32)
    grid = torch.stack(torch.meshgrid(pixels, pixels, indexing="xy"))
    centroids = []
    for t in (-1.0, 0.0, 1.0):
        image, _ = render_layer(source, linear, translation, center, source_center, t, size)
        weight = image[0, 0].clamp(min=0)
        centroids.append((grid * weight).sum((1, 2)) / weight.sum())
    # The blob centre in local coordinates is (72-59.5, 50-59.5); at t it is at
    # c + t v + (I + t D) l (origin at the output centre).
    local = torch.tensor([72.0 - 59.5, 50.0 - 59.5])
    for t, centroid in zip((-1.0, 0.0, 1.0), centroids, strict=True):
        expected = center[0] + t * translation[0] + (torch.eye(2) + t * linear[0]) @ local
        assert torch.allclose(centroid - (size - 1) / 2, expected, atol=0.05)
    assert torch.allclose(centroids[1], (centroids[0] + centroids[2]) / 2, atol=0.05)


def test_sampled_translation_middle_is_average_on_a_ramp() -> None:
    """On a linear ramp, pure translation gives first + last == 2 * middle (bilinear is exact
    on linear functions), whatever the random translation."""
    ar = torch.arange(250, dtype=torch.uint8)
    y, x = torch.meshgrid(ar, ar, indexing="ij")
    photos = torch.stack((x, y, torch.full_like(x, 128)))[None].repeat(2, 1, 1, 1)
    config = SyntheticMotionConfig(
        size=48,
        max_translation=20.0,
        min_translation=2.0,
        affine_probability=0.0,
        layer_probabilities=(1.0,),
        photometric_probability=0.0,
        quantize=False,
        mode="bilinear",
    )
    out = _sample(config, photos, batch=16)
    first, middle, last = out["first"], out["middle"], out["last"]
    assert torch.allclose(first + last, 2 * middle, atol=1e-4)
    motion = (first - middle).abs().mean((1, 2, 3)) * 255
    assert float(motion.min()) > 0.5  # every sample moves (>= 2 px, slope 1 level/px)
    assert float(motion.max()) <= 20.0 + 1e-3


def test_layers_occlude_the_background() -> None:
    values = (0, 128, 255)
    photos = torch.stack([torch.full((3, 200, 200), v, dtype=torch.uint8) for v in values])
    config = SyntheticMotionConfig(
        size=48,
        max_translation=4.0,
        layer_probabilities=(0.0, 0.0, 1.0),
        photometric_probability=0.0,
        layer_min_radius=0.2,
        layer_max_radius=0.3,
    )
    out = _sample(config, photos, batch=8)
    levels = torch.tensor(values, dtype=torch.float32) / 255
    for key in ("first", "middle", "last"):
        frame = out[key][:, 0]  # grey photos: all channels equal
        exact = (frame[..., None] - levels).abs().min(-1).values < 1e-6
        assert float(exact.float().mean()) > 0.8  # mostly pure layer/background pixels
        for sample in frame:
            shares = [(sample - v).abs().lt(1e-6).float().mean() for v in levels]
            visible = sum(float(s) > 0.02 for s in shares)
            assert visible >= 2  # a layer from another photo covers part of the background
    # soft edges: some pixels are blends
    assert float(((out["middle"] * 255) % 127.5).gt(0.5).float().mean()) > 0.0


def test_photometric_drift_is_linear_in_time() -> None:
    config = SyntheticMotionConfig(
        size=32,
        max_translation=0.0,
        affine_probability=0.0,
        layer_probabilities=(1.0,),
        photometric_probability=1.0,
        max_brightness=0.05,
        max_contrast=0.05,
        quantize=False,
    )
    photos = torch.full((1, 3, 100, 100), 0.3) + 0.4 * _textures(1, 100).float() / 255
    out = _sample(config, (photos * 255).round().to(torch.uint8))
    assert not torch.equal(out["first"], out["middle"])
    assert torch.allclose(out["first"] + out["last"], 2 * out["middle"], atol=1e-5)


def test_loads_files_and_caps_long_side(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate([(400, 300), (200, 260)]):
        path = tmp_path / f"photo{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    (tmp_path / "notes.txt").write_text("not a photo")
    config = SyntheticMotionConfig(size=32, max_translation=4.0, max_side=256)
    sampler = SyntheticMotion(tmp_path, config)
    assert len(sampler) == 2
    assert sampler.photos.dtype == torch.uint8
    assert sampler.sizes.tolist() == [[192, 256], [256, 197]]
    assert SyntheticMotion(paths, config).sample(2)["middle"].shape == (2, 3, 32, 32)


@needs_data("photos")
def test_real_photos() -> None:
    paths = sorted(DATA_PHOTOS.glob("*.jpg"))[:3]
    sampler = SyntheticMotion(paths, SyntheticMotionConfig())
    assert max(sampler.sizes.max(dim=1).values.tolist()) <= 512
    out = sampler.sample(4, torch.Generator().manual_seed(0))
    assert out["middle"].shape == (4, 3, 128, 128)
    assert float(out["middle"].std()) > 0.02


def test_translation_distribution_is_heavy_tailed() -> None:
    sampler = SyntheticMotion(_textures(1), SyntheticMotionConfig(**{**SMALL, "size": 64}))
    sampler.config = SyntheticMotionConfig()  # default motion ranges, 0.25 .. 24 px
    linear, translation = sampler._motion(torch.Generator().manual_seed(0), 20000)
    magnitude = translation.norm(dim=1)
    assert float(magnitude.min()) >= 0.25 - 1e-4 and float(magnitude.max()) <= 24 + 1e-4
    assert 2.2 < float(magnitude.median()) < 2.7  # log-uniform: sqrt(0.25 * 24) = 2.45
    assert 0.27 < float((magnitude < 1).float().mean()) < 0.34
    assert 0.13 < float((magnitude > 12).float().mean()) < 0.18
    affine = linear.abs().amax(dim=(1, 2)) > 0
    assert 0.45 < float(affine.float().mean()) < 0.55  # affine_probability
    assert float(linear.abs().max()) < math.radians(3) + 0.03 + 1e-6  # rotation + shear


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    photos = _textures()
    config = SyntheticMotionConfig(**SMALL)
    cpu = _sample(config, photos, seed=2)
    cuda = SyntheticMotion(photos, config, "cuda").sample(8, torch.Generator().manual_seed(2))
    for key in cpu:
        assert cuda[key].device.type == "cuda"
        # 8-bit rounding may flip a level where float paths differ in the last bit
        assert float((cuda[key].cpu() - cpu[key]).abs().max()) <= 1.5 / 255
