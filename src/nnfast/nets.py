"""Networks (native API) built on the native layers.

Each class is the reference network with its layers taken from
``nnfast.layers`` (compiled kernels where they exist); behaviour, attributes,
``save_params``/``load_params`` format and printed numbers are the reference's.
"""
from __future__ import annotations

import functools
from typing import Any, Type, TypeVar

from . import layers as _native_layers
from .reference import nets as _ref
from .reference.nets import init_scale

_N = TypeVar("_N", bound=Type[_ref._Network])


def declare_fusion(net: Any) -> None:
    """Declare, once the layers are built, which neighbouring layers run as one pass.

    Fused steps: each ``Convolution`` followed by a ``Relu`` runs forward as one pass
    (``Convolution._forward_relu``); each max ``Pooling`` preceded by a ``Relu`` runs
    backward with it (``Pooling._backward_relu``). Only layers whose class is exactly
    the native one, with no method replaced on the instance, are fused (a subclass or a
    hook installed before the declaration runs its own methods; for a hook installed
    later, call ``declare_fusion(net)`` again or set ``net.fusion = ()``). The
    declaration records the layer objects: a layer replaced later in ``net.layers`` ends
    its pair's fusion. ``net.fusion = ()`` turns fusion off; it is a tuple of
    ``(kind, first_layer, second_layer)``.
    """
    seq = list(net._layer_sequence())
    pairs = []

    # exactly the native class, no method replaced on the instance
    def plain(layer: Any, cls: type) -> bool:
        return type(layer) is cls and not {"forward", "backward"} & set(vars(layer))

    for a, b in zip(seq, seq[1:]):
        if plain(a, _native_layers.Convolution) and plain(b, _native_layers.Relu):
            pairs.append(("conv+relu forward", a, b))
        elif plain(a, _native_layers.Relu) and plain(b, _native_layers.Pooling):
            pairs.append(("relu+pool backward", a, b))
    net.fusion = tuple(pairs)


def _pairs(self: Any, kind: str) -> Any:
    """{id(first layer): second layer} of the declared pairs of this kind."""
    return {id(a): b for k, a, b in getattr(self, "fusion", ()) if k == kind}


def _fused_backprop(self: Any, dout: Any) -> None:
    """Backward through ``layers`` in reverse order; each declared Relu + max Pooling pair
    runs as one pass (``Pooling._backward_relu``)."""
    pairs = _pairs(self, "relu+pool backward")
    seq = list(self._layer_sequence())
    i = len(seq) - 1
    while i >= 0:
        layer = seq[i]
        if i >= 1 and pairs.get(id(seq[i - 1])) is layer:
            dout = layer._backward_relu(dout, seq[i - 1])
            i -= 2
            continue
        dout = layer.backward(dout)
        i -= 1


def _fused_predict(self: Any, x: Any, train_flg: bool = False) -> Any:
    """Forward through ``layers``; ``train_flg`` reaches Dropout and BatchNormalization only.

    Each declared Convolution + Relu pair runs as one pass (``Convolution._forward_relu``):
    the same numbers and the same layer state as the reference's loop, without storing the
    convolution's output and reading it back.
    """
    flagged = (self._L.Dropout, self._L.BatchNormalization)
    pairs = _pairs(self, "conv+relu forward")
    seq = list(self._layer_sequence())
    i = 0
    while i < len(seq):
        layer = seq[i]
        if i + 1 < len(seq) and pairs.get(id(layer)) is seq[i + 1]:
            x = layer._forward_relu(x, seq[i + 1])
            i += 2
            continue
        x = layer.forward(x, train_flg) if isinstance(layer, flagged) else layer.forward(x)
        i += 1
    return x


def _fused(cls: _N) -> _N:
    """Class decorator for the convolutional nets: fusion declared at the end of
    ``__init__`` (the reference's, whose signature it keeps), and the fused loops."""
    build = cls.__init__

    @functools.wraps(build)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        build(self, *args, **kwargs)
        declare_fusion(self)

    cls.__init__ = __init__  # type: ignore[method-assign]
    cls.predict = _fused_predict  # type: ignore[method-assign]
    cls._backprop = _fused_backprop  # type: ignore[method-assign]
    return cls


class TwoLayerNet(_ref.TwoLayerNet):
    __doc__ = _ref.TwoLayerNet.__doc__
    _L = _native_layers


class MultiLayerNet(_ref.MultiLayerNet):
    __doc__ = _ref.MultiLayerNet.__doc__
    _L = _native_layers


class MultiLayerNetExtend(_ref.MultiLayerNetExtend):
    __doc__ = _ref.MultiLayerNetExtend.__doc__
    _L = _native_layers


@_fused
class SimpleConvNet(_ref.SimpleConvNet):
    __doc__ = _ref.SimpleConvNet.__doc__
    _L = _native_layers


@_fused
class DeepConvNet(_ref.DeepConvNet):
    __doc__ = _ref.DeepConvNet.__doc__
    _L = _native_layers


@_fused
class SmallAlexNet(_ref.SmallAlexNet):
    __doc__ = _ref.SmallAlexNet.__doc__
    _L = _native_layers


__all__ = ["init_scale", "declare_fusion", "TwoLayerNet", "MultiLayerNet", "MultiLayerNetExtend",
           "SimpleConvNet", "DeepConvNet", "SmallAlexNet"]
