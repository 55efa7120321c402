"""Trainer extras (augment, progress bar, history, eval options, learning curve): off by
default, and when on they change only what they say."""
import io
import json
import struct
import sys
import types

import numpy as np
import pytest

from test_trainer import StubNet, _blobs, _stub_data

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


class _Recorder:
    """An augment callable that records what it saw and shifts the batch by +1."""

    def __init__(self):
        self.seen = []

    def __call__(self, x):
        self.seen.append(x.copy())
        return x + 1.0


def _run(backend, seed=0, **kwargs):
    x, t = _blobs(60, 3)
    np.random.seed(seed)
    net = backend.nets.TwoLayerNet(2, 6, 2, weight_init_std=0.5)
    tr = backend.trainer.Trainer(net, x, t, x[:20], t[:20], epochs=3, mini_batch_size=20,
                                 optimizer="adam", optimizer_param={"lr": 0.05}, verbose=False,
                                 **kwargs)
    tr.train()
    return tr, net


def test_defaults_are_off(backend):
    x_train, t_train, x_test, t_test = _stub_data(4)
    tr = backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test)
    assert tr.augment is None and tr.progress is False and tr.loss_after_update is True
    assert tr.eval_loss is False and tr.eval_after_epoch is False and tr.on_epoch is None


def test_history_matches_the_lists(backend):
    tr, _ = _run(backend)
    h = tr.history
    assert h["epoch"] == [1, 2, 3]
    assert h["iteration"] == [1, 4, 7]  # the toolkit evaluates after steps 0, 3, 6
    assert h["train_acc"] == tr.train_acc_list and h["test_acc"] == tr.test_acc_list
    losses = [float(v) for v in tr.train_loss_list]
    assert h["train_loss"] == pytest.approx([losses[0], np.mean(losses[1:4]),
                                             np.mean(losses[4:7])], rel=1e-12)
    assert h["test_loss"] == [None, None, None]
    assert tr.train_time > 0 and tr.eval_time > 0
    json.dumps(h)  # plain numbers, serialisable


def test_eval_after_epoch_and_eval_loss(backend):
    tr, net = _run(backend, eval_after_epoch=True, eval_loss=True)
    h = tr.history
    assert tr.max_iter == 9
    assert h["iteration"] == [3, 6, 9] and h["epoch"] == [1, 2, 3]
    x, t = _blobs(60, 3)
    # the last evaluation saw the final network
    assert h["test_acc"][-1] == net.accuracy(x[:20], t[:20]) == tr.final_test_acc
    assert h["test_loss"][-1] == pytest.approx(float(net.loss(x[:20], t[:20])), rel=1e-12)
    losses = [float(v) for v in tr.train_loss_list]
    assert h["train_loss"] == pytest.approx([np.mean(losses[i:i + 3]) for i in (0, 3, 6)])


def test_eval_loss_uses_test_mode_in_batches(backend):
    """DeepConvNet's loss defaults to training mode; the evaluation must not use dropout."""
    net = backend.nets.DeepConvNet((1, 8, 8), hidden_size=4, output_size=2,
                                   **{f"conv_param_{i}": {"filter_num": 2} for i in range(1, 7)})
    x = np.random.rand(30, 1, 8, 8)
    t = np.random.randint(0, 2, size=30)
    tr = backend.trainer.Trainer(net, x, t, x[:25], t[:25], epochs=1, mini_batch_size=10,
                                 verbose=False, eval_loss=True)
    tr.train_step()
    expected = (float(net.loss(x[:10], t[:10], train_flg=False)) * 10
                + float(net.loss(x[10:20], t[10:20], train_flg=False)) * 10
                + float(net.loss(x[20:25], t[20:25], train_flg=False)) * 5) / 25
    assert tr.history["test_loss"] == [pytest.approx(expected, rel=1e-12)]


def test_skip_loss_after_update_changes_only_the_recorded_loss(backend):
    a, net_a = _run(backend)
    b, net_b = _run(backend, loss_after_update=False)
    for key in net_a.params:  # same batches, same updates
        np.testing.assert_array_equal(net_a.params[key], net_b.params[key])
    assert a.test_acc_list == b.test_acc_list
    # b records the loss of each gradient's forward pass, i.e. before its update
    x, t = _blobs(60, 3)
    np.random.seed(0)
    net = backend.nets.TwoLayerNet(2, 6, 2, weight_init_std=0.5)
    mask = np.random.choice(60, 20)  # the first batch, drawn right after the weights
    assert b.train_loss_list[0] == pytest.approx(float(net.loss(x[mask], t[mask])), rel=1e-12)
    assert b.train_loss_list[0] != a.train_loss_list[0]


def test_skip_loss_after_update_needs_last_loss(backend):
    x_train, t_train, x_test, t_test = _stub_data(4)
    tr = backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test,
                                 loss_after_update=False, verbose=False)
    with pytest.raises(TypeError, match="last_loss"):
        tr.train_step()


def test_skip_loss_after_update_saves_a_forward(backend):
    calls = []
    net = StubNet()
    net.loss = lambda x, t: calls.append(1) or 0.25
    net.last_loss = 0.5
    x_train, t_train, x_test, t_test = _stub_data(4)
    tr = backend.trainer.Trainer(net, x_train, t_train, x_test, t_test, epochs=2,
                                 mini_batch_size=2, loss_after_update=False, verbose=False)
    tr.train()
    assert calls == [] and tr.train_loss_list == [0.5] * 4


def test_augment_sees_each_batch_and_keeps_the_sampling(backend):
    rec = _Recorder()
    net = StubNet()
    x_train, t_train, x_test, t_test = _stub_data(10)
    tr = backend.trainer.Trainer(net, x_train, t_train, x_test, t_test, epochs=1,
                                 mini_batch_size=4, augment=rec, verbose=False)
    np.random.seed(5)
    tr.train_step()
    tr.train_step()
    np.random.seed(5)
    for seen, (xb, _) in zip(rec.seen, net.grad_batches):
        mask = np.random.choice(10, 4)
        np.testing.assert_array_equal(seen, x_train[mask])
        np.testing.assert_array_equal(xb, x_train[mask] + 1.0)  # the gradient got the output
    with pytest.raises(TypeError, match="augment"):
        backend.trainer.Trainer(net, x_train, t_train, x_test, t_test, augment=3)


def test_on_epoch_callback_and_printed_lines_unchanged(backend, capsys):
    seen = []
    x_train, t_train, x_test, t_test = _stub_data(4)
    tr = backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test, epochs=2,
                                 mini_batch_size=2,
                                 on_epoch=lambda trainer: seen.append(trainer.current_epoch))
    tr.train()
    assert seen == [1, 2]
    assert capsys.readouterr().out.splitlines()[:2] == [
        "train loss:0.25", "=== epoch:1, train acc:0.04, test acc:0.07 ==="]


def test_native_and_reference_extras_agree(ref):
    from nnfast import nets, trainer

    native = types.SimpleNamespace(nets=nets, trainer=trainer)
    kwargs = dict(eval_after_epoch=True, eval_loss=True, loss_after_update=False)
    a, net_a = _run(ref, **kwargs)
    b, net_b = _run(native, **kwargs)
    for key in a.history:
        assert a.history[key] == pytest.approx(b.history[key], rel=1e-12)
    for key in net_a.params:
        np.testing.assert_allclose(net_b.params[key], net_a.params[key], rtol=1e-12)


# --------------------------------------------------------------------------- progress bar

class _FakeBar:
    made = []

    def __init__(self, total, **kwargs):
        self.total, self.kwargs, self.n, self.closed = total, kwargs, 0, False
        self.postfix = None
        _FakeBar.made.append(self)

    def update(self, n):
        self.n += n

    def set_postfix(self, **kwargs):
        self.postfix = kwargs

    def close(self):
        self.closed = True


class _TTY(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def fake_tqdm(monkeypatch):
    """A stand-in tqdm module; the bars it made.  (Tests set sys.stderr in their body: pytest's
    output capture re-installs its own sys.stderr after fixtures run.)"""
    _FakeBar.made = []
    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = _FakeBar
    package = types.ModuleType("tqdm")
    package.__path__ = []
    package.auto = auto
    monkeypatch.setitem(sys.modules, "tqdm", package)
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    return _FakeBar.made


def _fake_ipython(monkeypatch, config):
    shell = types.SimpleNamespace(config=config)
    monkeypatch.setitem(sys.modules, "IPython",
                        types.SimpleNamespace(get_ipython=lambda: shell))


@pytest.mark.parametrize("after_epoch, totals", [(False, [1, 3, 3, 2]), (True, [3, 3, 3])])
def test_progress_bar_per_epoch(backend, fake_tqdm, monkeypatch, after_epoch, totals):
    monkeypatch.setattr(sys, "stderr", _TTY())
    x_train, t_train, x_test, t_test = _stub_data(6)
    tr = backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test, epochs=3,
                                 mini_batch_size=2, progress=True, verbose=False,
                                 eval_after_epoch=after_epoch)
    tr.train()
    assert [bar.total for bar in fake_tqdm] == totals
    assert [bar.n for bar in fake_tqdm] == totals
    assert all(bar.closed for bar in fake_tqdm)
    assert fake_tqdm[0].kwargs["desc"] == "epoch 1/3"
    assert fake_tqdm[0].kwargs["file"] is sys.stderr
    assert fake_tqdm[-1].postfix["loss"] == "0.2500"


def test_progress_bar_silent_without_a_terminal(backend, fake_tqdm, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    x_train, t_train, x_test, t_test = _stub_data(6)
    tr = backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test, epochs=2,
                                 mini_batch_size=2, progress=True, verbose=False)
    tr.train()
    assert fake_tqdm == [] and sys.stderr.getvalue() == ""


def test_progress_bar_in_a_notebook_kernel(backend, fake_tqdm, monkeypatch):
    # Jupyter/Colab: stderr is no terminal, but the notebook front end of tqdm.auto shows
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    _fake_ipython(monkeypatch, {"IPKernelApp": {"connection_file": "kernel.json"}})
    x_train, t_train, x_test, t_test = _stub_data(6)
    tr = backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test, epochs=2,
                                 mini_batch_size=2, progress=True, verbose=False)
    tr.train()
    assert [bar.total for bar in fake_tqdm] == [1, 3, 2]
    assert all(bar.closed for bar in fake_tqdm)
    assert "file" not in fake_tqdm[0].kwargs  # the notebook front end picks its own output
    assert fake_tqdm[0].kwargs["desc"] == "epoch 1/2"


def test_progress_bar_silent_in_a_plain_ipython_without_a_terminal(backend, fake_tqdm,
                                                                    monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    _fake_ipython(monkeypatch, {"TerminalInteractiveShell": {}})  # IPython, but no kernel
    x_train, t_train, x_test, t_test = _stub_data(6)
    backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test, epochs=2,
                            mini_batch_size=2, progress=True, verbose=False).train()
    assert fake_tqdm == []


def test_progress_bar_silent_without_tqdm(backend, monkeypatch, capsys):
    # import tqdm / tqdm.auto -> ImportError (tqdm.auto may be imported already: Optuna does)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    monkeypatch.setattr(sys, "stderr", _TTY())
    x_train, t_train, x_test, t_test = _stub_data(6)
    tr = backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test, epochs=2,
                                 mini_batch_size=2, progress=True, verbose=False)
    tr.train()
    assert tr.current_iter == tr.max_iter and sys.stderr.getvalue() == ""


def test_real_tqdm_bar_runs(backend, monkeypatch):
    pytest.importorskip("tqdm")
    err = _TTY()
    monkeypatch.setattr(sys, "stderr", err)
    x_train, t_train, x_test, t_test = _stub_data(6)
    backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test, epochs=2,
                            mini_batch_size=2, progress=True, verbose=False).train()
    assert "epoch 1/2" in err.getvalue()


# --------------------------------------------------------------------------- learning curve

def test_learning_curve_png(backend, tmp_path):
    pytest.importorskip("matplotlib")
    tr, _ = _run(backend, eval_loss=True, eval_after_epoch=True)
    path = tmp_path / "sub" / "curve.png"
    assert tr.save_learning_curve(str(path), title="blobs") == str(path)
    width, height = _png_size(path)
    assert (width, height) == (800, 320)
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    assert image.shape[:2] == (320, 800) and image.std() > 0.01  # something was drawn


def test_learning_curve_needs_an_epoch_and_matplotlib(backend, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    x_train, t_train, x_test, t_test = _stub_data(4)
    tr = backend.trainer.Trainer(StubNet(), x_train, t_train, x_test, t_test, verbose=False)
    with pytest.raises(ValueError, match="no evaluated epoch"):
        tr.save_learning_curve(str(tmp_path / "c.png"))
    tr.train_step()
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"nnfast\[examples\]"):
        tr.save_learning_curve(str(tmp_path / "c.png"))
    assert not (tmp_path / "c.png").exists()
