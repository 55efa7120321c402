"""Factory of the course profile: the Japanese course's ``common`` package on an nnfast backend.

The course's package has four modules: ``functions`` (teacher-first losses, ``d_*``
derivatives, a 1-D ``numerical_gradient``, ``im2col``/``col2im``), ``layers`` (layers plus
``MultiLayerNet`` with BatchNorm/Dropout and ``DoubleConvNet``), ``optimizer``
(``learning_rate=``, ``update(params, grad)``, the older Nesterov order) and ``trainer``
(``optimizer_name=``, ``d_train``/``d_test``, the ``'rmsprpo'`` key). Its data loader is
``data.mnist.load_mnist``.
"""
from __future__ import annotations

import collections
import os
import sys
import types
from typing import Any, Dict, List, Optional, Tuple, cast

import numpy as np
import numpy.typing as npt

from ._book import make_layer_classes
from ._support import (Backend, OriginalTeacherShapes, accuracy_full_batches, backend_takes_teacher,
                       make_mnist_module, make_module, original_cross_entropy,
                       original_sigmoid, original_softmax_loss_grad)

# Short names for the type comments of the long signatures below.
_A = npt.NDArray[Any]  # an array
_Kw = Optional[Dict[str, Any]]  # named settings (keyword arguments), or None

FUNCTIONS_NAMES = ["np", "sigmoid", "relu", "step_function", "softmax", "softmax_with_loss",
                   "mean_squared_error", "cross_entropy_error", "d_sigmoid", "d_relu",
                   "d_step_function", "d_mean_squared_error", "d_softmax_with_loss",
                   "d_sigmoid_with_loss", "numerical_gradient", "im2col", "col2im"]
LAYERS_NAMES = ["sys", "os", "np", "functions", "OrderedDict", "Relu", "Sigmoid", "Affine",
                "SoftmaxWithLoss", "Dropout", "BatchNormalization", "Convolution", "Pooling",
                "MultiLayerNet", "DoubleConvNet"]
OPTIMIZER_NAMES = ["np", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]
TRAINER_NAMES = ["sys", "os", "np", "optimizer", "Trainer"]

COMMON = ("functions", "layers", "optimizer", "trainer")
CHAPTER: Tuple[str, ...] = ()
DATASET = "data.mnist"

# The course's ``Pooling`` writes ``stride=1``.
POOLING_DEFAULT_STRIDE = 1


def _is_float_array(x: object) -> bool:
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"


def _functions(B: Backend, name: str) -> types.ModuleType:
    F, U = B.functions, B.util

    def sigmoid(x):
        # type: (Any) -> Any
        """``1 / (1 + exp(-x))``, the course's formula (bit for bit)."""
        return original_sigmoid(x)

    def relu(x):
        # type: (npt.ArrayLike) -> Any
        """``max(0, x)`` element-wise."""
        return F.relu(x) if _is_float_array(x) else np.maximum(0, x)

    def step_function(x):
        # type: (npt.ArrayLike) -> npt.NDArray[Any]
        """``np.where(x > 0, 1, 0)``: an int array (0-d for a scalar)."""
        return np.where(np.asarray(x) > 0, 1, 0)

    def softmax(x):
        # type: (Any) -> Any
        """Per row for a 2-D ``x``; any other ``x`` is normalised as a whole (the course's
        rule: a 3-D input is *not* taken per last axis)."""
        x = np.asarray(x)
        if x.ndim == 2:
            return F.softmax(x)
        y = F.softmax(x.reshape(-1)).reshape(x.shape)
        return y[()] if y.ndim == 0 else y

    def softmax_with_loss(d, x):
        # type: (npt.ArrayLike, npt.ArrayLike) -> Any
        """``cross_entropy_error(d, softmax(x))`` (teacher first)."""
        return cross_entropy_error(d, softmax(x))

    def mean_squared_error(d, y):
        # type: (Any, Any) -> Any
        """The course's MSE ``mean((d - y)**2) / 2`` (teacher first)."""
        return F.mean_squared_error(d, y)

    def cross_entropy_error(d, y):
        # type: (npt.ArrayLike, npt.ArrayLike) -> Any
        """Mean over the batch of ``-log(y[n, d[n]] + 1e-7)`` (teacher first; one-hot
        when ``d.size == y.size``; labels of any shape that broadcasts against ``(N,)``
        give the course's value)."""
        if backend_takes_teacher(d, y):
            return F.cross_entropy_error(d, y)
        return original_cross_entropy(d, y, name="d")

    def d_sigmoid(x):
        # type: (Any) -> Any
        """``(1 - sigmoid(x)) * sigmoid(x)``."""
        return (1.0 - sigmoid(x)) * sigmoid(x)

    def d_relu(x):
        # type: (npt.ArrayLike) -> npt.NDArray[Any]
        """1 where ``x > 0`` else 0 (0 at 0), as an int array like the course's."""
        return np.where(np.asarray(x) > 0, 1, 0)

    def d_step_function(x):
        # type: (Any) -> int
        """The course returns the Python int 0."""
        return 0

    def d_mean_squared_error(d, y):
        # type: (Any, Any) -> Any
        """``(y - d) / d.shape[0]`` for an array teacher, else ``y - d``."""
        return F.d_mean_squared_error(d, y)

    def d_softmax_with_loss(d, y):
        # type: (npt.ArrayLike, npt.ArrayLike) -> Any
        """Gradient of softmax + cross-entropy w.r.t. the scores given ``y = softmax(x)``.

        The batch size is ``d.shape[0]``, as the course takes it: for a single 1-D sample
        with a one-hot ``d`` that divides by the number of classes.
        """
        if backend_takes_teacher(d, y):
            return F.d_softmax_with_loss(d, y)
        return original_softmax_loss_grad(d, y, "d_softmax_with_loss", "d")

    def d_sigmoid_with_loss(d, y):
        # type: (Any, Any) -> Any
        """``y - d``."""
        return F.d_sigmoid_with_loss(d, y)

    ns = dict(locals())
    del ns["B"], ns["F"], ns["U"], ns["name"]
    ns.update(np=np, numerical_gradient=B.gradient.numerical_gradient, im2col=U.im2col,
              col2im=U.col2im)
    doc = ("The course's common.functions on nnfast: teacher-first losses, d_* derivatives, "
           "numerical_gradient, im2col/col2im (float32 stays float32 in im2col/col2im).")
    return make_module(name, doc, ns, FUNCTIONS_NAMES)


def _layers(B: Backend, name: str, functions: types.ModuleType) -> types.ModuleType:
    classes = make_layer_classes(B, functions.sigmoid, POOLING_DEFAULT_STRIDE)
    Affine, Relu, Convolution, Pooling = (classes[k] for k in
                                          ("Affine", "Relu", "Convolution", "Pooling"))

    L: Any = B.layers  # Any: the base class is chosen at run time

    class SoftmaxWithLoss(OriginalTeacherShapes, L.SoftmaxWithLoss):
        """Softmax + cross-entropy; ``forward(x, d)`` returns the loss. Attributes ``loss``,
        ``y`` (softmax output) and ``d`` (teacher; the course's name). Any teacher the
        course's layer takes gives its numbers (labels of shape (N, 1); ``backward``
        divides by ``d.shape[0]``, as the course)."""
        _softmax = staticmethod(B.functions.softmax)
        _teacher_name = "d"

        @property
        def t(self):
            # type: () -> Any
            return self.d

        @t.setter
        def t(self, value):
            # type: (Any) -> None
            self.d = value

        def forward(self, x, d):
            # type: (npt.ArrayLike, npt.ArrayLike) -> Any
            return super().forward(x, d)

    layers_ns: Dict[str, Any] = {}  # filled below; the nets look their layer classes up in it

    N: Any = B.nets  # Any: the base class is chosen at run time

    class MultiLayerNet(N.MultiLayerNetExtend):
        """Fully connected net with optional BatchNormalization and Dropout (``dropout_ratio``).

        ``loss(x, d, train_flg=False)``, ``accuracy(X, D)``, ``gradient(x, d)``.
        """

        def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                     weight_init_std="relu", weight_decay_lambda=0, use_dropout=False,
                     dropout_ratio=0.5, use_batchnorm=False):
            # type: (int, List[int], int, str, Any, float, bool, float, bool) -> None
            super().__init__(input_size, hidden_size_list, output_size, activation,
                             weight_init_std, weight_decay_lambda, use_dropout,
                             dropout_ratio, use_batchnorm)

        def loss(self, x, d, train_flg=False):
            # type: (npt.ArrayLike, npt.ArrayLike, bool) -> Any
            return super().loss(x, d, train_flg)

        def accuracy(self, X, D):
            # type: (npt.ArrayLike, npt.ArrayLike) -> Any
            return super().accuracy(X, D)

        def gradient(self, x, d):
            # type: (npt.ArrayLike, npt.ArrayLike) -> Any
            return super().gradient(x, d)

    class DoubleConvNet:
        """conv - relu - conv - relu - pool - affine - relu - affine - softmax.

        Sizes follow the course: the pooled size is ``int(filter_num_2 * (s/2) * (s/2))``
        with ``s`` the second convolution's output size computed with true division.
        ``accuracy(x, d, batch_size=100)`` scores whole batches only and divides by N.
        """

        def __init__(self, input_dim=(1, 28, 28), conv_param_1=None, conv_param_2=None,
                     hidden_size=50, output_size=10, weight_init_std=0.01):
            # type: (Tuple[int, int, int], _Kw, _Kw, int, int, float) -> None
            cp1 = {"filter_num": 10, "filter_size": 7, "pad": 1, "stride": 1}
            cp2 = {"filter_num": 20, "filter_size": 3, "pad": 1, "stride": 1}
            cp1 = conv_param_1 if conv_param_1 is not None else cp1
            cp2 = conv_param_2 if conv_param_2 is not None else cp2
            size1 = (input_dim[1] - cp1["filter_size"] + 2 * cp1["pad"]) / cp1["stride"] + 1
            size2 = (size1 - cp2["filter_size"] + 2 * cp2["pad"]) / cp2["stride"] + 1
            pool_output_size = int(cp2["filter_num"] * (size2 / 2) * (size2 / 2))
            std = weight_init_std
            p: Dict[str, npt.NDArray[np.float64]] = {}
            self.params = p
            p["W1"] = std * np.random.randn(cp1["filter_num"], input_dim[0],
                                            cp1["filter_size"], cp1["filter_size"])
            p["b1"] = np.zeros(cp1["filter_num"])
            p["W2"] = std * np.random.randn(cp2["filter_num"], cp1["filter_num"],
                                            cp2["filter_size"], cp2["filter_size"])
            p["b2"] = np.zeros(cp2["filter_num"])
            p["W3"] = std * np.random.randn(pool_output_size, hidden_size)
            p["b3"] = np.zeros(hidden_size)
            p["W4"] = std * np.random.randn(hidden_size, output_size)
            p["b4"] = np.zeros(output_size)

            L = layers_ns
            self.layers: collections.OrderedDict[str, Any] = collections.OrderedDict()
            self.layers["Conv1"] = L["Convolution"](p["W1"], p["b1"], cp1["stride"], cp1["pad"])
            self.layers["Conv1"].skip_dx = True  # its input gradient is never used
            self.layers["Relu1"] = L["Relu"]()
            self.layers["Conv2"] = L["Convolution"](p["W2"], p["b2"], cp2["stride"], cp2["pad"])
            self.layers["Relu2"] = L["Relu"]()
            self.layers["Pool1"] = L["Pooling"](pool_h=2, pool_w=2, stride=2)
            self.layers["Affine1"] = L["Affine"](p["W3"], p["b3"])
            self.layers["Relu3"] = L["Relu"]()
            self.layers["Affine2"] = L["Affine"](p["W4"], p["b4"])
            self.last_layer = L["SoftmaxWithLoss"]()

        def predict(self, x):
            # type: (Any) -> Any
            for layer in self.layers.values():
                x = layer.forward(x)
            return x

        def loss(self, x, d):
            # type: (npt.ArrayLike, npt.ArrayLike) -> Any
            return self.last_layer.forward(self.predict(x), d)

        def accuracy(self, x, d, batch_size=100):
            # type: (npt.NDArray[Any], npt.NDArray[Any], int) -> float
            return accuracy_full_batches(self, x, d, batch_size, self.predict)

        def gradient(self, x, d):
            # type: (npt.ArrayLike, npt.ArrayLike) -> Dict[str, Any]
            self.loss(x, d)
            dout = self.last_layer.backward(1)
            for layer in reversed(list(self.layers.values())):
                dout = layer.backward(dout)
            grad: Dict[str, Any] = {}
            for i, key in enumerate(("Conv1", "Conv2", "Affine1", "Affine2"), start=1):
                grad[f"W{i}"] = self.layers[key].dW
                grad[f"b{i}"] = self.layers[key].db
            return grad

    layers_ns.update(classes)
    layers_ns.update(sys=sys, os=os, np=np, functions=functions,
                     OrderedDict=collections.OrderedDict, SoftmaxWithLoss=SoftmaxWithLoss,
                     MultiLayerNet=MultiLayerNet, DoubleConvNet=DoubleConvNet)
    doc = ("The course's common.layers on nnfast's layers; also MultiLayerNet (BatchNorm, "
           "Dropout) and DoubleConvNet.")
    module = make_module(name, doc, layers_ns, LAYERS_NAMES)
    MultiLayerNet._L = module  # the native nets build their layers from this module
    return module


class _LearningRate:
    """The course names the learning rate ``learning_rate``; nnfast reads ``lr``."""

    learning_rate: float

    @property
    def lr(self):
        # type: () -> float
        return self.learning_rate

    @lr.setter
    def lr(self, value):
        # type: (float) -> None
        self.learning_rate = value

    def update(self, params, grad):
        # type: (Dict[str, Any], Dict[str, Any]) -> None
        """Update every array in ``params`` in place from ``grad``."""
        cast(Any, super()).update(params, grad)  # the backend's optimizer, after this mix-in


def _optimizer(B: Backend, name: str) -> types.ModuleType:
    O: Any = B.optimizer  # Any: base classes chosen at run time

    class SGD(_LearningRate, O.SGD):
        """``p -= learning_rate*g``."""

        def __init__(self, learning_rate=0.01):
            # type: (float) -> None
            super().__init__(learning_rate=learning_rate)

    class Momentum(_LearningRate, O.Momentum):
        """``v = momentum*v - learning_rate*g; p += v``."""

        def __init__(self, learning_rate=0.01, momentum=0.9):
            # type: (float, float) -> None
            super().__init__(momentum=momentum, learning_rate=learning_rate)

    class Nesterov(_LearningRate, O.Nesterov):
        """The course's (older) order: ``v *= m; v -= lr*g; p += m*m*v; p -= (1+m)*lr*g``.

        This order has no compiled kernel: the update runs as in-place NumPy operations
        (validation and lazy state are nnfast's).
        """

        def __init__(self, learning_rate=0.01, momentum=0.9):
            # type: (float, float) -> None
            super().__init__(momentum=momentum, learning_rate=learning_rate)

        def _step(self, params, grads, hp):
            # type: (Dict[str, Any], Dict[str, Any], Dict[str, float]) -> None
            lr, momentum = hp["lr"], hp["momentum"]
            for key, g in grads.items():
                v = self.v[key]
                v *= momentum
                v -= lr * g
                params[key] += momentum * momentum * v
                params[key] -= (1 + momentum) * lr * g

    class AdaGrad(_LearningRate, O.AdaGrad):
        """``h += g*g; p -= learning_rate*g/(sqrt(h) + 1e-7)``."""

        def __init__(self, learning_rate=0.01):
            # type: (float) -> None
            super().__init__(learning_rate=learning_rate)

    class RMSprop(_LearningRate, O.RMSprop):
        """``h *= rho; h += (1-rho)*g*g; p -= learning_rate*g/(sqrt(h) + 1e-7)``."""

        def __init__(self, learning_rate=0.01, decay_rate=0.99):
            # type: (float, float) -> None
            super().__init__(decay_rate=decay_rate, learning_rate=learning_rate)

    class Adam(_LearningRate, O.Adam):
        """Adam with the bias correction folded into the step size."""

        def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999):
            # type: (float, float, float) -> None
            super().__init__(beta1=beta1, beta2=beta2, learning_rate=learning_rate)

    ns = {"np": np, "SGD": SGD, "Momentum": Momentum, "Nesterov": Nesterov,
          "AdaGrad": AdaGrad, "RMSprop": RMSprop, "Adam": Adam}
    doc = ("The course's common.optimizer (learning_rate=, update(params, grad)) on "
           "nnfast's optimizers.")
    return make_module(name, doc, ns, OPTIMIZER_NAMES)


def _trainer(B: Backend, name: str, optimizer: types.ModuleType) -> types.ModuleType:
    T: Any = B.trainer  # Any: the base class is chosen at run time

    class Trainer(T.Trainer):
        """Mini-batch training loop with the course's names and printed lines.

        ``optimizer_name`` is 'SGD', 'Momentum', 'Nesterov', 'AdaGrad', 'rmsprpo' (the
        course's spelling; 'RMSprop' is accepted too) or 'Adam', any case;
        ``optimizer_param`` its keywords (default ``{'learning_rate': 0.01}``). The
        teachers are ``d_train`` and ``d_test``.
        """
        _opt_module = optimizer

        def __init__(self, network, x_train, d_train, x_test, d_test, epochs=20,
                     mini_batch_size=100, optimizer_name="SGD", optimizer_param=None,
                     evaluate_sample_num_per_epoch=None, verbose=True):
            # type: (Any, _A, _A, _A, _A, int, int, str, _Kw, Optional[int], bool) -> None
            if optimizer_param is None:
                optimizer_param = {"learning_rate": 0.01}
            super().__init__(network, x_train, d_train, x_test, d_test, epochs,
                             mini_batch_size, optimizer_name, optimizer_param,
                             evaluate_sample_num_per_epoch, verbose)

        @property
        def t_train(self):
            # type: () -> Any
            return self.d_train

        @t_train.setter
        def t_train(self, value):
            # type: (Any) -> None
            self.d_train = value

        @property
        def t_test(self):
            # type: () -> Any
            return self.d_test

        @t_test.setter
        def t_test(self, value):
            # type: (Any) -> None
            self.d_test = value

    ns = {"sys": sys, "os": os, "np": np, "optimizer": optimizer, "Trainer": Trainer}
    return make_module(name, "The course's common.trainer on nnfast.", ns, TRAINER_NAMES)


def build(B: Backend, prefix: str) -> Tuple[Dict[str, types.ModuleType],
                                             Dict[str, types.ModuleType]]:
    """Build the course profile on backend ``B``; see :func:`nnfast.compat._book.build`."""
    functions = _functions(B, f"{prefix}.functions")
    layers = _layers(B, f"{prefix}.layers", functions)
    optimizer = _optimizer(B, f"{prefix}.optimizer")
    trainer = _trainer(B, f"{prefix}.trainer", optimizer)
    common = {"functions": functions, "layers": layers, "optimizer": optimizer,
              "trainer": trainer}
    return common, {DATASET: make_mnist_module(f"{prefix}.data.mnist", "data")}
