"""Training configuration: one dataclass, loadable from TOML (Python 3.11+) or JSON.

A config file holds the top-level keys of :class:`TrainConfig`; ``model`` is a table of
a family's config fields (``architecture`` names it), ``data`` a table the data layer
interprets (see :func:`sepconv.engine.train.build_batches`), ``loss`` a spec for
:func:`sepconv.losses.build_loss`. Relative paths are used as written, i.e. relative to the
directory ``sepconv train`` runs in (the repository root for the configs in ``configs/``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sepconv.errors import SepconvError
from sepconv.models.registry import ModelConfig, config_from_dict

__all__ = ["OPTIMIZERS", "SCHEDULES", "TrainConfig", "load_train_config"]

OPTIMIZERS = ("adamax", "adamw")
SCHEDULES = ("constant", "cosine")
MODEL_INITS = ("default", "average")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in every training checkpoint).

    Attributes:
        model: ``architecture`` ("sepconv", the default, or "flow-sepconv") and that family's
            config fields (:class:`~sepconv.models.sepconv_net.SepConvConfig`,
            :class:`~sepconv.models.flow_sepconv.FlowSepConvConfig`).
        model_init: how a run without ``init_weights`` initialises a "sepconv" network:
            "default" (PyTorch's) or "average" (the output starts as the mean of the two
            frames, see :func:`sepconv.models.sepconv_net.initialize_as_average`). A
            "flow-sepconv" network always starts as the DIS flow baseline.
        init_weights: start from these weights (any file ``load_weights`` reads, e.g. an L1
            run's ``model.safetensors`` to fine-tune with the feature loss, as the paper's L_F
            model was); the optimizer starts fresh. Ignored when resuming a checkpoint.
        data: data source spec, e.g. ``{"kind": "synthetic", "photos": "../shared/data/photos"}``
            or ``{"kind": "translation"}`` (built-in random-texture translations, for tests).
        loss: loss spec for :func:`sepconv.losses.build_loss` ("l1", "l1+0.1*lap", "lf", ...).
        batch_size: global batch size (split evenly across DDP ranks).
        crop_size: training crop size in pixels (a multiple of 32).
        optimizer: "adamax" (the paper's, lr 1e-3) or "adamw".
        lr, betas, weight_decay: optimizer settings (weight decay applies to AdamW only).
        schedule: "constant" or "cosine" (to ``min_lr_ratio * lr`` at ``total_steps``), after a
            linear warmup of ``warmup_steps``.
        total_steps: length of the whole run; a resumed run continues up to it.
        bf16: run the network under bfloat16 autocast (the local convolution stays float32).
        channels_last: channels-last memory format for the network and its inputs.
        grad_clip: clip the global gradient norm to this (0: no clipping).
        ema_decay: exponential moving average of the weights (0: off); exports use the EMA.
        seed: model init and data seed (rank r draws data from seed + r).
        checkpoint_every_steps, checkpoint_every_seconds: save ``last.pt`` when either has
            passed since the last save (0 disables that trigger); always at the end of a run.
        validate_every_steps: validate on ``validation`` every K steps (0: never).
        validation: a folder of triplets (``im1/im2/im3`` or Middlebury layout) or a list of
            ``{"name", "first", "middle", "last"}`` tables.
        validation_limit: use only the first N validation triplets (0: all).
        output_dir: where ``log.csv``, ``last.pt`` and ``model.safetensors`` go.
        log_every_steps: progress line and CSV row every N steps.
        max_bad_steps: stop after this many consecutive steps with a non-finite loss or
            gradient (each is skipped without touching the weights).
        backend: local convolution backend ("auto": Triton on CUDA, reference on the CPU).
    """

    model: dict[str, Any] = field(default_factory=dict)
    model_init: str = "default"
    init_weights: str = ""
    data: dict[str, Any] = field(default_factory=lambda: {"kind": "translation"})
    loss: Any = "l1"
    batch_size: int = 32
    crop_size: int = 128
    optimizer: str = "adamax"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    total_steps: int = 100_000
    bf16: bool = False
    channels_last: bool = False
    grad_clip: float = 0.0
    ema_decay: float = 0.0
    seed: int = 0
    checkpoint_every_steps: int = 1000
    checkpoint_every_seconds: float = 300.0
    validate_every_steps: int = 0
    validation: Any = None
    validation_limit: int = 0
    output_dir: str = "runs/sepconv"
    log_every_steps: int = 10
    max_bad_steps: int = 20
    backend: str = "auto"

    def __post_init__(self) -> None:
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.model_init not in MODEL_INITS:
            problems.append(f"model_init must be one of {', '.join(MODEL_INITS)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)}")
        if self.batch_size < 1 or self.total_steps < 1 or self.lr <= 0:
            problems.append("batch_size, total_steps and lr must be positive")
        if self.crop_size < 32 or self.crop_size % 32:
            problems.append("crop_size must be a positive multiple of 32")
        if not 0.0 <= self.ema_decay < 1.0:
            problems.append("ema_decay must be in [0, 1)")
        if not isinstance(self.model, dict) or not isinstance(self.data, dict):
            problems.append("model and data must be tables")
        if problems:
            raise SepconvError("invalid training config: " + "; ".join(problems))
        try:
            self.model_config()
        except (TypeError, ValueError) as error:
            raise SepconvError(f"invalid training config: model: {error}") from None

    def model_config(self) -> ModelConfig:
        """The network's config; ``model.architecture`` names the family (default
        ``"sepconv"``, the paper's network; ``"flow-sepconv"``)."""
        return config_from_dict(self.model)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON- and weights-only-pickle-safe)."""
        data = asdict(self)
        data["betas"] = list(self.betas)
        return json.loads(json.dumps(data))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SepconvError(f"unknown training config keys: {', '.join(unknown)}")
        return cls(**data)


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a ``.toml`` (Python 3.11+) or ``.json`` training config.

    Raises:
        SepconvError: missing or unparsable file, unknown keys, invalid values.
    """
    path = Path(path)
    if not path.is_file():
        raise SepconvError(f"training config {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SepconvError(f"{path} is not valid JSON ({error})") from None
    else:
        if sys.version_info < (3, 11):
            raise SepconvError(f"{path}: TOML configs need Python 3.11+; use a .json config")
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise SepconvError(f"{path} is not valid TOML ({error})") from None
    if not isinstance(data, dict):
        raise SepconvError(f"{path} must hold a table of settings")
    return TrainConfig.from_dict(data)
