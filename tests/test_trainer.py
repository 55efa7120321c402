"""Trainer: the training loop, its bookkeeping, its printed lines and its optimizer table."""
import re

import numpy as np
import pytest


class StubNet:
    """Duck-typed network: constant gradient, fixed loss, accuracy = samples / 100."""

    def __init__(self):
        self.params = {"W": np.zeros(3)}
        self.grad_batches = []
        self.acc_calls = []

    def gradient(self, x, t):
        self.grad_batches.append((x.copy(), t.copy()))
        return {"W": np.ones(3)}

    def loss(self, x, t):
        return 0.25

    def accuracy(self, x, t):
        self.acc_calls.append(x.copy())
        return x.shape[0] / 100


def _stub_data(n_train, n_test=7):
    x_train = np.arange(n_train * 2, dtype=float).reshape(n_train, 2)
    t_train = np.arange(n_train) % 2
    x_test = -np.arange(n_test * 2, dtype=float).reshape(n_test, 2)
    t_test = np.arange(n_test) % 2
    return x_train, t_train, x_test, t_test


def _blobs(n, seed):
    """Two well separated Gaussian blobs in 2-D."""
    rng = np.random.RandomState(seed)
    t = rng.randint(0, 2, size=n)
    x = rng.randn(n, 2) * 0.5 + np.where(t[:, None] == 1, 2.0, -2.0)
    return x, t


def test_training_learns_separable_data(backend):
    x_train, t_train = _blobs(200, 1)
    x_test, t_test = _blobs(100, 2)
    net = backend.nets.TwoLayerNet(2, 8, 2, weight_init_std=0.5)
    W1 = net.params["W1"]
    trainer = backend.trainer.Trainer(net, x_train, t_train, x_test, t_test, epochs=5,
                                      mini_batch_size=20, optimizer="sgd",
                                      optimizer_param={"lr": 0.2}, verbose=False)
    trainer.train()
    losses = trainer.train_loss_list
    assert len(losses) == trainer.max_iter == 50
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert len(trainer.test_acc_list) == trainer.current_epoch == 5
    assert trainer.train_acc_list[-1] >= 0.95
    assert trainer.test_acc_list[-1] >= 0.95
    assert net.accuracy(x_test, t_test) >= 0.95
    assert net.params["W1"] is W1 and net.layers["Affine1"].W is W1  # updated in place


def test_printed_lines_exact(backend, capsys):
    net = StubNet()
    x_train, t_train, x_test, t_test = _stub_data(4)
    trainer = backend.trainer.Trainer(net, x_train, t_train, x_test, t_test, epochs=2,
                                      mini_batch_size=2)
    trainer.train()
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "train loss:0.25",
        "=== epoch:1, train acc:0.04, test acc:0.07 ===",
        "train loss:0.25",
        "train loss:0.25",
        "=== epoch:2, train acc:0.04, test acc:0.07 ===",
        "train loss:0.25",
        "=============== Final Test Accuracy ===============",
        "test acc:0.07",
    ]


def test_verbose_false_prints_nothing(backend, capsys):
    x_train, t_train, x_test, t_test = _stub_data(4)
    backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test, epochs=2,
                            mini_batch_size=2, verbose=False).train()
    assert capsys.readouterr().out == ""


def test_printed_lines_real_network(backend, capsys):
    x, t = _blobs(30, 3)
    net = backend.nets.TwoLayerNet(2, 4, 2)
    backend.trainer.Trainer(net, x, t, x[:10], t[:10], epochs=2, mini_batch_size=10).train()
    lines = capsys.readouterr().out.splitlines()
    number = r"-?\d+(\.\d+)?(e-?\d+)?"
    patterns = ([r"train loss:" + number]
                + [r"=== epoch:\d+, train acc:" + number + ", test acc:" + number + " ==="]
                + [r"=============== Final Test Accuracy ===============",
                   r"test acc:" + number])
    assert len(lines) == 6 + 2 + 2  # 6 steps, 2 epochs, final 2 lines
    for line in lines:
        assert any(re.fullmatch(p, line) for p in patterns), line
    assert lines[1].startswith("=== epoch:1, ") and lines[5].startswith("=== epoch:2, ")


@pytest.mark.parametrize("n_train, batch, epochs, ipe, max_iter, evals", [
    (250, 100, 3, 2.5, 7, 2),    # epochs end at iterations 0 and 5 (current_iter % 2.5 == 0)
    (200, 100, 3, 2.0, 6, 3),
    (50, 100, 3, 1, 3, 3),       # fewer samples than a batch: one iteration per epoch
    (30, 20, 4, 1.5, 6, 2),      # iterations 0 and 3
])
def test_iter_per_epoch_is_a_float(backend, n_train, batch, epochs, ipe, max_iter, evals):
    net = StubNet()
    x_train, t_train, x_test, t_test = _stub_data(n_train)
    trainer = backend.trainer.Trainer(net, x_train, t_train, x_test, t_test, epochs=epochs,
                                      mini_batch_size=batch, verbose=False)
    assert trainer.iter_per_epoch == ipe
    assert isinstance(trainer.iter_per_epoch, float) or trainer.iter_per_epoch == 1
    assert trainer.max_iter == max_iter
    trainer.train()
    assert trainer.current_iter == max_iter
    assert trainer.current_epoch == evals
    assert len(trainer.train_acc_list) == len(trainer.test_acc_list) == evals
    assert len(trainer.train_loss_list) == max_iter


def test_attributes(backend):
    net = StubNet()
    x_train, t_train, x_test, t_test = _stub_data(12)
    trainer = backend.trainer.Trainer(net, x_train, t_train, x_test, t_test, epochs=3,
                                      mini_batch_size=5, evaluate_sample_num_per_epoch=4,
                                      verbose=False)
    assert trainer.network is net
    assert trainer.x_train is x_train and trainer.t_train is t_train
    assert trainer.x_test is x_test and trainer.t_test is t_test
    assert (trainer.epochs, trainer.batch_size, trainer.train_size) == (3, 5, 12)
    assert trainer.evaluate_sample_num_per_epoch == 4
    assert trainer.verbose is False
    assert (trainer.current_iter, trainer.current_epoch) == (0, 0)
    assert trainer.train_loss_list == trainer.train_acc_list == trainer.test_acc_list == []
    assert isinstance(trainer.optimizer, backend.optimizer.SGD)
    assert trainer.optimizer.lr == 0.01


def test_evaluate_sample_num_per_epoch(backend):
    net = StubNet()
    x_train, t_train, x_test, t_test = _stub_data(12)
    trainer = backend.trainer.Trainer(net, x_train, t_train, x_test, t_test, epochs=1,
                                      mini_batch_size=12, evaluate_sample_num_per_epoch=3,
                                      verbose=False)
    trainer.train()
    # one epoch evaluation on the first 3 samples of each set, then the full test set
    assert len(net.acc_calls) == 3
    np.testing.assert_array_equal(net.acc_calls[0], x_train[:3])
    np.testing.assert_array_equal(net.acc_calls[1], x_test[:3])
    np.testing.assert_array_equal(net.acc_calls[2], x_test)
    assert trainer.train_acc_list == [0.03] and trainer.test_acc_list == [0.03]


def test_batches_drawn_with_random_choice(backend):
    net = StubNet()
    x_train, t_train, x_test, t_test = _stub_data(10)
    trainer = backend.trainer.Trainer(net, x_train, t_train, x_test, t_test, epochs=1,
                                      mini_batch_size=4, verbose=False)
    np.random.seed(5)
    trainer.train_step()
    trainer.train_step()
    np.random.seed(5)
    for xb, tb in net.grad_batches:
        mask = np.random.choice(10, 4)
        np.testing.assert_array_equal(xb, x_train[mask])
        np.testing.assert_array_equal(tb, t_train[mask])
    # SGD(lr=0.01) with a gradient of ones, twice, in place
    np.testing.assert_allclose(net.params["W"], -0.02 * np.ones(3), rtol=1e-12)


@pytest.mark.parametrize("name, cls", [
    ("SGD", "SGD"), ("sgd", "SGD"), ("Momentum", "Momentum"), ("NESTEROV", "Nesterov"),
    ("AdaGrad", "AdaGrad"), ("adagrad", "AdaGrad"), ("RMSprop", "RMSprop"),
    ("rmsprpo", "RMSprop"), ("Adam", "Adam"),
])
def test_optimizer_names(backend, name, cls):
    x_train, t_train, x_test, t_test = _stub_data(4)
    params = {"lr": 0.05}
    trainer = backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test,
                                      optimizer=name, optimizer_param=params, verbose=False)
    assert type(trainer.optimizer) is getattr(backend.optimizer, cls)
    assert trainer.optimizer.lr == 0.05
    assert params == {"lr": 0.05}
    trainer.train_step()


def test_optimizer_param_learning_rate_alias(backend):
    x_train, t_train, x_test, t_test = _stub_data(4)
    trainer = backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test,
                                      optimizer="momentum",
                                      optimizer_param={"learning_rate": 0.3, "momentum": 0.8},
                                      verbose=False)
    assert trainer.optimizer.lr == 0.3 and trainer.optimizer.momentum == 0.8


@pytest.mark.parametrize("bad", ["adadelta", "", None])
def test_unknown_optimizer(backend, bad):
    x_train, t_train, x_test, t_test = _stub_data(4)
    with pytest.raises(ValueError) as info:
        backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test, optimizer=bad)
    message = str(info.value)
    for valid in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"):
        assert valid in message
    assert repr(bad) in message


def test_subclass_swaps_the_optimizer_module(ref):
    """The native Trainer subclasses the reference one and sets only ``_opt_module``."""
    import types

    class MySGD(ref.optimizer.SGD):
        pass

    module = types.SimpleNamespace(SGD=MySGD, Momentum=None, Nesterov=None, AdaGrad=None,
                                   RMSprop=None, Adam=None)
    Sub = type("SubTrainer", (ref.trainer.Trainer,), {"_opt_module": module})
    x_train, t_train, x_test, t_test = _stub_data(4)
    trainer = Sub(StubNet(), x_train, t_train, x_test, t_test, optimizer="sgd", verbose=False)
    assert type(trainer.optimizer) is MySGD
