"""sepconv: video frame interpolation by adaptive separable convolution.

Heavy modules (torch models, the Interpolator) are imported lazily so that ``import sepconv``
and ``sepconv --help`` stay fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Interpolator", "__version__"]


def __getattr__(name: str):
    if name == "Interpolator":
        from sepconv.inference import Interpolator

        return Interpolator
    raise AttributeError(f"module 'sepconv' has no attribute {name!r}")
