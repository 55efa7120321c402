"""Gradient-descent optimizers, updating parameter arrays in place.

``update(params, grads)`` takes two dicts keyed alike (grads may hold more keys)
and changes every ``params[key]`` array in place (never rebinding it, so layers
sharing the array see the new values). Per-key state (``v``, ``h``, ``m``) is
created lazily, as zeros like the parameter, on the first update.

The arithmetic is written in exactly the forms below (eps = 1e-7), so that
compiled kernels can match float64 results bit for bit:

- SGD:      ``p -= lr*g``
- Momentum: ``v = momentum*v - lr*g; p += v``
- Nesterov: ``p += momentum*momentum*v; p -= (1 + momentum)*lr*g; v *= momentum; v -= lr*g``
- AdaGrad:  ``h += g*g; p -= lr*g / (sqrt(h) + eps)``
- RMSprop:  ``h *= decay_rate; h += (1 - decay_rate)*g*g; p -= lr*g / (sqrt(h) + eps)``
- Adam:     ``iter += 1; lr_t = lr*sqrt(1 - beta2**iter)/(1 - beta1**iter);
  m += (1 - beta1)*(g - m); v += (1 - beta2)*(g**2 - v); p -= lr_t*m / (sqrt(v) + eps)``

Hyper-parameters are read as Python floats at every update (so float32
parameters stay float32 arithmetic and users may change ``opt.lr`` between
updates). Everything is validated before anything changes: a failed update
leaves parameters and state (including ``Adam.iter``) untouched.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import numpy.typing as npt

from .._checks import (as_float_array, check_float_ndarray, check_real,
                       check_shape_match)

#: Added to the root of the accumulated squares before dividing.
OPT_EPS = 1e-7

#: The parameters an optimizer updates in place: ``{name: float32/float64 array}``.
Params = Mapping[str, npt.NDArray[np.floating[Any]]]
#: What ``get_state`` returns and ``check_state`` reads: ``(meta, arrays)``.
State = Tuple[Dict[str, Any], Dict[str, npt.NDArray[Any]]]


def _resolve_lr(cls_name: str, lr: Optional[float], learning_rate: Optional[float],
                default: float) -> float:
    if lr is not None and learning_rate is not None:
        raise TypeError(
            f"{cls_name}: give the learning rate as lr= or as learning_rate=, not both"
        )
    if lr is None:
        lr = learning_rate if learning_rate is not None else default
    return lr


class Optimizer:
    """Shared machinery: learning-rate alias, validation and lazy per-key state.

    Subclasses list their per-key state dicts in ``_state_names`` (each starts as
    ``None`` and becomes ``{key: zeros_like(param)}``), their hyper-parameter
    attributes in ``_hyper_names``, and implement ``_step(params, grads, hp)``
    where ``grads`` holds validated arrays and ``hp`` the hyper-parameters as
    Python floats.
    """

    _state_names: Tuple[str, ...] = ()
    _hyper_names: Tuple[str, ...] = ("lr",)
    _counter_names: Tuple[str, ...] = ()  # integer state (Adam's ``iter``)
    DEFAULT_LR = 0.01

    def __init__(self, lr: Optional[float] = None, *,
                 learning_rate: Optional[float] = None) -> None:
        self.lr = _resolve_lr(type(self).__name__, lr, learning_rate, self.DEFAULT_LR)
        for name in self._state_names:
            setattr(self, name, None)

    def update(self, params: Params, grads: Mapping[str, npt.ArrayLike]) -> None:
        """Update every array in ``params`` in place from ``grads``."""
        where = f"{type(self).__name__}.update"
        hp = {name: check_real(getattr(self, name), name, where) for name in self._hyper_names}
        checked = self._check(params, grads, where)
        self._create_state(params)
        self._step(params, checked, hp)

    def _check(self, params: Params, grads: Mapping[str, npt.ArrayLike],
               where: str) -> Dict[str, npt.NDArray[np.floating[Any]]]:
        checked: Dict[str, npt.NDArray[np.floating[Any]]] = {}
        for key, p in params.items():
            pname = f"params[{key!r}]"
            check_float_ndarray(p, where, pname)
            if not p.flags.writeable:
                raise ValueError(f"{where}: {pname} is read-only; it is updated in place")
            if key not in grads:
                raise ValueError(f"{where}: grads has no entry for parameter {key!r}")
            gname = f"grads[{key!r}]"
            g = as_float_array(grads[key], where, gname)
            check_shape_match(g, p.shape, where, gname, f"the shape of {pname}")
            for name in self._state_names:
                state = getattr(self, name)
                if state is not None and key in state and state[key].shape != p.shape:
                    raise ValueError(
                        f"{where}: {pname} has shape {tuple(p.shape)} but the state "
                        f"{name}[{key!r}] from earlier updates has shape "
                        f"{tuple(state[key].shape)}"
                    )
            checked[key] = g
        return checked

    def _create_state(self, params: Params) -> None:
        for name in self._state_names:
            state = getattr(self, name)
            if state is None:
                state = {}
                setattr(self, name, state)
            for key, p in params.items():
                if key not in state:
                    state[key] = np.zeros_like(p)

    def _step(self, params: Params, grads: Dict[str, npt.NDArray[np.floating[Any]]],
              hp: Dict[str, float]) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- checkpoints

    def get_state(self) -> State:
        """``(meta, arrays)``: everything the next updates depend on, for a checkpoint.

        ``meta``: the class name, the hyper-parameters and counters (JSON values) and which
        state dicts exist yet; ``arrays``: ``{'<state>.<key>': array}`` (``'v.W1'``, ...).
        """
        meta = {"class": type(self).__name__,
                "hyper": {name: check_real(getattr(self, name), name, "get_state")
                          for name in self._hyper_names},
                "counters": {name: int(getattr(self, name)) for name in self._counter_names},
                "state": [name for name in self._state_names if getattr(self, name) is not None]}
        arrays = {f"{name}.{key}": arr for name in meta["state"]
                  for key, arr in getattr(self, name).items()}
        return meta, arrays

    def check_state(self, meta: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]],
                    where: str = "set_state") -> Tuple[Dict[str, Any], Dict[str, int]]:
        """Validate what :meth:`get_state` gave against this optimizer; return the state to
        hand to :meth:`set_state` (nothing changes here)."""
        name = type(self).__name__
        if meta.get("class") != name:
            raise ValueError(f"{where}: the saved optimizer is {meta.get('class')!r}, this one "
                             f"is {name!r}")
        for hyper in self._hyper_names:
            saved, mine = meta["hyper"].get(hyper), check_real(getattr(self, hyper), hyper, where)
            if saved != mine:
                raise ValueError(f"{where}: the saved {name} has {hyper}={saved!r}, this one "
                                 f"{hyper}={mine!r}")
        unknown = set(meta["state"]) - set(self._state_names)
        if unknown or set(meta["counters"]) != set(self._counter_names):
            raise ValueError(f"{where}: the saved state {sorted(meta['state'])} / counters "
                             f"{sorted(meta['counters'])} are not {name}'s")
        state: Dict[str, Any] = {s: ({} if s in meta["state"] else None)
                                 for s in self._state_names}
        for key, arr in arrays.items():
            s, _, param = key.partition(".")
            if s not in meta["state"] or arr.dtype.kind != "f":
                raise ValueError(f"{where}: {key!r} is no float state of the saved {name}")
            state[s][param] = arr
        return state, {c: int(meta["counters"][c]) for c in self._counter_names}

    def set_state(self, checked: Tuple[Dict[str, Any], Dict[str, int]]) -> None:
        """Install the state :meth:`check_state` returned."""
        state, counters = checked
        for name, value in state.items():
            setattr(self, name, value if value is None else dict(value))
        for name, value in counters.items():
            setattr(self, name, value)


class SGD(Optimizer):
    """Plain gradient descent: ``p -= lr*g``."""

    def __init__(self, lr: Optional[float] = None, *,
                 learning_rate: Optional[float] = None) -> None:
        super().__init__(lr, learning_rate=learning_rate)

    def _step(self, params: Params, grads: Dict[str, npt.NDArray[np.floating[Any]]],
              hp: Dict[str, float]) -> None:
        lr = hp["lr"]
        for key, g in grads.items():
            params[key] -= lr * g


class Momentum(Optimizer):
    """Momentum SGD: ``v = momentum*v - lr*g; p += v``. State: ``v``."""

    _state_names: Tuple[str, ...] = ("v",)
    v: Any  # {key: array} once the first update ran, else None
    _hyper_names: Tuple[str, ...] = ("lr", "momentum")

    def __init__(self, lr: Optional[float] = None, momentum: float = 0.9, *,
                 learning_rate: Optional[float] = None) -> None:
        super().__init__(lr, learning_rate=learning_rate)
        self.momentum = momentum

    def _step(self, params: Params, grads: Dict[str, npt.NDArray[np.floating[Any]]],
              hp: Dict[str, float]) -> None:
        lr, momentum = hp["lr"], hp["momentum"]
        for key, g in grads.items():
            self.v[key] = momentum * self.v[key] - lr * g
            params[key] += self.v[key]


class Nesterov(Optimizer):
    """Nesterov's accelerated gradient (the book's form). State: ``v``."""

    _state_names: Tuple[str, ...] = ("v",)
    v: Any  # {key: array} once the first update ran, else None
    _hyper_names: Tuple[str, ...] = ("lr", "momentum")

    def __init__(self, lr: Optional[float] = None, momentum: float = 0.9, *,
                 learning_rate: Optional[float] = None) -> None:
        super().__init__(lr, learning_rate=learning_rate)
        self.momentum = momentum

    def _step(self, params: Params, grads: Dict[str, npt.NDArray[np.floating[Any]]],
              hp: Dict[str, float]) -> None:
        lr, momentum = hp["lr"], hp["momentum"]
        for key, g in grads.items():
            v = self.v[key]
            params[key] += momentum * momentum * v
            params[key] -= (1 + momentum) * lr * g
            v *= momentum
            v -= lr * g


class AdaGrad(Optimizer):
    """AdaGrad: ``h += g*g; p -= lr*g / (sqrt(h) + eps)``. State: ``h``."""

    _state_names: Tuple[str, ...] = ("h",)
    h: Any  # {key: array} once the first update ran, else None

    def __init__(self, lr: Optional[float] = None, *,
                 learning_rate: Optional[float] = None) -> None:
        super().__init__(lr, learning_rate=learning_rate)

    def _step(self, params: Params, grads: Dict[str, npt.NDArray[np.floating[Any]]],
              hp: Dict[str, float]) -> None:
        lr = hp["lr"]
        for key, g in grads.items():
            h = self.h[key]
            h += g * g
            params[key] -= lr * g / (np.sqrt(h) + OPT_EPS)


class RMSprop(Optimizer):
    """RMSprop: a decaying average of squared gradients. State: ``h``."""

    _state_names: Tuple[str, ...] = ("h",)
    h: Any  # {key: array} once the first update ran, else None
    _hyper_names: Tuple[str, ...] = ("lr", "decay_rate")

    def __init__(self, lr: Optional[float] = None, decay_rate: float = 0.99, *,
                 learning_rate: Optional[float] = None) -> None:
        super().__init__(lr, learning_rate=learning_rate)
        self.decay_rate = decay_rate

    def _step(self, params: Params, grads: Dict[str, npt.NDArray[np.floating[Any]]],
              hp: Dict[str, float]) -> None:
        lr, decay_rate = hp["lr"], hp["decay_rate"]
        for key, g in grads.items():
            h = self.h[key]
            h *= decay_rate
            h += (1 - decay_rate) * g * g
            params[key] -= lr * g / (np.sqrt(h) + OPT_EPS)


class Adam(Optimizer):
    """Adam with the bias correction folded into the step size.

    State: ``m``, ``v`` (per key) and ``iter`` (number of updates so far).
    """

    _state_names: Tuple[str, ...] = ("m", "v")
    m: Any  # {key: array} once the first update ran, else None
    v: Any
    _hyper_names: Tuple[str, ...] = ("lr", "beta1", "beta2")
    _counter_names: Tuple[str, ...] = ("iter",)
    DEFAULT_LR = 0.001

    def __init__(self, lr: Optional[float] = None, beta1: float = 0.9, beta2: float = 0.999, *,
                 learning_rate: Optional[float] = None) -> None:
        super().__init__(lr, learning_rate=learning_rate)
        self.beta1 = beta1
        self.beta2 = beta2
        self.iter = 0

    def _step(self, params: Params, grads: Dict[str, npt.NDArray[np.floating[Any]]],
              hp: Dict[str, float]) -> None:
        lr, beta1, beta2 = hp["lr"], hp["beta1"], hp["beta2"]
        self.iter += 1
        # A Python float (math.sqrt rounds like np.sqrt), so float32 stays float32.
        lr_t = lr * math.sqrt(1.0 - beta2 ** self.iter) / (1.0 - beta1 ** self.iter)
        for key, g in grads.items():
            m, v = self.m[key], self.v[key]
            m += (1 - beta1) * (g - m)
            v += (1 - beta2) * (g ** 2 - v)
            params[key] -= lr_t * m / (np.sqrt(v) + OPT_EPS)
