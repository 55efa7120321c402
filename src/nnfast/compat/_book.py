"""Factory of the textbook profile: the book's ``common`` package on an nnfast backend.

Names, signatures, defaults, attribute names, return types and quirks are the book's
(``common.functions, gradient, util, layers, optimizer, multi_layer_net,
multi_layer_net_extend, trainer``), plus the chapter networks ``two_layer_net.TwoLayerNet``,
``simple_convnet.SimpleConvNet`` and ``deep_convnet.DeepConvNet`` that its scripts import.
Every class subclasses the backend's class; only the book's quirks are added here.
"""
from __future__ import annotations

import collections
import os
import pickle
import sys
import types
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

from ._support import (Backend, OriginalTeacherShapes, accuracy_full_batches, backend_takes_teacher,
                       make_mnist_module, make_module, original_cross_entropy, original_sigmoid)

# Short names for the type comments of the long signatures below.
_A = npt.NDArray[Any]  # an array
_Kw = Optional[Dict[str, Any]]  # named settings (keyword arguments), or None


def _unique(*groups: Iterable[str]) -> List[str]:
    out: List[str] = []
    for group in groups:
        out.extend(name for name in group if name not in out)
    return out


# What ``from common.<module> import *`` gives with the book's package (no ``__all__``
# there: every public top-level name, imported modules included).
FUNCTIONS_NAMES = ["np", "identity_function", "step_function", "sigmoid", "sigmoid_grad",
                   "relu", "relu_grad", "softmax", "sum_squared_error",
                   "cross_entropy_error", "softmax_loss"]
GRADIENT_NAMES = ["np", "numerical_gradient_2d", "numerical_gradient"]
UTIL_NAMES = ["np", "smooth_curve", "shuffle_dataset", "conv_output_size", "im2col", "col2im"]
LAYERS_NAMES = _unique(FUNCTIONS_NAMES, ["im2col", "col2im", "Relu", "Sigmoid", "Affine",
                                         "SoftmaxWithLoss", "Dropout", "BatchNormalization",
                                         "Convolution", "Pooling"])
OPTIMIZER_NAMES = ["np", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]
MULTI_LAYER_NET_NAMES = _unique(["sys", "os", "np", "OrderedDict"], LAYERS_NAMES,
                                ["numerical_gradient", "MultiLayerNet"])
MULTI_LAYER_NET_EXTEND_NAMES = _unique(["sys", "os", "np", "OrderedDict"], LAYERS_NAMES,
                                       ["numerical_gradient", "MultiLayerNetExtend"])
TRAINER_NAMES = _unique(["sys", "os"], OPTIMIZER_NAMES, ["Trainer"])
TWO_LAYER_NET_NAMES = _unique(["sys", "os"], LAYERS_NAMES,
                              ["numerical_gradient", "OrderedDict", "TwoLayerNet"])
SIMPLE_CONVNET_NAMES = _unique(["sys", "os", "pickle", "np", "OrderedDict"], LAYERS_NAMES,
                               ["numerical_gradient", "SimpleConvNet"])
DEEP_CONVNET_NAMES = _unique(["sys", "os", "pickle", "np", "OrderedDict"], LAYERS_NAMES,
                             ["DeepConvNet"])

#: The book's ``common`` submodules, in import-dependency order.
COMMON = ("functions", "gradient", "util", "layers", "optimizer", "multi_layer_net",
          "multi_layer_net_extend", "trainer")
#: Modules the book's chapter scripts import from their own directory; served only when
#: no such file is found on ``sys.path``.
CHAPTER = ("two_layer_net", "simple_convnet", "deep_convnet")
#: The book's data loader package.
DATASET = "dataset.mnist"

# Default stride of ``Pooling``: the book's ``common/layers.py`` writes ``stride=2`` at its
# current HEAD (commit "Change Pooling's stride 2 from 1"); early printings had 1.
POOLING_DEFAULT_STRIDE = 2


def _is_float_array(x: object) -> bool:
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"


def _functions(B: Backend, name: str) -> types.ModuleType:
    F = B.functions

    def identity_function(x):
        # type: (Any) -> Any
        """Return ``x``."""
        return x

    def step_function(x):
        # type: (npt.ArrayLike) -> npt.NDArray[Any]
        """1 where ``x > 0`` else 0, as an int array (a 0-d array for a scalar)."""
        return np.array(np.asarray(x) > 0, dtype=int)

    def sigmoid(x):
        # type: (Any) -> Any
        """``1 / (1 + exp(-x))``, the book's formula (bit for bit)."""
        return original_sigmoid(x)

    def sigmoid_grad(x):
        # type: (Any) -> Any
        """``(1 - sigmoid(x)) * sigmoid(x)``."""
        return (1.0 - sigmoid(x)) * sigmoid(x)

    def relu(x):
        # type: (npt.ArrayLike) -> Any
        """``max(0, x)`` element-wise (integer input stays integer, as in the book)."""
        return F.relu(x) if _is_float_array(x) else np.maximum(0, x)

    def relu_grad(x):
        # type: (npt.ArrayLike) -> Any
        """1 where ``x >= 0`` else 0 (1 at 0), in x's dtype."""
        if _is_float_array(x):
            return F.relu_grad(x)
        grad = np.zeros_like(x)
        grad[np.asarray(x) >= 0] = 1
        return grad

    def softmax(x):
        # type: (npt.ArrayLike) -> Any
        """Softmax over the last axis (any ndim >= 1), max subtracted first."""
        return F.softmax(x)

    def sum_squared_error(y, t):
        # type: (Any, Any) -> Any
        """The book's loss ``0.5 * sum((y - t)**2)`` (output first, teacher second)."""
        return 0.5 * np.sum((y - t) ** 2)

    def cross_entropy_error(y, t):
        # type: (npt.ArrayLike, npt.ArrayLike) -> Any
        """Mean over the batch of ``-log(y[n, t[n]] + 1e-7)``; output first, teacher second.

        ``t`` holds labels, or one-hot rows when ``t.size == y.size``. Labels of any shape
        that broadcasts against ``(N,)`` (e.g. (N, 1)) give the book's value.
        """
        if backend_takes_teacher(t, y):
            return F.cross_entropy_error(t, y)
        return original_cross_entropy(t, y)

    def softmax_loss(X, t):
        # type: (npt.ArrayLike, npt.ArrayLike) -> Any
        """``cross_entropy_error(softmax(X), t)``."""
        if backend_takes_teacher(t, X):
            return F.softmax_with_loss(t, X)
        return original_cross_entropy(t, F.softmax(X))

    ns = dict(locals())
    del ns["B"], ns["F"], ns["name"]
    ns["np"] = np
    doc = ("The book's common.functions on nnfast: output first, teacher second "
           "(cross_entropy_error(y, t)); sum_squared_error; sigmoid_grad/relu_grad.")
    return make_module(name, doc, ns, FUNCTIONS_NAMES)


def _gradient(B: Backend, name: str) -> types.ModuleType:
    numerical_gradient = B.gradient.numerical_gradient

    def _numerical_gradient_1d(f, x):
        # type: (Callable[[Any], Any], npt.NDArray[Any]) -> Any
        """Central-difference gradient of ``f`` at the 1-D array ``x`` (h = 1e-4)."""
        return numerical_gradient(f, x)

    def numerical_gradient_2d(f, X):
        # type: (Callable[[Any], Any], npt.NDArray[Any]) -> Any
        """Row by row for a 2-D ``X``: ``f`` is called with each *row* (the book's quirk)."""
        if X.ndim == 1:
            return numerical_gradient(f, X)
        grad = np.zeros_like(X)
        for idx, row in enumerate(X):
            grad[idx] = numerical_gradient(f, row)
        return grad

    ns = {"np": np, "numerical_gradient": numerical_gradient,
          "numerical_gradient_2d": numerical_gradient_2d,
          "_numerical_gradient_1d": _numerical_gradient_1d}
    doc = ("The book's common.gradient on nnfast: numerical_gradient(f, x) for any ndim, "
           "numerical_gradient_2d(f, X) (f sees rows).")
    return make_module(name, doc, ns, GRADIENT_NAMES)


def _util(B: Backend, name: str) -> types.ModuleType:
    U = B.util

    def conv_output_size(input_size, filter_size, stride=1, pad=0):
        # type: (int, int, int, int) -> float
        """``(input_size + 2*pad - filter_size) / stride + 1`` — a float (true division),
        as in the book (nnfast.util.conv_output_size returns the int)."""
        return (input_size + 2 * pad - filter_size) / stride + 1

    ns = {"np": np, "smooth_curve": U.smooth_curve, "shuffle_dataset": U.shuffle_dataset,
          "conv_output_size": conv_output_size, "im2col": U.im2col, "col2im": U.col2im}
    doc = ("The book's common.util on nnfast. im2col/col2im are nnfast's kernels: they keep "
           "float32 input float32 (the book always returned float64).")
    return make_module(name, doc, ns, UTIL_NAMES)


def make_layer_classes(B: Backend, sigmoid: Callable[[Any], Any],
                       pooling_stride: int) -> Dict[str, type]:
    """The layer classes both profiles share: backend layers plus the originals' quirks."""
    L: Any = B.layers  # Any: a base class chosen at run time

    class Relu(L.Relu):
        """ReLU layer. ``backward(dout)`` writes the zeros into ``dout`` itself and returns
        that same array, as the originals do (callers may rely on the aliasing)."""

        def backward(self, dout):
            # type: (Any) -> Any
            mask = self.mask
            if (mask is not None and type(dout) is np.ndarray and dout.flags.writeable
                    and dout.shape == mask.shape):
                dout[mask] = 0
                return dout
            return super().backward(dout)  # errors, read-only or non-array dout

    class Sigmoid(L.Sigmoid):
        """Sigmoid layer; forward uses the originals' formula ``1 / (1 + exp(-x))``."""

        def forward(self, x):
            # type: (Any) -> Any
            out = sigmoid(x)
            self.out = out
            return out

    class Affine(L.Affine):
        __doc__ = L.Affine.__doc__

    class Dropout(L.Dropout):
        __doc__ = L.Dropout.__doc__

    class BatchNormalization(L.BatchNormalization):
        """Batch normalization as the originals (per flattened feature, eps = 10e-7).
        The running statistics keep x's dtype (the originals made them float64)."""

    class Convolution(L.Convolution):
        """Convolution via nnfast's im2col/col2im. float32 input stays float32 (the
        originals' im2col upcast it to float64); float64 numbers are the originals'."""

    class Pooling(L.Pooling):
        """Max pooling. ``pad > 0`` works (the originals crashed); float32 stays float32."""

        def __init__(self, pool_h, pool_w, stride=pooling_stride, pad=0):
            # type: (int, int, int, int) -> None
            super().__init__(pool_h, pool_w, stride, pad)

    return {"Relu": Relu, "Sigmoid": Sigmoid, "Affine": Affine, "Dropout": Dropout,
            "BatchNormalization": BatchNormalization, "Convolution": Convolution,
            "Pooling": Pooling}


def _layers(B: Backend, name: str, functions: types.ModuleType,
            util: types.ModuleType) -> types.ModuleType:
    classes = make_layer_classes(B, functions.sigmoid, POOLING_DEFAULT_STRIDE)

    L: Any = B.layers  # Any: the base class is chosen at run time

    class SoftmaxWithLoss(OriginalTeacherShapes, L.SoftmaxWithLoss):
        """Softmax + cross-entropy; ``forward(x, t)`` returns the loss. Attributes
        ``loss``, ``y`` (softmax output) and ``t`` (teacher). Any teacher the book's layer
        takes gives its numbers (labels of shape (N, 1); ``backward`` divides by
        ``t.shape[0]``, as the book)."""
        _softmax = staticmethod(B.functions.softmax)
        _teacher_name = "t"

    ns = {key: getattr(functions, key) for key in FUNCTIONS_NAMES}
    ns.update(im2col=util.im2col, col2im=util.col2im, SoftmaxWithLoss=SoftmaxWithLoss,
              **classes)
    doc = "The book's common.layers on nnfast's layers (compiled kernels where they exist)."
    return make_module(name, doc, ns, LAYERS_NAMES)


def _optimizer(B: Backend, name: str) -> types.ModuleType:
    O: Any = B.optimizer  # Any: base classes chosen at run time

    class SGD(O.SGD):
        """``p -= lr*g``."""

        def __init__(self, lr=0.01):
            # type: (float) -> None
            super().__init__(lr)

    class Momentum(O.Momentum):
        """``v = momentum*v - lr*g; p += v``."""

        def __init__(self, lr=0.01, momentum=0.9):
            # type: (float, float) -> None
            super().__init__(lr, momentum)

    class Nesterov(O.Nesterov):
        """``p += m*m*v; p -= (1+m)*lr*g; v *= m; v -= lr*g`` (the book's current order)."""

        def __init__(self, lr=0.01, momentum=0.9):
            # type: (float, float) -> None
            super().__init__(lr, momentum)

    class AdaGrad(O.AdaGrad):
        """``h += g*g; p -= lr*g/(sqrt(h) + 1e-7)``."""

        def __init__(self, lr=0.01):
            # type: (float) -> None
            super().__init__(lr)

    class RMSprop(O.RMSprop):
        """``h *= rho; h += (1-rho)*g*g; p -= lr*g/(sqrt(h) + 1e-7)``."""

        def __init__(self, lr=0.01, decay_rate=0.99):
            # type: (float, float) -> None
            super().__init__(lr, decay_rate)

    class Adam(O.Adam):
        """Adam with the bias correction folded into the step size."""

        def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
            # type: (float, float, float) -> None
            super().__init__(lr, beta1, beta2)

    ns = {"np": np, "SGD": SGD, "Momentum": Momentum, "Nesterov": Nesterov,
          "AdaGrad": AdaGrad, "RMSprop": RMSprop, "Adam": Adam}
    doc = "The book's common.optimizer (lr=, update(params, grads)) on nnfast's optimizers."
    return make_module(name, doc, ns, OPTIMIZER_NAMES)


def _net_namespace(layers: types.ModuleType, gradient: types.ModuleType,
                   extra: Dict[str, Any]) -> Dict[str, Any]:
    ns = {key: getattr(layers, key) for key in LAYERS_NAMES}
    ns.update(sys=sys, os=os, pickle=pickle, OrderedDict=collections.OrderedDict,
              numerical_gradient=gradient.numerical_gradient, **extra)
    return ns


def _nets(B: Backend, prefix: str, layers: types.ModuleType,
          gradient: types.ModuleType) -> Dict[str, types.ModuleType]:
    N: Any = B.nets  # Any: base classes chosen at run time

    class MultiLayerNet(N.MultiLayerNet):
        """Fully connected net (Affine-activation)* - Affine - SoftmaxWithLoss."""
        _L = layers

        def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                     weight_init_std="relu", weight_decay_lambda=0):
            # type: (int, List[int], int, str, Any, float) -> None
            super().__init__(input_size, hidden_size_list, output_size, activation,
                             weight_init_std, weight_decay_lambda)

    class MultiLayerNetExtend(N.MultiLayerNetExtend):
        """MultiLayerNet with optional BatchNormalization and Dropout; the dropout ratio
        keyword is the book's ``dropout_ration``."""
        _L = layers

        def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                     weight_init_std="relu", weight_decay_lambda=0, use_dropout=False,
                     dropout_ration=0.5, use_batchnorm=False):
            # type: (int, List[int], int, str, Any, float, bool, float, bool) -> None
            super().__init__(input_size, hidden_size_list, output_size, activation,
                             weight_init_std, weight_decay_lambda, use_dropout,
                             dropout_ration, use_batchnorm)

    class TwoLayerNet(N.TwoLayerNet):
        """Affine - Relu - Affine with SoftmaxWithLoss as ``lastLayer`` (ch05)."""
        _L = layers

        def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01):
            # type: (int, int, int, float) -> None
            super().__init__(input_size, hidden_size, output_size, weight_init_std)

    class SimpleConvNet(N.SimpleConvNet):
        """conv - relu - pool - affine - relu - affine - softmax (ch07).

        ``accuracy(x, t, batch_size=100)`` scores whole batches only and divides by N, as
        the book's (a final partial batch counts as wrong).
        """
        _L = layers

        def __init__(self, input_dim=(1, 28, 28), conv_param=None, hidden_size=100,
                     output_size=10, weight_init_std=0.01):
            # type: (Tuple[int, int, int], Optional[Dict[str, int]], int, int, float) -> None
            super().__init__(input_dim, conv_param, hidden_size, output_size,
                             weight_init_std)

        def accuracy(self, x, t, batch_size=100):
            # type: (npt.NDArray[Any], npt.NDArray[Any], int) -> float
            return accuracy_full_batches(self, x, t, batch_size, self.predict)

    class DeepConvNet(N.DeepConvNet):
        """The ch08 deep convnet (He init, dropout). ``accuracy`` as SimpleConvNet's."""
        _L = layers

        def accuracy(self, x, t, batch_size=100):
            # type: (npt.NDArray[Any], npt.NDArray[Any], int) -> float
            return accuracy_full_batches(
                self, x, t, batch_size, lambda xb: self.predict(xb, train_flg=False))

    mods: Dict[str, types.ModuleType] = {}
    for sub, cls, names in (("multi_layer_net", MultiLayerNet, MULTI_LAYER_NET_NAMES),
                            ("multi_layer_net_extend", MultiLayerNetExtend,
                             MULTI_LAYER_NET_EXTEND_NAMES),
                            ("two_layer_net", TwoLayerNet, TWO_LAYER_NET_NAMES),
                            ("simple_convnet", SimpleConvNet, SIMPLE_CONVNET_NAMES),
                            ("deep_convnet", DeepConvNet, DEEP_CONVNET_NAMES)):
        ns = _net_namespace(layers, gradient, {cls.__name__: cls})
        ns = {key: ns[key] for key in names}
        mods[sub] = make_module(f"{prefix}.{sub}", f"The book's {cls.__name__} on nnfast.",
                                ns, names)
    return mods


def _trainer(B: Backend, name: str, optimizer: types.ModuleType) -> types.ModuleType:
    T: Any = B.trainer  # Any: the base class is chosen at run time

    class Trainer(T.Trainer):
        """Mini-batch training loop with the book's printed lines.

        ``optimizer`` is a name ('SGD', 'Momentum', 'Nesterov', 'AdaGrad', 'RMSprop',
        'Adam', any case) and ``optimizer_param`` its keywords (default ``{'lr': 0.01}``).
        """
        _opt_module = optimizer

        def __init__(self, network, x_train, t_train, x_test, t_test, epochs=20,
                     mini_batch_size=100, optimizer="SGD", optimizer_param=None,
                     evaluate_sample_num_per_epoch=None, verbose=True):
            # type: (Any, _A, _A, _A, _A, int, int, str, _Kw, Optional[int], bool) -> None
            if optimizer_param is None:
                optimizer_param = {"lr": 0.01}
            super().__init__(network, x_train, t_train, x_test, t_test, epochs,
                             mini_batch_size, optimizer, optimizer_param,
                             evaluate_sample_num_per_epoch, verbose)

    ns = {key: getattr(optimizer, key) for key in OPTIMIZER_NAMES}
    ns.update(sys=sys, os=os, Trainer=Trainer)
    return make_module(name, "The book's common.trainer on nnfast.", ns, TRAINER_NAMES)


def build(B: Backend, prefix: str) -> Tuple[Dict[str, types.ModuleType],
                                             Dict[str, types.ModuleType]]:
    """Build the book profile on backend ``B``; module names start with ``prefix``.

    Returns ``(common, extra)``: ``common`` maps each ``common`` submodule name to its
    module; ``extra`` maps the chapter modules and ``dataset.mnist`` to theirs.
    """
    functions = _functions(B, f"{prefix}.functions")
    gradient = _gradient(B, f"{prefix}.gradient")
    util = _util(B, f"{prefix}.util")
    layers = _layers(B, f"{prefix}.layers", functions, util)
    optimizer = _optimizer(B, f"{prefix}.optimizer")
    nets = _nets(B, prefix, layers, gradient)
    trainer = _trainer(B, f"{prefix}.trainer", optimizer)
    common = {"functions": functions, "gradient": gradient, "util": util, "layers": layers,
              "optimizer": optimizer, "multi_layer_net": nets["multi_layer_net"],
              "multi_layer_net_extend": nets["multi_layer_net_extend"], "trainer": trainer}
    extra = {sub: nets[sub] for sub in CHAPTER}
    extra[DATASET] = make_mnist_module(f"{prefix}.dataset.mnist", "dataset")
    return common, extra
