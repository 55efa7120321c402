"""Reference Trainer: mini-batch training loop with the toolkit's printed lines.

Extension seam
--------------
The optimizer classes are looked up by name in the class attribute ``_opt_module`` (a module
holding ``SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam``).  The native Trainer is a subclass
that sets nothing but that attribute::

    class Trainer(nnfast.reference.trainer.Trainer):
        _opt_module = nnfast.optimizer

Extras (keyword-only, all off by default)
-----------------------------------------
With the defaults the Trainer draws the same random numbers, calls the network in the same
order and prints the same lines as the toolkit's.  The keyword-only options add:

* ``augment``: a callable applied to each sampled batch of images before the gradient (e.g.
  ``nnfast.datasets.Augmenter``, which draws from its own generator, not the global one).
* ``progress``: a tqdm bar per epoch (``tqdm.auto``): on stderr on a terminal, in the cell
  output in Jupyter/Colab; silently off when tqdm is not installed or nobody would see it
  (stderr not a terminal outside a notebook).
* ``loss_after_update=False``: skip the toolkit's extra forward pass after each update and
  record instead the loss of the gradient's own forward pass (training mode, before the
  update) that nnfast networks leave in ``network.last_loss``.  Saves one forward per step.
* ``eval_loss=True``: also measure the loss on the evaluation samples of the test set at each
  evaluation.  Cost: one more forward pass over those samples per epoch (about as much again
  as the test-accuracy evaluation).
* ``eval_after_epoch=True``: evaluate after the last step of each epoch instead of the
  toolkit's "after the first step of each epoch" (``current_iter % iter_per_epoch == 0``, which
  evaluates after the very first update), so the last evaluation sees the trained network.
* ``on_epoch``: a callable ``on_epoch(trainer)`` run after each evaluation.

Always recorded, at no extra cost: ``history`` (per evaluation: ``epoch``, ``iteration``,
``train_acc``, ``test_acc``, ``train_loss`` = mean of the step losses since the previous
evaluation, ``test_loss`` = None unless ``eval_loss``), and the wall time spent in training
steps (``train_time``, sampling + gradient + update + loss) and in evaluations (``eval_time``).
``save_learning_curve(path)`` writes ``history`` as a PNG (needs matplotlib).  ``train()``
keeps the accuracy on the whole test set it measures at the end in ``final_test_acc``.
"""
import sys
import time

import numpy as np

from nnfast.reference import optimizer as _optimizer

__all__ = ["Trainer"]

# Accepted optimizer names (lower case) -> class name in ``_opt_module``.
# 'rmsprpo' is the spelling of the toolkit's own table, kept so old scripts keep working.
OPTIMIZER_NAMES = {
    "sgd": "SGD",
    "momentum": "Momentum",
    "nesterov": "Nesterov",
    "adagrad": "AdaGrad",
    "rmsprop": "RMSprop",
    "rmsprpo": "RMSprop",
    "adam": "Adam",
}


class Trainer:
    """Train ``network`` with mini-batches drawn by ``np.random.choice(train_size, batch_size)``.

    ``network`` needs ``params``, ``gradient(x, t)``, ``loss(x, t)`` and ``accuracy(x, t)``.
    ``optimizer`` is a name among ``OPTIMIZER_NAMES`` (case-insensitive) and
    ``optimizer_param`` its keyword arguments (default ``{'lr': 0.01}``).

    Every ``iter_per_epoch = max(train_size / mini_batch_size, 1)`` iterations (a float: with
    250 samples and batches of 100 an epoch ends when ``current_iter % 2.5 == 0``) the accuracy
    is measured on the first ``evaluate_sample_num_per_epoch`` samples of the training and test
    sets (all of them when None).
    """

    _opt_module = _optimizer

    def __init__(self, network, x_train, t_train, x_test, t_test, epochs=20,
                 mini_batch_size=100, optimizer="SGD", optimizer_param=None,
                 evaluate_sample_num_per_epoch=None, verbose=True, *, augment=None,
                 progress=False, loss_after_update=True, eval_loss=False,
                 eval_after_epoch=False, on_epoch=None):
        self.network = network
        self.verbose = verbose
        self.x_train = x_train
        self.t_train = t_train
        self.x_test = x_test
        self.t_test = t_test
        self.epochs = epochs
        self.batch_size = mini_batch_size
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch

        self.optimizer = self._make_optimizer(optimizer, optimizer_param)

        self.train_size = x_train.shape[0]
        self.iter_per_epoch = max(self.train_size / mini_batch_size, 1)
        self.max_iter = int(epochs * self.iter_per_epoch)
        self.current_iter = 0
        self.current_epoch = 0

        self.train_loss_list = []
        self.train_acc_list = []
        self.test_acc_list = []

        if augment is not None and not callable(augment):
            raise TypeError(f"Trainer: augment must be callable, got {type(augment).__name__}")
        if on_epoch is not None and not callable(on_epoch):
            raise TypeError(f"Trainer: on_epoch must be callable, got {type(on_epoch).__name__}")
        self.augment = augment
        self.progress = progress
        self.loss_after_update = loss_after_update
        self.eval_loss = eval_loss
        self.eval_after_epoch = eval_after_epoch
        self.on_epoch = on_epoch
        self.history = {"epoch": [], "iteration": [], "train_acc": [], "test_acc": [],
                        "train_loss": [], "test_loss": []}
        self.train_time = 0.0
        self.eval_time = 0.0
        self._epoch_losses_start = 0
        self._bar = None

    def _make_optimizer(self, name, optimizer_param):
        key = name.lower() if isinstance(name, str) else None
        if key not in OPTIMIZER_NAMES:
            valid = ", ".join(repr(n) for n in OPTIMIZER_NAMES)
            raise ValueError(f"optimizer must be one of {valid} (any case), got {name!r}")
        params = {"lr": 0.01} if optimizer_param is None else dict(optimizer_param)
        return getattr(self._opt_module, OPTIMIZER_NAMES[key])(**params)

    def _evaluation_samples(self):
        k = self.evaluate_sample_num_per_epoch
        if k is None:
            return self.x_train, self.t_train, self.x_test, self.t_test
        return self.x_train[:k], self.t_train[:k], self.x_test[:k], self.t_test[:k]

    def _is_evaluation_step(self, it):
        offset = 1 if self.eval_after_epoch else 0
        return (it + offset) % self.iter_per_epoch == 0

    def train_step(self):
        start = time.perf_counter()
        batch_mask = np.random.choice(self.train_size, self.batch_size)
        x_batch = self.x_train[batch_mask]
        t_batch = self.t_train[batch_mask]
        if self.augment is not None:
            x_batch = self.augment(x_batch)

        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)

        if self.loss_after_update:
            loss = self.network.loss(x_batch, t_batch)
        else:
            loss = getattr(self.network, "last_loss", None)
            if loss is None:
                raise TypeError("Trainer(loss_after_update=False): the network's gradient() "
                                "must leave the batch loss in network.last_loss "
                                "(nnfast networks do)")
        self.train_loss_list.append(loss)
        self.train_time += time.perf_counter() - start
        if self.verbose:
            print("train loss:" + str(loss))
        self._advance_bar(loss)

        if self._is_evaluation_step(self.current_iter):
            self._close_bar()
            start = time.perf_counter()
            self.current_epoch += 1
            x_tr, t_tr, x_te, t_te = self._evaluation_samples()
            train_acc = self.network.accuracy(x_tr, t_tr)
            test_acc = self.network.accuracy(x_te, t_te)
            self.train_acc_list.append(train_acc)
            self.test_acc_list.append(test_acc)
            test_loss = self._mean_loss(x_te, t_te) if self.eval_loss else None
            self.eval_time += time.perf_counter() - start
            self._record(train_acc, test_acc, test_loss)
            if self.verbose:
                print("=== epoch:" + str(self.current_epoch) + ", train acc:" + str(train_acc)
                      + ", test acc:" + str(test_acc) + " ===")
            if self.on_epoch is not None:
                self.on_epoch(self)
        self.current_iter += 1

    def _record(self, train_acc, test_acc, test_loss):
        h = self.history
        losses = self.train_loss_list[self._epoch_losses_start:]
        self._epoch_losses_start = len(self.train_loss_list)
        h["epoch"].append(self.current_epoch)
        h["iteration"].append(self.current_iter + 1)
        h["train_acc"].append(float(train_acc))
        h["test_acc"].append(float(test_acc))
        h["train_loss"].append(float(np.mean(losses)) if losses else None)
        h["test_loss"].append(None if test_loss is None else float(test_loss))

    def _mean_loss(self, x, t):
        """Mean loss over (x, t) in test mode, in batches of ``batch_size`` (one forward)."""
        total = 0.0
        n = x.shape[0]
        for start in range(0, n, self.batch_size):
            xb, tb = x[start:start + self.batch_size], t[start:start + self.batch_size]
            total += float(self.network.loss(xb, tb, train_flg=False)) * xb.shape[0]
        return total / n

    # ---------------------------------------------------------------- progress bar

    def _steps_until_evaluation(self):
        """Steps from ``current_iter`` up to and including the next evaluation (or the end)."""
        it = self.current_iter
        while it < self.max_iter - 1 and not self._is_evaluation_step(it):
            it += 1
        return it - self.current_iter + 1

    def _advance_bar(self, loss):
        if not self.progress:
            return
        if self._bar is None:
            self._bar = _make_bar(self._steps_until_evaluation(),
                                  f"epoch {self.current_epoch + 1}/{self.epochs}")
            if self._bar is None:
                self.progress = False  # tqdm missing or not a terminal: stay silent
                return
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{float(loss):.4f}", refresh=False)

    def _close_bar(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def save_learning_curve(self, path, title=None):
        """Write ``history`` as a PNG at ``path`` (matplotlib needed, imported only here)."""
        from nnfast.plotting import save_learning_curve

        return save_learning_curve(self.history, path, title=title)

    def train(self):
        try:
            for _ in range(self.max_iter):
                self.train_step()
        finally:
            self._close_bar()

        test_acc = self.network.accuracy(self.x_test, self.t_test)
        self.final_test_acc = test_acc
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(test_acc))


def _in_notebook():
    """Whether this runs in a Jupyter (or Colab) kernel: its stderr is no terminal, yet shows.

    The same test tqdm's notebook-aware front end makes: an IPython shell run by a kernel app.
    IPython is only looked up, never imported.
    """
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # a stand-in or half-initialised IPython: not a notebook
        return False


def _make_bar(total, desc):
    """A tqdm bar, or None when tqdm is missing or nobody would see it.

    In a Jupyter/Colab kernel: tqdm's notebook-aware front end (``tqdm.auto``: a widget when
    ipywidgets is installed, else text in the cell output). Elsewhere only on a terminal:
    a text bar on stderr.
    """
    stream = sys.stderr
    notebook = _in_notebook()
    if not notebook and (stream is None or not getattr(stream, "isatty", lambda: False)()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    if notebook:
        return tqdm(total=total, desc=desc, unit="batch", leave=False)
    return tqdm(total=total, desc=desc, unit="batch", leave=False, file=stream,
                dynamic_ncols=True)
