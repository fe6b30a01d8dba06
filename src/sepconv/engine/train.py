"""Training: the :class:`Trainer` (single process or DDP under torchrun) and its data sources.

Design points:

* **Exact resume.** A checkpoint holds the weights, optimizer, EMA, step, samples seen, RNG
  states (torch, CUDA, numpy, python) and the config. The learning rate is a pure function of
  the step, and the built-in data sources draw batch ``s`` of rank ``r`` from a generator seeded
  with ``(seed, r, s)``, so N steps + resume + N steps equals 2N steps (bitwise on the CPU; see
  ``tests/engine/test_train.py``).
* **No poisoned weights.** A step whose loss or gradient is not finite is skipped (no optimizer
  or EMA update) and reported; after ``max_bad_steps`` such steps in a row training stops with
  a :class:`~sepconv.errors.SepconvError`.
* **DDP.** Launched by ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) the trainer
  joins the process group (nccl on CUDA, gloo on the CPU), wraps the network in
  DistributedDataParallel, splits the global batch across ranks, and writes logs and
  checkpoints on rank 0 only.
* **Graceful stop.** SIGINT (Ctrl-C) or SIGTERM (a scheduler's notice) during
  :meth:`Trainer.run` finishes the current step, saves the checkpoint and returns with
  ``stopped = "interrupted"``; a second signal stops at once (the last checkpoint is kept).
* **Validation** goes through :func:`sepconv.engine.evaluate.evaluate` with an
  :class:`~sepconv.inference.Interpolator` on the (EMA) model, like ``sepconv eval``.
"""

from __future__ import annotations

import copy
import json
import math
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from sepconv import __version__
from sepconv.data.mixture import step_seed
from sepconv.data.sources import Batch, TranslationBatches, build_batches
from sepconv.engine.config import TrainConfig
from sepconv.engine.distributed import DistributedContext
from sepconv.engine.progress import CsvLog, format_duration
from sepconv.engine.reproducibility import capture_rng_state, code_version, restore_rng_state
from sepconv.errors import SepconvError
from sepconv.interrupts import StopRequests
from sepconv.losses import build_loss
from sepconv.models.checkpoint import (
    FORMAT_NAME,
    _torch_load_safely,
    save_checkpoint,
    save_safetensors,
)
from sepconv.models.registry import config_from_dict, create_model
from sepconv.models.sepconv_net import SepConvNet, initialize_as_average
from sepconv.models.synthesis import KernelSynthesisModel

__all__ = [
    "CHECKPOINT_NAME",
    "EXPORT_NAME",
    "LOG_NAME",
    "DistributedContext",
    "Trainer",
    "TranslationBatches",
    "build_batches",
    "learning_rate",
    "step_seed",
]

CHECKPOINT_NAME = "last.pt"
EXPORT_NAME = "model.safetensors"
LOG_NAME = "log.csv"


# -- schedule and seeds ------------------------------------------------------------------------


def learning_rate(config: TrainConfig, step: int) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warmup, then constant or
    cosine decay to ``min_lr_ratio * lr`` at ``total_steps``. A pure function of the step, so a
    resumed run continues the schedule."""
    if config.warmup_steps > 0 and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    span = max(1, config.total_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.min_lr_ratio
    return config.lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


# -- the trainer -------------------------------------------------------------------------------


class _TrainStep(nn.Module):
    """The network's training forward (the module DDP wraps): the family's
    :meth:`~sepconv.models.synthesis.KernelSynthesisModel.training_forward`."""

    def __init__(
        self, net: KernelSynthesisModel, *, bf16: bool, channels_last: bool, backend: str
    ) -> None:
        super().__init__()
        self.net = net
        self.bf16 = bf16
        self.channels_last = channels_last
        self.backend = backend

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        return self.net.training_forward(
            batch,
            bf16=self.bf16,
            channels_last=self.channels_last,
            backend=self.backend,  # type: ignore[arg-type]
        )


class Trainer:
    """Trains a network of either family as ``config`` says.

    Args:
        config: the run's settings.
        device: "cpu", "cuda", ...; default CUDA if available. Under torchrun each rank uses
            ``cuda:LOCAL_RANK``.
        validation: triplets to validate on (default: from ``config.validation``).
        log_stream: where progress lines go (default: ``sys.stderr`` at construction time;
            None: silent).
        initial_model: start from this network's weights (its config must be the run's, up
            to the motion-prior fields) instead of ``config.init_weights``; the network passed
            is not changed.

    Typical use::

        trainer = Trainer(config)
        trainer.resume("auto")       # continue from output_dir/last.pt if it exists
        trainer.run(steps=5000)      # this run's share; saves and exports at the end
        trainer.close()
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        device: str | torch.device | None = None,
        validation: Sequence[Any] | None = None,
        log_stream: TextIO | None | str = "stderr",
        initial_model: KernelSynthesisModel | None = None,
    ) -> None:
        self.config = config
        requested = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        if requested.type == "cuda" and not torch.cuda.is_available():
            raise SepconvError("--device cuda was asked for, but no CUDA device is available")
        self.dist = DistributedContext.from_env(requested.type)
        if requested.type == "cuda" and self.dist.enabled:
            requested = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(requested)
        self.device = requested
        if config.batch_size % self.dist.world_size:
            raise SepconvError(
                f"batch_size {config.batch_size} is not divisible by {self.dist.world_size} ranks"
            )
        self.local_batch_size = config.batch_size // self.dist.world_size
        self.output_dir = Path(config.output_dir)
        if log_stream == "stderr":
            log_stream = sys.stderr
        self.log_stream = (
            log_stream if self.dist.is_main and not isinstance(log_stream, str) else None
        )

        # Same initial weights on every rank (DDP broadcasts rank 0's anyway).
        torch.manual_seed(config.seed)
        np.random.seed(config.seed % 2**32)
        random.seed(config.seed)
        self.net = create_model(config.model_config())
        if config.model_init == "average" and isinstance(self.net, SepConvNet):
            initialize_as_average(self.net)
        if initial_model is not None:
            self._load_initial_model(initial_model, "initial_model")
        elif config.init_weights:
            from sepconv.models.checkpoint import load_weights

            loaded = load_weights(config.init_weights).model
            self._load_initial_model(loaded, f"init_weights {config.init_weights}")
        self.net = self.net.to(self.device)
        if config.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.ema: KernelSynthesisModel | None = None
        if config.ema_decay > 0:
            self.ema = copy.deepcopy(self.net).requires_grad_(False).eval()
        self.step_module: nn.Module = _TrainStep(
            self.net, bf16=config.bf16, channels_last=config.channels_last, backend=config.backend
        )
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_module = DistributedDataParallel(self.step_module, device_ids=ids)
        self.optimizer = self._build_optimizer()
        self.loss_fn = build_loss(config.loss).to(self.device)
        self.step = 0
        self.samples = 0
        self.bad_steps = 0
        self.metrics: dict[str, float] = {}
        self.last_saved_step = -1
        self._validation = validation
        self._code_version = code_version() if self.dist.is_main else __version__
        self._data_description: dict[str, Any] = dict(config.data)
        if config.validate_every_steps and self.dist.is_main:
            self.validation_triplets()  # fail now, not thousands of steps in

    def _load_initial_model(self, loaded: KernelSynthesisModel, source: str) -> None:
        """Continue ``loaded``'s weights. Its config must be this run's, but for the family's
        ``PRIOR_FIELDS`` (how it trains) and ``ADDED_FIELDS`` (modules this run adds, which
        keep their initialisation; nothing of ``loaded`` may go unused)."""
        config = self.net.config
        compared = loaded.config
        prior = getattr(config, "PRIOR_FIELDS", ())
        added = getattr(config, "ADDED_FIELDS", ())
        if type(compared) is type(config) and (prior or added):
            # e.g. a flow-guided run may continue weights trained with another motion prior.
            compared = replace(
                compared, **{name: getattr(config, name) for name in (*prior, *added)}
            )
        if compared != config:
            raise SepconvError(
                f"{source} has model config {loaded.config.to_dict()}, but this run's "
                f"is {config.to_dict()}"
            )
        grows = any(getattr(loaded.config, name) != getattr(config, name) for name in added)
        missing, unexpected = self.net.load_state_dict(loaded.state_dict(), strict=not grows)
        if unexpected or (missing and not grows):
            raise SepconvError(f"{source} does not fit this run's model: {unexpected or missing}")

    # -- construction ------------------------------------------------------------------------

    def _build_optimizer(self) -> torch.optim.Optimizer:
        config = self.config
        parameters = list(self.net.parameters())
        if config.optimizer == "adamax":
            return torch.optim.Adamax(parameters, lr=config.lr, betas=config.betas)
        return torch.optim.AdamW(
            parameters, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )

    def validation_triplets(self) -> list[Any]:
        """The triplets validation runs on (from ``config.validation`` unless given)."""
        if self._validation is None:
            self._validation = _load_validation(self.config.validation)
        items = list(self._validation)
        if self.config.validation_limit > 0:
            items = items[: self.config.validation_limit]
        return items

    @property
    def export_model(self) -> KernelSynthesisModel:
        """The weights to evaluate and export: the EMA when enabled."""
        return self.ema if self.ema is not None else self.net

    # -- checkpoints -------------------------------------------------------------------------

    def checkpoint_path(self) -> Path:
        return self.output_dir / CHECKPOINT_NAME

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write the full training state (rank 0 only; atomic). Returns the path on rank 0."""
        if not self.dist.is_main:
            return None
        target = Path(path) if path is not None else self.checkpoint_path()
        extra: dict[str, Any] = {
            "kind": "training",
            "code_version": self._code_version,
            "step": self.step,
            "samples": self.samples,
            "world_size": self.dist.world_size,
            "train_config": self.config.to_dict(),
            "data": self._data_description,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"name": self.config.schedule, "step": self.step},
            "rng": capture_rng_state(),
            "metrics": dict(self.metrics),
        }
        if self.ema is not None:
            extra["ema"] = self.ema.state_dict()
        save_checkpoint(target, self.net, **extra)
        self.last_saved_step = self.step
        return target

    def resume(self, path: str | Path) -> bool:
        """Restore the training state from a checkpoint; ``"auto"``: ``output_dir/last.pt`` if
        it exists (returns False when there is none). The config's model and optimizer must
        match the checkpoint's."""
        if str(path) == "auto":
            path = self.checkpoint_path()
            if not path.is_file():
                return False
        path = Path(path)
        if not path.is_file():
            raise SepconvError(f"checkpoint {path} does not exist")
        state = _torch_load_safely(path)
        if not isinstance(state, dict) or state.get("format") != FORMAT_NAME or "step" not in state:
            raise SepconvError(f"{path} is not a sepconv training checkpoint")
        if _saved_model_config(state.get("config")) != self.net.config:
            raise SepconvError(f"{path} holds a different model config than this run's")
        saved = state.get("train_config", {})
        if saved.get("optimizer") != self.config.optimizer:
            raise SepconvError(f"{path} was trained with optimizer {saved.get('optimizer')!r}")
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"] if "ema" in state else state["model"])
        self.step = int(state["step"])
        self.samples = int(state["samples"])
        self.metrics = dict(state.get("metrics", {}))
        if int(state.get("world_size", 1)) == self.dist.world_size:
            restore_rng_state(state["rng"])
        self.last_saved_step = self.step
        return True

    def export(self, path: str | Path | None = None) -> Path | None:
        """fp16 safetensors of the (EMA) weights for inference (rank 0 only)."""
        if not self.dist.is_main:
            return None
        target = Path(path) if path is not None else self.output_dir / EXPORT_NAME
        metadata = {
            "step": str(self.step),
            "samples": str(self.samples),
            "ema": str(self.ema is not None),
            "code_version": self._code_version,
            "train_config": json.dumps(self.config.to_dict()),
            "metrics": json.dumps(self.metrics),
        }
        save_safetensors(target, self.export_model, metadata=metadata)
        return target

    # -- validation --------------------------------------------------------------------------

    def validate(self) -> float:
        """Mean PSNR of the (EMA) model on the validation triplets (rank 0; NaN elsewhere)."""
        if not self.dist.is_main:
            return math.nan
        from sepconv.engine.evaluate import evaluate
        from sepconv.inference import Interpolator

        model = self.export_model
        was_training = model.training
        # The float32 reference path with the run's backend (not the CPU fast path's copy).
        interpolator = Interpolator(
            model,
            device=self.device,
            backend=self.config.backend,  # type: ignore[arg-type]
            optimize=False,
        )
        try:
            result = evaluate(interpolator.interpolate, self.validation_triplets())
        finally:
            model.train(was_training)
        self.metrics.update(
            {"val_psnr": result.psnr, "val_ssim": result.ssim, "val_step": self.step}
        )
        return result.psnr

    # -- training ----------------------------------------------------------------------------

    def batches(self) -> Iterable[Batch]:
        """This rank's batches from ``config.data``, continuing at the current step."""
        return build_batches(
            self.config.data,
            batch_size=self.local_batch_size,
            crop_size=self.config.crop_size,
            seed=self.config.seed + self.dist.rank,
            rank=0,
            start_step=self.step,
            device=self.device,
        )

    def _update_ema(self) -> None:
        if self.ema is None:
            return
        decay = min(self.config.ema_decay, (1.0 + self.step) / (10.0 + self.step))
        with torch.no_grad():
            ema_state = self.ema.state_dict()
            for name, value in self.net.state_dict().items():
                if value.is_floating_point():
                    ema_state[name].lerp_(value, 1.0 - decay)
                else:
                    ema_state[name].copy_(value)

    def train_step(self, batch: Batch) -> dict[str, float]:
        """One optimizer step on one batch; returns {"loss", "grad_norm", "lr", "skipped"}."""
        config = self.config
        lr = learning_rate(config, self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = {
            name: tensor.to(self.device, torch.float32, non_blocking=True)
            for name, tensor in batch.items()
        }
        self.step_module.train()
        self.optimizer.zero_grad(set_to_none=True)
        prediction, extra_loss = self.step_module(batch)
        loss = self.loss_fn(prediction, batch["middle"])
        if extra_loss is not None:
            loss = loss + extra_loss
        finite = self.dist.all_finite(bool(torch.isfinite(loss).item()), self.device)
        grad_norm = math.nan
        if finite:
            loss.backward()
            max_norm = config.grad_clip if config.grad_clip > 0 else math.inf
            norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), max_norm)
            grad_norm = float(norm.item())
            finite = math.isfinite(grad_norm)  # identical on every rank after the all-reduce
        if finite:
            self.optimizer.step()
            self._update_ema()
            self.bad_steps = 0
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.bad_steps += 1
        loss_value = float(self.dist.mean(loss.detach().float()).item()) if finite else math.nan
        self.step += 1
        self.samples += config.batch_size
        return {"loss": loss_value, "grad_norm": grad_norm, "lr": lr, "skipped": not finite}

    def run(
        self,
        batches: Iterable[Batch] | None = None,
        *,
        steps: int | None = None,
        max_seconds: float | None = None,
        export: bool = True,
    ) -> dict[str, Any]:
        """Train until ``total_steps`` (or ``steps`` more steps), then checkpoint and export.

        Args:
            batches: this rank's batch dicts {"first", "middle", "last"} ((B, 3, H, W) floats
                in [0, 1]) for steps ``self.step``, ``self.step + 1``, ...; default
                :meth:`batches` (from ``config.data``). For an exact resume the source must
                continue where the checkpoint stopped.
            steps: at most this many steps in this call (one time-boxed run's share).
            max_seconds: stop after the first step that ends this many seconds after the call
                began (then save and export as usual): fits a run into a fixed time budget.
            export: write ``model.safetensors`` at the end.

        Returns:
            ``{"step", "samples", "steps_run", "loss", "mean_loss", "seconds", "stopped"}``;
            ``stopped`` is "done", "time limit", "data exhausted" or "interrupted" (SIGINT or
            SIGTERM: the step in flight finishes, then the checkpoint is saved).

        Raises:
            SepconvError: ``max_bad_steps`` consecutive non-finite steps (the last good
                checkpoint is kept; nothing is saved from the bad state).
        """
        config = self.config
        target = config.total_steps if steps is None else min(config.total_steps, self.step + steps)
        iterator = iter(batches if batches is not None else self.batches())
        log = CsvLog(self.output_dir / LOG_NAME, self.step) if self.dist.is_main else None
        started = time.perf_counter()
        last_save_time = time.monotonic()
        window_start, window_samples = time.perf_counter(), 0
        first_step = self.step
        losses: list[float] = []
        last_loss = math.nan
        stopped = "done"
        stop_requests = StopRequests()
        try:
            stop_requests.__enter__()
            while self.step < target:
                try:
                    batch = next(iterator)
                except StopIteration:
                    stopped = "data exhausted"
                    break
                result = self.train_step(batch)
                window_samples += config.batch_size
                if result["skipped"]:
                    self._report(
                        f"step {self.step}: non-finite loss or gradient, step skipped "
                        f"({self.bad_steps} in a row)"
                    )
                    if log:
                        log.write(self._row(result, math.nan, event="skipped"))
                    if self.bad_steps >= config.max_bad_steps:
                        raise SepconvError(
                            f"training stopped at step {self.step}: {self.bad_steps} consecutive "
                            "steps had a non-finite loss or gradient (weights left as of the last "
                            "good step; lower lr or enable grad_clip)"
                        )
                    continue
                losses.append(result["loss"])
                last_loss = result["loss"]
                event = ""
                psnr = math.nan
                if config.validate_every_steps and self.step % config.validate_every_steps == 0:
                    psnr = self.validate()
                    self.dist.barrier()
                    event = "validated"
                if self.step % max(1, config.log_every_steps) == 0 or event or self.step == target:
                    elapsed = time.perf_counter() - window_start
                    speed = window_samples / elapsed if elapsed > 0 else math.nan
                    self.metrics.update({"loss": last_loss, "samples_per_s": speed})
                    if log:
                        log.write(self._row(result, speed, psnr=psnr, event=event))
                    eta = (target - self.step) * config.batch_size / speed if speed else math.nan
                    val = f" | val PSNR {psnr:.2f}" if math.isfinite(psnr) else ""
                    self._report(
                        f"step {self.step}/{config.total_steps} | {self.samples:,} samples | "
                        f"loss {last_loss:.5f} | lr {result['lr']:.2e} | {speed:,.1f} samples/s "
                        f"| grad {result['grad_norm']:.3g} | ETA {format_duration(eta)}{val}"
                    )
                    window_start, window_samples = time.perf_counter(), 0
                due_steps = (
                    config.checkpoint_every_steps and self.step % config.checkpoint_every_steps == 0
                )
                due_time = (
                    config.checkpoint_every_seconds
                    and time.monotonic() - last_save_time >= config.checkpoint_every_seconds
                )
                out_of_time = (
                    max_seconds is not None and time.perf_counter() - started >= max_seconds
                )
                save_now, stop_now, interrupted = self._agree(
                    bool(due_steps or due_time), out_of_time, stop_requests.requested
                )
                if interrupted and self.step < target:
                    stopped = "interrupted"
                    self._report(f"interrupted at step {self.step}: saving the checkpoint")
                    break
                if stop_now and self.step < target:
                    stopped = "time limit"
                    break
                if save_now:
                    self.save()
                    last_save_time = time.monotonic()
        finally:
            stop_requests.__exit__()
            if log:
                log.close()
        if self.step != self.last_saved_step:
            self.save()
        if export:
            self.export()
        self.dist.barrier()
        return {
            "step": self.step,
            "samples": self.samples,
            "steps_run": self.step - first_step,
            "loss": last_loss,
            "mean_loss": float(np.mean(losses)) if losses else math.nan,
            "seconds": time.perf_counter() - started,
            "stopped": stopped,
        }

    def _agree(self, *flags: bool) -> tuple[bool, ...]:
        """Rank 0's decisions (time-based triggers differ between ranks)."""
        if not self.dist.enabled:
            return flags
        value = torch.tensor([1.0 if flag else 0.0 for flag in flags], device=self.device)
        dist.broadcast(value, src=0)
        return tuple(bool(item > 0) for item in value.tolist())

    def _row(
        self, result: dict[str, Any], speed: float, *, psnr: float = math.nan, event: str = ""
    ) -> dict[str, Any]:
        return {
            "step": self.step,
            "samples": self.samples,
            "loss": f"{result['loss']:.6g}",
            "lr": f"{result['lr']:.6g}",
            "samples_per_s": f"{speed:.2f}",
            "grad_norm": f"{result['grad_norm']:.6g}",
            "unix_time": f"{time.time():.3f}",
            "val_psnr": f"{psnr:.4f}" if math.isfinite(psnr) else "",
            "event": event,
        }

    def _report(self, line: str) -> None:
        if self.log_stream is not None:
            print(line, file=self.log_stream, flush=True)

    def close(self) -> None:
        """Leave the process group if this trainer joined it."""
        self.dist.close()


def _saved_model_config(saved: Any) -> Any:
    """A checkpoint's model config as a config object (fields added to the family since it
    was saved take their defaults), or None when it is not a valid one."""
    try:
        return config_from_dict(saved) if isinstance(saved, dict) else None
    except (TypeError, ValueError):
        return None


def _load_validation(spec: Any) -> list[Any]:
    """``config.validation`` -> triplets: a folder (Middlebury or im1/im2/im3), a table
    ``{path, clips}`` (see :func:`_clip_triplets`) or a list of ``{first, middle, last}``."""
    from sepconv.data.triplets import Triplet, folder_triplets, middlebury_triplets

    if spec is None or spec == "":
        raise SepconvError("validate_every_steps is set but no validation triplets are given")
    if isinstance(spec, str):
        root = Path(spec)
        if root.is_dir() and any(root.glob("*/frame10i11.png")):
            return middlebury_triplets(root)
        return folder_triplets(root)
    if isinstance(spec, dict):
        return _clip_triplets(spec)
    items = []
    for entry in spec:
        try:
            items.append(
                Triplet(
                    name=str(entry.get("name", Path(entry["middle"]).stem)),
                    first=Path(entry["first"]),
                    middle=Path(entry["middle"]),
                    last=Path(entry["last"]),
                )
            )
        except (KeyError, AttributeError, TypeError):
            raise SepconvError("validation entries need first, middle and last paths") from None
    return items


def _clip_triplets(spec: dict[str, Any]) -> list[Any]:
    """``{path = FOLDER, clips = [NAME, ...]}``: the triplets of a folder cut from the named
    clips (triplet folders are named ``<clip>_<frame>``, as in ``shared/data/triplets``)."""
    from sepconv.data.triplets import folder_triplets, of_clips

    if not isinstance(spec.get("path"), str) or not isinstance(spec.get("clips"), list):
        raise SepconvError("a validation table needs path (a folder) and clips (a list of names)")
    clips = [str(name) for name in spec["clips"]]
    items = of_clips(folder_triplets(Path(spec["path"])), clips)
    if not items:
        raise SepconvError(f"no triplets of clips {clips} in {spec['path']}")
    return items
