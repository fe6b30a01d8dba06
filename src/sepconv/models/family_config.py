"""What the model families' configs share: their dict form (inside every checkpoint) and the
checks of a kernel U-Net's fields.

Each family's config is a frozen dataclass that also derives from :class:`FamilyConfig`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar, TypeVar

__all__ = ["FamilyConfig", "check_kernel_unet"]

_Config = TypeVar("_Config", bound="FamilyConfig")


class FamilyConfig:
    """``to_dict``/``from_dict`` of a family's frozen dataclass config.

    Class attributes:
        ARCHITECTURE: the family's registered name, first in the dict; None for the paper's
            network, whose checkpoints predate the key.
        TUPLE_FIELDS: fields of integer tuples, stored as lists.
    """

    ARCHITECTURE: ClassVar[str | None] = None
    TUPLE_FIELDS: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload]
        for name in self.TUPLE_FIELDS:
            data[name] = list(getattr(self, name))
        if self.ARCHITECTURE is None:
            return data
        return {"architecture": self.ARCHITECTURE, **data}

    @classmethod
    def from_dict(cls: type[_Config], data: dict[str, Any]) -> _Config:
        """The config from a dict; keys it does not know (e.g. ``architecture``) are ignored,
        missing ones take their defaults (checkpoints that predate a field)."""
        fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
        known = {name: data[name] for name in fields if name in data}
        for name in cls.TUPLE_FIELDS:
            if name in known:
                known[name] = tuple(int(value) for value in known[name])
        return cls(**known)  # type: ignore[call-arg]


def check_kernel_unet(
    family: str,
    kernel_size: int,
    widths: tuple[int, ...],
    kernel_normalization: bool,
    input_normalization: bool,
) -> None:
    """Raise ValueError unless the kernels are odd, the U-Net has 2 to 6 positive widths, and
    the kernels are normalised without input normalisation (the warp-based families)."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
    if not 2 <= len(widths) <= 6 or any(int(w) < 1 for w in widths):
        raise ValueError("widths must list 2 to 6 positive channel counts")
    if not kernel_normalization or input_normalization:
        raise ValueError(
            f"the {family} family always uses kernel normalisation and no input normalisation"
        )
