"""Optimizers (native API): in-place ``update(params, grads)``.

Each update is one fused in-place C pass per parameter that performs the reference's
operations in the reference's order (``nnfast.reference.optimizer``), so float64
results are bit for bit equal (float32 too, with NumPy's float32 rounding of the
hyper-parameters). Validation and lazy state creation are the reference base class's:
a failed update raises before any parameter or state changes.

A parameter whose arrays the kernels cannot take as they are (non-contiguous or
byte-swapped parameter, gradient of another dtype, state arrays rebound by the user,
overlapping memory) is updated by the reference's NumPy code instead, with the same result.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Literal, Optional, Tuple

import numpy as np
import numpy.typing as npt

from . import ops
from .reference import optimizer as _ref
from .reference.optimizer import Params


def _flat(a: npt.NDArray[Any], order: str) -> Optional[npt.NDArray[Any]]:
    """The flat view of an array contiguous in ``order`` ('C' or 'F'), else None."""
    if order == "C" and a.flags.c_contiguous:
        return a.reshape(-1)
    if order == "F" and a.flags.f_contiguous:
        return a.T.reshape(-1)
    return None


class _Compiled:
    """Mix-in: ``_step`` runs the kernel ``_op`` per parameter (the base class has
    validated everything and created the state before ``_step`` is called)."""

    _op: str = ""  # the update's name (nnfast.ops._optim_flat), as nnfast.ops's steps
    _state_names: Tuple[str, ...]
    _hyper_names: Tuple[str, ...]

    def _kernel_args(self, key: str, p: npt.NDArray[Any],
                     g: npt.NDArray[Any]) -> Optional[List[Any]]:
        """(p, g, state1, state2) as flat native arrays for the kernel, or None."""
        if not p.dtype.isnative or not p.flags.writeable:
            return None
        order: Optional[Literal["C", "F"]] = (
            "C" if p.flags.c_contiguous else ("F" if p.flags.f_contiguous else None))
        if order is None or g.dtype != p.dtype:
            return None
        if not g.dtype.isnative:
            g = g.astype(g.dtype.newbyteorder("="))
        g = np.asarray(g, order=order)
        flat: List[Any] = [_flat(p, order), _flat(g, order)]
        for name in self._state_names:
            s = getattr(self, name)[key]
            if (not isinstance(s, np.ndarray) or s.dtype != p.dtype or s.shape != p.shape
                    or not s.dtype.isnative or not s.flags.writeable):
                return None
            flat.append(_flat(s, order))
        if any(a is None for a in flat):
            return None
        for i, a in enumerate(flat):
            for b in flat[i + 1:]:
                if np.may_share_memory(a, b):
                    return None
        flat += [None] * (4 - len(flat))
        return flat

    def _step(self, params: Params, grads: Dict[str, npt.NDArray[np.floating[Any]]],
              hp: Dict[str, float]) -> None:
        # Plan every parameter first (nothing written), then update.
        plan = {key: self._kernel_args(key, params[key], g) for key, g in grads.items()}
        a, b, c = self._hyper(hp)
        op = self._op
        for key, g in grads.items():
            args = plan[key]
            if args is None:
                self._reference_step(params, key, g, hp)
            else:
                ops._optim_flat(op, args[0], args[1], args[2], args[3], a, b, c)

    def _hyper(self, hp: Dict[str, float]) -> Tuple[float, float, float]:
        """The step's three scalars: the hyper-parameters in order, 0-padded."""
        values = [hp[name] for name in self._hyper_names] + [0.0, 0.0]
        return values[0], values[1], values[2]

    def _reference_step(self, params: Params, key: str, g: npt.NDArray[np.floating[Any]],
                        hp: Dict[str, float]) -> None:
        super()._step({key: params[key]}, {key: g}, hp)  # type: ignore[misc]  # the base's


class SGD(_Compiled, _ref.SGD):
    __doc__ = _ref.SGD.__doc__
    _op = "SGD"  # nnfast.ops.sgd_'s update


class Momentum(_Compiled, _ref.Momentum):
    __doc__ = _ref.Momentum.__doc__
    _op = "MOMENTUM"  # nnfast.ops.momentum_'s update


class Nesterov(_Compiled, _ref.Nesterov):
    __doc__ = _ref.Nesterov.__doc__
    _op = "NESTEROV"  # nnfast.ops.nesterov_'s update


class AdaGrad(_Compiled, _ref.AdaGrad):
    __doc__ = _ref.AdaGrad.__doc__
    _op = "ADAGRAD"  # nnfast.ops.adagrad_'s update


class RMSprop(_Compiled, _ref.RMSprop):
    __doc__ = _ref.RMSprop.__doc__
    _op = "RMSPROP"  # nnfast.ops.rmsprop_'s update


class Adam(_Compiled, _ref.Adam):
    __doc__ = _ref.Adam.__doc__

    _op = "ADAM"  # nnfast.ops.adam_'s update

    def _step(self, params: Params, grads: Dict[str, npt.NDArray[np.floating[Any]]],
              hp: Dict[str, float]) -> None:
        self.iter += 1
        beta1, beta2 = hp["beta1"], hp["beta2"]
        # In Python, as the reference: a float, so float32 stays float32 arithmetic
        # (ops.adam_ forms the same lr_t from the step number).
        self._lr_t = hp["lr"] * math.sqrt(1.0 - beta2 ** self.iter) / (1.0 - beta1 ** self.iter)
        super()._step(params, grads, hp)

    def _hyper(self, hp: Dict[str, float]) -> Tuple[float, float, float]:
        return self._lr_t, hp["beta1"], hp["beta2"]

    def _reference_step(self, params: Params, key: str, g: npt.NDArray[np.floating[Any]],
                        hp: Dict[str, float]) -> None:
        beta1, beta2 = hp["beta1"], hp["beta2"]
        m, v = self.m[key], self.v[key]
        m += (1 - beta1) * (g - m)
        v += (1 - beta2) * (g ** 2 - v)
        params[key] -= self._lr_t * m / (np.sqrt(v) + _ref.OPT_EPS)


__all__ = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]
