"""Networks (native API) built on the native layers.

Each class is the reference network with its layers taken from
``nnfast.layers`` (compiled kernels where they exist); behaviour, attributes,
``save_params``/``load_params`` format and printed numbers are the reference's.
"""
from . import layers as _native_layers
from .reference import nets as _ref
from .reference.nets import init_scale


class TwoLayerNet(_ref.TwoLayerNet):
    __doc__ = _ref.TwoLayerNet.__doc__
    _L = _native_layers


class MultiLayerNet(_ref.MultiLayerNet):
    __doc__ = _ref.MultiLayerNet.__doc__
    _L = _native_layers


class MultiLayerNetExtend(_ref.MultiLayerNetExtend):
    __doc__ = _ref.MultiLayerNetExtend.__doc__
    _L = _native_layers


class SimpleConvNet(_ref.SimpleConvNet):
    __doc__ = _ref.SimpleConvNet.__doc__
    _L = _native_layers


class DeepConvNet(_ref.DeepConvNet):
    __doc__ = _ref.DeepConvNet.__doc__
    _L = _native_layers


class SmallAlexNet(_ref.SmallAlexNet):
    __doc__ = _ref.SmallAlexNet.__doc__
    _L = _native_layers


__all__ = ["init_scale", "TwoLayerNet", "MultiLayerNet", "MultiLayerNetExtend",
           "SimpleConvNet", "DeepConvNet", "SmallAlexNet"]
