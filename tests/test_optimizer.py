"""Optimizers: two steps against hand-written formulas, lazy state, aliases, failed updates."""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from conftest import ATOL, RTOL

# every build of the element-wise families (csrc/isa.h) this CPU has
pytestmark = pytest.mark.usefixtures("eltwise_isa")

EPS = 1e-7


def _params(dtype):
    rs = np.random.RandomState(1)
    return {"W1": rs.randn(3, 2).astype(dtype), "b1": rs.randn(2).astype(dtype)}


def _grads(dtype, step):
    rs = np.random.RandomState(10 + step)
    return {"W1": rs.randn(3, 2).astype(dtype), "b1": rs.randn(2).astype(dtype)}


# Hand-written expectations: one scalar element at a time, Python floats (float64).

def expect_sgd(p, gs, lr=0.01):
    for g in gs:
        p = p - lr * g
    return p


def expect_momentum(p, gs, lr=0.01, m=0.9):
    v = 0.0
    for g in gs:
        v = m * v - lr * g
        p = p + v
    return p


def expect_nesterov(p, gs, lr=0.01, m=0.9):
    v = 0.0
    for g in gs:
        p = p + m * m * v
        p = p - (1 + m) * lr * g
        v = v * m
        v = v - lr * g
    return p


def expect_adagrad(p, gs, lr=0.01):
    h = 0.0
    for g in gs:
        h = h + g * g
        p = p - lr * g / (math.sqrt(h) + EPS)
    return p


def expect_rmsprop(p, gs, lr=0.01, rho=0.99):
    h = 0.0
    for g in gs:
        h = h * rho
        h = h + (1 - rho) * g * g
        p = p - lr * g / (math.sqrt(h) + EPS)
    return p


def expect_adam(p, gs, lr=0.001, b1=0.9, b2=0.999):
    m = v = 0.0
    for it, g in enumerate(gs, start=1):
        lr_t = lr * math.sqrt(1.0 - b2 ** it) / (1.0 - b1 ** it)
        m = m + (1 - b1) * (g - m)
        v = v + (1 - b2) * (g * g - v)
        p = p - lr_t * m / (math.sqrt(v) + EPS)
    return p


CASES = [
    ("SGD", {}, expect_sgd),
    ("Momentum", {}, expect_momentum),
    ("Nesterov", {}, expect_nesterov),
    ("AdaGrad", {}, expect_adagrad),
    ("RMSprop", {}, expect_rmsprop),
    ("Adam", {}, expect_adam),
    ("SGD", {"lr": 0.5}, lambda p, gs: expect_sgd(p, gs, lr=0.5)),
    ("Momentum", {"lr": 0.1, "momentum": 0.5}, lambda p, gs: expect_momentum(p, gs, 0.1, 0.5)),
    ("Nesterov", {"lr": 0.1, "momentum": 0.7}, lambda p, gs: expect_nesterov(p, gs, 0.1, 0.7)),
    ("RMSprop", {"lr": 0.1, "decay_rate": 0.9}, lambda p, gs: expect_rmsprop(p, gs, 0.1, 0.9)),
    ("Adam", {"lr": 0.1, "beta1": 0.8, "beta2": 0.99},
     lambda p, gs: expect_adam(p, gs, 0.1, 0.8, 0.99)),
]


@pytest.mark.parametrize("name, kwargs, expect", CASES)
def test_two_steps_against_formulas(backend, dtype, name, kwargs, expect):
    opt = getattr(backend.optimizer, name)(**kwargs)
    params = _params(dtype)
    start = {k: v.copy() for k, v in params.items()}
    arrays = dict(params)  # the very objects, to check in-place updates
    grads = [_grads(dtype, 0), _grads(dtype, 1)]
    grads0 = [{k: v.copy() for k, v in g.items()} for g in grads]
    for g in grads:
        opt.update(params, g)
    for key in params:
        assert params[key] is arrays[key], "update must work in place"
        assert params[key].dtype == dtype
        expected = np.empty(start[key].shape)
        for idx in np.ndindex(start[key].shape):
            expected[idx] = expect(float(start[key][idx]),
                                   [float(g[key][idx]) for g in grads])
        if dtype == np.float64:
            assert_allclose(params[key], expected, rtol=1e-15, atol=1e-17)
        else:
            assert_allclose(params[key], expected, rtol=RTOL[dtype], atol=ATOL[dtype])
    for g, g0 in zip(grads, grads0):
        for key in g:
            assert_array_equal(g[key], g0[key])


def test_float64_bit_exact_forms(backend):
    """The documented operation order, written with NumPy, matches bit for bit."""
    p0, gs = _params(np.float64)["W1"], [_grads(np.float64, s)["W1"] for s in range(3)]
    opt = backend.optimizer.Adam()
    p = {"W1": p0.copy()}
    for g in gs:
        opt.update(p, {"W1": g})
    q, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for it, g in enumerate(gs, start=1):
        lr_t = 0.001 * np.sqrt(1.0 - 0.999 ** it) / (1.0 - 0.9 ** it)
        m += (1 - 0.9) * (g - m)
        v += (1 - 0.999) * (g ** 2 - v)
        q -= lr_t * m / (np.sqrt(v) + 1e-7)
    assert_array_equal(p["W1"], q)

    opt = backend.optimizer.Nesterov(lr=0.05, momentum=0.8)
    p = {"W1": p0.copy()}
    for g in gs:
        opt.update(p, {"W1": g})
    q, v = p0.copy(), np.zeros_like(p0)
    for g in gs:
        q += 0.8 * 0.8 * v
        q -= (1 + 0.8) * 0.05 * g
        v *= 0.8
        v -= 0.05 * g
    assert_array_equal(p["W1"], q)


STATE = {"SGD": (), "Momentum": ("v",), "Nesterov": ("v",), "AdaGrad": ("h",),
         "RMSprop": ("h",), "Adam": ("m", "v")}


@pytest.mark.parametrize("name", list(STATE))
def test_state_is_created_lazily(backend, dtype, name):
    opt = getattr(backend.optimizer, name)()
    for attr in STATE[name]:
        assert getattr(opt, attr) is None
    if name == "Adam":
        assert opt.iter == 0
    params = _params(dtype)
    opt.update(params, _grads(dtype, 0))
    for attr in STATE[name]:
        state = getattr(opt, attr)
        assert set(state) == set(params)
        for key in params:
            assert state[key].shape == params[key].shape and state[key].dtype == dtype
            assert state[key] is not params[key]
    if name == "Adam":
        assert opt.iter == 1


def test_defaults_and_learning_rate_alias(backend):
    O = backend.optimizer
    assert O.SGD().lr == 0.01 and O.Momentum().lr == 0.01 and O.Adam().lr == 0.001
    assert O.Momentum().momentum == 0.9 and O.Nesterov().momentum == 0.9
    assert O.RMSprop().decay_rate == 0.99
    assert (O.Adam().beta1, O.Adam().beta2) == (0.9, 0.999)
    for name in STATE:
        cls = getattr(O, name)
        assert cls(learning_rate=0.3).lr == 0.3
        assert cls(lr=0.2).lr == 0.2
        assert cls(0.4).lr == 0.4
        with pytest.raises(TypeError, match=r"lr= or as learning_rate=, not both"):
            cls(lr=0.1, learning_rate=0.1)
    assert O.Momentum(0.1, 0.5).momentum == 0.5


def test_changed_lr_is_used(backend):
    opt = backend.optimizer.SGD(lr=1.0)
    p = {"w": np.array([1.0])}
    opt.update(p, {"w": np.array([0.5])})
    opt.lr = 2.0
    opt.update(p, {"w": np.array([0.5])})
    assert_array_equal(p["w"], [-0.5])


def test_extra_grads_are_ignored_and_mixed_dtypes(backend):
    opt = backend.optimizer.Momentum()
    p = {"w": np.ones(2, dtype=np.float32)}
    opt.update(p, {"w": np.ones(2), "unused": np.ones(5)})  # float64 grad into float32 param
    assert p["w"].dtype == np.float32
    assert_allclose(p["w"], 1 - 0.01, rtol=1e-6)


@pytest.mark.parametrize("name", list(STATE))
def test_failed_update_changes_nothing(backend, name):
    opt = getattr(backend.optimizer, name)()
    params = _params(np.float64)
    opt.update(params, _grads(np.float64, 0))
    snapshot = {k: v.copy() for k, v in params.items()}
    state = {a: {k: v.copy() for k, v in getattr(opt, a).items()} for a in STATE[name]}
    iters = getattr(opt, "iter", None)
    good = _grads(np.float64, 1)
    bad_cases = [
        ({"W1": good["W1"]}, ValueError, r"grads has no entry for parameter 'b1'"),
        ({"W1": good["W1"], "b1": np.ones(3)}, ValueError, r"grads\['b1'\] must have shape \(2,\)"),
        ({"W1": good["W1"], "b1": np.ones(2, dtype=complex)}, TypeError,
         r"grads\['b1'\] must have dtype float32 or float64"),
    ]
    for grads, exc, match in bad_cases:
        with pytest.raises(exc, match=rf"{name}.update: {match}"):
            opt.update(params, grads)
    int_params = dict(params, b1=np.ones(2, dtype=np.int64))
    with pytest.raises(TypeError, match=rf"{name}.update: params\['b1'\] must have dtype float32 or float64"):
        opt.update(int_params, good)
    ro = params["b1"].copy()
    ro.setflags(write=False)
    with pytest.raises(ValueError, match=r"params\['b1'\] is read-only"):
        opt.update(dict(params, b1=ro), good)
    opt.lr = "fast"
    with pytest.raises(TypeError, match=rf"{name}.update: lr must be a real number"):
        opt.update(params, good)
    for k in params:
        assert_array_equal(params[k], snapshot[k])
    for a in STATE[name]:
        for k, v in getattr(opt, a).items():
            assert_array_equal(v, state[a][k])
    assert getattr(opt, "iter", None) == iters


def test_state_shape_mismatch_is_refused(backend):
    opt = backend.optimizer.AdaGrad()
    opt.update({"w": np.ones(3)}, {"w": np.ones(3)})
    with pytest.raises(ValueError, match=r"AdaGrad.update: params\['w'\] has shape \(4,\) but the state h\['w'\]"):
        opt.update({"w": np.ones(4)}, {"w": np.ones(4)})


def test_new_keys_get_state_later(backend):
    opt = backend.optimizer.Adam()
    opt.update({"a": np.ones(2)}, {"a": np.ones(2)})
    opt.update({"a": np.ones(2), "b": np.ones(3)}, {"a": np.ones(2), "b": np.ones(3)})
    assert set(opt.m) == {"a", "b"} and opt.iter == 2
