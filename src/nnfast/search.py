"""``nnfast search``: the book's random hyper-parameter search (ch06) on Optuna.

``pip install "nnfast[search]"``. The defaults are the book's ``hyperparameter_optimization``:
MultiLayerNet with six hidden layers of 100, the first 500 training images split 400 train /
100 validation (20 %, after a shuffle), SGD with batch 100 for 50 epochs, learning rate
10^U(-6, -2) and weight decay 10^U(-8, -4), 100 trials, the top 20 shown.

Optuna's storage is the engine that lets workers cooperate: a SQLite file (the default,
``OUT/search.db``), a journal file (``--storage journal:PATH``, for a shared file system) or
PostgreSQL/MySQL (``--storage postgresql://...``) across machines; any number of
``nnfast search --storage URL --study NAME`` processes join the same study, and running the
command again resumes it.

Trials are identified by an *index* 0..N-1 (the trial number of an uninterrupted serial
run). A trial's learning rate, weight decay (with the default random sampler) and the seed of
its weights and batches come from ``numpy.random.default_rng([seed, index])``, so the results
do not depend on how many workers run, nor in which order. A worker claims the lowest free
index (one whose trials are neither complete, pruned, running nor waiting); should two
workers claim the same index at once, each sees the other after recording its claim and the
one that sees a conflict gives way (its trial ends as FAIL with the user attribute
``gave_way``), so no index is lost or done twice. A running trial whose worker stops sending
heartbeats (a user attribute written at every epoch) for ``stale_after`` seconds is marked
FAIL and its index is claimed again.

``search(..., jobs=J)`` runs worker 0 in the calling process and spawns J - 1 more, which
get the data from it. ``SearchConfig(dtype='float32')`` trains in float32: about twice as
fast, and other numbers than the book's float64 (docs/scaling.md).
"""
from __future__ import annotations

import csv
import math
import multiprocessing
import random
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, \
    Union

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial, Trial

__all__ = ["SearchConfig", "trial_values", "load_data", "run_trial", "train_trial",
           "open_study", "work",
           "search", "index_states", "best_trials", "OPTUNA_MISSING"]

OPTUNA_MISSING = "nnfast search needs Optuna: pip install \"nnfast[search]\""
LR_RANGE = (1e-6, 1e-2)
WEIGHT_DECAY_RANGE = (1e-8, 1e-4)
CONFIG_ATTR = "nnfast_search"
POLL_SECONDS = 0.5
DTYPES = ("float64", "float32")

FloatArray = npt.NDArray[np.floating[Any]]
#: ``((x_train, t_train), (x_val, t_val))``
Data = Tuple[Tuple[FloatArray, npt.NDArray[Any]], Tuple[FloatArray, npt.NDArray[Any]]]
#: ``on_epoch(epoch, val_acc_list, train_acc_list)``
EpochHook = Callable[[int, List[float], List[float]], None]
Log = Callable[[str], None]


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(f"{OPTUNA_MISSING} ({exc})") from exc
    return optuna


class SearchConfig:
    """What a study's results depend on (stored in the study; joiners must agree).

    ``dtype`` is the arithmetic: float64 (the default: the book's) or float32 (about twice
    as fast, other numbers; see docs/scaling.md). A study stored before ``dtype`` existed
    is a float64 one.
    """

    KEYS = ("data", "samples", "validation_rate", "hidden", "epochs", "batch_size", "seed",
            "sampler", "pruner", "dtype")
    DEFAULTS: Dict[str, Any] = {"dtype": "float64"}  # of keys added after the first studies

    def __init__(self, trials: int = 100, epochs: int = 50, data: str = "digits5k",
                 samples: int = 500, validation_rate: float = 0.2,
                 hidden: Sequence[int] = (100,) * 6, batch_size: int = 100, seed: int = 0,
                 sampler: str = "random", pruner: str = "none", dtype: str = "float64"
                 ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"SearchConfig: dtype must be one of {DTYPES}, got {dtype!r}")
        self.trials = trials
        self.epochs = epochs
        self.data = data
        self.samples = samples
        self.validation_rate = validation_rate
        self.hidden = list(hidden)
        self.batch_size = batch_size
        self.seed = seed
        self.sampler = sampler
        self.pruner = pruner
        self.dtype = dtype

    def as_dict(self) -> Dict[str, Any]:
        return {key: getattr(self, key) for key in self.KEYS}


def trial_values(seed: int, index: int) -> Tuple[float, float, int]:
    """``(lr, weight_decay, trial_seed)`` of trial ``index``: the book's ranges, drawn from
    ``default_rng([seed, index])`` (weight decay first, as the book draws them)."""
    rng = np.random.default_rng([seed, index])
    weight_decay = 10 ** rng.uniform(-8, -4)
    lr = 10 ** rng.uniform(-6, -2)
    return float(lr), float(weight_decay), int(rng.integers(2 ** 31))


def load_data(config: SearchConfig) -> Data:
    """The book's split: the first ``samples`` training images, shuffled (seeded), the first
    ``validation_rate`` of them for validation, the rest for training (float64 images, as
    the book's; a float32 search converts them, exactly, when it trains)."""
    from nnfast.datasets import load_mnist, load_mnist_5k

    if config.data == "digits5k":
        (x, t), _ = load_mnist_5k(flatten=True, seed=config.seed)
    else:
        (x, t), _ = load_mnist(normalize=True, flatten=True)
    x, t = x[:config.samples].astype(np.float64), t[:config.samples]
    order = np.random.RandomState(config.seed).permutation(x.shape[0])
    x, t = x[order], t[order]
    n_val = int(x.shape[0] * config.validation_rate)
    return (x[n_val:], t[n_val:]), (x[:n_val], t[:n_val])


def _indexed_random_sampler(seed: int) -> "optuna.samplers.BaseSampler":
    """An Optuna sampler giving the trial with user attribute ``index`` the values
    :func:`trial_values` gives that index: the same index always gets the same
    hyper-parameters, whichever worker runs it and whatever ran before."""
    _optuna()
    from optuna.distributions import BaseDistribution
    from optuna.samplers import BaseSampler

    class IndexedRandomSampler(BaseSampler):
        def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                        ) -> Dict[str, BaseDistribution]:
            return {}

        def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                            search_space: Dict[str, BaseDistribution]) -> Dict[str, Any]:
            return {}

        def sample_independent(self, study: optuna.Study, trial: FrozenTrial,
                               param_name: str, param_distribution: BaseDistribution) -> Any:
            lr, weight_decay, _ = trial_values(seed, trial.user_attrs["index"])
            return {"lr": lr, "weight_decay": weight_decay}[param_name]

    return IndexedRandomSampler()


def _sampler(config: SearchConfig) -> Any:
    optuna = _optuna()
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=config.seed)
    return _indexed_random_sampler(config.seed)


def _pruner(config: SearchConfig) -> Any:
    optuna = _optuna()
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5)
    return optuna.pruners.NopPruner()


def _storage(url: str, checked: bool = False) -> Union[str, "BaseStorage"]:
    """The storage object of ``url``. ``checked``: the tables exist and their schema was
    checked by this search's first process (its workers skip the check: each costs
    Alembic's migration scripts, about 0.15-0.5 s a process)."""
    optuna = _optuna()
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        journal: BaseStorage = optuna.storages.JournalStorage(
            JournalFileBackend(url[len("journal:"):]))
        return journal
    if checked:
        try:
            rdb: BaseStorage = optuna.storages.RDBStorage(
                url, skip_compatibility_check=True, skip_table_creation=True)
            return rdb
        except TypeError:  # an Optuna without skip_table_creation
            pass
    return url


CREATE_ATTEMPTS = 5


def _is_database_error(exc: BaseException) -> bool:
    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:
        return False
    return isinstance(exc, SQLAlchemyError)


def open_study(url: str, name: str, config: SearchConfig, *, checked: bool = False
               ) -> "optuna.Study":
    """Create or load the study; refuse one made with other settings (trials may grow)."""
    opt = _optuna()
    for attempt in range(CREATE_ATTEMPTS):
        try:
            study: optuna.Study = opt.create_study(
                study_name=name, storage=_storage(url, checked), direction="maximize",
                sampler=_sampler(config), pruner=_pruner(config), load_if_exists=True)
            break
        except ImportError as exc:  # the database's driver (SQLAlchemy names it in the cause)
            cause = exc.__cause__ or exc
            raise ValueError(f"nnfast search: the storage {url} needs a database driver "
                             f"that could not be imported ({cause}); for postgresql:// "
                             f"install psycopg 3 (pip install \"psycopg[binary]\") or write "
                             f"postgresql+psycopg2:// with psycopg2") from exc
        except Exception as exc:
            # Processes started at once on an empty database all create Optuna's tables;
            # all but one fail (PostgreSQL: "duplicate key ... pg_type"). The tables exist
            # then: try again, after a random pause.
            if attempt == CREATE_ATTEMPTS - 1 or not _is_database_error(exc):
                raise
            time.sleep(random.uniform(0.1, 0.5) * (attempt + 1))
    mine = config.as_dict()
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, mine)
        stored = study.user_attrs.get(CONFIG_ATTR, mine)
    for key in SearchConfig.KEYS:
        theirs = stored.get(key, SearchConfig.DEFAULTS.get(key))
        if theirs != mine[key]:
            raise ValueError(f"nnfast search: study {name!r} in {url} was made with {key} = "
                             f"{theirs!r}, this search has {mine[key]!r}; use "
                             f"another --study or the same settings")
    return study


def run_trial(config: SearchConfig, data: Data, lr: float, weight_decay: float,
              trial_seed: int, on_epoch: Optional[EpochHook] = None
              ) -> Tuple[List[float], List[float]]:
    """Train the book's network once; returns ``(val_acc_list, train_acc_list)``.

    The arithmetic of ``Trainer(MultiLayerNet(...), optimizer='sgd').train()``, bit for bit
    (tests/test_search.py compares the two): the network's weights drawn by
    ``MultiLayerNet`` after ``np.random.seed(trial_seed)``, batches by
    ``np.random.choice(400, 100)``, the gradient of the loss with L2 weight decay
    (``dW + lambda * W``), ``p -= lr * g``, and after step 0, 4, 8, ... (the book's
    ``current_iter % iter_per_epoch == 0``) the accuracy on all the training and all the
    validation images. It runs the layers' own kernels (``nnfast.ops``) in a loop of its
    own, which leaves out what nothing in the search reads and what changes no parameter
    and no random draw: the book's Trainer's loss after each update (a second forward pass
    per step) and the loss's weight-decay term (``0.5 * lambda * sum(W**2)``, a pass over
    every weight per step); its forwards write into buffers made once per trial, and each
    accuracy is one forward of its whole set. ``config.dtype`` float32 runs the same steps
    in float32 (the weights drawn in float64 and rounded, as ``MultiLayerNet(dtype=)``).
    ``on_epoch(epoch, val_acc_list, train_acc_list)`` runs after each evaluation.
    """
    val_acc, train_acc, _ = train_trial(config, data, lr, weight_decay, trial_seed, on_epoch)
    return val_acc, train_acc


def train_trial(config: SearchConfig, data: Data, lr: float, weight_decay: float,
                trial_seed: int, on_epoch: Optional[EpochHook] = None
                ) -> Tuple[List[float], List[float], Dict[str, FloatArray]]:
    """:func:`run_trial`, also returning the trained network's parameters
    (``{'W1': ..., 'b1': ..., ...}``, as ``MultiLayerNet.params``)."""
    from nnfast import ops
    from nnfast.nets import MultiLayerNet

    (x_train, t_train), (x_val, t_val) = data
    dtype = np.dtype(config.dtype)
    x_train = np.ascontiguousarray(x_train, dtype=dtype)
    x_val = np.ascontiguousarray(x_val, dtype=dtype)
    labels = np.ascontiguousarray(t_train, dtype=np.int64)
    np.random.seed(trial_seed)
    net = MultiLayerNet(input_size=x_train.shape[1], hidden_size_list=config.hidden,
                        output_size=10, weight_decay_lambda=weight_decay, dtype=dtype)
    n_affine = len(config.hidden) + 1
    W = [net.params[f"W{i}"] for i in range(1, n_affine + 1)]
    b = [net.params[f"b{i}"] for i in range(1, n_affine + 1)]
    sizes = [w.shape[1] for w in W]
    n_train, batch = x_train.shape[0], config.batch_size
    iter_per_epoch = max(n_train / batch, 1)
    max_iter = int(config.epochs * iter_per_epoch)

    def buffers(rows: int) -> List[FloatArray]:
        return [np.empty((rows, m), dtype=dtype) for m in sizes]

    # training step: affine outputs (pre), ReLU outputs (post), the batch, decay terms
    pre, post = buffers(batch), buffers(batch)
    x_batch = np.empty((batch, x_train.shape[1]), dtype=dtype)
    t_batch = np.empty(batch, dtype=np.int64)
    dscores = np.empty((batch, sizes[-1]), dtype=dtype)
    # backward: the Affine layers' products (ops.affine_backward's, into buffers: a fresh
    # 784 x 100 dW per step is an mmap and ~150 page faults in a process whose malloc has
    # not raised its mmap threshold yet, e.g. a spawned worker)
    dWs, dbs = [np.empty_like(w) for w in W], [np.empty_like(v) for v in b]
    dxs = buffers(batch)
    decay = [np.empty_like(w) for w in W]
    # evaluation: one forward of each whole set
    evals = {id(x): (buffers(x.shape[0]), buffers(x.shape[0])) for x in (x_train, x_val)}

    def forward(x: FloatArray, a: List[FloatArray], h: List[FloatArray]) -> FloatArray:
        for i in range(n_affine - 1):
            ops.relu(ops.affine(x, W[i], b[i], out=a[i]), out=h[i])
            x = h[i]
        return ops.affine(x, W[-1], b[-1], out=a[-1])

    def accuracy(x: FloatArray, t: npt.NDArray[Any]) -> float:
        a, h = evals[id(x)]
        scores = forward(x, a, h)
        correct = np.sum(np.argmax(scores, axis=1) == t)
        return float(correct / float(x.shape[0]))

    train_acc: List[float] = []
    val_acc: List[float] = []
    for it in range(max_iter):
        mask = np.random.choice(n_train, batch)
        np.take(x_train, mask, axis=0, out=x_batch)
        np.take(labels, mask, out=t_batch)
        scores = forward(x_batch, pre, post)
        dout: FloatArray = ops.softmax_cross_entropy(scores, t_batch, out=dscores)[1]
        for i in range(n_affine - 1, -1, -1):
            x_in = x_batch if i == 0 else post[i - 1]
            # dx = dout W^T (not for the images), dW = x^T dout, db: the Affine layer's
            ops.affine_backward(dout, x_in, W[i], bool(i), dx_out=dxs[i - 1] if i else None,
                                dw_out=dWs[i], db_out=dbs[i])
            if weight_decay:  # the network's gradient: dW + lambda * W
                np.add(dWs[i], np.multiply(weight_decay, W[i], out=decay[i]), out=dWs[i])
            if i:
                dout = ops.relu_backward(dxs[i - 1], pre[i - 1])
        for i in range(n_affine - 1, -1, -1):
            ops.sgd_(W[i], dWs[i], lr)
            ops.sgd_(b[i], dbs[i], lr)
        if it % iter_per_epoch == 0:
            train_acc.append(accuracy(x_train, t_train))
            val_acc.append(accuracy(x_val, t_val))
            if on_epoch is not None:
                on_epoch(len(val_acc), val_acc, train_acc)
    return val_acc, train_acc, net.params


_LIVE = ("COMPLETE", "PRUNED", "RUNNING", "WAITING")
_DONE = ("COMPLETE", "PRUNED")


def index_states(study: "optuna.Study", n_trials: int,
                 trials: Optional[Sequence["FrozenTrial"]] = None
                 ) -> Tuple[Set[int], Set[int], Set[int]]:
    """``(done, running, free)`` sets of trial indices in 0..n_trials-1 (of ``trials``, by
    default the study's)."""
    done: Set[int] = set()
    running: Set[int] = set()
    for t in study.get_trials(deepcopy=False) if trials is None else trials:
        index = t.user_attrs.get("index")
        if index is None or t.user_attrs.get("gave_way"):
            continue
        if t.state.name in _DONE:
            done.add(index)
        elif t.state.name in _LIVE:
            running.add(index)
    free = set(range(n_trials)) - done - running
    return done, running - done, free


def _fail_stale(study: "optuna.Study", stale_after: float,
                trials: Sequence["FrozenTrial"]) -> bool:
    """Mark FAIL the running ones of ``trials`` whose heartbeat is older than
    ``stale_after`` s; whether any was."""
    optuna = _optuna()
    now = time.time()
    failed = False
    for t in trials:
        beat = t.user_attrs.get("heartbeat")
        if t.state.name == "RUNNING" and beat is not None and now - beat > stale_after:
            failed = True
            try:
                study._storage.set_trial_state_values(t._trial_id,
                                                      optuna.trial.TrialState.FAIL)
            except RuntimeError:  # another worker did it first, or the trial just ended
                pass
    return failed


class _GaveWay(Exception):
    """Another worker claimed the same trial index at the same moment."""


def _objective(config: SearchConfig, data: Data, n_trials: int, worker: int, log: Log,
               stale_after: float) -> Callable[["Trial"], float]:
    optuna = _optuna()

    def objective(trial: Trial) -> float:
        study = trial.study
        _, _, free = index_states(study, n_trials)
        if not free:
            trial.set_user_attr("gave_way", True)
            raise _GaveWay("no trial index left to claim")
        ordered = sorted(free)
        index = ordered[worker % len(ordered)]  # local workers start apart
        trial.set_user_attr("index", index)
        trial.set_user_attr("heartbeat", time.time())
        rivals = [t.number for t in study.get_trials(deepcopy=False)
                  if t.number != trial.number and t.user_attrs.get("index") == index
                  and not t.user_attrs.get("gave_way") and t.state.name in _LIVE]
        if rivals:
            trial.set_user_attr("gave_way", True)
            # both claimants may give way; a random pause keeps them from meeting again
            time.sleep(random.uniform(0.0, 0.2))
            raise _GaveWay(f"trial index {index} was claimed at the same time by trial "
                           f"{rivals[0]}; this one gives way")
        _, _, trial_seed = trial_values(config.seed, index)
        lr = trial.suggest_float("lr", *LR_RANGE, log=True)
        weight_decay = trial.suggest_float("weight_decay", *WEIGHT_DECAY_RANGE, log=True)
        trial.set_user_attr("seed", trial_seed)

        last_beat = [time.time()]

        def on_epoch(epoch: int, val_acc: List[float], train_acc: List[float]) -> None:
            # each storage write is a transaction (an fsync for SQLite): heartbeats at most
            # every stale_after / 4 seconds, intermediate values only for the pruner
            now = time.time()
            if now - last_beat[0] > stale_after / 4:
                trial.set_user_attr("heartbeat", now)
                last_beat[0] = now
            if config.pruner == "none":
                return
            trial.report(val_acc[-1], epoch)
            if trial.should_prune():
                trial.set_user_attr("val_acc", list(val_acc))
                trial.set_user_attr("train_acc", list(train_acc))
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        val, train = run_trial(config, data, lr, weight_decay, trial_seed, on_epoch)
        trial.set_user_attr("val_acc", val)
        trial.set_user_attr("train_acc", train)
        log(f"[{index:>3}] val acc:{val[-1]} | lr:{lr}, weight decay:{weight_decay}")
        return val[-1]

    return objective


def work(url: str, name: str, config: SearchConfig, worker: int = 0, threads: int = 1,
         stale_after: float = 60.0, quiet: bool = False, *,
         study: Optional["optuna.Study"] = None, data: Optional[Data] = None) -> None:
    """One worker: claim free trial indices of the study and run them until every index
    is complete or pruned (waiting for other workers' running trials, which may go stale).
    ``study`` (already opened on ``url``) and ``data`` (:func:`load_data`'s) save opening
    and loading them again."""
    import nnfast

    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with nnfast.num_threads(threads):
        if study is None:
            study = open_study(url, name, config)
        _work(study, config, worker, stale_after, quiet,
              load_data(config) if data is None else data)


def _work(study: "optuna.Study", config: SearchConfig, worker: int, stale_after: float,
          quiet: bool, data: Data) -> None:
    def log(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    objective = _objective(config, data, config.trials, worker, log, stale_after)
    while True:
        trials = study.get_trials(deepcopy=False)
        if _fail_stale(study, stale_after, trials):
            trials = study.get_trials(deepcopy=False)
        done, running, free = index_states(study, config.trials, trials)
        if len(done) >= config.trials:
            return
        if not free:
            time.sleep(POLL_SECONDS)  # others' trials: wait until they end or go stale
            continue
        study.optimize(objective, n_trials=1, catch=(_GaveWay,))


def _worker_main(url: str, name: str, config_dict: Dict[str, Any], trials: int, worker: int,
                 threads: int, stale_after: float, quiet: bool, data: Data) -> None:
    """A worker process of :func:`search` (spawned: it imports everything anew, but takes
    the data from its parent and skips the storage's schema check the parent did)."""
    config = SearchConfig(trials=trials, **config_dict)
    try:
        optuna = _optuna()
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = open_study(url, name, config, checked=True)
        work(url, name, config, worker, threads, stale_after, quiet, study=study, data=data)
    except KeyboardInterrupt:
        sys.exit(130)


def search(url: str, name: str, config: SearchConfig, jobs: int = 1, threads: int = 1,
           stale_after: float = 60.0, quiet: bool = False) -> "optuna.Study":
    """Run ``jobs`` workers on this machine until the study has ``config.trials`` complete
    or pruned trial indices; returns the study.

    This process is worker 0; ``jobs - 1`` more are spawned processes. The study is opened
    and the data loaded once here (the workers get the data as an argument).
    """
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(url, name, config)  # create it (and check the settings) once, here
    data = load_data(config)
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
    procs = [ctx.Process(target=_worker_main,
                         args=(url, name, config.as_dict(), config.trials, w, threads,
                               stale_after, quiet, data))
             for w in range(1, jobs)]
    for p in procs:
        p.start()
    try:
        work(url, name, config, 0, threads, stale_after, quiet, study=study, data=data)
        for p in procs:
            p.join()
    except BaseException:
        for p in procs:  # Ctrl-C reaches the workers too; anything else stops them
            if p.is_alive() and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
                p.terminate()
            p.join()
        raise
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise RuntimeError(f"nnfast search: {len(failed)} worker(s) failed "
                           f"(exit codes {failed})")
    return study


def best_trials(study: "optuna.Study", n_trials: int) -> List["FrozenTrial"]:
    """The complete or pruned trials with index < n_trials, one per index, best first:
    complete ones by final validation accuracy (then index), then the pruned ones."""
    seen: Dict[int, FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False):
        index = t.user_attrs.get("index")
        if t.state.name in _DONE and index is not None and index < n_trials \
                and index not in seen:
            seen[index] = t
    return sorted(seen.values(), key=lambda t: (t.state.name != "COMPLETE", -_final(t),
                                                t.user_attrs["index"]))


def _final(trial: "FrozenTrial") -> float:
    val = trial.user_attrs.get("val_acc") or [0.0]
    return float(val[-1] if trial.value is None else trial.value)


def format_best(trials: Sequence["FrozenTrial"], limit: int = 20) -> str:
    lines = ["=========== Hyper-Parameter Optimization Result ==========="]
    for i, t in enumerate(trials[:limit]):
        state = "" if t.state.name == "COMPLETE" else f" [{t.state.name.lower()}]"
        lines.append(f"Best-{i + 1}(val acc:{_final(t)}) | lr:{t.params['lr']}, "
                     f"weight decay:{t.params['weight_decay']}  "
                     f"(trial {t.user_attrs['index']}, seed {t.user_attrs['seed']}){state}")
    return "\n".join(lines)


def save_curves(trials: Sequence["FrozenTrial"], path: str, limit: int = 20, cols: int = 5
                ) -> None:
    """The book's figure: validation (solid) and training (dashed) accuracy of the best."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = trials[:limit]
    rows = max(1, int(math.ceil(len(shown) / cols)))
    fig = plt.figure(figsize=(2.4 * cols, 2.0 * rows))
    for i, t in enumerate(shown):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.set_title(f"Best-{i + 1}", fontsize=9)
        ax.set_ylim(0.0, 1.0)
        if i % cols:
            ax.set_yticks([])
        ax.set_xticks([])
        val, train = t.user_attrs.get("val_acc", []), t.user_attrs.get("train_acc", [])
        ax.plot(np.arange(len(val)), val)
        ax.plot(np.arange(len(train)), train, "--")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def save_trials_csv(study: "optuna.Study", path: str) -> None:
    """Every trial of the study (all states), one row each."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "index", "state", "value", "lr", "weight_decay", "seed",
                    "epochs", "seconds", "gave_way"])
        for t in study.get_trials(deepcopy=False):
            seconds = "" if t.duration is None else f"{t.duration.total_seconds():.3f}"
            w.writerow([t.number, t.user_attrs.get("index", ""), t.state.name,
                        "" if t.value is None else t.value, t.params.get("lr", ""),
                        t.params.get("weight_decay", ""), t.user_attrs.get("seed", ""),
                        len(t.user_attrs.get("val_acc", [])), seconds,
                        bool(t.user_attrs.get("gave_way"))])
