"""Model families by name: a config's ``architecture`` -> its config class and network.

A checkpoint's config names its architecture (``"architecture": "flow-sepconv"``); configs
without the key are the paper's network, ``"sepconv"`` (every file written before the second
family existed, and the authors' checkpoints).
"""

from __future__ import annotations

from typing import Any

from sepconv.models.flow_sepconv import FlowSepConvConfig, FlowSepConvNet
from sepconv.models.motion_sepconv import MotionSepConvConfig, MotionSepConvNet
from sepconv.models.sepconv_net import SepConvConfig, SepConvNet
from sepconv.models.synthesis import KernelSynthesisModel

__all__ = ["ARCHITECTURES", "ModelConfig", "architecture_of", "config_from_dict", "create_model"]

ModelConfig = SepConvConfig | FlowSepConvConfig | MotionSepConvConfig

ARCHITECTURES: dict[str, tuple[type[Any], type[KernelSynthesisModel]]] = {
    "sepconv": (SepConvConfig, SepConvNet),
    "flow-sepconv": (FlowSepConvConfig, FlowSepConvNet),
    "motion-sepconv": (MotionSepConvConfig, MotionSepConvNet),
}
DEFAULT_ARCHITECTURE = "sepconv"


def architecture_of(config: ModelConfig) -> str:
    """The registered name of a config's family."""
    for name, (config_class, _) in ARCHITECTURES.items():
        if isinstance(config, config_class):
            return name
    raise TypeError(f"not a model config: {type(config).__name__}")


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """A family's config from its dict (``to_dict``'s output or a training config's table).

    Raises:
        ValueError: unknown architecture, unknown keys, or invalid values.
    """
    data = dict(data)
    name = data.pop("architecture", DEFAULT_ARCHITECTURE)
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r} (known: {', '.join(ARCHITECTURES)})")
    config_class = ARCHITECTURES[name][0]
    unknown = set(data) - set(config_class.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown {name} model keys {sorted(unknown)}")
    return config_class.from_dict(data)


def create_model(config: ModelConfig) -> KernelSynthesisModel:
    """A freshly initialised network of the config's family."""
    return ARCHITECTURES[architecture_of(config)][1](config)
