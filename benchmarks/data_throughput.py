"""Throughput of the training data pipeline: synthetic motion, video triplets, mixed batches.

    python benchmarks/data_throughput.py [--photos DIR] [--videos DIR] [--batch 32] [--seconds 5]

Defaults read $SEPCONV_DATA/{photos,videos} (SEPCONV_DATA: the data folder, by default
../shared/data beside the repository). Prints samples/s of
``SyntheticMotion.sample`` (batch 32 of 128x128) on the CPU and on CUDA when present, of
``VideoTriplets`` items (150x150 crops), and of ``TrainingBatches`` (70% synthetic, 30% video,
augmented to 128x128) on the fastest device: built in the calling thread (``batch(step)``, items
read by ``--workers`` threads) and iterated (the next batch prefetched in a background thread,
so with a training step in between most of that time would be hidden), and the flow-guided
family's per-step preparation of those crops (DIS flow both ways and the halfway warps).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _common import DATA, missing_data

from sepconv.data.mixture import TrainingBatches
from sepconv.data.synthetic import SyntheticMotion, SyntheticMotionConfig
from sepconv.data.video_triplets import VideoTriplets


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(step, count: int, seconds: float, device: torch.device) -> float:
    step()  # warm-up
    step()
    _sync(device)
    start = time.perf_counter()
    done = 0
    while time.perf_counter() - start < seconds:
        step()
        done += count
    _sync(device)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DATA / "photos")
    parser.add_argument("--videos", type=Path, default=DATA / "videos")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--workers", type=int, default=4, help="item-reading threads per batch")
    args = parser.parse_args()
    for option, folder in (("--photos DIR", args.photos), ("--videos DIR", args.videos)):
        if not folder.is_dir():
            raise SystemExit(f"error: {missing_data(folder, option)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}")

    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
        print(f"cuda: {torch.cuda.get_device_name()}")
    config = SyntheticMotionConfig(size=128)
    samplers = {}
    for device in devices:
        start = time.perf_counter()
        sampler = SyntheticMotion(args.photos, config, device)
        print(
            f"SyntheticMotion on {device.type}: {len(sampler)} photos loaded in "
            f"{time.perf_counter() - start:.1f} s"
        )
        samplers[device.type] = sampler
        generator = torch.Generator().manual_seed(0)
        rate = _rate(
            lambda s=sampler, g=generator: s.sample(args.batch, g), args.batch, args.seconds, device
        )
        print(
            f"SyntheticMotion.sample {device.type}: batch {args.batch} of 128x128: "
            f"{rate:.0f} samples/s"
        )
        if device.type == "cuda":
            for batch in (128, 512):
                rate = _rate(
                    lambda s=sampler, g=generator, b=batch: s.sample(b, g),
                    batch,
                    args.seconds,
                    device,
                )
                print(f"SyntheticMotion.sample cuda: batch {batch}: {rate:.0f} samples/s")

    start = time.perf_counter()
    videos = VideoTriplets(args.videos, gaps=(1, 2), max_side=640, crop_size=150)
    memory = sum(c.frames.numel() for c in videos.clips) / 2**20
    print(
        f"videos: {len(videos.clips)} decoded and indexed in {time.perf_counter() - start:.1f} s,"
        f" {len(videos)} triplets, {memory:.0f} MiB uint8; per video {videos.counts()}"
        f"; skipped {videos.skipped}"
    )
    index = iter(range(10**9))

    def item() -> None:
        videos[next(index) * 7919 % len(videos)]

    rate = _rate(item, 1, args.seconds, torch.device("cpu"))
    print(f"VideoTriplets[i] (150x150 crop, 4 candidates, main process): {rate:.0f} samples/s")

    device = devices[-1]
    mixture = TrainingBatches(
        [samplers[device.type], videos],
        [0.7, 0.3],
        args.batch,
        device,
        seed=0,
        num_workers=args.workers,
    )
    steps = iter(range(10**9))
    rate = _rate(lambda: mixture.batch(next(steps)), args.batch, args.seconds, device)
    print(
        f"TrainingBatches.batch(step) 70% synthetic / 30% video on {device.type}, batch "
        f"{args.batch}, {args.workers} item threads: {rate:.0f} samples/s"
    )
    stream = iter(mixture)
    rate = _rate(lambda: next(stream), args.batch, args.seconds, device)
    stream.close()
    print(f"TrainingBatches iterated (prefetching), same mix: {rate:.0f} samples/s")

    # The flow-guided family's per-step preparation: DIS flow both ways and the halfway warps
    # of every augmented crop, in the training step (so it is on top of the rates above).
    from sepconv.models.flow_sepconv import FlowSepConvNet

    flow_model = FlowSepConvNet()
    batch = mixture.batch(0)
    first, last = batch["first"].cpu(), batch["last"].cpu()
    rate = _rate(lambda: flow_model.prepare(first, last), args.batch, args.seconds, devices[0])
    print(
        f"FlowSepConvNet.prepare (DIS {flow_model.config.flow_preset} both ways + warps, CPU) "
        f"on batch {args.batch} of 128x128: {rate:.0f} samples/s"
    )


if __name__ == "__main__":
    main()
