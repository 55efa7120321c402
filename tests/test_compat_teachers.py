"""Profiles take every teacher shape the originals take, with the originals' numbers.

The book's and the course's ``cross_entropy_error`` index ``y[np.arange(N), t]``, so labels
of any integer shape that broadcasts against ``(N,)`` are accepted there (the book's
ch07/gradient_check.py passes labels of shape (1, 1)); their ``SoftmaxWithLoss.backward``
divides by ``t.shape[0]``. The oracles below are loops over that definition, written here.
"""
import numpy as np
import pytest

import nnfast.compat as compat

PROFILES = ("book", "course")
BACKENDS = ("native", "reference")


def _softmax_rows(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _loss_oracle(y, t):
    """-sum(log(y[i, t[j]] + 1e-7)) / N over every broadcast pair (i, j) of (N,) and t."""
    n = y.shape[0]
    rows, cols = np.broadcast_arrays(np.arange(n), t)
    return -sum(np.log(y[i, c] + 1e-7) for i, c in zip(rows.ravel(), cols.ravel())) / n


def _grad_oracle(y, t):
    """dx = y, minus 1 once at each distinct [i, t[j]] of arange(t.shape[0]) vs t, / t.shape[0]."""
    batch = t.shape[0]
    rows, cols = np.broadcast_arrays(np.arange(batch), t)
    dx = y.copy()
    for i, c in set(zip(rows.ravel().tolist(), cols.ravel().tolist())):
        dx[i, c] -= 1
    return dx / batch


def _layers(profile, backend):
    return compat.profile(profile, backend).modules["layers"]


def _functions(profile, backend):
    return compat.profile(profile, backend).modules["functions"]


def _xent(profile, backend, y, t):
    F = _functions(profile, backend)
    return F.cross_entropy_error(y, t) if profile == "book" else F.cross_entropy_error(t, y)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("profile", PROFILES)
def test_labels_of_shape_1_1_as_in_ch07(profile, backend):
    x = np.array([[0.5, -1.0, 2.0, 0.1]])
    a, b = _layers(profile, backend).SoftmaxWithLoss(), _layers(profile, backend).SoftmaxWithLoss()
    loss = a.forward(x, np.array([1]).reshape((1, 1)))
    assert type(loss) is np.float64
    assert loss == b.forward(x, np.array([1]))
    np.testing.assert_array_equal(a.backward(1), b.backward(1))
    y = _softmax_rows(x)
    assert _xent(profile, backend, y, np.array([[1]])) == _xent(profile, backend, y, np.array([1]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("t", [np.array([[2], [0], [3]]), np.array([1]), np.array(2),
                               np.array([[0, 1, 3]])], ids=["N,1", "1", "0-d", "1,N"])
def test_broadcast_labels_give_the_originals_numbers(profile, backend, t):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    y = _softmax_rows(x)
    layer = _layers(profile, backend).SoftmaxWithLoss()
    loss = layer.forward(x, t)
    np.testing.assert_allclose(loss, _loss_oracle(y, t), rtol=1e-13)
    np.testing.assert_allclose(_xent(profile, backend, y, t), _loss_oracle(y, t), rtol=1e-13)
    teacher = "t" if profile == "book" else "d"
    np.testing.assert_array_equal(getattr(layer, teacher), t)
    if t.ndim == 0:  # the originals' backward reads t.shape[0]
        with pytest.raises(ValueError, match=f"SoftmaxWithLoss.backward: {teacher} must have "
                                             f"a batch axis"):
            layer.backward(1)
    else:
        np.testing.assert_allclose(layer.backward(1), _grad_oracle(y, t), rtol=1e-13,
                                   atol=1e-16)
    if profile == "course" and t.ndim:
        np.testing.assert_allclose(_functions(profile, backend).d_softmax_with_loss(t, y),
                                   _grad_oracle(y, t), rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("profile", PROFILES)
def test_native_and_reference_profiles_agree_on_broadcast_labels(profile):
    x = np.random.default_rng(1).standard_normal((5, 3))
    t = np.array([[0], [2], [1], [1], [0]])
    out = {}
    for backend in BACKENDS:
        layer = _layers(profile, backend).SoftmaxWithLoss()
        out[backend] = layer.forward(x, t), layer.backward(1)
    assert out["native"][0] == out["reference"][0]
    np.testing.assert_array_equal(out["native"][1], out["reference"][1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("profile", PROFILES)
def test_one_sample_one_hot_backward_divides_by_the_classes(profile, backend):
    # 1-D scores and a one-hot teacher: the originals' batch size is t.shape[0] == C
    x = np.array([0.3, -0.2, 1.5])
    t = np.array([0, 0, 1])
    layer = _layers(profile, backend).SoftmaxWithLoss()
    loss = layer.forward(x, t)
    y = _softmax_rows(x)
    np.testing.assert_allclose(loss, -np.log(y[2] + 1e-7), rtol=1e-13)
    np.testing.assert_allclose(layer.backward(1), (y - t) / 3, rtol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("t, exc, message", [
    (np.array([[1], [-1], [0]]), ValueError, r"labels in {t} must be in \[0, 4\), got -1"),
    (np.array([[1], [4], [0]]), ValueError, r"labels in {t} must be in \[0, 4\), got 4"),
    (np.array([[1.0], [2.0], [0.0]]), TypeError, r"{t} must hold integer class labels"),
    (np.array([[1, 2]]), ValueError, r"labels {t} of shape \(1, 2\) do not broadcast against "
                                     r"the batch of 3 rows"),
])
def test_what_the_originals_reject_or_wrap_is_refused(profile, backend, t, exc, message):
    teacher = "t" if profile == "book" else "d"
    layer = _layers(profile, backend).SoftmaxWithLoss()
    x = np.random.default_rng(2).standard_normal((3, 4))
    layer.forward(x, np.array([0, 1, 2]))
    before = (layer.y.copy(), layer.loss, getattr(layer, teacher).copy())
    with pytest.raises(exc, match="SoftmaxWithLoss.forward: " + message.format(t=teacher)):
        layer.forward(x, t)
    np.testing.assert_array_equal(layer.y, before[0])  # a failed call changes nothing
    assert layer.loss == before[1]
    np.testing.assert_array_equal(getattr(layer, teacher), before[2])
    with pytest.raises(exc, match="cross_entropy_error: " + message.format(t=teacher)):
        _xent(profile, backend, _softmax_rows(x), t)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ch07_style_gradient_check_with_1_1_labels(backend):
    prof = compat.profile("book", backend)
    np.random.seed(0)
    net = prof.extra["simple_convnet"].SimpleConvNet(
        input_dim=(1, 6, 6), conv_param={"filter_num": 2, "filter_size": 3, "pad": 0,
                                         "stride": 1},
        hidden_size=4, output_size=3, weight_init_std=0.3)
    x = np.random.rand(1, 1, 6, 6)
    t = np.array([1]).reshape((1, 1))
    grad_num = net.numerical_gradient(x, t)
    grad = net.gradient(x, t)
    assert grad.keys() == grad_num.keys()
    for key in grad:
        np.testing.assert_allclose(grad[key], grad_num[key], rtol=1e-4, atol=1e-7)
    assert net.loss(x, t) == net.loss(x, np.array([1]))
