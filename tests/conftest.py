"""Shared fixtures. Tests use tiny frames and tiny kernels; real sizes live in benchmarks/."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from sepconv.data.files import data_root

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
FIXTURES = TESTS_DIR / "fixtures"
DATA_ROOT = data_root(REPO_ROOT)  # $SEPCONV_DATA, else ../shared/data beside the repository

# Lets tests import the oracle module tests/authors_transcription.py.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


def needs_data(*parts: str) -> pytest.MarkDecorator:
    """Skip unless DATA_ROOT/parts... exists, naming SEPCONV_DATA in the reason."""
    path = DATA_ROOT.joinpath(*parts)
    return pytest.mark.skipif(
        not path.exists(),
        reason=f"{path} not found: set SEPCONV_DATA to the data folder "
        "(default ../shared/data beside the repository)",
    )


@pytest.fixture()
def one_thread():
    """Tiny tensors gain nothing from threads, and OpenMP spinning is slow on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def local_conv_inputs(batch, channels, height, width, kernel, dtype=None, seed=0):
    """Random (frame, vertical, horizontal) for the local convolution, float64 by default."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    frame = torch.rand(
        batch, channels, height + kernel - 1, width + kernel - 1, generator=generator
    )
    vertical = torch.randn(batch, kernel, height, width, generator=generator)
    horizontal = torch.randn(batch, kernel, height, width, generator=generator)
    dtype = dtype or torch.float64
    return frame.to(dtype), vertical.to(dtype), horizontal.to(dtype)


@pytest.fixture(scope="session")
def fixture_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 140x100 crop of Middlebury RubberWhale: first, truth middle, second (uint8 RGB)."""
    from PIL import Image

    def load(name: str) -> np.ndarray:
        return np.asarray(Image.open(FIXTURES / f"rubberwhale_{name}.png").convert("RGB"))

    return load("frame10"), load("frame10i11"), load("frame11")


@pytest.fixture(scope="session")
def authors_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An authors'-format file (module-prefixed plain state dict) with plausible random weights."""
    import torch
    from authors_transcription import plausible_random_state_dict

    path = tmp_path_factory.mktemp("weights") / "network-test.pytorch"
    torch.save(plausible_random_state_dict(seed=0), path)
    return path


TINY_CONFIG_KWARGS = {"kernel_size": 5, "encoder_channels": (4, 8, 8, 8, 8)}


def make_blend_model(kernel_size: int = 5):
    """A network whose output is exactly the average of the two frames.

    ``initialize_as_average`` with zero weights in every subnet's last layer: both 2D kernels
    are 1/2 at the centre and 0 elsewhere, a known answer for every input conversion, padding
    and tiling path.
    """
    from sepconv.models.sepconv_net import SepConvConfig, SepConvNet, initialize_as_average

    config = SepConvConfig(kernel_size=kernel_size, encoder_channels=(4, 8, 8, 8, 8))
    return initialize_as_average(SepConvNet(config), weight_scale=0.0).eval()


def make_random_model(seed: int = 0, kernel_size: int = 5):
    """A tiny random network whose kernels sum to about one (outputs near the input range)."""
    import math

    import torch

    from sepconv.models.sepconv_net import SepConvConfig, SepConvNet

    torch.manual_seed(seed)
    config = SepConvConfig(kernel_size=kernel_size, encoder_channels=(4, 8, 8, 8, 8))
    model = SepConvNet(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".7.bias"):
                parameter.fill_(1.0 / (math.sqrt(2.0) * kernel_size))
            if name.endswith(".7.weight"):
                parameter.mul_(0.3)
    return model.eval()


def write_audio_only(path: Path) -> Path:
    """A short silent AAC file with no video stream."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        stream.layout = "mono"
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
        chunk.sample_rate, chunk.pts = 44100, 0
        for packet in [*stream.encode(chunk), *stream.encode(None)]:
            container.mux(packet)
    return path


def make_clip(
    path: Path,
    frames: list[np.ndarray],
    rate: int = 25,
    audio: bool = True,
    codec: str = "png",
) -> Path:
    """Write frames (rgb24, all of one size) at `rate` with an optional AAC sine track of the
    same duration."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=rate)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "rgb24" if codec == "png" else "yuv444p"
        if codec == "libx264":
            video.options = {"crf": "0"}
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=44100)
            sound.layout = "mono"
        for index, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, rate)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            count = 44100 * len(frames) // rate
            wave = 0.3 * np.sin(2 * np.pi * 440 * np.arange(count) / 44100)
            samples = wave.astype(np.float32)[None]
            for start in range(0, count, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(samples[:, start : start + 1024]),
                    format="fltp",
                    layout="mono",
                )
                chunk.sample_rate, chunk.pts = 44100, start
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
    return path


TINY_FLOW_CONFIG_KWARGS = {"kernel_size": 5, "widths": (4, 8, 8)}
# A learned-motion network small enough for the CPU tests (MotionSepConvConfig fields).
TINY_MOTION_CONFIG_KWARGS = {
    "kernel_size": 3,
    "widths": (4, 8),
    "feature_widths": (4, 4, 6),
    "estimator_widths": (8, 8, 8),
    "coarse_radius": 1,
    "fine_radius": 1,
}


def make_flow_model(seed: int | None = None):
    """A tiny flow-guided network: the DIS baseline exactly (seed None), or with random head
    weights (kernels that vary per pixel) when a seed is given."""
    import torch

    from sepconv.models.flow_sepconv import FlowSepConvConfig, FlowSepConvNet

    model = FlowSepConvNet(FlowSepConvConfig(**TINY_FLOW_CONFIG_KWARGS))
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def shifted_texture(shift: int = 4, height: int = 96, width: int = 128):
    """A smooth random texture moving right by ``shift`` pixels: (first, true middle, last),
    uint8 RGB (H, W, 3)."""
    import cv2

    noise = np.random.default_rng(0).random((height, width + shift, 3)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 2.0)
    texture = (texture - texture.min()) / (texture.max() - texture.min()) * 255.0
    texture = np.round(texture).astype(np.uint8)
    half = shift // 2
    first = np.ascontiguousarray(texture[:, shift : shift + width])
    middle = np.ascontiguousarray(texture[:, half : half + width])
    last = np.ascontiguousarray(texture[:, :width])
    return first, middle, last


def moving_clip(count: int = 24, height: int = 80, width: int = 96, speed: int = 2):
    """A smooth random texture panning right by ``speed`` pixels a frame (a VideoClip)."""
    import cv2
    import torch

    from sepconv.data.video_triplets import VideoClip

    noise = np.random.default_rng(0).random((height, width + speed * count, 3)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 2.0)
    texture = (texture - texture.min()) / (texture.max() - texture.min()) * 255.0
    texture = np.round(texture).astype(np.uint8)
    frames = [texture[:, speed * (count - k) : speed * (count - k) + width] for k in range(count)]
    tensor = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
    return VideoClip(path=Path("moving"), frames=tensor, times=np.arange(count) / 25.0)


def tiny_adapt_settings(**overrides):
    """Adaptation settings small enough for tests."""
    from sepconv.engine.adapt import AdaptSettings

    values = {"seconds": 600.0, "steps": 3, "batch_size": 2, "crop_size": 32, "held_out": 2}
    return AdaptSettings(**{**values, **overrides})
