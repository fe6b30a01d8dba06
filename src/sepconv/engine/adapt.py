"""Adapting a model to one clip before interpolating it (``sepconv video --adapt``).

Every video holds its own training data: frames (i - 1, i, i + 1) are a real triplet of the
clip's content, camera, noise and compression. :func:`adapt` fine-tunes a copy of the model on
random crops of such triplets, for a time budget, with the training engine's own step
(:class:`~sepconv.engine.train.Trainer`), and guards against harm:

* a few of the clip's triplets (``held_out``, spread over it) are held out: no training
  triplet shares a frame with them;
* they are interpolated with the interpolator's own settings before training (with each warp
  interpolation of the model's motion prior: ``choose_prior``) and after each of ``checks``
  equal parts of the training (early stopping); the best weights seen are kept only if their
  mean PSNR beats the given weights';
* :attr:`AdaptResult.summary` says which way it went, with both PSNRs.

The triplets come from :func:`sepconv.data.clip_windows.read_windows` (windows of
consecutive frames spread over the clip) and are filtered like the training videos'
(:func:`~sepconv.data.video_triplets.valid_triplets`: scene cuts, static and unevenly timed
triplets skipped). Their two inputs are two frame intervals apart, twice the motion of the
interpolation the clip is adapted for, so by default the crops are cut from the clip
downscaled by two (``half_scale``), where a triplet moves as much as the task.

Budget: ``seconds`` is the whole adaptation: the reading of the clip when the caller passes its
time (``reading_seconds``; the command line does), the scoring and the training between the
checks (each part's share leaves time for the scoring still to come, timed on the first).
``steps`` caps the optimizer steps and then places the checks at fixed steps; with the same
seed and the same step count an adaptation is the same, bit for bit on the CPU (the time budget
alone decides how many steps a machine gets through, so :attr:`AdaptResult.steps` is recorded
for rerunning it).

Interruption: with a ``work_dir`` the trainer checkpoints there; Ctrl-C stops after the step
in flight, saves and raises :class:`~sepconv.errors.WorkInterruptedError`, and ``resume=True``
continues from the checkpoint with the time that was left. A finished adaptation is stored
there too (``adapted.safetensors`` and ``result.json``), so a resumed conversion reuses it.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from sepconv.data.mixture import TrainingBatches
from sepconv.data.sources import READ_MARGIN
from sepconv.data.triplets import FrameTriplet
from sepconv.data.video_triplets import VideoClip, VideoTriplets, valid_triplets
from sepconv.errors import SepconvError, WorkInterruptedError

__all__ = [
    "AdaptResult",
    "AdaptSettings",
    "adapt",
    "adaptation_triplets",
    "held_out_crops",
    "save_adapted",
]

#: The held-out triplets are scored on crops of at most this side (whole frames when smaller).
HELD_OUT_SIDE = 512
#: Smallest training crop for which the half-resolution source is used.
MIN_HALF_CROP = 96
STATE_NAME = "adapt.json"
RESULT_NAME = "result.json"
ADAPTED_NAME = "adapted.safetensors"
BEST_NAME = "best.safetensors"
FINAL_NAME = "final.safetensors"


@dataclass(frozen=True)
class AdaptSettings:
    """How :func:`adapt` fine-tunes (see the module docstring).

    Attributes:
        seconds: time budget of the adaptation in seconds (scoring and training, and the
            reading of the clip when :func:`adapt` is given its ``reading_seconds``).
        steps: at most this many optimizer steps (None: as many as the budget allows).
        lr: AdamW learning rate (constant after ``warmup_steps``).
        warmup_steps: linear learning-rate warmup.
        batch_size: crops per step.
        crop_size: side of the square training crops (a multiple of 32; smaller frames get the
            largest multiple of 32 that fits).
        held_out: triplets held out for the guard (at most a third of the clip's; 8: with 4,
            on the real clips of ``benchmarks/adapt.py``, the guard let through an adaptation
            that its triplets scored +0.37 dB and the task -0.14 dB, docs/benchmarks.md).
        half_scale: share of the training crops cut from the clip downscaled by two, where a
            triplet's motion is that of the interpolation it is adapted for (its inputs are
            two frame intervals apart); 0: full resolution only, 1 (the default): half
            resolution only. Ignored for frames under ``2 * (MIN_HALF_CROP + 22)`` pixels
            on their short side. The guard scores the scales trained on.
        choose_prior: for a model with a motion prior, first score it on the held-out triplets
            with each of :data:`PRIOR_CHOICES` (bilinear warps are softer, which suits noisy
            footage, bicubic ones sharper) and adapt the best; the network's weights are
            unchanged by the choice.
        checks: the training time (or ``steps``) is cut into this many equal parts; after
            each the held-out triplets are scored, and the best weights seen are the result
            (early stopping: a small clip is soon overfitted).
        seed: seeds the weights' training order and the crops.
    """

    seconds: float = 60.0
    steps: int | None = None
    lr: float = 1e-4
    warmup_steps: int = 10
    batch_size: int = 4
    crop_size: int = 192
    held_out: int = 8
    half_scale: float = 1.0
    choose_prior: bool = True
    checks: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise SepconvError(f"the adaptation budget must be positive, got {self.seconds}")
        if self.steps is not None and self.steps < 1:
            raise SepconvError(f"adaptation steps must be at least 1, got {self.steps}")
        if self.held_out < 1 or self.batch_size < 1 or self.checks < 1 or not self.lr > 0:
            raise SepconvError("held_out, batch_size, checks and lr must be positive")
        if not 0.0 <= self.half_scale <= 1.0:
            raise SepconvError(f"half_scale must be in [0, 1], got {self.half_scale}")
        if self.crop_size < 32 or self.crop_size % 32:
            raise SepconvError("the adaptation crop size must be a positive multiple of 32")


@dataclass
class AdaptResult:
    """What :func:`adapt` did.

    Attributes:
        interpolator: the interpolator to use from now on: the adapted weights when kept, the
            one passed in otherwise.
        kept: whether the adapted weights beat the starting ones on the held-out triplets.
        psnr_before, psnr_after: mean PSNR (dB) of the held-out triplets (NaN when skipped).
        steps, samples: optimizer steps and crops trained on.
        seconds: wall time of the adaptation.
        train_triplets, held_out_triplets: how many of the clip's triplets were used for each.
        skipped: why no adaptation took place ("" when it did).
        held_out_middles: frame indices (in the clip) of the held-out triplets' true middles.
        best_step: the step of the weights kept (0: the starting weights, or the prior choice
            alone, were best).
        psnr_final: held-out PSNR of the weights at the end of training.
        prior: the warp interpolation adapted from (see ``choose_prior``; "" for a family
            without a motion prior).
        adapted: the interpolator with the weights at the end of training, kept or not (None
            when skipped), for studies of the guard.
    """

    interpolator: Any
    kept: bool = False
    psnr_before: float = math.nan
    psnr_after: float = math.nan
    steps: int = 0
    samples: int = 0
    seconds: float = 0.0
    train_triplets: int = 0
    held_out_triplets: int = 0
    skipped: str = ""
    held_out_middles: list[int] = field(default_factory=list)
    prior: str = ""
    best_step: int = 0
    psnr_final: float = math.nan
    adapted: Any = None

    @property
    def summary(self) -> str:
        """One line: which way it went, with both PSNRs."""
        if self.skipped:
            return f"adaptation skipped: {self.skipped}; interpolating with the given weights"
        change = self.psnr_after - self.psnr_before
        warps = f" ({self.prior})" if self.prior else ""
        if not self.kept:
            verdict, chosen = "reverted, using the given weights", f"{self.steps} steps"
        elif self.best_step:
            verdict, chosen = "kept", f"weights of step {self.best_step} of {self.steps}{warps}"
        else:  # the choice of motion prior alone won; training did not improve on it
            verdict, chosen = "kept", f"the given network{warps} ({self.steps} steps no better)"
        return (
            f"adaptation {verdict}: held-out PSNR {self.psnr_before:.2f} -> "
            f"{self.psnr_after:.2f} dB ({change:+.2f}) on {self.held_out_triplets} triplets; "
            f"{chosen}; {self.train_triplets} training triplets, {self.seconds:.0f} s"
        )

    def record(self) -> dict[str, Any]:
        """Plain data for ``result.json`` and weights metadata (no interpolator)."""
        return {
            item.name: getattr(self, item.name)
            for item in fields(self)
            if item.name not in ("interpolator", "adapted")
        }


def adaptation_triplets(
    clip: VideoClip, held_out: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(training, held-out) (middle, gap) triplets of neighbouring frames of ``clip``.

    The held-out ones are ``held_out`` usable triplets (at most a third of them, at least one)
    spread over the clip in runs of two neighbours; a training triplet never uses a frame of a
    held-out one. Both lists are empty when no training triplet is left.
    """
    from sepconv.data.clip_windows import evenly_spaced

    found = sorted(valid_triplets(clip.frames, clip.times, gaps=(1,), breaks=clip.breaks))
    held_out = max(1, min(held_out, len(found) // 3))
    if len(found) <= held_out:
        return [], []
    # Held out in runs of two neighbours, spread over the clip: neighbours share frames, so a
    # run costs the training set fewer triplets than two lone ones.
    runs = (held_out + 1) // 2
    starts = evenly_spaced(len(found) - 1, runs) if len(found) > 1 else [0]
    held = sorted({found[k + j] for k in starts for j in range(2) if k + j < len(found)})
    held = held[:held_out]
    reserved = {frame for middle, gap in held for frame in range(middle - gap, middle + gap + 1)}
    train = [
        (middle, gap)
        for middle, gap in found
        if not reserved.intersection(range(middle - gap, middle + gap + 1))
    ]
    return (train, held) if train else ([], [])


def held_out_crops(clip: VideoClip, held: list[tuple[int, int]], seed: int) -> list[FrameTriplet]:
    """The held-out triplets as uint8 (H, W, 3) arrays: whole frames up to
    :data:`HELD_OUT_SIDE`, else the square crop of that side with the most motion of 8 seeded
    candidates."""
    height, width = clip.frames.shape[-2:]
    side = min(HELD_OUT_SIDE, height, width)
    whole = max(height, width) <= HELD_OUT_SIDE
    dataset = VideoTriplets.from_clip(
        clip, held, crop_size=None if whole else side, crop_candidates=8, seed=seed
    )
    items = []
    for index, (middle, _) in enumerate(held):
        item = dataset[index]
        first, truth, last = (
            (item[name].permute(1, 2, 0) * 255.0).round().to(torch.uint8).numpy()
            for name in ("first", "middle", "last")
        )
        items.append(FrameTriplet(name=f"frame {middle}", first=first, middle=truth, last=last))
    return items


def _crop_size(settings: AdaptSettings, clip: VideoClip) -> int:
    """The training crop: the setting, or the largest multiple of 32 the frames hold (with the
    reading margin of the training data); 0 when the frames are too small."""
    fits = (min(clip.frames.shape[-2:]) - READ_MARGIN) // 32 * 32
    return max(0, min(settings.crop_size, fits))


def half_resolution(clip: VideoClip) -> VideoClip:
    """The clip downscaled by two (area averaging, rounded to uint8; odd sizes lose a pixel)."""
    import torch.nn.functional as F  # noqa: N812

    height, width = clip.frames.shape[-2:]
    frames = clip.frames[..., : height // 2 * 2, : width // 2 * 2]
    chunks = [
        F.avg_pool2d(frames[start : start + 16].float(), 2).round_().to(torch.uint8)
        for start in range(0, frames.shape[0], 16)
    ]
    return VideoClip(path=clip.path, frames=torch.cat(chunks), times=clip.times, breaks=clip.breaks)


def _score(interpolator: Any, items: list[FrameTriplet]) -> float:
    from sepconv.engine.evaluate import evaluate

    return evaluate(interpolator.interpolate, items).psnr


#: The motion-prior settings ``choose_prior`` tries: each warp interpolation. (Also choosing
#: DIS's finest scale scored lower on benchmarks/adapt.py's clips, 2026-12-01: the held-out
#: triplets, at twice the task's motion, favour smoother flow than the task does.)
PRIOR_CHOICES: dict[str, tuple[Any, ...]] = {"warp_interpolation": ("linear", "cubic")}


def prior_variants(model: Any) -> list[Any]:
    """The model with each combination of :data:`PRIOR_CHOICES` in its motion prior (the model
    itself first; the network's weights are shared); just the model for a family without a
    motion prior."""
    import itertools
    from dataclasses import replace

    from sepconv.models.registry import create_model

    if not all(hasattr(model.config, name) for name in PRIOR_CHOICES):
        return [model]
    variants = [model]
    for values in itertools.product(*PRIOR_CHOICES.values()):
        config = replace(model.config, **dict(zip(PRIOR_CHOICES, values, strict=True)))
        if config == model.config:
            continue
        variant = create_model(config)
        variant.load_state_dict(model.state_dict())
        variants.append(variant.eval())
    return variants


def _describe_prior(config: Any) -> str:
    """Words for the motion-prior settings of :data:`PRIOR_CHOICES` ("linear warps"; "" for a
    family without a motion prior)."""
    interpolation = getattr(config, "warp_interpolation", None)
    return "" if interpolation is None else f"{interpolation} warps"


def _train_config(
    model: Any,
    settings: AdaptSettings,
    crop: int,
    output_dir: Path,
    device: Any,
    *,
    checkpoint_seconds: float,
):
    from sepconv.engine.config import TrainConfig
    from sepconv.inference import resolve_precision
    from sepconv.ops.cpu import cpu_kernel_available

    on_cpu = device.type == "cpu"
    backend = ("cpu" if cpu_kernel_available() else "reference") if on_cpu else "auto"
    return TrainConfig(
        model=model.config.to_dict(),
        loss="l1",
        batch_size=settings.batch_size,
        crop_size=crop,
        optimizer="adamw",
        lr=settings.lr,
        schedule="constant",
        warmup_steps=settings.warmup_steps,
        total_steps=settings.steps or 10**9,
        bf16=resolve_precision("auto", device) == "bfloat16" if on_cpu else True,
        grad_clip=1.0,
        ema_decay=0.0,
        seed=settings.seed,
        checkpoint_every_steps=0,
        checkpoint_every_seconds=checkpoint_seconds,
        validate_every_steps=0,
        output_dir=str(output_dir),
        log_every_steps=10**9,
        backend=backend,
    )


def _progress(
    batches: TrainingBatches, seconds: float, steps: int | None, quiet: bool
) -> Iterator[Any]:
    """The batches, with a progress bar of the adaptation's time budget (done, rate, ETA)."""
    from tqdm import tqdm

    started = time.perf_counter()
    with tqdm(
        total=round(seconds),
        desc="adapting",
        unit="s",
        disable=quiet,
        file=sys.stderr,
        leave=False,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total} s{postfix}",
    ) as bar:
        for count, batch in enumerate(batches):
            elapsed = time.perf_counter() - started
            bar.n = min(round(seconds), round(elapsed))
            rate = count * batches.batch_size / elapsed if elapsed > 0 else 0.0
            limit = f"/{steps}" if steps else ""
            bar.set_postfix_str(f"step {count}{limit}, {rate:.1f} samples/s", refresh=True)
            yield batch


def _identity(clip: VideoClip, settings: AdaptSettings, model: Any) -> dict[str, Any]:
    """What a stored adaptation must match to be reused."""
    digest = torch.tensor(
        [float(v.float().sum()) for v in model.state_dict().values()], dtype=torch.float64
    )
    return {
        "clip": str(clip.path),
        "frames": list(clip.frames.shape),
        "frame_sum": int(clip.frames.sum(dtype=torch.int64)),
        "settings": asdict(settings),
        "model": model.config.to_dict(),
        "weights_checksum": float(digest.sum()),
        "version": 1,
    }


def _read_state(path: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """The stored progress of an interrupted adaptation of this clip and model ({} if none)."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) and state.get("identity") == identity else {}


def _load_finished(work_dir: Path, identity: dict[str, Any], interpolator: Any) -> Any:
    """A finished adaptation stored in ``work_dir`` for this clip and model, or None."""
    from sepconv.models.checkpoint import load_weights

    result_path = work_dir / RESULT_NAME
    if not result_path.is_file():
        return None
    try:
        stored = json.loads(result_path.read_text())
    except (OSError, ValueError):
        return None
    if stored.get("identity") != identity:
        return None
    record = stored["result"]
    result = AdaptResult(interpolator=interpolator, **record)
    result.adapted = interpolator.with_model(load_weights(work_dir / FINAL_NAME).model)
    if result.kept:
        result.interpolator = interpolator.with_model(load_weights(work_dir / ADAPTED_NAME).model)
    return result


def adapt(
    interpolator: Any,
    clip: VideoClip,
    settings: AdaptSettings | None = None,
    *,
    work_dir: Path | str | None = None,
    resume: bool = False,
    quiet: bool = False,
    reading_seconds: float = 0.0,
) -> AdaptResult:
    """Fine-tune a copy of ``interpolator``'s model on ``clip`` (see the module docstring).

    Args:
        interpolator: an :class:`~sepconv.inference.Interpolator`; its model is not changed,
            and its settings score the held-out triplets.
        clip: frames of the clip to adapt to, e.g. from
            :func:`sepconv.data.clip_windows.read_windows` ((N, 3, H, W) uint8).
        settings: budget, learning rate, crops, seed.
        work_dir: where the trainer checkpoints and the finished adaptation are kept (a
            temporary folder, removed at the end, when None).
        resume: continue the adaptation stored in ``work_dir`` (a finished one is reused).
        quiet: no progress bar.
        reading_seconds: time already spent reading ``clip``, counted against
            ``settings.seconds`` (so that the budget bounds what the user waits for).

    Returns:
        The result; its ``interpolator`` is the one to use.

    Raises:
        WorkInterruptedError: Ctrl-C or SIGTERM during training (with a ``work_dir``, the
            checkpoint there is kept for ``resume``).
    """
    from sepconv.engine.train import Trainer
    from sepconv.models.checkpoint import load_weights, save_safetensors

    settings = settings or AdaptSettings()
    started = time.perf_counter() - max(0.0, reading_seconds)
    model = interpolator.model
    result = AdaptResult(interpolator=interpolator)
    if clip.frames.shape[0] == 0:
        result.skipped = "fewer than three frames read"
        return result
    train, held = adaptation_triplets(clip, settings.held_out)
    crop = _crop_size(settings, clip)
    scales = [(clip, 1.0)]
    if settings.half_scale > 0 and crop >= MIN_HALF_CROP:
        half = half_resolution(clip)
        half_crop = _crop_size(settings, half)
        if half_crop >= MIN_HALF_CROP:
            crop = half_crop
            scales = [(clip, 1.0 - settings.half_scale), (half, settings.half_scale)]
            scales = [(source, share) for source, share in scales if share > 0]
    if crop < 32:
        result.skipped = f"frames smaller than {32 + READ_MARGIN} pixels"
        return result
    if not train:
        result.skipped = "too few usable triplets (frames with motion and no scene cut)"
        return result
    result.train_triplets, result.held_out_triplets = len(train), len(held)
    result.held_out_middles = [middle for middle, _ in held]

    identity = _identity(clip, settings, model)
    temporary = None
    if work_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="sepconv-adapt-")
        folder = Path(temporary.name)
    else:
        folder = Path(work_dir)
        if not resume and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
    try:
        if resume:
            finished = _load_finished(folder, identity, interpolator)
            if finished is not None:
                return finished
        state_path = folder / STATE_NAME
        state = _read_state(state_path, identity) if resume else {}
        spent = float(state.get("seconds", 0.0))  # used by earlier, interrupted attempts

        def save_state(**extra: Any) -> None:
            state.update(extra, identity=identity)
            state_path.write_text(json.dumps(state))

        save_state(seconds=spent)
        held_items = [
            item for source, _ in scales for item in held_out_crops(source, held, settings.seed)
        ]
        score_start = time.perf_counter()
        result.psnr_before = _score(interpolator, held_items)
        score_seconds = time.perf_counter() - score_start
        start_model, start_psnr = model, result.psnr_before
        if settings.choose_prior:
            for variant in prior_variants(model)[1:]:
                psnr = _score(interpolator.with_model(variant), held_items)
                if psnr > start_psnr:
                    start_model, start_psnr = variant, psnr
        result.prior = _describe_prior(start_model.config)

        # Periodic checkpoints only where a resume can find them (not in a temporary folder).
        config = _train_config(
            start_model,
            settings,
            crop,
            folder,
            interpolator.device,
            checkpoint_seconds=0.0 if temporary is not None else 10.0,
        )
        trainer = Trainer(
            config, device=interpolator.device, log_stream=None, initial_model=start_model.float()
        )
        if resume:
            trainer.resume("auto")
        best_model, best_psnr = start_model, start_psnr
        best_step = int(state.get("best_step", 0))
        if best_step and (folder / BEST_NAME).is_file():
            best_model = load_weights(folder / BEST_NAME).model
            best_psnr = float(state["best_psnr"])
        checks_done = int(state.get("checks", 0))
        datasets = [
            VideoTriplets.from_clip(
                source, train, crop_size=crop + READ_MARGIN, crop_candidates=4, seed=settings.seed
            )
            for source, _ in scales
        ]
        batches = TrainingBatches(
            datasets,
            [share for _, share in scales],
            settings.batch_size,
            interpolator.device,
            settings.seed,
            start_step=trainer.step,
            size=crop,
        )
        checks_left = max(0, settings.checks - checks_done)
        used = spent + (time.perf_counter() - started)
        train_seconds = max(0.0, settings.seconds - used - checks_left * score_seconds)
        stream = _progress(batches, train_seconds, settings.steps, quiet)
        final_psnr = math.nan
        try:
            for check in range(checks_done, settings.checks):
                if settings.steps is not None:  # checks at fixed steps: reproducible
                    boundary = math.ceil(settings.steps * (check + 1) / settings.checks)
                    steps = boundary - trainer.step
                else:
                    steps = None
                seconds_left = settings.seconds - score_seconds * (settings.checks - check)
                seconds_left -= spent + time.perf_counter() - started
                share = seconds_left / (settings.checks - check)
                if (steps is not None and steps <= 0) or share <= 0:
                    continue
                outcome = trainer.run(stream, steps=steps, max_seconds=share, export=False)
                if outcome["stopped"] == "interrupted":
                    save_state(seconds=spent + time.perf_counter() - started)
                    where = (
                        "; run the same command with --resume to continue"
                        if temporary is None
                        else ""
                    )
                    raise WorkInterruptedError(
                        f"adaptation interrupted at step {trainer.step}{where}"
                    )
                final_psnr = _score(interpolator.with_model(trainer.net.eval()), held_items)
                if final_psnr > best_psnr:
                    best_model = copy.deepcopy(trainer.net).eval()
                    best_psnr, best_step = final_psnr, trainer.step
                    if temporary is None:
                        save_safetensors(folder / BEST_NAME, best_model, dtype=torch.float32)
                save_state(
                    checks=check + 1,
                    best_step=best_step,
                    best_psnr=best_psnr,
                    seconds=spent + time.perf_counter() - started,
                )
        finally:
            stream.close()
            batches.close()
        result.steps, result.samples = trainer.step, trainer.samples
        result.best_step = best_step
        result.psnr_final = final_psnr
        result.adapted = interpolator.with_model(trainer.net.eval())
        result.psnr_after = best_psnr
        result.kept = bool(best_psnr > result.psnr_before)
        if result.kept:
            result.interpolator = interpolator.with_model(best_model)
        result.seconds = spent + time.perf_counter() - started
        if temporary is None:
            save_safetensors(folder / ADAPTED_NAME, best_model, dtype=torch.float32)
            save_safetensors(folder / FINAL_NAME, trainer.net, dtype=torch.float32)
            (folder / RESULT_NAME).write_text(
                json.dumps({"identity": identity, "result": result.record()})
            )
        return result
    finally:
        if temporary is not None:
            temporary.cleanup()


def save_adapted(
    path: Path | str, result: AdaptResult, *, clip_sha256: str, base_weights: str
) -> None:
    """Write the weights ``result`` interpolates with (fp16 safetensors, atomically), with
    metadata naming the clip's sha256, the base weights, the budget and both PSNRs."""
    from sepconv.models.checkpoint import save_safetensors

    record = result.record()
    metadata = {
        "kind": "adapted" if result.kept else "adaptation reverted",
        "adapted_to_sha256": clip_sha256,
        "base_weights": base_weights,
        "adaptation": json.dumps(record),
    }
    save_safetensors(Path(path), result.interpolator.model, metadata=metadata)
