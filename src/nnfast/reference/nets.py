"""Reference networks in plain NumPy.

``TwoLayerNet``, ``MultiLayerNet``, ``MultiLayerNetExtend``, ``SimpleConvNet``,
``DeepConvNet`` and ``SmallAlexNet`` with the toolkit's observable behaviour: ``params`` is a dict of arrays whose
*same objects* are held by the layers (optimizers update them in place), and every network has
``predict, loss, accuracy, gradient, numerical_gradient, save_params, load_params``.

Extension seam
--------------
Networks never name a layer class directly: they build every layer through the class
attribute ``_L``, a module holding ``Relu, Sigmoid, Affine, SoftmaxWithLoss, Dropout,
BatchNormalization, Convolution, Pooling``.  The native networks are subclasses that set
nothing but that attribute::

    class SimpleConvNet(nnfast.reference.nets.SimpleConvNet):
        _L = nnfast.layers

Numbers
-------
Weights are drawn in float64 exactly as the toolkit draws them (``scale * np.random.randn``
in parameter order W1, b1, W2, ...; biases are zeros and draw nothing) and then cast to the
network's ``dtype`` (float64 by default), so one seed gives the same numbers in float32 up to
rounding.  ``weight_init_std`` is read by one helper, :func:`init_scale`.

Deviations from the toolkit (all deliberate)
--------------------------------------------
* ``accuracy(x, t, batch_size)`` of the convolutional nets includes the last, partial batch;
  the toolkit silently skipped it but still divided by N.
* ``SimpleConvNet`` computes the pooled size per axis with floor division, so non-square inputs
  and odd convolution outputs work; ``DeepConvNet`` derives every fan-in (and the size of the
  first affine layer) from ``input_dim`` instead of hard-coding 1 channel and 64*4*4.
* ``load_params`` checks the names and shapes before changing anything and converts arrays of
  another dtype to the network's dtype; arrays of the right dtype are used as they are.
* ``weight_decay_type='l1'`` (``lambda * sum|W|``, gradient ``lambda * sign(W)``) besides the
  default L2; nothing is added when ``weight_decay_lambda`` is 0.
* The first layer of every network has ``skip_dx = True``: ``gradient`` never computes the
  gradient with respect to the input images, which nobody reads (no number changes; calling
  that layer's ``backward`` yourself returns None).
* ``gradient`` leaves the loss of its forward pass (training mode, before any update) in
  ``last_loss``, so a training loop can report it without another forward pass.
"""
from __future__ import annotations

import os
import pickle
import warnings
from collections import OrderedDict
from typing import (Any, Dict, Iterable, List, Mapping, Optional, Protocol, Sequence, Tuple,
                    Union)

import numpy as np
import numpy.typing as npt

from nnfast import _npz
from nnfast.reference import layers as _layers
from nnfast.reference.gradient import numerical_gradient as _numerical_gradient

_FloatArray = npt.NDArray[np.floating[Any]]


class Layer(Protocol):
    """What the networks' forward and backward loops call on each of their ``layers``
    (Dropout and BatchNormalization's ``forward`` also take ``train_flg``)."""

    def forward(self, x: Any, /) -> Any: ...

    def backward(self, dout: Any, /) -> Any: ...

__all__ = [
    "init_scale",
    "TwoLayerNet",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "SimpleConvNet",
    "DeepConvNet",
    "SmallAlexNet",
]

# Layer state that prediction needs besides the parameters (BatchNormalization's).
_STATE_ATTRS = ("running_mean", "running_var")

# Gradient attribute a layer fills for each parameter attribute.
_GRAD_ATTR = {"W": "dW", "b": "db", "gamma": "dgamma", "beta": "dbeta"}

_DEFAULT_CONV_PARAM = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
# DeepConvNet's six convolutions: (filter_num, filter_size, pad, stride).
_DEEP_CONV_DEFAULTS = (
    (16, 3, 1, 1),
    (16, 3, 1, 1),
    (32, 3, 1, 1),
    (32, 3, 2, 1),
    (64, 3, 1, 1),
    (64, 3, 1, 1),
)


def init_scale(weight_init_std: Union[str, float], fan_in: int) -> Any:
    """Standard deviation of a weight with ``fan_in`` inputs.

    'relu'/'he' -> sqrt(2/fan_in), 'sigmoid'/'xavier' -> sqrt(1/fan_in) (case-insensitive);
    a number is used as it is.
    """
    if isinstance(weight_init_std, str):
        rule = weight_init_std.lower()
        if rule in ("relu", "he"):
            return np.sqrt(2.0 / fan_in)
        if rule in ("sigmoid", "xavier"):
            return np.sqrt(1.0 / fan_in)
        raise ValueError(
            "weight_init_std must be 'relu', 'he', 'sigmoid', 'xavier' or a number, "
            f"got {weight_init_std!r}"
        )
    return weight_init_std


def _check_dtype(dtype: npt.DTypeLike) -> Any:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt.type


def _pooled(size: int, what: str) -> int:
    """Output length of the 2x2, stride-2 pooling the networks use."""
    if size < 2:
        raise ValueError(f"{what}: a 2x2 pooling needs a size of at least 2, got {size}")
    return (size - 2) // 2 + 1


def _conv_out(size: int, filter_size: int, pad: int, stride: int, what: str) -> int:
    out = (size + 2 * pad - filter_size) // stride + 1
    if out < 1:
        raise ValueError(
            f"{what}: filter_size {filter_size} with pad {pad} does not fit an input of size {size}"
        )
    return out


class _Network:
    """Machinery every network shares.

    A subclass's ``__init__`` calls ``_setup`` first, then creates its parameters with
    ``_draw_weight``/``_constant``, builds ``self.layers`` (an OrderedDict or a list) and
    ``self.last_layer``, and records in ``self._slots`` which layer attribute holds each
    parameter: ``{'W1': (layer_key, 'W'), ...}`` (``layer_key`` indexes ``self.layers``).
    """

    _L = _layers
    #: The layers in forward order: an OrderedDict keyed by name, or a list (each network
    #: declares which). The layers themselves are Any: their attributes (``W``, ``dW``,
    #: ``mask``...) differ by kind and are read by users, the benchmarks and nnfast.distributed,
    #: which a forward/backward Protocol would turn into casts at every read.
    layers: Union[OrderedDict[str, Any], List[Any]]
    last_layer: _layers.SoftmaxWithLoss

    def _setup(self, dtype: npt.DTypeLike, weight_decay_lambda: float = 0,
               weight_decay_type: str = "l2") -> None:
        self.dtype = _check_dtype(dtype)
        self.weight_decay_lambda = weight_decay_lambda
        kind = str(weight_decay_type).lower()
        if kind not in ("l2", "l1"):
            raise ValueError(f"weight_decay_type must be 'l2' or 'l1', got {weight_decay_type!r}")
        self.weight_decay_type = kind
        self.params: Dict[str, _FloatArray] = {}
        self._slots: Dict[str, Tuple[Any, str]] = OrderedDict()

    def _draw_weight(self, name: str, weight_init_std: Union[str, float], fan_in: int,
                     shape: Sequence[int]) -> None:
        scale = init_scale(weight_init_std, fan_in)
        self.params[name] = (scale * np.random.randn(*shape)).astype(self.dtype, copy=False)

    def _constant(self, name: str, size: int, value: float) -> None:
        self.params[name] = np.full(size, value, dtype=self.dtype)

    def _skip_first_input_grad(self) -> None:
        """Called at the end of ``__init__``: the first layer computes only its dW and db."""
        first = next(iter(self._layer_sequence()))
        if hasattr(first, "skip_dx"):
            first.skip_dx = True

    # The book calls the last layer ``lastLayer`` in TwoLayerNet.
    @property
    def lastLayer(self) -> _layers.SoftmaxWithLoss:
        return self.last_layer

    @lastLayer.setter
    def lastLayer(self, layer: _layers.SoftmaxWithLoss) -> None:
        self.last_layer = layer

    def _layer_sequence(self) -> Iterable[Layer]:
        return self.layers.values() if isinstance(self.layers, dict) else self.layers

    def predict(self, x: npt.ArrayLike, train_flg: bool = False) -> Any:
        """Forward through ``layers``; ``train_flg`` reaches Dropout and BatchNormalization only."""
        flagged = (self._L.Dropout, self._L.BatchNormalization)
        for layer in self._layer_sequence():
            if isinstance(layer, flagged):
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def _decay_loss(self) -> Any:
        decay = 0
        lam = self.weight_decay_lambda
        if lam:
            for name in self._slots:
                if name.startswith("W"):
                    W = self.params[name]
                    if self.weight_decay_type == "l2":
                        decay += 0.5 * lam * np.sum(W ** 2)
                    else:
                        decay += lam * np.sum(np.abs(W))
        return decay

    def _decay_grad(self, W: _FloatArray) -> _FloatArray:
        if self.weight_decay_type == "l2":
            return self.weight_decay_lambda * W
        return self.weight_decay_lambda * np.sign(W)

    def loss(self, x: npt.ArrayLike, t: npt.ArrayLike, train_flg: bool = False) -> Any:
        y = self.predict(x, train_flg)
        return self.last_layer.forward(y, t) + self._decay_loss()

    def accuracy(self, x: npt.NDArray[Any], t: npt.NDArray[Any],
                 batch_size: Optional[int] = None) -> float:
        """Fraction of rows whose argmax matches ``t`` (labels, or one-hot when ``t.ndim != 1``).

        With ``batch_size`` the prediction runs in batches; the last batch may be shorter.
        """
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        n = x.shape[0]
        if n == 0:
            raise ValueError("accuracy: x holds no samples")
        if batch_size is None:
            batch_size = n
        elif batch_size < 1:
            raise ValueError(f"accuracy: batch_size must be at least 1, got {batch_size}")
        correct = 0
        for start in range(0, n, batch_size):
            y = self.predict(x[start:start + batch_size], train_flg=False)
            correct += np.sum(np.argmax(y, axis=1) == t[start:start + batch_size])
        return correct / float(n)

    def gradient(self, x: npt.ArrayLike, t: npt.ArrayLike) -> Dict[str, _FloatArray]:
        """Backpropagation: forward via ``loss``, ``last_layer.backward(1)``, layers reversed."""
        self.last_loss = self.loss(x, t, train_flg=True)
        self._backprop(self.last_layer.backward(1))
        grads = {}
        for name, (key, attr) in self._slots.items():
            layer = self.layers[key]
            g = getattr(layer, _GRAD_ATTR[attr])
            if attr == "W" and self.weight_decay_lambda:
                g = g + self._decay_grad(layer.W)
            grads[name] = g
        return grads

    def _backprop(self, dout: Any) -> None:
        """Backward through ``layers`` in reverse order."""
        # The first layer has skip_dx set: its backward returns None, and nothing reads it.
        for layer in reversed(list(self._layer_sequence())):
            dout = layer.backward(dout)

    def numerical_gradient(self, x: npt.ArrayLike, t: npt.ArrayLike) -> Dict[str, _FloatArray]:
        """Central-difference gradient of ``loss(x, t, train_flg=True)`` for every parameter."""
        def loss_of(_: Any) -> Any:
            return self.loss(x, t, train_flg=True)

        return {name: _numerical_gradient(loss_of, self.params[name]) for name in self._slots}

    def save_params(self, file_name: _npz.PathLike = "params.pkl") -> None:
        """Write the network to ``file_name``, in a format chosen by its extension.

        ``.npz``: NumPy's zip of arrays, written atomically and read back with
        ``allow_pickle=False`` - the safe format (loading it never runs code). It holds the
        parameters and every other state prediction needs: the running mean and variance of
        each BatchNormalization layer (as ``'<layer>.running_mean'``/``'.running_var'``).
        Any other name (``.pkl``): the reference's pickle of the plain dict
        ``{'W1': ndarray, 'b1': ...}``, kept as it is for compatibility: parameters only
        (a UserWarning says so when batch-norm statistics are left out).
        Warning: unpickling can execute arbitrary code; load pickles only from sources
        you trust, and prefer ``.npz`` for files you share or download.
        """
        params = {key: val for key, val in self.params.items()}
        if _npz.is_npz(file_name):
            _npz.save_npz(file_name, {**params, **self.layer_state()})
            return
        if self.layer_state():
            warnings.warn(f"save_params: {os.fspath(file_name)!r} is in the toolkit's pickle "
                          f"format, which holds the parameters only: the batch-norm running "
                          f"statistics are not saved (save to a .npz file to keep them)",
                          UserWarning, stacklevel=2)
        with open(file_name, "wb") as f:
            pickle.dump(params, f)

    def load_params(self, file_name: _npz.PathLike = "params.pkl") -> None:
        """Load a network written by ``save_params`` and re-point the layers.

        ``.npz`` (the safe format): must hold exactly this network's parameters, each with
        its shape and the network's dtype, and may hold its layer state (batch-norm running
        statistics: float32 or float64, one value per feature; a state the file lacks is
        reset to None, as in a network never run); any mismatch raises ValueError naming
        it, and nothing changes. Other names: a pickle (the reference's format; a dict of
        arrays with a subset of the names, converted to the network's dtype). Warning:
        unpickling a file can execute arbitrary code - load pickles only from trusted sources.
        """
        if _npz.is_npz(file_name):
            arrays = _npz.load_npz(file_name, "load_params")
            self.set_arrays(arrays, os.fspath(file_name), "load_params")
            return
        with open(file_name, "rb") as f:
            params = pickle.load(f)
        self._assign_params(params, file_name)

    def _state_layers(self) -> Any:
        """(key, layer) of every layer holding state besides parameters (running statistics)."""
        items = self.layers.items() if isinstance(self.layers, dict) else enumerate(self.layers)
        return [(key, layer) for key, layer in items
                if all(hasattr(layer, attr) for attr in _STATE_ATTRS)]

    def layer_state(self) -> Dict[str, npt.NDArray[Any]]:
        """``{'<layer key>.running_mean': array, ...}``: the layers' state that prediction needs
        besides ``params`` (only the statistics that exist yet)."""
        out: Dict[str, npt.NDArray[Any]] = {}
        for key, layer in self._state_layers():
            for attr in _STATE_ATTRS:
                value = getattr(layer, attr)
                if value is not None:
                    out[f"{key}.{attr}"] = np.asarray(value)
        return out

    def arrays(self) -> Dict[str, npt.NDArray[Any]]:
        """Parameters and layer state, as :meth:`save_params` writes them to ``.npz``."""
        return {**self.params, **self.layer_state()}

    def set_arrays(self, arrays: Mapping[str, npt.NDArray[Any]], source: str = "arrays",
                   where: str = "set_arrays") -> None:
        """Restore what :meth:`arrays` gave: exactly this network's parameters (shapes and
        dtype) and any of its layer state. Everything is checked before anything changes;
        errors name ``where`` and ``source``."""
        names = {key for key in arrays if "." not in key}
        missing = sorted(set(self.params) - names)
        unknown = sorted(names - set(self.params))
        if missing or unknown:
            raise ValueError(f"{where}: {source!r} does not hold this network's "
                             f"parameters: missing {missing}, unknown {unknown}")
        for key in sorted(names):
            arr, want = arrays[key], self.params[key]
            if arr.shape != want.shape or arr.dtype != want.dtype:
                raise ValueError(
                    f"{where}: {key!r} in {source!r} has shape {arr.shape} and "
                    f"dtype {arr.dtype}; this network needs shape {want.shape} and dtype "
                    f"{want.dtype}")
        layers = dict(self._state_layers())
        by_key = {str(key): layer for key, layer in layers.items()}
        state = {}
        for name in sorted(set(arrays) - names):
            key, _, attr = name.rpartition(".")
            layer = by_key.get(key)
            if layer is None or attr not in _STATE_ATTRS:
                raise ValueError(f"{where}: {source!r} holds {name!r}, which is no state of "
                                 f"this network (its layer state: "
                                 f"{sorted(f'{k}.{a}' for k in by_key for a in _STATE_ATTRS)})")
            arr = arrays[name]
            features = np.shape(layer.gamma)
            if arr.shape != features or arr.dtype not in (np.float32, np.float64):
                raise ValueError(f"{where}: {name!r} in {source!r} has shape {arr.shape} and "
                                 f"dtype {arr.dtype}; this network needs shape {features} and "
                                 f"dtype float32 or float64")
            state[key, attr] = arr
        self._assign_params({key: arrays[key] for key in names}, source)
        for key, layer in by_key.items():
            for attr in _STATE_ATTRS:
                setattr(layer, attr, state.get((key, attr)))

    def _assign_params(self, params: Any, source: Any) -> None:
        if not isinstance(params, dict):
            raise ValueError(f"load_params: {source!r} must hold a dict of arrays, "
                             f"got {type(params).__name__}")
        loaded = {}
        for key, val in params.items():
            if key not in self.params:
                raise ValueError(
                    f"load_params: unknown parameter {key!r} in {source!r}; "
                    f"expected some of {sorted(self.params)}"
                )
            arr = val
            if not (isinstance(val, np.ndarray) and val.dtype == self.dtype):
                arr = np.asarray(val, dtype=self.dtype)
            if arr.shape != self.params[key].shape:
                raise ValueError(
                    f"load_params: {key!r} must have shape {self.params[key].shape}, "
                    f"got {arr.shape}"
                )
            loaded[key] = arr
        self.params.update(loaded)
        for name, (key, attr) in self._slots.items():
            setattr(self.layers[key], attr, self.params[name])


class TwoLayerNet(_Network):
    """Affine - Relu - Affine, with SoftmaxWithLoss as ``last_layer`` (alias ``lastLayer``)."""

    layers: OrderedDict[str, Any]

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 weight_init_std: Union[str, float] = 0.01, *,
                 dtype: npt.DTypeLike = np.float64) -> None:
        self._setup(dtype)
        self._draw_weight("W1", weight_init_std, input_size, (input_size, hidden_size))
        self._constant("b1", hidden_size, 0.0)
        self._draw_weight("W2", weight_init_std, hidden_size, (hidden_size, output_size))
        self._constant("b2", output_size, 0.0)

        L, p = self._L, self.params
        self.layers = OrderedDict()
        self.layers["Affine1"] = L.Affine(p["W1"], p["b1"])
        self.layers["Relu1"] = L.Relu()
        self.layers["Affine2"] = L.Affine(p["W2"], p["b2"])
        self.last_layer = L.SoftmaxWithLoss()
        self._skip_first_input_grad()
        for i in (1, 2):
            self._slots[f"W{i}"] = (f"Affine{i}", "W")
            self._slots[f"b{i}"] = (f"Affine{i}", "b")


class MultiLayerNet(_Network):
    """Fully connected net: (Affine - activation) per hidden layer, then Affine + SoftmaxWithLoss.

    ``weight_decay_lambda`` adds ``0.5*lambda*sum(W**2)`` over all weights to the loss (L2), or
    ``lambda*sum(|W|)`` with ``weight_decay_type='l1'``.
    """

    layers: OrderedDict[str, Any]

    def __init__(self, input_size: int, hidden_size_list: Sequence[int], output_size: int,
                 activation: str = "relu", weight_init_std: Union[str, float] = "relu",
                 weight_decay_lambda: float = 0, *, weight_decay_type: str = "l2",
                 dtype: npt.DTypeLike = np.float64) -> None:
        self._build(input_size, hidden_size_list, output_size, activation, weight_init_std,
                    weight_decay_lambda, weight_decay_type, dtype,
                    use_dropout=False, dropout_ratio=0.5, use_batchnorm=False)

    def _build(self, input_size: int, hidden_size_list: Sequence[int], output_size: int,
               activation: str, weight_init_std: Union[str, float], weight_decay_lambda: float,
               weight_decay_type: str, dtype: npt.DTypeLike, use_dropout: bool,
               dropout_ratio: float, use_batchnorm: bool) -> None:
        """The one builder behind MultiLayerNet and MultiLayerNetExtend."""
        self._setup(dtype, weight_decay_lambda, weight_decay_type)
        L = self._L
        activations = {"relu": L.Relu, "sigmoid": L.Sigmoid}
        act = str(activation).lower()
        if act not in activations:
            raise ValueError(f"activation must be 'relu' or 'sigmoid', got {activation!r}")

        self.input_size = input_size
        self.output_size = output_size
        self.hidden_size_list = list(hidden_size_list)
        self.hidden_layer_num = len(self.hidden_size_list)
        self.use_dropout = use_dropout
        self.dropout_ratio = dropout_ratio
        self.use_batchnorm = use_batchnorm
        sizes = [input_size] + self.hidden_size_list + [output_size]
        n_affine = self.hidden_layer_num + 1

        # All weights first (this fixes the order of the random draws), then BN parameters.
        for i in range(1, n_affine + 1):
            self._draw_weight(f"W{i}", weight_init_std, sizes[i - 1], (sizes[i - 1], sizes[i]))
            self._constant(f"b{i}", sizes[i], 0.0)

        p = self.params
        self.layers = OrderedDict()
        for i in range(1, n_affine + 1):
            self.layers[f"Affine{i}"] = L.Affine(p[f"W{i}"], p[f"b{i}"])
            self._slots[f"W{i}"] = (f"Affine{i}", "W")
            self._slots[f"b{i}"] = (f"Affine{i}", "b")
            if i == n_affine:
                break
            if use_batchnorm:
                self._constant(f"gamma{i}", sizes[i], 1.0)
                self._constant(f"beta{i}", sizes[i], 0.0)
                self.layers[f"BatchNorm{i}"] = L.BatchNormalization(p[f"gamma{i}"], p[f"beta{i}"])
                self._slots[f"gamma{i}"] = (f"BatchNorm{i}", "gamma")
                self._slots[f"beta{i}"] = (f"BatchNorm{i}", "beta")
            self.layers[f"Activation_function{i}"] = activations[act]()
            if use_dropout:
                self.layers[f"Dropout{i}"] = L.Dropout(dropout_ratio)
        self.last_layer = L.SoftmaxWithLoss()
        self._skip_first_input_grad()


class MultiLayerNetExtend(MultiLayerNet):
    """MultiLayerNet with optional BatchNormalization (before each activation) and Dropout
    (after it).  ``dropout_ration`` (the book's spelling) is accepted as an alias of
    ``dropout_ratio``.

    ``predict(x, train_flg=False)`` and ``loss(x, t, train_flg=False)`` pass ``train_flg`` to
    the Dropout and BatchNorm layers; ``gradient`` and ``numerical_gradient`` run the loss with
    ``train_flg=True`` (as the toolkit), so with dropout every loss evaluation draws a new mask:
    reseed inside your own loss function to compare the two.
    """

    def __init__(self, input_size: int, hidden_size_list: Sequence[int], output_size: int,
                 activation: str = "relu", weight_init_std: Union[str, float] = "relu",
                 weight_decay_lambda: float = 0, use_dropout: bool = False,
                 dropout_ratio: float = 0.5, use_batchnorm: bool = False, *,
                 dropout_ration: Optional[float] = None, weight_decay_type: str = "l2",
                 dtype: npt.DTypeLike = np.float64) -> None:
        if dropout_ration is not None:
            if dropout_ratio != 0.5 and dropout_ratio != dropout_ration:
                raise TypeError("pass either dropout_ratio or its alias dropout_ration, not both")
            dropout_ratio = dropout_ration
        self._build(input_size, hidden_size_list, output_size, activation, weight_init_std,
                    weight_decay_lambda, weight_decay_type, dtype,
                    use_dropout=use_dropout, dropout_ratio=dropout_ratio,
                    use_batchnorm=use_batchnorm)


class SimpleConvNet(_Network):
    """Conv - Relu - Pool(2x2, stride 2) - Affine - Relu - Affine, SoftmaxWithLoss.

    ``conv_param`` keys ``filter_num, filter_size, pad, stride``; missing keys take the
    defaults (30, 5, 0, 1).  ``accuracy(x, t, batch_size=100)`` evaluates in batches and, unlike
    the toolkit, counts the final partial batch too.
    """

    layers: OrderedDict[str, Any]

    def __init__(self, input_dim: Sequence[int] = (1, 28, 28),
                 conv_param: Optional[Mapping[str, int]] = None, hidden_size: int = 100,
                 output_size: int = 10, weight_init_std: Union[str, float] = 0.01, *,
                 dtype: npt.DTypeLike = np.float64) -> None:
        self._setup(dtype)
        cp = dict(_DEFAULT_CONV_PARAM)
        cp.update(conv_param or {})
        fn, fs, pad, stride = cp["filter_num"], cp["filter_size"], cp["pad"], cp["stride"]
        C, H, W = input_dim
        self.input_dim = tuple(input_dim)
        self.conv_param = cp

        conv_h = _conv_out(H, fs, pad, stride, "SimpleConvNet")
        conv_w = _conv_out(W, fs, pad, stride, "SimpleConvNet")
        pool_output_size = fn * _pooled(conv_h, "SimpleConvNet") * _pooled(conv_w, "SimpleConvNet")

        self._draw_weight("W1", weight_init_std, C * fs * fs, (fn, C, fs, fs))
        self._constant("b1", fn, 0.0)
        self._draw_weight("W2", weight_init_std, pool_output_size, (pool_output_size, hidden_size))
        self._constant("b2", hidden_size, 0.0)
        self._draw_weight("W3", weight_init_std, hidden_size, (hidden_size, output_size))
        self._constant("b3", output_size, 0.0)

        L, p = self._L, self.params
        self.layers = OrderedDict()
        self.layers["Conv1"] = L.Convolution(p["W1"], p["b1"], stride, pad)
        self.layers["Relu1"] = L.Relu()
        self.layers["Pool1"] = L.Pooling(pool_h=2, pool_w=2, stride=2)
        self.layers["Affine1"] = L.Affine(p["W2"], p["b2"])
        self.layers["Relu2"] = L.Relu()
        self.layers["Affine2"] = L.Affine(p["W3"], p["b3"])
        self.last_layer = L.SoftmaxWithLoss()
        self._skip_first_input_grad()
        for i, key in enumerate(("Conv1", "Affine1", "Affine2"), start=1):
            self._slots[f"W{i}"] = (key, "W")
            self._slots[f"b{i}"] = (key, "b")

    def accuracy(self, x: npt.NDArray[Any], t: npt.NDArray[Any],
                 batch_size: Optional[int] = 100) -> float:
        return super().accuracy(x, t, batch_size)


class DeepConvNet(_Network):
    """Three blocks of conv-relu-conv-relu-pool, then affine-relu-dropout-affine-dropout.

    ``layers`` is a plain list.  He initialisation with fan-ins derived from ``input_dim`` and
    the conv parameters (the toolkit hard-coded 1 input channel and a 64*4*4 first affine).
    ``loss`` runs in training mode (dropout on) unless told otherwise; ``accuracy`` in batches
    of ``batch_size``, counting the final partial batch.
    """

    # Position in ``layers`` of the layer holding W{i+1}/b{i+1}.
    _PARAM_LAYER_IDXS = (0, 2, 5, 7, 10, 12, 15, 18)

    layers: List[Any]

    def __init__(self, input_dim: Sequence[int] = (1, 28, 28),
                 conv_param_1: Optional[Mapping[str, int]] = None,
                 conv_param_2: Optional[Mapping[str, int]] = None,
                 conv_param_3: Optional[Mapping[str, int]] = None,
                 conv_param_4: Optional[Mapping[str, int]] = None,
                 conv_param_5: Optional[Mapping[str, int]] = None,
                 conv_param_6: Optional[Mapping[str, int]] = None,
                 hidden_size: int = 50, output_size: int = 10, *,
                 dtype: npt.DTypeLike = np.float64) -> None:
        self._setup(dtype)
        given = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5,
                 conv_param_6)
        convs = []
        for (fn, fs, pad, stride), cp in zip(_DEEP_CONV_DEFAULTS, given):
            full = {"filter_num": fn, "filter_size": fs, "pad": pad, "stride": stride}
            full.update(cp or {})
            convs.append(full)
        self.input_dim = tuple(input_dim)
        self.conv_params = convs

        # Walk the shapes to get every weight shape (the fan-in is the product of all but the
        # last axis for an affine weight, C_in*fs*fs for a filter).
        C, H, W = input_dim
        for idx, cp in enumerate(convs, start=1):
            fs = cp["filter_size"]
            self._draw_weight(f"W{idx}", "he", C * fs * fs, (cp["filter_num"], C, fs, fs))
            self._constant(f"b{idx}", cp["filter_num"], 0.0)
            H = _conv_out(H, fs, cp["pad"], cp["stride"], f"DeepConvNet conv {idx}")
            W = _conv_out(W, fs, cp["pad"], cp["stride"], f"DeepConvNet conv {idx}")
            C = cp["filter_num"]
            if idx % 2 == 0:
                H = _pooled(H, f"DeepConvNet pool after conv {idx}")
                W = _pooled(W, f"DeepConvNet pool after conv {idx}")
        flat = C * H * W
        self._draw_weight("W7", "he", flat, (flat, hidden_size))
        self._constant("b7", hidden_size, 0.0)
        self._draw_weight("W8", "he", hidden_size, (hidden_size, output_size))
        self._constant("b8", output_size, 0.0)

        L, p = self._L, self.params
        self.layers = []
        for idx, cp in enumerate(convs, start=1):
            self.layers.append(L.Convolution(p[f"W{idx}"], p[f"b{idx}"], cp["stride"], cp["pad"]))
            self.layers.append(L.Relu())
            if idx % 2 == 0:
                self.layers.append(L.Pooling(pool_h=2, pool_w=2, stride=2))
        self.layers.append(L.Affine(p["W7"], p["b7"]))
        self.layers.append(L.Relu())
        self.layers.append(L.Dropout(0.5))
        self.layers.append(L.Affine(p["W8"], p["b8"]))
        self.layers.append(L.Dropout(0.5))
        self.last_layer = L.SoftmaxWithLoss()
        self._skip_first_input_grad()
        for i, layer_idx in enumerate(self._PARAM_LAYER_IDXS, start=1):
            self._slots[f"W{i}"] = (layer_idx, "W")
            self._slots[f"b{i}"] = (layer_idx, "b")

    def loss(self, x: npt.ArrayLike, t: npt.ArrayLike, train_flg: bool = True) -> Any:
        return super().loss(x, t, train_flg)

    def accuracy(self, x: npt.NDArray[Any], t: npt.NDArray[Any],
                 batch_size: Optional[int] = 100) -> float:
        return super().accuracy(x, t, batch_size)


class SmallAlexNet(_Network):
    """AlexNet's layout in miniature, for small images such as 28x28 digits.

    Five "same" convolutions (stride 1, pad ``filter_size // 2``), each followed by Relu, with a
    2x2 stride-2 max pooling after the first, second and fifth (AlexNet's pattern), then
    ``len(hidden_sizes)`` blocks of Affine-Relu-Dropout and a final Affine; SoftmaxWithLoss.

    ``layers`` is an OrderedDict: ``Conv1, Relu1, Pool1, Conv2, Relu2, Pool2, Conv3, Relu3,
    Conv4, Relu4, Conv5, Relu5, Pool5, Affine1, Relu6, Dropout1, Affine2, Relu7, Dropout2,
    Affine3`` with the defaults.  Parameters ``W1..W5`` (filters), then the affine weights
    ``W6...``; weights drawn in that order with ``weight_init_std`` ('he' by default, fan-ins
    derived from ``input_dim``), biases zero.  ``filter_nums``/``filter_sizes`` give the five
    convolutions, ``pool_after`` which of them (1-based) are followed by a pooling.

    Like MultiLayerNetExtend, ``predict`` and ``loss`` run in test mode unless
    ``train_flg=True`` (``gradient`` uses training mode: dropout on); ``accuracy`` evaluates in
    batches of ``batch_size`` (default 100).  Pair it with data augmentation
    (``nnfast.datasets.Augmenter`` through ``Trainer(..., augment=...)``), as AlexNet did.
    """

    layers: OrderedDict[str, Any]

    def __init__(self, input_dim: Sequence[int] = (1, 28, 28),
                 filter_nums: Sequence[int] = (16, 32, 48, 48, 32),
                 filter_sizes: Sequence[int] = (5, 3, 3, 3, 3),
                 hidden_sizes: Sequence[int] = (128, 128), output_size: int = 10,
                 dropout_ratio: float = 0.5, weight_init_std: Union[str, float] = "he",
                 weight_decay_lambda: float = 0, *, pool_after: Sequence[int] = (1, 2, 5),
                 weight_decay_type: str = "l2", dtype: npt.DTypeLike = np.float64) -> None:
        self._setup(dtype, weight_decay_lambda, weight_decay_type)
        filter_nums, filter_sizes = tuple(filter_nums), tuple(filter_sizes)
        if len(filter_nums) != len(filter_sizes) or not filter_nums:
            raise ValueError(
                "SmallAlexNet: filter_nums and filter_sizes must have the same, non-zero length, "
                f"got {len(filter_nums)} and {len(filter_sizes)}"
            )
        pool_after = tuple(pool_after)
        for i in pool_after:
            if not 1 <= i <= len(filter_nums):
                raise ValueError(f"SmallAlexNet: pool_after holds {i}, which names no convolution "
                                 f"(1..{len(filter_nums)})")
        self.input_dim = tuple(input_dim)
        self.filter_nums, self.filter_sizes = filter_nums, filter_sizes
        self.hidden_sizes = tuple(hidden_sizes)
        self.pool_after = pool_after
        self.dropout_ratio = dropout_ratio

        C, H, W = input_dim
        n_conv = len(filter_nums)
        for i, (fn, fs) in enumerate(zip(filter_nums, filter_sizes), start=1):
            self._draw_weight(f"W{i}", weight_init_std, C * fs * fs, (fn, C, fs, fs))
            self._constant(f"b{i}", fn, 0.0)
            H = _conv_out(H, fs, fs // 2, 1, f"SmallAlexNet conv {i}")
            W = _conv_out(W, fs, fs // 2, 1, f"SmallAlexNet conv {i}")
            C = fn
            if i in pool_after:
                H = _pooled(H, f"SmallAlexNet pool after conv {i}")
                W = _pooled(W, f"SmallAlexNet pool after conv {i}")
        sizes = [C * H * W, *self.hidden_sizes, output_size]
        for j in range(1, len(sizes)):
            i = n_conv + j
            self._draw_weight(f"W{i}", weight_init_std, sizes[j - 1], (sizes[j - 1], sizes[j]))
            self._constant(f"b{i}", sizes[j], 0.0)

        L, p = self._L, self.params
        self.layers = OrderedDict()
        for i, fs in enumerate(filter_sizes, start=1):
            self.layers[f"Conv{i}"] = L.Convolution(p[f"W{i}"], p[f"b{i}"], 1, fs // 2)
            self.layers[f"Relu{i}"] = L.Relu()
            if i in pool_after:
                self.layers[f"Pool{i}"] = L.Pooling(pool_h=2, pool_w=2, stride=2)
            self._slots[f"W{i}"] = (f"Conv{i}", "W")
            self._slots[f"b{i}"] = (f"Conv{i}", "b")
        n_affine = len(sizes) - 1
        for j in range(1, n_affine + 1):
            i = n_conv + j
            self.layers[f"Affine{j}"] = L.Affine(p[f"W{i}"], p[f"b{i}"])
            self._slots[f"W{i}"] = (f"Affine{j}", "W")
            self._slots[f"b{i}"] = (f"Affine{j}", "b")
            if j < n_affine:
                self.layers[f"Relu{n_conv + j}"] = L.Relu()
                self.layers[f"Dropout{j}"] = L.Dropout(dropout_ratio)
        self.last_layer = L.SoftmaxWithLoss()
        self._skip_first_input_grad()

    def accuracy(self, x: npt.NDArray[Any], t: npt.NDArray[Any],
                 batch_size: Optional[int] = 100) -> float:
        return super().accuracy(x, t, batch_size)
