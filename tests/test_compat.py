"""nnfast.compat: names, signatures, quirks and state of the book and course profiles."""
import inspect
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest

import nnfast.compat as compat

PROFILES = ("book", "course")


@pytest.fixture
def installed():
    """Install a profile for one test and always undo it."""
    def _install(name, backend="native"):
        return compat.install(name, backend)
    yield _install
    compat.uninstall()


def star(module_name):
    ns = {}
    exec(f"from {module_name} import *", ns)
    ns.pop("__builtins__")
    return ns


# -- what `from common.<m> import *` exports (the originals' public top-level names) -----

BOOK_FUNCTIONS = {"np", "identity_function", "step_function", "sigmoid", "sigmoid_grad",
                  "relu", "relu_grad", "softmax", "sum_squared_error", "cross_entropy_error",
                  "softmax_loss"}
BOOK_LAYERS = BOOK_FUNCTIONS | {"im2col", "col2im", "Relu", "Sigmoid", "Affine",
                                "SoftmaxWithLoss", "Dropout", "BatchNormalization",
                                "Convolution", "Pooling"}
BOOK_OPTIMIZER = {"np", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"}
STAR_SETS = {
    "book": {
        "functions": BOOK_FUNCTIONS,
        "gradient": {"np", "numerical_gradient", "numerical_gradient_2d"},
        "util": {"np", "smooth_curve", "shuffle_dataset", "conv_output_size", "im2col",
                 "col2im"},
        "layers": BOOK_LAYERS,
        "optimizer": BOOK_OPTIMIZER,
        "multi_layer_net": BOOK_LAYERS | {"sys", "os", "OrderedDict", "numerical_gradient",
                                          "MultiLayerNet"},
        "multi_layer_net_extend": BOOK_LAYERS | {"sys", "os", "OrderedDict",
                                                 "numerical_gradient", "MultiLayerNetExtend"},
        "trainer": BOOK_OPTIMIZER | {"sys", "os", "Trainer"},
    },
    "course": {
        "functions": {"np", "sigmoid", "relu", "step_function", "softmax", "softmax_with_loss",
                      "mean_squared_error", "cross_entropy_error", "d_sigmoid", "d_relu",
                      "d_step_function", "d_mean_squared_error", "d_softmax_with_loss",
                      "d_sigmoid_with_loss", "numerical_gradient", "im2col", "col2im"},
        "layers": {"sys", "os", "np", "functions", "OrderedDict", "Relu", "Sigmoid", "Affine",
                   "SoftmaxWithLoss", "Dropout", "BatchNormalization", "Convolution",
                   "Pooling", "MultiLayerNet", "DoubleConvNet"},
        "optimizer": {"np", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"},
        "trainer": {"sys", "os", "np", "optimizer", "Trainer"},
    },
}


@pytest.mark.parametrize("profile", PROFILES)
def test_star_imports_export_the_originals_names(installed, profile):
    installed(profile)
    assert set(compat.profile(profile).modules) == set(STAR_SETS[profile])
    for sub, expected in STAR_SETS[profile].items():
        names = star(f"common.{sub}")
        assert set(names) == expected, sub
        assert names["np"] is np
        if "OrderedDict" in names:
            import collections
            assert names["OrderedDict"] is collections.OrderedDict
        if "sys" in names:
            assert names["sys"] is sys and isinstance(names["os"], types.ModuleType)
    if profile == "course":
        assert star("common.layers")["functions"] is sys.modules["common.functions"]
        assert star("common.trainer")["optimizer"] is sys.modules["common.optimizer"]


def test_import_forms_and_uninstall(installed):
    installed("book")
    import common.optimizer
    from common import functions
    from common.layers import Relu
    assert common.optimizer.SGD is sys.modules["common.optimizer"].SGD
    assert functions.sum_squared_error is sys.modules["common.functions"].sum_squared_error
    assert Relu is compat.book.layers.Relu
    assert common.layers is compat.book.layers
    assert compat.installed().name == "book"
    # switching profiles replaces `common`
    compat.install("course")
    import common.layers as course_layers
    assert course_layers is compat.course.layers
    compat.uninstall()
    assert "common" not in sys.modules and "common.layers" not in sys.modules
    assert compat.installed() is None


def test_bad_profile_and_backend_names():
    with pytest.raises(ValueError, match="profile must be"):
        compat.install("cours")
    with pytest.raises(ValueError, match="backend must be"):
        compat.profile("book", "fast")


@pytest.mark.skipif(not __import__("nnfast").build_info()["compiled"],
                    reason="the compiled kernels are not in use (NNFAST_BACKEND=reference?)")
def test_profiles_are_built_on_the_native_classes():
    import nnfast.layers
    import nnfast.nets
    import nnfast.optimizer
    assert issubclass(compat.book.layers.Convolution, nnfast.layers.Convolution)
    assert issubclass(compat.course.layers.Pooling, nnfast.layers.Pooling)
    assert issubclass(compat.book.optimizer.Adam, nnfast.optimizer.Adam)
    assert issubclass(compat.book.simple_convnet.SimpleConvNet, nnfast.nets.SimpleConvNet)
    ref = compat.profile("book", "reference")
    import nnfast.reference.layers
    assert issubclass(ref.modules["layers"].Convolution, nnfast.reference.layers.Convolution)
    assert not issubclass(ref.modules["layers"].Convolution, nnfast.layers.Convolution)


# -- functions ----------------------------------------------------------------------------

def test_book_functions_quirks():
    F = compat.book.functions
    y = np.array([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]])
    t = np.array([[0, 1, 0], [0, 0, 1]])
    ce = F.cross_entropy_error(y, t)  # output first, teacher second
    assert type(ce) is np.float64
    assert ce == -(np.log(0.7 + 1e-7) + np.log(0.4 + 1e-7)) / 2
    assert F.cross_entropy_error(y, np.array([1, 2])) == ce
    assert F.sum_squared_error(y, t) == 0.5 * np.sum((y - t) ** 2)
    x = np.array([-1.0, 0.0, 2.0])
    assert F.relu_grad(x).tolist() == [0.0, 1.0, 1.0]  # 1 at 0
    assert F.step_function(x).dtype == np.dtype(int)
    assert isinstance(F.step_function(1.5), np.ndarray)  # a 0-d array, as np.array(...)
    assert F.relu(np.array([-2, 3])).dtype.kind == "i"
    x3 = np.random.randn(2, 3, 4)
    np.testing.assert_allclose(F.softmax(x3).sum(axis=-1), 1.0)  # last axis, any ndim
    assert compat.book.util.conv_output_size(28, 5, 2, 1) == 13.5  # true division


def test_course_functions_quirks():
    F = compat.course.functions
    y = np.array([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]])
    d = np.array([[0, 1, 0], [0, 0, 1]])
    assert F.cross_entropy_error(d, y) == compat.book.functions.cross_entropy_error(y, d)
    assert F.mean_squared_error(d, y) == np.mean((d - y) ** 2) / 2
    x = np.array([-1.0, 0.0, 2.0])
    assert F.d_relu(x).tolist() == [0, 0, 1] and F.d_relu(x).dtype.kind == "i"  # 0 at 0
    assert F.d_step_function(x) == 0 and type(F.d_step_function(x)) is int
    assert F.step_function(x).dtype.kind == "i"
    x3 = np.random.randn(2, 3, 4)
    np.testing.assert_allclose(F.softmax(x3).sum(), 1.0)  # not 2-D: one softmax overall
    x2 = np.random.randn(4, 3)
    np.testing.assert_array_equal(F.softmax(x2), compat.book.functions.softmax(x2))
    # a single one-hot sample: the course divides by d.shape[0] (the number of classes)
    y1, d1 = np.array([0.2, 0.5, 0.3]), np.array([0, 1, 0])
    np.testing.assert_allclose(F.d_softmax_with_loss(d1, y1), (y1 - d1) / 3, rtol=1e-15)


@pytest.mark.parametrize("profile", PROFILES)
def test_sigmoid_is_the_originals_formula_bit_for_bit(profile):
    F = getattr(compat, profile).functions
    x = np.random.randn(1000) * 5
    np.testing.assert_array_equal(F.sigmoid(x), 1 / (1 + np.exp(-x)))
    grad = F.sigmoid_grad(x) if profile == "book" else F.d_sigmoid(x)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_array_equal(grad, (1.0 - s) * s)


def test_numerical_gradient_forms():
    G = compat.book.gradient
    f = lambda v: np.sum(v ** 2)  # noqa: E731
    X = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(G.numerical_gradient(f, X.copy()), 2 * X, rtol=1e-6)
    rows = []
    G.numerical_gradient_2d(lambda row: rows.append(row.shape) or f(row), X.copy())
    assert set(rows) == {(3,)}  # the 2-D form hands f one row at a time
    C = compat.course.functions
    np.testing.assert_allclose(C.numerical_gradient(f, np.arange(4.0)), 2 * np.arange(4.0),
                               rtol=1e-6)


# -- layers -------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_relu_backward_writes_into_dout(profile):
    L = getattr(compat, profile).layers
    relu = L.Relu()
    relu.forward(np.array([[-1.0, 2.0], [0.0, 3.0]]))
    dout = np.ones((2, 2))
    dx = relu.backward(dout)
    assert dx is dout and dout.tolist() == [[0.0, 1.0], [0.0, 1.0]]
    ro = np.ones((2, 2))
    ro.flags.writeable = False
    assert relu.backward(ro).tolist() == [[0.0, 1.0], [0.0, 1.0]]  # falls back to a copy
    with pytest.raises(ValueError):
        relu.backward(np.ones(3))


@pytest.mark.parametrize("profile", PROFILES)
def test_pooling_default_stride_and_softmax_teacher_attribute(profile):
    L = getattr(compat, profile).layers
    # the book's current common/layers.py writes stride=2 (early printings had 1); the
    # course's writes stride=1
    stride = 2 if profile == "book" else 1
    assert L.Pooling(2, 2).stride == stride
    assert inspect.signature(L.Pooling).parameters["stride"].default == stride
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    assert L.Pooling(2, 2).forward(x).shape == ((1, 1, 2, 2) if stride == 2 else (1, 1, 3, 3))
    swl = L.SoftmaxWithLoss()
    t = np.array([0, 2])
    loss = swl.forward(np.array([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]]), t)
    assert type(loss) is np.float64
    teacher = "t" if profile == "book" else "d"
    assert {"loss", "y", teacher} <= _public_state(swl)
    assert set(vars(swl)) & {"t", "d"} == {teacher}  # the teacher is stored under its name
    np.testing.assert_array_equal(getattr(swl, teacher), t)
    assert swl.backward().shape == (2, 3)
    if profile == "course":
        assert list(inspect.signature(L.SoftmaxWithLoss.forward).parameters) == ["self", "x", "d"]


def _layer_cases(L, dtype):
    rng = np.random.RandomState(0)
    W4 = rng.randn(3, 2, 3, 3).astype(dtype)
    cases = [
        (lambda: L.Relu(), (5, 4), {}),
        (lambda: L.Sigmoid(), (5, 4), {}),
        (lambda: L.Affine(rng.randn(4, 3).astype(dtype), np.zeros(3, dtype)), (5, 4), {}),
        (lambda: L.Dropout(0.3), (5, 4), {"train_flg": True}),
        (lambda: L.BatchNormalization(np.ones(4, dtype), np.zeros(4, dtype)), (5, 4),
         {"train_flg": True}),
        (lambda: L.Convolution(W4, np.zeros(3, dtype), 1, 1), (2, 2, 5, 5), {}),
        (lambda: L.Pooling(2, 2, 2), (2, 2, 4, 4), {}),
    ]
    return cases


def _public_state(layer):
    """The attribute names a user can read: public instance attributes and properties."""
    names = {k for k in vars(layer) if not k.startswith("_")}
    for klass in type(layer).__mro__:
        names |= {k for k, v in vars(klass).items()
                  if isinstance(v, property) and not k.startswith("_")}
    return names


def _assert_same_state(a, b):
    """Every attribute the original layer has (``b``, reference-backed) reads the same on ``a``."""
    names = _public_state(b)
    assert names <= _public_state(a), names - _public_state(a)
    for key in names:
        va, vb = getattr(a, key), getattr(b, key)
        if isinstance(va, np.ndarray):
            assert va.dtype == vb.dtype, key
            np.testing.assert_allclose(va, vb, rtol=1e-12, atol=1e-14, err_msg=key)
        elif not isinstance(va, (types.ModuleType, type)):
            assert va == vb, key


@pytest.mark.parametrize("profile", PROFILES)
def test_layer_state_matches_the_reference_backed_profile(profile):
    nat = compat.profile(profile, "native").modules["layers"]
    ref = compat.profile(profile, "reference").modules["layers"]
    for (make_n, shape, kw), (make_r, _, _) in zip(_layer_cases(nat, np.float64),
                                                   _layer_cases(ref, np.float64)):
        x = np.random.RandomState(1).randn(*shape)
        ln, lr = make_n(), make_r()
        np.random.seed(5)
        out_n = ln.forward(x.copy(), **kw)
        np.random.seed(5)
        out_r = lr.forward(x.copy(), **kw)
        np.testing.assert_allclose(out_n, out_r, rtol=1e-12, atol=1e-14)
        dout = np.random.RandomState(2).randn(*out_n.shape)
        np.testing.assert_allclose(ln.backward(dout.copy()), lr.backward(dout.copy()),
                                   rtol=1e-12, atol=1e-14)
        _assert_same_state(ln, lr)
    swl_n, swl_r = nat.SoftmaxWithLoss(), ref.SoftmaxWithLoss()
    x, t = np.random.randn(4, 3), np.array([0, 1, 2, 1])
    assert swl_n.forward(x, t) == swl_r.forward(x, t)
    np.testing.assert_array_equal(swl_n.backward(), swl_r.backward())
    _assert_same_state(swl_n, swl_r)


def test_float32_stays_float32_in_convolution_and_pooling():
    L = compat.book.layers
    x = np.random.rand(2, 1, 6, 6).astype(np.float32)
    conv = L.Convolution(np.random.randn(2, 1, 3, 3).astype(np.float32),
                         np.zeros(2, np.float32))
    assert conv.forward(x).dtype == np.float32 and conv.col.dtype == np.float32
    assert L.Pooling(2, 2, 2).forward(x).dtype == np.float32
    assert compat.book.util.im2col(x, 3, 3).dtype == np.float32


# -- optimizers ---------------------------------------------------------------------------

def _nesterov_oracle(p, v, g, lr, m, older):
    p, v = p.copy(), v.copy()
    if older:
        v *= m
        v -= lr * g
        p += m * m * v
        p -= (1 + m) * lr * g
    else:
        p += m * m * v
        p -= (1 + m) * lr * g
        v *= m
        v -= lr * g
    return p, v


@pytest.mark.parametrize("profile", PROFILES)
def test_nesterov_order(profile):
    O = getattr(compat, profile).optimizer
    opt = O.Nesterov(0.1, 0.9)
    p0, g1, g2 = np.random.randn(5), np.random.randn(5), np.random.randn(5)
    params = {"w": p0.copy()}
    opt.update(params, {"w": g1})
    opt.update(params, {"w": g2})
    p, v = _nesterov_oracle(p0, np.zeros(5), g1, 0.1, 0.9, profile == "course")
    p, v = _nesterov_oracle(p, v, g2, 0.1, 0.9, profile == "course")
    np.testing.assert_array_equal(params["w"], p)
    np.testing.assert_array_equal(opt.v["w"], v)


def test_optimizer_signatures_and_learning_rate_attribute():
    B, C = compat.book.optimizer, compat.course.optimizer
    assert str(inspect.signature(B.Adam)) == "(lr=0.001, beta1=0.9, beta2=0.999)"
    assert str(inspect.signature(B.RMSprop)) == "(lr=0.01, decay_rate=0.99)"
    assert str(inspect.signature(C.Momentum)) == "(learning_rate=0.01, momentum=0.9)"
    assert list(inspect.signature(C.SGD.update).parameters) == ["self", "params", "grad"]
    sgd = C.SGD(learning_rate=0.5)
    assert vars(sgd) == {"learning_rate": 0.5}
    params = {"w": np.ones(2)}
    sgd.update(params, grad={"w": np.ones(2)})
    sgd.learning_rate = 0.25  # users decay the rate between updates
    sgd.update(params, {"w": np.ones(2)})
    assert params["w"].tolist() == [0.25, 0.25]
    with pytest.raises(TypeError):
        C.SGD(lr=0.1)


# -- networks and trainer -----------------------------------------------------------------

def test_book_networks():
    B = compat.book
    net = B.two_layer_net.TwoLayerNet(4, 5, 3)
    assert type(net.lastLayer).__name__ == "SoftmaxWithLoss" and net.lastLayer is net.last_layer
    ext = B.multi_layer_net_extend.MultiLayerNetExtend(4, [5], 3, use_dropout=True,
                                                      dropout_ration=0.3)
    assert ext.layers["Dropout1"].dropout_ratio == 0.3
    with pytest.raises(TypeError):
        B.multi_layer_net_extend.MultiLayerNetExtend(4, [5], 3, dropout_ratio=0.3)
    conv = B.simple_convnet.SimpleConvNet(
        input_dim=(1, 6, 6), conv_param={"filter_num": 2, "filter_size": 3, "pad": 0,
                                         "stride": 1}, hidden_size=4, output_size=3)
    x, t = np.random.rand(5, 1, 6, 6), np.array([0, 1, 2, 0, 1])
    pred = np.argmax(conv.predict(x[:4]), axis=1)
    # whole batches only (two of 2), divided by all 5 samples
    expected = np.sum(pred == t[:4]) / 5
    acc = conv.accuracy(x, t, batch_size=2)
    assert acc == expected and type(acc) is np.float64
    assert conv.accuracy(x, t, batch_size=10) == 0.0  # no whole batch at all


def test_pickled_layers_and_nets_load_back():
    L = compat.book.layers
    relu = pickle.loads(pickle.dumps(L.Relu()))
    assert type(relu) is L.Relu
    net = pickle.loads(pickle.dumps(compat.course.layers.MultiLayerNet(3, [4], 2)))
    assert type(net).__name__ == "MultiLayerNet"


def test_course_multilayer_net_and_double_convnet():
    L = compat.course.layers
    net = L.MultiLayerNet(6, [5, 4], 3, use_batchnorm=True, use_dropout=True,
                          dropout_ratio=0.2)
    assert isinstance(net.last_layer, L.SoftmaxWithLoss)
    assert list(inspect.signature(net.loss).parameters) == ["x", "d", "train_flg"]
    x, d = np.random.randn(8, 6), np.random.randint(0, 3, 8)
    grads = net.gradient(x, d)
    assert set(grads) == {"W1", "b1", "W2", "b2", "W3", "b3", "gamma1", "beta1", "gamma2",
                          "beta2"}
    assert hasattr(net.last_layer, "d") and "t" not in vars(net.last_layer)
    conv = L.DoubleConvNet()  # the course's default 28x28 geometry
    assert conv.params["W3"].shape == (2880, 50)
    assert conv.predict(np.random.rand(2, 1, 28, 28)).shape == (2, 10)


def test_trainers():
    x, t = np.random.randn(40, 4), np.random.randint(0, 3, 40)
    bt = compat.book.trainer.Trainer(compat.book.multi_layer_net.MultiLayerNet(4, [5], 3),
                                     x, t, x, t, epochs=1, mini_batch_size=20,
                                     verbose=False)
    assert bt.t_train is t and vars(bt.optimizer) == {"lr": 0.01}
    net = compat.course.layers.MultiLayerNet(4, [5], 3)
    ct = compat.course.trainer.Trainer(net, x, t, x, t, epochs=1, mini_batch_size=20,
                                       optimizer_name="rmsprpo",
                                       optimizer_param={"learning_rate": 0.05},
                                       verbose=False)
    assert type(ct.optimizer) is compat.course.optimizer.RMSprop
    assert ct.optimizer.learning_rate == 0.05
    assert ct.d_train is t and "t_train" not in vars(ct) and "d_test" in vars(ct)
    ct.train()
    assert len(ct.train_acc_list) == 1
    default = compat.course.trainer.Trainer(net, x, t, x, t, verbose=False)
    assert vars(default.optimizer) == {"learning_rate": 0.01}


# -- data sets and chapter modules ----------------------------------------------------------

@pytest.mark.parametrize("profile, module", [("book", "dataset.mnist"), ("course", "data.mnist")])
def test_mnist_loader_delegates_to_nnfast_datasets(installed, monkeypatch, profile, module):
    calls, original = [], []
    fake = types.ModuleType("nnfast.datasets")
    fake.load_mnist = lambda **kw: calls.append(kw) or "data"
    fake.load_original_mnist = lambda package, **kw: original.append((package, kw))  # None
    monkeypatch.setitem(sys.modules, "nnfast.datasets", fake)
    installed(profile)
    mnist = __import__(module, fromlist=["load_mnist"])
    assert mnist.load_mnist(flatten=False) == "data"
    assert calls == [{"normalize": True, "flatten": False, "one_hot_label": False}]
    # the original's own folder is asked first
    assert original == [(module.split(".")[0], calls[0])]
    ns = {}
    exec(f"import {module}\nresult = {module}.load_mnist(one_hot_label=True)", ns)
    assert ns["result"] == "data" and calls[-1]["one_hot_label"] is True


@pytest.mark.parametrize("profile, package", [("book", "dataset"), ("course", "data")])
def test_mnist_loader_reads_the_originals_folder_first(installed, monkeypatch, tmp_path,
                                                       profile, package):
    import nnfast.datasets

    def no_cache(**kw):
        raise AssertionError("nnfast's cache was used although the original's folder has data")

    monkeypatch.setattr(nnfast.datasets, "load_mnist", no_cache)
    folder = tmp_path / "checkout" / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "mnist.py").write_text("raise ImportError('the profile serves this module')\n")
    rng = np.random.RandomState(0)
    data = {"train_img": np.frombuffer(rng.randint(0, 256, 3 * 784).astype(np.uint8).tobytes(),
                                       np.uint8).reshape(3, 784),
            "train_label": np.array([4, 0, 9], dtype=np.uint8),
            "test_img": np.zeros((1, 784), dtype=np.uint8),
            "test_label": np.array([2], dtype=np.uint8)}
    with open(folder / "mnist.pkl", "wb") as f:
        pickle.dump(data, f, -1)
    # as the originals' scripts do from ch05/: sys.path.append(os.pardir)
    (tmp_path / "checkout" / "ch05").mkdir()
    monkeypatch.chdir(tmp_path / "checkout" / "ch05")
    monkeypatch.setattr(sys, "path", [*sys.path, ".."])
    for name in (package, f"{package}.mnist"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    installed(profile)
    mnist = __import__(f"{package}.mnist", fromlist=["load_mnist"])
    (x, t), (xt, tt) = mnist.load_mnist(normalize=False, flatten=False, one_hot_label=True)
    assert x.shape == (3, 1, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(x.reshape(3, 784), data["train_img"])
    np.testing.assert_array_equal(t, np.eye(10)[[4, 0, 9]])
    assert xt.shape == (1, 1, 28, 28) and tt.tolist() == [[0, 0, 1, 0, 0, 0, 0, 0, 0, 0]]
    (x, t), _ = mnist.load_mnist()
    assert x.dtype == np.float32 and x.shape == (3, 784) and t.tolist() == [4, 0, 9]
    np.testing.assert_array_equal(x, data["train_img"].astype(np.float32) / np.float32(255))
    for name in (package, f"{package}.mnist"):
        sys.modules.pop(name, None)


def test_local_files_win_over_chapter_modules_but_not_over_the_loader(installed, tmp_path,
                                                                     monkeypatch):
    (tmp_path / "simple_convnet.py").write_text("WHO = 'local'\n")
    pkg = tmp_path / "dataset"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "other.py").write_text("WHO = 'local'\n")
    (pkg / "mnist.py").write_text("WHO = 'local'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("simple_convnet", "dataset", "dataset.other", "dataset.mnist"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    installed("book")
    import dataset.mnist
    import dataset.other
    import simple_convnet
    assert simple_convnet.WHO == "local" and dataset.other.WHO == "local"
    assert dataset.mnist is compat.profile("book").extra["dataset.mnist"]
    for name in ("simple_convnet", "dataset", "dataset.other", "dataset.mnist"):
        sys.modules.pop(name, None)


def test_chapter_modules_are_served_when_absent(installed):
    installed("book")
    from deep_convnet import DeepConvNet
    from two_layer_net import TwoLayerNet
    assert TwoLayerNet is compat.book.two_layer_net.TwoLayerNet
    assert DeepConvNet is compat.book.deep_convnet.DeepConvNet


def test_runner_uses_the_script_directory_and_exit_status(tmp_path):
    script = tmp_path / "sub" / "probe.py"
    script.parent.mkdir()
    script.write_text(
        "import os, sys\n"
        "from common.functions import d_relu\n"
        "print(os.getcwd()); print(sys.path[0]); print(sys.argv); print(__name__)\n"
        "sys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-m", "nnfast.compat", "course", str(script),
                           "a", "--flag"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    cwd, path0, argv, name = proc.stdout.splitlines()
    assert cwd == path0 == str(script.parent)
    assert argv == repr([str(script), "a", "--flag"]) and name == "__main__"
