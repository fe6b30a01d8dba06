"""SepConv networks and their checkpoints."""

from sepconv.models.sepconv_net import Kernels, SepConvConfig, SepConvNet

__all__ = ["Kernels", "SepConvConfig", "SepConvNet"]
