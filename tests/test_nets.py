"""Networks: gradients against numerical gradients, parameter sharing, initialisation,
save/load, accuracy, and the layer layout of each net.

Sizes are tiny so that the numerical gradients (two losses per parameter) stay fast.
"""
import pickle

import numpy as np
import pytest

F64 = np.float64
F32 = np.float32


# --------------------------------------------------------------------------- helpers

def _small_deep_params(filter_num=2):
    return {f"conv_param_{i}": {"filter_num": filter_num} for i in range(1, 7)}


# name -> (factory(nets), input shape per sample, classes, uses dropout)
CASES = {
    "two_layer": (lambda N: N.TwoLayerNet(4, 5, 3, weight_init_std=0.5), (4,), 3, False),
    "multi_relu": (lambda N: N.MultiLayerNet(4, [5, 4], 3), (4,), 3, False),
    "multi_sigmoid": (lambda N: N.MultiLayerNet(4, [5, 4], 3, activation="sigmoid",
                                                weight_init_std="sigmoid"), (4,), 3, False),
    "multi_l2": (lambda N: N.MultiLayerNet(4, [5, 4], 3, weight_decay_lambda=0.1), (4,), 3, False),
    "multi_l1": (lambda N: N.MultiLayerNet(4, [5, 4], 3, weight_decay_lambda=0.1,
                                           weight_decay_type="l1"), (4,), 3, False),
    "extend_bn": (lambda N: N.MultiLayerNetExtend(4, [5, 4], 3, use_batchnorm=True,
                                                  weight_decay_lambda=0.05), (4,), 3, False),
    "extend_dropout": (lambda N: N.MultiLayerNetExtend(4, [5, 4], 3, use_dropout=True,
                                                       dropout_ratio=0.3), (4,), 3, True),
    "extend_bn_dropout": (lambda N: N.MultiLayerNetExtend(4, [6], 3, activation="sigmoid",
                                                          use_dropout=True, use_batchnorm=True,
                                                          weight_decay_lambda=0.1,
                                                          weight_decay_type="L1"),
                          (4,), 3, True),
    "simple_conv_square": (lambda N: N.SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3},
                                                     hidden_size=4, output_size=3,
                                                     weight_init_std=0.3), (1, 6, 6), 3, False),
    "simple_conv_rect": (lambda N: N.SimpleConvNet((2, 7, 5), {"filter_num": 2, "filter_size": 3,
                                                               "pad": 1, "stride": 2},
                                                   hidden_size=4, output_size=3,
                                                   weight_init_std="he"), (2, 7, 5), 3, False),
    "deep_conv": (lambda N: N.DeepConvNet((1, 8, 8), hidden_size=5, output_size=3,
                                          **_small_deep_params()), (1, 8, 8), 3, True),
    "alexnet": (lambda N: N.SmallAlexNet((1, 8, 8), filter_nums=(2, 2, 3, 3, 2),
                                         filter_sizes=(3, 3, 3, 2, 3), hidden_sizes=(4, 5),
                                         output_size=3, dropout_ratio=0.3,
                                         weight_decay_lambda=0.05), (1, 8, 8), 3, True),
    "alexnet_rect_l1": (lambda N: N.SmallAlexNet((2, 9, 7), filter_nums=(2, 3, 2),
                                                 filter_sizes=(3, 5, 3), hidden_sizes=(4,),
                                                 output_size=3, pool_after=(1, 3),
                                                 weight_decay_lambda=0.05,
                                                 weight_decay_type="l1"), (2, 9, 7), 3, True),
}


def _data(shape, classes, n=5, seed=1):
    rng = np.random.RandomState(seed)
    x = 0.5 * rng.randn(n, *shape)
    t = rng.randint(0, classes, size=n)
    return x, t


def _rel_err(a, b):
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else np.linalg.norm(a - b) / denom


def _held_arrays(net):
    """ids of every parameter array the layers hold."""
    layers = net.layers.values() if isinstance(net.layers, dict) else net.layers
    held = set()
    for layer in layers:
        for attr in ("W", "b", "gamma", "beta"):
            if hasattr(layer, attr):
                held.add(id(getattr(layer, attr)))
    return held


def _assert_shared(net):
    held = _held_arrays(net)
    for key, p in net.params.items():
        assert id(p) in held, f"params[{key!r}] is not the array a layer holds"
    assert len(held) == len(net.params)


class _Float32Nets:
    """Stands in for a nets module: every class is built with ``dtype=float32``."""

    def __init__(self, nets):
        self._nets = nets

    def __getattr__(self, attr):
        cls = getattr(self._nets, attr)
        return lambda *args, **kwargs: cls(*args, dtype=F32, **kwargs)


@pytest.fixture(params=sorted(CASES))
def case(request):
    return request.param


# --------------------------------------------------------------------------- gradients

def _jitter_biases(net, seed=6):
    """Non-zero biases, changed in place: zero biases put ReLU inputs exactly on the kink
    wherever a convolution only sees padding (DeepConvNet's pad-2 conv)."""
    rng = np.random.RandomState(seed)
    for key, p in net.params.items():
        if key.startswith("b"):
            p += 0.1 * rng.randn(*p.shape)


def test_gradient_matches_numerical(backend, ref, case):
    factory, shape, classes, random = CASES[case]
    net = factory(backend.nets)
    _jitter_biases(net)
    x, _ = _data(shape, classes)
    # Teach the predicted classes: the 1e-7 inside the loss's log biases the numerical
    # gradient by about 1e-7/y relative, so keep the teacher's probability y away from 0.
    t = np.argmax(net.predict(x), axis=1)

    if random:
        # Dropout draws a fresh mask per forward: draw the same one every time.
        np.random.seed(3)
        grads = net.gradient(x, t)

        def f(_):
            np.random.seed(3)
            return net.loss(x, t, train_flg=True)

        num = {k: ref.gradient.numerical_gradient(f, net.params[k]) for k in net.params}
    else:
        grads = net.gradient(x, t)
        num = net.numerical_gradient(x, t)

    assert set(grads) == set(net.params) == set(num)
    for key in net.params:
        assert grads[key].shape == net.params[key].shape
        err = _rel_err(grads[key], num[key])
        assert err < 1e-6 or np.max(np.abs(grads[key] - num[key])) < 1e-10, (key, err)


def test_gradient_with_one_hot_teacher(backend):
    net = backend.nets.MultiLayerNet(4, [5], 3, weight_decay_lambda=0.1)
    x, t = _data((4,), 3)
    one_hot = np.eye(3)[t]
    g_labels = net.gradient(x, t)
    l_labels = net.loss(x, t)
    g_onehot = net.gradient(x, one_hot)
    assert net.loss(x, one_hot) == pytest.approx(l_labels, rel=1e-12)
    for key in g_labels:
        np.testing.assert_allclose(g_onehot[key], g_labels[key], rtol=1e-12, atol=1e-15)


def test_weight_decay_terms(backend):
    N = backend.nets
    x, t = _data((4,), 3)
    np.random.seed(0)
    plain = N.MultiLayerNet(4, [5, 4], 3)
    for kind, lam in (("l2", 0.3), ("l1", 0.3)):
        np.random.seed(0)
        net = N.MultiLayerNet(4, [5, 4], 3, weight_decay_lambda=lam, weight_decay_type=kind)
        Ws = [net.params[f"W{i}"] for i in (1, 2, 3)]
        if kind == "l2":
            extra = sum(0.5 * lam * np.sum(W ** 2) for W in Ws)
        else:
            extra = sum(lam * np.sum(np.abs(W)) for W in Ws)
        assert net.loss(x, t) == pytest.approx(plain.loss(x, t) + extra, rel=1e-12)
        g, g0 = net.gradient(x, t), plain.gradient(x, t)
        for i, W in zip((1, 2, 3), Ws):
            decay = lam * W if kind == "l2" else lam * np.sign(W)
            np.testing.assert_allclose(g[f"W{i}"], g0[f"W{i}"] + decay, rtol=1e-12, atol=1e-15)
            np.testing.assert_array_equal(g[f"b{i}"], g0[f"b{i}"])


def test_bad_weight_decay_type(backend):
    with pytest.raises(ValueError, match="weight_decay_type"):
        backend.nets.MultiLayerNet(4, [5], 3, weight_decay_lambda=0.1, weight_decay_type="l3")


# --------------------------------------------------------------------------- sharing

def test_optimizer_update_reaches_layers(backend, case):
    factory, shape, classes, _ = CASES[case]
    net = factory(backend.nets)
    x, t = _data(shape, classes)
    _assert_shared(net)
    ids = {k: id(p) for k, p in net.params.items()}
    before = {k: p.copy() for k, p in net.params.items()}
    y_before = net.predict(x)

    grads = net.gradient(x, t)
    backend.optimizer.SGD(lr=0.5).update(net.params, grads)

    assert {k: id(p) for k, p in net.params.items()} == ids
    _assert_shared(net)
    for key in net.params:
        np.testing.assert_allclose(net.params[key], before[key] - 0.5 * grads[key],
                                   rtol=1e-12, atol=1e-15)
    assert not np.array_equal(net.predict(x), y_before)


def test_layers_reread_rebound_weights(backend):
    net = backend.nets.TwoLayerNet(4, 5, 3, weight_init_std=0.5)
    x, _ = _data((4,), 3)
    net.layers["Affine2"].W = np.zeros_like(net.params["W2"])
    np.testing.assert_array_equal(net.predict(x), np.broadcast_to(net.params["b2"], (5, 3)))


# --------------------------------------------------------------------------- layout

def test_two_layer_net_layout(backend):
    L = backend.layers
    net = backend.nets.TwoLayerNet(4, 5, 3)
    assert list(net.layers) == ["Affine1", "Relu1", "Affine2"]
    assert isinstance(net.layers["Relu1"], L.Relu)
    assert isinstance(net.last_layer, L.SoftmaxWithLoss)
    assert net.lastLayer is net.last_layer
    assert list(net.params) == ["W1", "b1", "W2", "b2"]
    assert net.layers["Affine1"].W is net.params["W1"]


def test_multi_layer_net_layout(backend):
    L = backend.layers
    net = backend.nets.MultiLayerNet(4, [5, 6], 3, activation="Sigmoid")
    assert net.hidden_layer_num == 2
    assert list(net.layers) == ["Affine1", "Activation_function1", "Affine2",
                                "Activation_function2", "Affine3"]
    assert isinstance(net.layers["Activation_function1"], L.Sigmoid)
    assert net.params["W2"].shape == (5, 6)
    assert isinstance(net.last_layer, L.SoftmaxWithLoss)
    with pytest.raises(ValueError, match="activation"):
        backend.nets.MultiLayerNet(4, [5], 3, activation="tanh")


def test_extend_layout_and_alias(backend, ref):
    L, N = backend.layers, backend.nets
    net = N.MultiLayerNetExtend(4, [5, 6], 3, use_dropout=True, use_batchnorm=True,
                                dropout_ration=0.2)
    assert isinstance(net, ref.nets.MultiLayerNet)  # one builder shared, not copied
    assert list(net.layers) == ["Affine1", "BatchNorm1", "Activation_function1", "Dropout1",
                                "Affine2", "BatchNorm2", "Activation_function2", "Dropout2",
                                "Affine3"]
    assert isinstance(net.layers["BatchNorm1"], L.BatchNormalization)
    assert net.layers["Dropout2"].dropout_ratio == 0.2
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3",
                                "gamma1", "beta1", "gamma2", "beta2"]
    np.testing.assert_array_equal(net.params["gamma2"], np.ones(6))
    np.testing.assert_array_equal(net.params["beta1"], np.zeros(5))
    assert net.layers["BatchNorm2"].gamma is net.params["gamma2"]
    # Positional order of the book: ..., weight_decay_lambda, use_dropout, ratio, use_batchnorm
    net = N.MultiLayerNetExtend(4, [5], 3, "relu", "relu", 0, True, 0.25, False)
    assert net.layers["Dropout1"].dropout_ratio == 0.25
    assert "BatchNorm1" not in net.layers
    with pytest.raises(TypeError, match="dropout_ration"):
        N.MultiLayerNetExtend(4, [5], 3, use_dropout=True, dropout_ratio=0.1, dropout_ration=0.2)


def test_extend_train_flg(backend):
    net = backend.nets.MultiLayerNetExtend(4, [5], 3, use_dropout=True, dropout_ratio=0.4,
                                           use_batchnorm=True)
    x, t = _data((4,), 3, n=6)
    # Test mode is deterministic; training mode draws a dropout mask.
    np.testing.assert_array_equal(net.predict(x), net.predict(x, train_flg=False))
    np.random.seed(7)
    y1 = net.predict(x, train_flg=True)
    np.random.seed(8)
    y2 = net.predict(x, train_flg=True)
    assert not np.array_equal(y1, y2)
    # BN keeps running statistics from training-mode passes and uses them at test time.
    assert net.layers["BatchNorm1"].running_mean is not None
    net.gradient(x, t)
    assert net.layers["Dropout1"].mask is not None
    # loss defaults to test mode
    assert net.loss(x, t) == net.loss(x, t, train_flg=False)


def test_deep_conv_net_layout(backend):
    L = backend.layers
    net = backend.nets.DeepConvNet()
    assert isinstance(net.layers, list) and len(net.layers) == 20
    convs = [0, 2, 5, 7, 10, 12]
    for i, idx in enumerate(convs, start=1):
        assert isinstance(net.layers[idx], L.Convolution)
        assert net.layers[idx].W is net.params[f"W{i}"]
        assert isinstance(net.layers[idx + 1], L.Relu)
    assert net.layers[7].pad == 2 and net.layers[5].pad == 1
    for idx in (4, 9, 14):
        assert isinstance(net.layers[idx], L.Pooling)
    assert isinstance(net.layers[15], L.Affine) and net.layers[15].W is net.params["W7"]
    assert isinstance(net.layers[17], L.Dropout) and net.layers[17].dropout_ratio == 0.5
    assert isinstance(net.layers[18], L.Affine) and net.layers[18].W is net.params["W8"]
    assert isinstance(net.layers[19], L.Dropout)
    assert isinstance(net.last_layer, L.SoftmaxWithLoss)


def test_simple_conv_net_layout(backend):
    L = backend.layers
    net = backend.nets.SimpleConvNet()
    assert list(net.layers) == ["Conv1", "Relu1", "Pool1", "Affine1", "Relu2", "Affine2"]
    assert isinstance(net.layers["Pool1"], L.Pooling)
    assert (net.layers["Pool1"].pool_h, net.layers["Pool1"].pool_w,
            net.layers["Pool1"].stride) == (2, 2, 2)
    assert net.params["W1"].shape == (30, 1, 5, 5)
    assert net.params["W2"].shape == (30 * 12 * 12, 100)
    assert net.params["W3"].shape == (100, 10)


# --------------------------------------------------------------------------- initialisation

@pytest.mark.parametrize("std, rule", [
    ("relu", lambda n: np.sqrt(2.0 / n)), ("He", lambda n: np.sqrt(2.0 / n)),
    ("sigmoid", lambda n: np.sqrt(1.0 / n)), ("XAVIER", lambda n: np.sqrt(1.0 / n)),
    (0.05, lambda n: 0.05),
])
def test_multi_layer_init_scales(backend, std, rule):
    sizes = [5, 4, 3, 2]
    np.random.seed(11)
    net = backend.nets.MultiLayerNet(5, [4, 3], 2, weight_init_std=std)
    np.random.seed(11)
    for i in range(1, 4):
        expected = rule(sizes[i - 1]) * np.random.randn(sizes[i - 1], sizes[i])
        np.testing.assert_array_equal(net.params[f"W{i}"], expected)
        np.testing.assert_array_equal(net.params[f"b{i}"], np.zeros(sizes[i]))


def test_extend_init_matches_multi_layer(backend):
    np.random.seed(2)
    a = backend.nets.MultiLayerNet(5, [4, 3], 2, weight_init_std="sigmoid")
    np.random.seed(2)
    b = backend.nets.MultiLayerNetExtend(5, [4, 3], 2, weight_init_std="sigmoid",
                                         use_batchnorm=True)
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])


def test_bad_weight_init_std(backend):
    with pytest.raises(ValueError, match="weight_init_std"):
        backend.nets.MultiLayerNet(4, [5], 3, weight_init_std="gaussian")


def test_two_layer_and_simple_conv_draws(backend):
    np.random.seed(4)
    net = backend.nets.TwoLayerNet(4, 5, 3)
    np.random.seed(4)
    np.testing.assert_array_equal(net.params["W1"], 0.01 * np.random.randn(4, 5))
    np.testing.assert_array_equal(net.params["W2"], 0.01 * np.random.randn(5, 3))

    np.random.seed(4)
    net = backend.nets.SimpleConvNet((2, 7, 5), {"filter_num": 3, "filter_size": 3, "pad": 1,
                                                 "stride": 2}, hidden_size=4, output_size=3)
    # conv: (7+2-3)//2+1 = 4, (5+2-3)//2+1 = 3; pool 2x2/2: 2, 1
    np.random.seed(4)
    np.testing.assert_array_equal(net.params["W1"], 0.01 * np.random.randn(3, 2, 3, 3))
    np.testing.assert_array_equal(net.params["W2"], 0.01 * np.random.randn(3 * 2 * 1, 4))
    np.testing.assert_array_equal(net.params["W3"], 0.01 * np.random.randn(4, 3))
    assert net.predict(np.random.randn(2, 2, 7, 5)).shape == (2, 3)


def test_simple_conv_partial_conv_param(backend):
    net = backend.nets.SimpleConvNet((1, 10, 10), {"filter_num": 4}, hidden_size=6)
    # filter_size 5, pad 0, stride 1 from the defaults: conv 6x6, pool 3x3
    assert net.params["W1"].shape == (4, 1, 5, 5)
    assert net.params["W2"].shape == (4 * 3 * 3, 6)


def _deep_expected(input_dim, hidden, out, seed):
    """Redraw DeepConvNet's weights by hand: fan-ins and shapes written out."""
    C, H, W = input_dim
    spec = [(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]
    np.random.seed(seed)
    expected = {}
    for i, (fn, pad) in enumerate(spec, start=1):
        expected[f"W{i}"] = np.sqrt(2.0 / (C * 9)) * np.random.randn(fn, C, 3, 3)
        H, W, C = H + 2 * pad - 2, W + 2 * pad - 2, fn
        if i % 2 == 0:
            H, W = H // 2, W // 2
    flat = C * H * W
    expected["W7"] = np.sqrt(2.0 / flat) * np.random.randn(flat, hidden)
    expected["W8"] = np.sqrt(2.0 / hidden) * np.random.randn(hidden, out)
    return expected, flat


@pytest.mark.parametrize("input_dim, hidden, out, flat", [
    ((1, 28, 28), 50, 10, 64 * 4 * 4),
    ((3, 16, 12), 7, 4, 64 * 2 * 2),
])
def test_deep_conv_init(backend, input_dim, hidden, out, flat):
    np.random.seed(5)
    kwargs = {} if input_dim == (1, 28, 28) else dict(input_dim=input_dim, hidden_size=hidden,
                                                      output_size=out)
    net = backend.nets.DeepConvNet(**kwargs)
    expected, flat_expected = _deep_expected(input_dim, hidden, out, seed=5)
    assert flat_expected == flat
    assert net.params["W7"].shape == (flat, hidden)
    for key, val in expected.items():
        np.testing.assert_array_equal(net.params[key], val)
    for i, n in enumerate([16, 16, 32, 32, 64, 64, hidden, out], start=1):
        np.testing.assert_array_equal(net.params[f"b{i}"], np.zeros(n))
    x = np.random.randn(2, *input_dim)
    assert net.predict(x).shape == (2, out)


@pytest.mark.parametrize("name", ["two_layer", "multi_l2", "extend_bn", "simple_conv_rect",
                                  "deep_conv"])
def test_float32_draws_match_float64(backend, name):
    factory = CASES[name][0]

    np.random.seed(9)
    n64 = factory(backend.nets)
    np.random.seed(9)
    n32 = factory(_Float32Nets(backend.nets))
    assert list(n32.params) == list(n64.params)
    for key in n64.params:
        assert n32.params[key].dtype == F32
        np.testing.assert_array_equal(n32.params[key], n64.params[key].astype(F32))
    assert all(p.dtype == F64 for p in n64.params.values())


@pytest.mark.parametrize("name", ["two_layer", "multi_relu", "multi_l1", "extend_dropout"])
def test_float32_end_to_end(backend, name):
    factory, shape, classes, _ = CASES[name]

    net = factory(_Float32Nets(backend.nets))
    x, t = _data(shape, classes)
    x = x.astype(F32)
    assert net.predict(x).dtype == F32
    assert np.asarray(net.loss(x, t)).dtype == F32
    grads = net.gradient(x, t)
    assert all(g.dtype == F32 for g in grads.values())
    backend.optimizer.Adam(lr=0.01).update(net.params, grads)
    assert all(p.dtype == F32 for p in net.params.values())
    _assert_shared(net)


@pytest.mark.parametrize("name", ["simple_conv_square", "deep_conv", "extend_bn"])
def test_float32_conv_and_bn_nets_run(backend, name):
    """float32 conv/BN nets train and keep float32 throughout (no silent float64 upcast)."""
    factory, shape, classes, _ = CASES[name]

    net = factory(_Float32Nets(backend.nets))
    x, t = _data(shape, classes)
    x = x.astype(F32)
    grads = net.gradient(x, t)
    backend.optimizer.SGD(lr=0.1).update(net.params, grads)
    assert all(p.dtype == F32 for p in net.params.values())
    _assert_shared(net)
    assert net.predict(x).dtype == F32
    assert all(g.dtype == F32 for g in grads.values())


def test_bad_dtype(backend):
    with pytest.raises(TypeError, match="dtype"):
        backend.nets.TwoLayerNet(4, 5, 3, dtype=np.int32)


# --------------------------------------------------------------------------- accuracy

def test_accuracy_labels_and_one_hot(backend):
    net = backend.nets.TwoLayerNet(4, 5, 3, weight_init_std=0.5)
    x, t = _data((4,), 3, n=9)
    pred = np.argmax(net.predict(x), axis=1)
    expected = np.sum(pred == t) / 9.0
    assert net.accuracy(x, t) == expected
    assert net.accuracy(x, np.eye(3)[t]) == expected
    assert net.accuracy(x, pred) == 1.0


@pytest.mark.parametrize("name", ["simple_conv_square", "deep_conv"])
def test_conv_accuracy_counts_the_partial_batch(backend, name):
    """7 samples in batches of 3: the last sample counts (the toolkit skipped it)."""
    factory, shape, classes, _ = CASES[name]
    net = factory(backend.nets)
    x, _ = _data(shape, classes, n=7)
    pred = np.argmax(net.predict(x, train_flg=False), axis=1)
    assert net.accuracy(x, pred, batch_size=3) == 1.0
    wrong_last = pred.copy()
    wrong_last[-1] = (pred[-1] + 1) % classes
    assert net.accuracy(x, wrong_last, batch_size=3) == 6 / 7
    wrong_first = pred.copy()
    wrong_first[0] = (pred[0] + 1) % classes
    assert net.accuracy(x, wrong_first, batch_size=3) == 6 / 7
    # default batch_size=100 > N: a single partial batch
    assert net.accuracy(x, wrong_last) == 6 / 7
    assert net.accuracy(x, np.eye(classes)[wrong_last], batch_size=2) == 6 / 7


def test_deep_conv_modes(backend):
    factory, shape, classes, _ = CASES["deep_conv"]
    net = factory(backend.nets)
    x, t = _data(shape, classes, n=4)
    # predict defaults to test mode (deterministic); loss to training mode (dropout on)
    np.testing.assert_array_equal(net.predict(x), net.predict(x, train_flg=False))
    np.random.seed(1)
    a = net.loss(x, t)
    np.random.seed(2)
    b = net.loss(x, t)
    assert a != b
    np.random.seed(1)
    assert net.loss(x, t, train_flg=True) == a
    assert net.loss(x, t, train_flg=False) == net.loss(x, t, train_flg=False)


# --------------------------------------------------------------------------- save / load

def test_save_writes_plain_dict(backend, case, tmp_path):
    net = CASES[case][0](backend.nets)
    path = tmp_path / "p.pkl"
    net.save_params(str(path))
    with open(path, "rb") as f:
        loaded = pickle.load(f)
    assert type(loaded) is dict
    assert list(loaded) == list(net.params)
    for key, val in loaded.items():
        assert type(val) is np.ndarray and val.dtype == F64
        np.testing.assert_array_equal(val, net.params[key])


@pytest.mark.filterwarnings("ignore:save_params.*pickle format:UserWarning")
def test_load_into_fresh_net(backend, case, tmp_path):
    factory, shape, classes, _ = CASES[case]
    np.random.seed(1)
    a = factory(backend.nets)
    x, t = _data(shape, classes)
    backend.optimizer.SGD(lr=0.3).update(a.params, a.gradient(x, t))  # move off the init
    path = tmp_path / "p.pkl"
    a.save_params(str(path))

    def outputs(net):
        # training mode with a fixed dropout mask: BN running statistics are not saved
        np.random.seed(0)
        return net.predict(x, train_flg=True)

    np.random.seed(2)
    b = factory(backend.nets)
    assert not np.array_equal(outputs(a), outputs(b))
    b.load_params(str(path))
    _assert_shared(b)
    np.testing.assert_array_equal(outputs(b), outputs(a))
    for key in a.params:
        np.testing.assert_array_equal(b.params[key], a.params[key])


def test_load_hand_made_dict(backend, tmp_path):
    net = backend.nets.MultiLayerNetExtend(4, [5], 3, use_batchnorm=True)
    made = {key: np.full(p.shape, 0.25) for key, p in net.params.items()}
    path = tmp_path / "hand.pkl"
    with open(path, "wb") as f:
        pickle.dump(made, f)
    net.load_params(str(path))
    _assert_shared(net)
    assert net.layers["BatchNorm1"].gamma is net.params["gamma1"]
    for key in made:
        np.testing.assert_array_equal(net.params[key], made[key])


def test_load_partial_and_default_file_name(backend, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = backend.nets.TwoLayerNet(4, 5, 3)
    W2 = net.params["W2"]
    with open("params.pkl", "wb") as f:
        pickle.dump({"W1": np.ones((4, 5))}, f)
    net.load_params()
    np.testing.assert_array_equal(net.params["W1"], np.ones((4, 5)))
    assert net.layers["Affine1"].W is net.params["W1"]
    assert net.params["W2"] is W2
    net.save_params()
    with open(tmp_path / "params.pkl", "rb") as f:
        assert sorted(pickle.load(f)) == ["W1", "W2", "b1", "b2"]


def test_load_rejects_bad_files_untouched(backend, tmp_path):
    net = backend.nets.TwoLayerNet(4, 5, 3)
    before = {k: p for k, p in net.params.items()}
    for bad, what in (({"W1": np.ones((4, 5)), "W9": np.ones(2)}, "W9"),
                      ({"W1": np.ones((4, 5)), "W2": np.ones((3, 5))}, "W2")):
        path = tmp_path / "bad.pkl"
        with open(path, "wb") as f:
            pickle.dump(bad, f)
        with pytest.raises(ValueError, match=what):
            net.load_params(str(path))
        assert all(net.params[k] is before[k] for k in before)
        assert net.layers["Affine1"].W is before["W1"]


def test_float32_net_loads_float64_pickle(backend, tmp_path):
    a = backend.nets.TwoLayerNet(4, 5, 3)
    path = tmp_path / "p.pkl"
    a.save_params(str(path))
    b = backend.nets.TwoLayerNet(4, 5, 3, dtype=F32)
    b.load_params(str(path))
    assert all(p.dtype == F32 for p in b.params.values())
    _assert_shared(b)
    np.testing.assert_array_equal(b.params["W1"], a.params["W1"].astype(F32))


# --------------------------------------------------------------------------- extension seam

def test_subclass_swaps_the_layer_module(ref):
    """Native networks subclass the reference ones and set only ``_L``."""
    import types

    built = []

    class CountingAffine(ref.layers.Affine):
        def __init__(self, W, b):
            built.append(self)
            super().__init__(W, b)

    layer_module = types.SimpleNamespace(**{name: getattr(ref.layers, name)
                                            for name in dir(ref.layers)
                                            if not name.startswith("_")})
    layer_module.Affine = CountingAffine

    for base, n_affine in ((ref.nets.TwoLayerNet, 2), (ref.nets.MultiLayerNetExtend, 3),
                           (ref.nets.SimpleConvNet, 2), (ref.nets.DeepConvNet, 2)):
        sub = type("Sub" + base.__name__, (base,), {"_L": layer_module})
        built.clear()
        if base is ref.nets.MultiLayerNetExtend:
            net = sub(4, [5, 4], 3, use_dropout=True, use_batchnorm=True)
        elif base is ref.nets.TwoLayerNet:
            net = sub(4, 5, 3)
        elif base is ref.nets.SimpleConvNet:
            net = sub((1, 6, 6), {"filter_num": 2, "filter_size": 3}, hidden_size=4)
        else:
            net = sub((1, 8, 8), hidden_size=4, **_small_deep_params())
        assert len(built) == n_affine
        _assert_shared(net)


# --------------------------------------------------------------------------- SmallAlexNet

def test_small_alexnet_layout(backend):
    L = backend.layers
    net = backend.nets.SmallAlexNet()
    assert list(net.layers) == ["Conv1", "Relu1", "Pool1", "Conv2", "Relu2", "Pool2",
                                "Conv3", "Relu3", "Conv4", "Relu4", "Conv5", "Relu5", "Pool5",
                                "Affine1", "Relu6", "Dropout1", "Affine2", "Relu7", "Dropout2",
                                "Affine3"]
    shapes = {"W1": (16, 1, 5, 5), "W2": (32, 16, 3, 3), "W3": (48, 32, 3, 3),
              "W4": (48, 48, 3, 3), "W5": (32, 48, 3, 3), "W6": (32 * 3 * 3, 128),
              "W7": (128, 128), "W8": (128, 10)}
    assert list(net.params) == [f"{k}{i}" for i in range(1, 9) for k in "Wb"]
    for key, shape in shapes.items():
        assert net.params[key].shape == shape
    for i in range(1, 6):
        conv = net.layers[f"Conv{i}"]
        assert isinstance(conv, L.Convolution) and conv.W is net.params[f"W{i}"]
        assert (conv.stride, conv.pad) == (1, net.params[f"W{i}"].shape[2] // 2)
    for key in ("Pool1", "Pool2", "Pool5"):
        pool = net.layers[key]
        assert isinstance(pool, L.Pooling) and (pool.pool_h, pool.pool_w, pool.stride) == (2, 2, 2)
    assert isinstance(net.layers["Dropout2"], L.Dropout)
    assert net.layers["Dropout1"].dropout_ratio == 0.5
    assert net.layers["Affine3"].W is net.params["W8"]
    x = np.random.rand(2, 1, 28, 28)
    assert net.predict(x).shape == (2, 10)


def test_small_alexnet_he_init(backend):
    np.random.seed(4)
    net = backend.nets.SmallAlexNet((3, 12, 12), filter_nums=(4, 5, 6, 6, 5),
                                    hidden_sizes=(7,), output_size=4)
    np.random.seed(4)
    fan_ins = [3 * 25, 4 * 9, 5 * 9, 6 * 9, 6 * 9, 5 * 1 * 1, 7]
    # 12 -> pool 6 -> pool 3 -> (convs keep 3) -> pool 1: the first affine sees 5*1*1
    shapes = [(4, 3, 5, 5), (5, 4, 3, 3), (6, 5, 3, 3), (6, 6, 3, 3), (5, 6, 3, 3), (5, 7),
              (7, 4)]
    for i, (fan_in, shape) in enumerate(zip(fan_ins, shapes), start=1):
        expected = np.sqrt(2.0 / fan_in) * np.random.randn(*shape)
        np.testing.assert_array_equal(net.params[f"W{i}"], expected)
        assert not net.params[f"b{i}"].any()


def test_small_alexnet_bad_arguments(backend):
    N = backend.nets
    with pytest.raises(ValueError, match="same"):
        N.SmallAlexNet(filter_nums=(4, 4), filter_sizes=(3,))
    with pytest.raises(ValueError, match="pool_after"):
        N.SmallAlexNet(filter_nums=(4, 4), filter_sizes=(3, 3), pool_after=(3,))
    with pytest.raises(ValueError, match="pool"):
        N.SmallAlexNet((1, 4, 4), filter_nums=(2, 2, 2), filter_sizes=(3, 3, 3),
                       pool_after=(1, 2, 3))


def test_small_alexnet_modes(backend):
    net = CASES["alexnet"][0](backend.nets)
    x, t = _data((1, 8, 8), 3, n=4)
    # loss defaults to test mode (deterministic), unlike DeepConvNet
    assert net.loss(x, t) == net.loss(x, t) == net.loss(x, t, train_flg=False)
    np.random.seed(1)
    a = net.loss(x, t, train_flg=True)
    np.random.seed(2)
    assert net.loss(x, t, train_flg=True) != a


# --------------------------------------------------------------------------- first layer, last_loss

def test_first_layer_skips_its_input_gradient(backend, case):
    factory, shape, classes, random = CASES[case]
    net = factory(backend.nets)
    layers = list(net.layers.values() if isinstance(net.layers, dict) else net.layers)
    assert layers[0].skip_dx is True
    assert all(not getattr(layer, "skip_dx", False) for layer in layers[1:])
    x, t = _data(shape, classes)
    np.random.seed(3)
    grads = net.gradient(x, t)
    # The gradient is the one of a network whose first layer computes dx as usual.
    layers[0].skip_dx = False
    np.random.seed(3)
    full = net.gradient(x, t)
    for key in grads:
        np.testing.assert_array_equal(grads[key], full[key])
    layers[0].skip_dx = True
    out = layers[0].forward(x)
    assert layers[0].backward(np.ones_like(out)) is None


def test_gradient_leaves_last_loss(backend, case):
    factory, shape, classes, random = CASES[case]
    net = factory(backend.nets)
    x, t = _data(shape, classes)
    np.random.seed(3)
    net.gradient(x, t)
    np.random.seed(3)
    assert net.last_loss == net.loss(x, t, train_flg=True)


# --------------------------------------------------------------------------- native == reference

def test_native_matches_reference(ref, case):
    """Same seed, same data: the native network gives the reference's loss and gradients."""
    from nnfast import nets as native_nets

    factory, shape, classes, _ = CASES[case]
    np.random.seed(11)
    a = factory(ref.nets)
    np.random.seed(11)
    b = factory(native_nets)
    assert type(b).__mro__[1] is type(a)
    x, t = _data(shape, classes, n=6)
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
    np.random.seed(12)
    ga = a.gradient(x, t)
    np.random.seed(12)
    gb = b.gradient(x, t)
    np.testing.assert_allclose(b.last_loss, a.last_loss, rtol=1e-12)
    for key in ga:
        np.testing.assert_allclose(gb[key], ga[key], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b.predict(x), a.predict(x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["SimpleConvNet", "DeepConvNet"])
def test_reference_pickle_loads_into_native_net(ref, tmp_path, name):
    """Weights written by a reference network (the published pretrained files have this format:
    a plain dict of float64 arrays) give the native network the same predictions."""
    from nnfast import nets as native_nets

    np.random.seed(21)
    trained = getattr(ref.nets, name)()
    for key, p in trained.params.items():   # stand-in for training: move off the init
        p += 0.01 * np.random.randn(*p.shape)
    path = tmp_path / "params.pkl"
    trained.save_params(str(path))
    with open(path, "rb") as f:
        saved = pickle.load(f)
    assert type(saved) is dict and all(v.dtype == F64 for v in saved.values())

    np.random.seed(22)
    native = getattr(native_nets, name)()
    native.load_params(str(path))
    x = np.random.rand(7, 1, 28, 28)
    np.testing.assert_allclose(native.predict(x), trained.predict(x), rtol=1e-11, atol=1e-13)
    t = np.argmax(trained.predict(x), axis=1)
    assert native.accuracy(x, t) == 1.0
    # float32 network from the same float64 pickle
    np.random.seed(22)
    native32 = getattr(native_nets, name)(dtype=F32)
    native32.load_params(str(path))
    np.testing.assert_allclose(native32.predict(x.astype(F32)), trained.predict(x),
                               rtol=1e-4, atol=1e-5)
