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
* ``sampling='permutation'`` (with ``shuffle_seed``): batches taken in order from seeded
  per-epoch permutations of the training set instead of ``np.random.choice`` (see
  :meth:`Trainer.batch_indices`); the order depends on the seed and the step only, which is
  what ``nnfast.distributed`` shards across processes.
* ``checkpoint``: a path (``.npz``); after every ``checkpoint_every``-th evaluation the
  trainer writes there, atomically, everything the rest of the run depends on (see
  :meth:`Trainer.save_checkpoint`). ``checkpoint_extra``: a JSON-able dict stored with it.

Checkpoints
-----------
``save_checkpoint(path)`` writes the network (parameters and batch-norm statistics), the
optimizer's state (Momentum/Nesterov ``v``, AdaGrad/RMSprop ``h``, Adam ``m``, ``v`` and
``iter``), NumPy's global random state (batch sampling, dropout), the augmenter's generator
(when it keeps one in ``.rng``, as ``nnfast.datasets.Augmenter``), the epoch and iteration
counters, the loss and accuracy lists and ``history``, as one ``.npz`` file of plain arrays
(no pickle), written atomically. ``load_checkpoint(path)`` restores all of it into a trainer
built with the same network, data and settings; ``train()`` then runs the remaining steps,
and the run ends with the same parameters, bit for bit, as one never interrupted.

Always recorded, at no extra cost: ``history`` (per evaluation: ``epoch``, ``iteration``,
``train_acc``, ``test_acc``, ``train_loss`` = mean of the step losses since the previous
evaluation, ``test_loss`` = None unless ``eval_loss``), and the wall time spent in training
steps (``train_time``, sampling + gradient + update + loss) and in evaluations (``eval_time``).
``save_learning_curve(path)`` writes ``history`` as a PNG (needs matplotlib).  ``train()``
keeps the accuracy on the whole test set it measures at the end in ``final_test_acc``.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import numpy.typing as npt

from nnfast import _npz
from nnfast.reference import optimizer as _optimizer
from nnfast._npz import PathLike

__all__ = ["Trainer", "read_checkpoint_meta", "CHECKPOINT_FORMAT", "SAMPLINGS"]

#: Written into every training checkpoint; a file of another format is refused.
CHECKPOINT_FORMAT = "nnfast-checkpoint/1"

# Accepted optimizer names (lower case) -> class name in ``_opt_module``.
# 'rmsprpo' is the spelling of the toolkit's own table, kept so old scripts keep working.
#: How ``Trainer`` draws its batches (see ``Trainer.batch_indices``).
SAMPLINGS = ("choice", "permutation")

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

    def __init__(self, network: Any, x_train: npt.NDArray[Any], t_train: npt.NDArray[Any],
                 x_test: npt.NDArray[Any], t_test: npt.NDArray[Any], epochs: int = 20,
                 mini_batch_size: int = 100, optimizer: str = "SGD",
                 optimizer_param: Optional[Mapping[str, Any]] = None,
                 evaluate_sample_num_per_epoch: Optional[int] = None, verbose: bool = True, *,
                 augment: Optional[Callable[[npt.NDArray[Any]], npt.NDArray[Any]]] = None,
                 progress: bool = False, loss_after_update: bool = True,
                 eval_loss: bool = False, eval_after_epoch: bool = False,
                 on_epoch: Optional[Callable[[Trainer], Any]] = None,
                 checkpoint: Optional[PathLike] = None, checkpoint_every: int = 1,
                 checkpoint_extra: Optional[Mapping[str, Any]] = None, sampling: str = "choice",
                 shuffle_seed: int = 0) -> None:
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

        self.train_loss_list: List[Any] = []
        self.train_acc_list: List[Any] = []
        self.test_acc_list: List[Any] = []

        if augment is not None and not callable(augment):
            raise TypeError(f"Trainer: augment must be callable, got {type(augment).__name__}")
        if on_epoch is not None and not callable(on_epoch):
            raise TypeError(f"Trainer: on_epoch must be callable, got {type(on_epoch).__name__}")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) \
                or checkpoint_every < 1:
            raise ValueError(f"Trainer: checkpoint_every must be an int >= 1, got "
                             f"{checkpoint_every!r}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"Trainer: sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if sampling == "permutation" and (isinstance(shuffle_seed, bool)
                                          or not isinstance(shuffle_seed, (int, np.integer))):
            raise ValueError(f"Trainer: shuffle_seed must be an int, got {shuffle_seed!r}")
        self.sampling = sampling
        self.shuffle_seed = int(shuffle_seed)
        # (epoch, permutation) of the last 'permutation' batch
        self._perm: Tuple[Optional[int], Any] = (None, None)
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.checkpoint_every = checkpoint_every
        self.checkpoint_extra = {} if checkpoint_extra is None else dict(checkpoint_extra)
        self._resume_from = 0  # steps already done by the run a checkpoint came from
        self.augment: Any = augment
        self.progress = progress
        self.loss_after_update = loss_after_update
        self.eval_loss = eval_loss
        self.eval_after_epoch = eval_after_epoch
        self.on_epoch = on_epoch
        self.history: Dict[str, List[Any]] = {
            "epoch": [], "iteration": [], "train_acc": [], "test_acc": [], "train_loss": [],
            "test_loss": []}
        self.train_time = 0.0
        self.eval_time = 0.0
        self._epoch_losses_start = 0
        self._bar: Any = None

    def _make_optimizer(self, name: str, optimizer_param: Optional[Mapping[str, Any]]) -> Any:
        key = name.lower() if isinstance(name, str) else None
        if key not in OPTIMIZER_NAMES:
            valid = ", ".join(repr(n) for n in OPTIMIZER_NAMES)
            raise ValueError(f"optimizer must be one of {valid} (any case), got {name!r}")
        params = {"lr": 0.01} if optimizer_param is None else dict(optimizer_param)
        return getattr(self._opt_module, OPTIMIZER_NAMES[key])(**params)

    def _evaluation_samples(self) -> Tuple[npt.NDArray[Any], ...]:
        k = self.evaluate_sample_num_per_epoch
        if k is None:
            return self.x_train, self.t_train, self.x_test, self.t_test
        return self.x_train[:k], self.t_train[:k], self.x_test[:k], self.t_test[:k]

    def _is_evaluation_step(self, it: int) -> bool:
        offset = 1 if self.eval_after_epoch else 0
        return (it + offset) % self.iter_per_epoch == 0

    def batch_indices(self) -> npt.NDArray[np.intp]:
        """Indices into the training set of the batch of step ``current_iter``.

        'choice' (the toolkit's): ``np.random.choice(train_size, batch_size)``, with
        replacement, from NumPy's global generator. 'permutation': step k takes the
        positions k*B .. (k+1)*B - 1 of the concatenated epoch permutations, epoch e's being
        ``np.random.default_rng([shuffle_seed, e]).permutation(train_size)``: every sample
        once per epoch, a batch may span two epochs, and the order depends on nothing but
        the seed and the step (so a resumed run, or a run split across processes, draws
        the same batches).
        """
        if self.sampling == "choice":
            return np.random.choice(self.train_size, self.batch_size)
        n = self.train_size
        start = self.current_iter * self.batch_size
        parts: List[npt.NDArray[np.intp]] = []
        while sum(map(len, parts)) < self.batch_size:
            done = sum(map(len, parts))
            epoch, offset = divmod(start + done, n)
            parts.append(self._epoch_permutation(epoch)[offset:offset + self.batch_size - done])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _epoch_permutation(self, epoch: int) -> npt.NDArray[np.intp]:
        if self._perm[0] != epoch:
            rng = np.random.default_rng([self.shuffle_seed, epoch])
            self._perm = (epoch, rng.permutation(self.train_size))
        return self._perm[1]

    def _next_batch(self) -> Tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """The (x, t) the step trains on: the sampled rows, augmented."""
        batch_mask = self.batch_indices()
        x_batch = self.x_train[batch_mask]
        t_batch = self.t_train[batch_mask]
        if self.augment is not None:
            x_batch = self.augment(x_batch)
        return x_batch, t_batch

    def _update(self, x_batch: npt.NDArray[Any], t_batch: npt.NDArray[Any]) -> Any:
        """Gradient, optimizer step and the step's loss (see ``loss_after_update``)."""
        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)

        if self.loss_after_update:
            return self.network.loss(x_batch, t_batch)
        return self._last_loss()

    def _last_loss(self) -> Any:
        loss = getattr(self.network, "last_loss", None)
        if loss is None:
            raise TypeError("Trainer(loss_after_update=False): the network's gradient() "
                            "must leave the batch loss in network.last_loss "
                            "(nnfast networks do)")
        return loss

    def _accuracy(self, x: npt.NDArray[Any], t: npt.NDArray[Any]) -> Any:
        """``network.accuracy(x, t)``; the seam where a data-parallel trainer splits it."""
        return self.network.accuracy(x, t)

    def train_step(self) -> None:
        start = time.perf_counter()
        x_batch, t_batch = self._next_batch()
        loss = self._update(x_batch, t_batch)
        self.train_loss_list.append(loss)
        self.train_time += time.perf_counter() - start
        if self.verbose:
            print("train loss:" + str(loss))
        self._advance_bar(loss)

        evaluated = self._is_evaluation_step(self.current_iter)
        if evaluated:
            self._close_bar()
            start = time.perf_counter()
            self.current_epoch += 1
            x_tr, t_tr, x_te, t_te = self._evaluation_samples()
            train_acc = self._accuracy(x_tr, t_tr)
            test_acc = self._accuracy(x_te, t_te)
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
        if evaluated and self.checkpoint is not None \
                and self.current_epoch % self.checkpoint_every == 0:
            self.save_checkpoint(self.checkpoint)

    def _record(self, train_acc: float, test_acc: float, test_loss: Optional[float]) -> None:
        h = self.history
        losses = self.train_loss_list[self._epoch_losses_start:]
        self._epoch_losses_start = len(self.train_loss_list)
        h["epoch"].append(self.current_epoch)
        h["iteration"].append(self.current_iter + 1)
        h["train_acc"].append(float(train_acc))
        h["test_acc"].append(float(test_acc))
        h["train_loss"].append(float(np.mean(losses)) if losses else None)
        h["test_loss"].append(None if test_loss is None else float(test_loss))

    def _mean_loss(self, x: npt.NDArray[Any], t: npt.NDArray[Any]) -> float:
        """Mean loss over (x, t) in test mode, in batches of ``batch_size`` (one forward)."""
        total = 0.0
        n = x.shape[0]
        for start in range(0, n, self.batch_size):
            xb, tb = x[start:start + self.batch_size], t[start:start + self.batch_size]
            total += float(self.network.loss(xb, tb, train_flg=False)) * xb.shape[0]
        return total / n

    # ---------------------------------------------------------------- progress bar

    def _steps_until_evaluation(self) -> int:
        """Steps from ``current_iter`` up to and including the next evaluation (or the end)."""
        it = self.current_iter
        while it < self.max_iter - 1 and not self._is_evaluation_step(it):
            it += 1
        return it - self.current_iter + 1

    def _advance_bar(self, loss: Any) -> None:
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

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def save_learning_curve(self, path: PathLike, title: Optional[str] = None) -> Any:
        """Write ``history`` as a PNG at ``path`` (matplotlib needed, imported only here)."""
        from nnfast.plotting import save_learning_curve

        return save_learning_curve(self.history, path, title=title)

    def train(self) -> None:
        steps, self._resume_from = self.max_iter - self._resume_from, 0
        try:
            for _ in range(steps):
                self.train_step()
        finally:
            self._close_bar()

        test_acc = self._accuracy(self.x_test, self.t_test)
        self.final_test_acc = test_acc
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(test_acc))


    # ---------------------------------------------------------------- checkpoints

    def save_checkpoint(self, path: PathLike) -> None:
        """Write everything the rest of this run depends on to ``path`` (``.npz``, atomic).

        See the module docstring. ``checkpoint_extra`` is stored too (JSON).
        """
        net, opt = self.network, self.optimizer
        opt_meta, opt_arrays = opt.get_state()
        rng: Any = np.random.get_state()
        meta = {
            "format": CHECKPOINT_FORMAT,
            "network": type(net).__name__,
            "optimizer": opt_meta,
            "trainer": {"epochs": self.epochs, "batch_size": self.batch_size,
                        "train_size": self.train_size, "sampling": self.sampling,
                        "shuffle_seed": self.shuffle_seed, "current_iter": self.current_iter,
                        "current_epoch": self.current_epoch,
                        "epoch_losses_start": self._epoch_losses_start,
                        "train_time": self.train_time, "eval_time": self.eval_time,
                        "history": self.history},
            "rng": {"kind": rng[0], "pos": int(rng[2]), "has_gauss": int(rng[3])},
            "augment_rng": _augment_rng_state(self.augment),
            "extra": self.checkpoint_extra,
        }
        arrays = {"meta": _npz.json_array(meta), "rng.keys": np.asarray(rng[1]),
                  "rng.cached_gaussian": np.float64(rng[4]),
                  "train_loss": np.asarray(self.train_loss_list, dtype=_list_dtype(
                      self.train_loss_list)),
                  "train_acc": np.asarray(self.train_acc_list, dtype=np.float64),
                  "test_acc": np.asarray(self.test_acc_list, dtype=np.float64)}
        arrays.update({f"net.{k}": v for k, v in _network_arrays(net).items()})
        arrays.update({f"opt.{k}": v for k, v in opt_arrays.items()})
        _npz.save_npz(path, arrays)

    def load_checkpoint(self, path: PathLike) -> Any:
        """Restore a checkpoint written by :meth:`save_checkpoint` of a trainer built alike.

        The network's class, parameter names, shapes and dtypes, the optimizer's class and
        hyper-parameters, the batch size and the training-set size must match (ValueError
        naming the difference otherwise, and nothing changes); ``epochs`` may be larger.
        Returns the stored ``checkpoint_extra``. ``train()`` then runs the remaining steps.
        """
        where = "load_checkpoint"
        arrays = _npz.load_npz(path, where, "an nnfast training checkpoint")
        meta = _checkpoint_meta(arrays, path)
        tr = meta["trainer"]
        if meta["network"] != type(self.network).__name__:
            raise ValueError(f"{where}: {os.fspath(path)!r} holds a {meta['network']}, this "
                             f"trainer trains a {type(self.network).__name__}")
        for key, mine in (("batch_size", self.batch_size), ("train_size", self.train_size),
                          ("sampling", self.sampling), ("shuffle_seed", self.shuffle_seed)):
            if tr.get(key, _OLD_CHECKPOINT_DEFAULTS.get(key)) != mine:
                raise ValueError(f"{where}: {os.fspath(path)!r} was written with {key} "
                                 f"{tr.get(key, _OLD_CHECKPOINT_DEFAULTS.get(key))!r}, this "
                                 f"trainer has {mine!r}")
        if tr["current_iter"] > self.max_iter:
            raise ValueError(f"{where}: {os.fspath(path)!r} is at iteration "
                             f"{tr['current_iter']}, past this trainer's {self.max_iter} "
                             f"({self.epochs} epochs)")
        opt_state = self.optimizer.check_state(
            meta["optimizer"], _prefixed(arrays, "opt."), where)
        keys = arrays.get("rng.keys")
        if meta["rng"].get("kind") != "MT19937" or keys is None or keys.shape != (624,):
            raise ValueError(f"{where}: {os.fspath(path)!r} holds no MT19937 random state")
        augment_rng = _check_augment_rng(self.augment, meta["augment_rng"], where)
        _set_network_arrays(self.network, _prefixed(arrays, "net."), os.fspath(path))
        # nothing below can fail
        self.optimizer.set_state(opt_state)
        np.random.set_state(("MT19937", keys.astype(np.uint32), meta["rng"]["pos"],
                             meta["rng"]["has_gauss"], float(arrays["rng.cached_gaussian"])))
        if augment_rng is not None:
            self.augment.rng.bit_generator.state = augment_rng
        self.current_iter = self._resume_from = tr["current_iter"]
        self.current_epoch = tr["current_epoch"]
        self._epoch_losses_start = tr["epoch_losses_start"]
        self.train_time, self.eval_time = tr["train_time"], tr["eval_time"]
        self.history = {key: list(values) for key, values in tr["history"].items()}
        self.train_loss_list = list(arrays["train_loss"])
        self.train_acc_list = list(arrays["train_acc"])
        self.test_acc_list = list(arrays["test_acc"])
        return meta["extra"]


# What a checkpoint written before the ``sampling`` option had (the toolkit's sampling).
_OLD_CHECKPOINT_DEFAULTS = {"sampling": "choice", "shuffle_seed": 0}


def read_checkpoint_meta(path: PathLike) -> Dict[str, Any]:
    """The JSON part of a training checkpoint (counters, history, ``extra``), checked."""
    return _checkpoint_meta(_npz.load_npz(path, "read_checkpoint_meta",
                                          "an nnfast training checkpoint"), path)


def _checkpoint_meta(arrays: Mapping[str, npt.NDArray[Any]],
                     path: PathLike) -> Dict[str, Any]:
    if "meta" not in arrays:
        raise ValueError(f"load_checkpoint: {os.fspath(path)!r} is not an nnfast training "
                         f"checkpoint (no 'meta' entry)")
    meta = _npz.read_json_array(arrays["meta"], "load_checkpoint", "meta")
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"load_checkpoint: {os.fspath(path)!r} is not a "
                         f"{CHECKPOINT_FORMAT} checkpoint")
    return meta


def _prefixed(arrays: Mapping[str, npt.NDArray[Any]],
              prefix: str) -> Dict[str, npt.NDArray[Any]]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def _list_dtype(values: List[Any]) -> Any:
    """The losses' own dtype (float32 networks give float32 losses), float64 when mixed."""
    dtypes = {np.asarray(v).dtype for v in values}
    return dtypes.pop() if len(dtypes) == 1 and dtypes <= {np.dtype(np.float32)} else np.float64


def _network_arrays(net: Any) -> Dict[str, npt.NDArray[Any]]:
    """An nnfast network's ``arrays()`` (parameters and layer state), else its ``params``."""
    arrays = getattr(net, "arrays", None)
    return arrays() if callable(arrays) else dict(net.params)


def _set_network_arrays(net: Any, arrays: Mapping[str, npt.NDArray[Any]],
                        source: str) -> None:
    """Restore :func:`_network_arrays`; a network without ``set_arrays`` gets its parameter
    values copied into its own arrays (the layers share them), all checked first."""
    setter = getattr(net, "set_arrays", None)
    if callable(setter):
        setter(arrays, source, "load_checkpoint")
        return
    if set(arrays) != set(net.params):
        raise ValueError(f"load_checkpoint: {source!r} holds the parameters "
                         f"{sorted(arrays)}, the network has {sorted(net.params)}")
    for key, arr in arrays.items():
        if arr.shape != net.params[key].shape or arr.dtype != net.params[key].dtype:
            raise ValueError(f"load_checkpoint: {key!r} in {source!r} has shape {arr.shape} "
                             f"and dtype {arr.dtype}; the network's is "
                             f"{net.params[key].shape}, {net.params[key].dtype}")
    for key, arr in arrays.items():
        net.params[key][...] = arr


def _augment_rng_state(augment: Any) -> Optional[Mapping[str, Any]]:
    rng = getattr(augment, "rng", None)
    return rng.bit_generator.state if isinstance(rng, np.random.Generator) else None


def _check_augment_rng(augment: Any, state: Optional[Mapping[str, Any]],
                       where: str) -> Optional[Mapping[str, Any]]:
    mine: Any = _augment_rng_state(augment)
    if (state is None) != (mine is None) or (
            state is not None and state.get("bit_generator") != mine.get("bit_generator")):
        raise ValueError(f"{where}: the checkpoint's augmentation generator "
                         f"({None if state is None else state.get('bit_generator')}) does "
                         f"not match this trainer's "
                         f"({None if mine is None else mine.get('bit_generator')})")
    return state


def _in_notebook() -> bool:
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


def _make_bar(total: int, desc: str) -> Any:
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
