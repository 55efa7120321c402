"""Networks (native API) built on the native layers.

Each class is the reference network with its layers taken from
``nnfast.layers`` (compiled kernels where they exist); behaviour, attributes,
``save_params``/``load_params`` format and printed numbers are the reference's.
"""
from . import layers as _native_layers
from .reference import nets as _ref
from .reference.nets import init_scale


# The methods a fused pass stands in for, as defined: a later replacement (on the class, a
# subclass or an instance: a hook, a profiler) must be called, so it turns the fusion off.
_FUSABLE = {(cls, method): getattr(cls, method) for cls, method in (
    (_native_layers.Convolution, "forward"), (_native_layers.Relu, "forward"),
    (_native_layers.Relu, "backward"), (_native_layers.Pooling, "forward"),
    (_native_layers.Pooling, "backward"))}


def _native(layer, cls, method):
    """``layer`` is a ``cls`` whose ``method`` is the native one as defined (not replaced
    on the class, by a subclass or on the instance): only then may a fused pass stand in."""
    return (isinstance(layer, cls) and getattr(type(layer), method) is _FUSABLE[cls, method]
            and method not in vars(layer))


def _fusable(conv, relu):
    return _native(conv, _native_layers.Convolution, "forward") and \
        _native(relu, _native_layers.Relu, "forward")


def _fused_backprop(self, dout):
    """Backward through ``layers`` in reverse order; each max Pooling that follows a Relu
    runs with the Relu's backward as one pass (``Pooling._backward_relu``)."""
    seq = list(self._layer_sequence())
    i = len(seq) - 1
    while i >= 0:
        layer = seq[i]
        if i >= 1 and _native(layer, _native_layers.Pooling, "backward") and \
                _native(seq[i - 1], _native_layers.Relu, "backward"):
            dout = layer._backward_relu(dout, seq[i - 1])
            i -= 2
            continue
        dout = layer.backward(dout)
        i -= 1


def _fused_predict(self, x, train_flg=False):
    """Forward through ``layers``; ``train_flg`` reaches Dropout and BatchNormalization only.

    Each Convolution + Relu pair runs as one pass (``Convolution._forward_relu``): the
    same numbers and the same layer state as the reference's loop, without storing the
    convolution's output and reading it back.
    """
    flagged = (self._L.Dropout, self._L.BatchNormalization)
    seq = list(self._layer_sequence())
    i = 0
    while i < len(seq):
        layer = seq[i]
        if i + 1 < len(seq) and _fusable(layer, seq[i + 1]):
            x = layer._forward_relu(x, seq[i + 1])
            i += 2
            continue
        x = layer.forward(x, train_flg) if isinstance(layer, flagged) else layer.forward(x)
        i += 1
    return x


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
    predict = _fused_predict
    _backprop = _fused_backprop


class DeepConvNet(_ref.DeepConvNet):
    __doc__ = _ref.DeepConvNet.__doc__
    _L = _native_layers
    predict = _fused_predict
    _backprop = _fused_backprop


class SmallAlexNet(_ref.SmallAlexNet):
    __doc__ = _ref.SmallAlexNet.__doc__
    _L = _native_layers
    predict = _fused_predict
    _backprop = _fused_backprop


__all__ = ["init_scale", "TwoLayerNet", "MultiLayerNet", "MultiLayerNetExtend",
           "SimpleConvNet", "DeepConvNet", "SmallAlexNet"]
