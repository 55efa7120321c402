"""Layer classes (native API): forward/backward with the reference's state.

Convolution, Pooling and AvgPooling run their im2col/col2im through the
compiled kernels (dtype-preserving: float32 stays float32). The other layers
are served by ``nnfast.reference.layers`` until their fused kernels land;
names, attributes and semantics here are the contract.
"""
from . import _dispatch
from .reference import layers as _ref
from .reference.layers import (
    Affine,
    BatchNormalization,
    Dropout,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)


class Convolution(_ref.Convolution):
    __doc__ = _ref.Convolution.__doc__
    _im2col = staticmethod(_dispatch.im2col)
    _col2im = staticmethod(_dispatch.col2im)


class Pooling(_ref.Pooling):
    __doc__ = _ref.Pooling.__doc__
    _im2col = staticmethod(_dispatch.im2col)
    _col2im = staticmethod(_dispatch.col2im)


class AvgPooling(_ref.AvgPooling):
    __doc__ = _ref.AvgPooling.__doc__
    _im2col = staticmethod(_dispatch.im2col)
    _col2im = staticmethod(_dispatch.col2im)


__all__ = [
    "Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout", "BatchNormalization",
    "Convolution", "Pooling", "AvgPooling",
]
