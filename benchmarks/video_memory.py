"""Peak memory of `sepconv video` on synthetic 720p clips of different lengths (CPU, tiny model).

Makes clips of each length (a textured pattern panning with a moving square, libx264), then
converts each with --factor 2 in a fresh child process using a tiny SepConv network
(kernel 5, encoder channels 4-8-8-8-8) and prints the child's peak resident memory (RSS) and
its RSS sampled at 25/50/75/100 % of the conversion's run time. Streaming conversion keeps
memory flat: the peak should not grow with the number of frames.

    python benchmarks/video_memory.py --frames 100 1000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

WIDTH, HEIGHT = 1280, 720


def make_clip(path: Path, count: int, rate: int = 25) -> None:
    import av
    import numpy as np

    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for index in range(count):
            shift = 4.0 * index
            frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
            frame[..., 0] = 128 + 100 * np.sin((x + shift) / 37.0) * np.cos(y / 23.0)
            frame[..., 1] = 128 + 100 * np.cos((x + shift) / 51.0)
            frame[..., 2] = (y / HEIGHT * 255).astype(np.uint8)
            left = (8 * index) % (WIDTH - 200)
            frame[200:400, left : left + 200] = 255
            video = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video.pts, video.time_base = index, Fraction(1, rate)
            for packet in stream.encode(video):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(clip: Path, output: Path) -> None:
    """Convert one clip and print a JSON line with memory and time figures."""
    import torch

    from sepconv.inference import Interpolator
    from sepconv.models.sepconv_net import SepConvConfig, SepConvNet
    from sepconv.video import EncoderSettings, VideoJob, convert_video

    torch.manual_seed(0)
    model = SepConvNet(SepConvConfig(kernel_size=5, encoder_channels=(4, 8, 8, 8, 8)))
    interpolator = Interpolator(model, device="cpu")
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        start = time.perf_counter()
        while not done.is_set():
            samples.append((time.perf_counter() - start, rss_mib()))
            done.wait(0.5)

    baseline = rss_mib()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    job = VideoJob(factor=2, encoder=EncoderSettings(preset="ultrafast", crf=23))
    summary = convert_video(clip, output, interpolator.interpolate_tensor, job, quiet=True)
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    quartiles = [
        samples[min(len(samples) - 1, int(q * len(samples)))][1] for q in (0.25, 0.5, 0.75)
    ]
    print(
        json.dumps(
            {
                "frames_out": summary["frames"],
                "seconds": round(elapsed, 1),
                "rss_before_mib": round(baseline),
                "rss_quartiles_mib": [round(value) for value in quartiles + [samples[-1][1]]],
                "peak_rss_mib": round(peak),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(
        f"synthetic {WIDTH}x{HEIGHT} at 25 fps -> --factor 2, tiny model, "
        f"CPU ({os.cpu_count()} cores)"
    )
    print(
        f"{'input frames':>12} {'output':>7} {'time s':>8} {'out fps':>8} "
        f"{'RSS at 25/50/75/100 % MiB':>28} {'peak RSS MiB':>13}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for count in args.frames:
            clip = Path(folder) / f"clip{count}.mp4"
            make_clip(clip, count)
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(clip), str(Path(folder) / "out.mp4")],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(result.stdout.strip().splitlines()[-1])
            (Path(folder) / "out.mp4").unlink()
            quartiles = "/".join(str(value) for value in row["rss_quartiles_mib"])
            fps = row["frames_out"] / row["seconds"]
            print(
                f"{count:>12} {row['frames_out']:>7} {row['seconds']:>8} {fps:>8.2f} "
                f"{quartiles:>28} {row['peak_rss_mib']:>13}",
                flush=True,
            )


if __name__ == "__main__":
    main()
