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
"""
import csv
import math
import multiprocessing
import os
import sys
import time

import numpy as np

__all__ = ["SearchConfig", "trial_values", "load_data", "run_trial", "open_study", "work",
           "search", "index_states", "best_trials", "OPTUNA_MISSING"]

OPTUNA_MISSING = "nnfast search needs Optuna: pip install \"nnfast[search]\""
LR_RANGE = (1e-6, 1e-2)
WEIGHT_DECAY_RANGE = (1e-8, 1e-4)
CONFIG_ATTR = "nnfast_search"
POLL_SECONDS = 0.5


def _optuna():
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(f"{OPTUNA_MISSING} ({exc})") from exc
    return optuna


class SearchConfig:
    """What a study's results depend on (stored in the study; joiners must agree)."""

    KEYS = ("data", "samples", "validation_rate", "hidden", "epochs", "batch_size", "seed",
            "sampler", "pruner")

    def __init__(self, trials=100, epochs=50, data="digits5k", samples=500,
                 validation_rate=0.2, hidden=(100,) * 6, batch_size=100, seed=0,
                 sampler="random", pruner="none"):
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

    def as_dict(self):
        return {key: getattr(self, key) for key in self.KEYS}


def trial_values(seed, index):
    """``(lr, weight_decay, trial_seed)`` of trial ``index``: the book's ranges, drawn from
    ``default_rng([seed, index])`` (weight decay first, as the book draws them)."""
    rng = np.random.default_rng([seed, index])
    weight_decay = 10 ** rng.uniform(-8, -4)
    lr = 10 ** rng.uniform(-6, -2)
    return float(lr), float(weight_decay), int(rng.integers(2 ** 31))


def load_data(config):
    """The book's split: the first ``samples`` training images, shuffled (seeded), the first
    ``validation_rate`` of them for validation, the rest for training."""
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


def _indexed_random_sampler(seed):
    """An Optuna sampler giving the trial with user attribute ``index`` the values
    :func:`trial_values` gives that index: the same index always gets the same
    hyper-parameters, whichever worker runs it and whatever ran before."""
    optuna = _optuna()

    class IndexedRandomSampler(optuna.samplers.BaseSampler):
        def infer_relative_search_space(self, study, trial):
            return {}

        def sample_relative(self, study, trial, search_space):
            return {}

        def sample_independent(self, study, trial, param_name, param_distribution):
            lr, weight_decay, _ = trial_values(seed, trial.user_attrs["index"])
            return {"lr": lr, "weight_decay": weight_decay}[param_name]

    return IndexedRandomSampler()


def _sampler(config):
    optuna = _optuna()
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=config.seed)
    return _indexed_random_sampler(config.seed)


def _pruner(config):
    optuna = _optuna()
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5)
    return optuna.pruners.NopPruner()


def _storage(url):
    optuna = _optuna()
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url[len("journal:"):]))
    return url


def open_study(url, name, config):
    """Create or load the study; refuse one made with other settings (trials may grow)."""
    optuna = _optuna()
    study = optuna.create_study(study_name=name, storage=_storage(url), direction="maximize",
                                sampler=_sampler(config), pruner=_pruner(config),
                                load_if_exists=True)
    mine = config.as_dict()
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, mine)
        stored = study.user_attrs.get(CONFIG_ATTR, mine)
    for key in SearchConfig.KEYS:
        if stored.get(key) != mine[key]:
            raise ValueError(f"nnfast search: study {name!r} in {url} was made with {key} = "
                             f"{stored.get(key)!r}, this search has {mine[key]!r}; use "
                             f"another --study or the same settings")
    return study


def run_trial(config, data, lr, weight_decay, trial_seed, on_epoch=None):
    """Train the book's network once; returns (val_acc_list, train_acc_list)."""
    from nnfast.nets import MultiLayerNet
    from nnfast.trainer import Trainer

    (x_train, t_train), (x_val, t_val) = data
    np.random.seed(trial_seed)
    net = MultiLayerNet(input_size=x_train.shape[1], hidden_size_list=config.hidden,
                        output_size=10, weight_decay_lambda=weight_decay)
    # loss_after_update=False: the book's extra forward pass only records a loss nobody
    # reads here; it changes no parameter and no random draw.
    tr = Trainer(net, x_train, t_train, x_val, t_val, epochs=config.epochs,
                 mini_batch_size=config.batch_size, optimizer="sgd",
                 optimizer_param={"lr": lr}, verbose=False, loss_after_update=False,
                 on_epoch=on_epoch)
    tr.train()
    return [float(a) for a in tr.test_acc_list], [float(a) for a in tr.train_acc_list]


_LIVE = ("COMPLETE", "PRUNED", "RUNNING", "WAITING")
_DONE = ("COMPLETE", "PRUNED")


def index_states(study, n_trials):
    """``(done, running, free)`` sets of trial indices in 0..n_trials-1."""
    done, running = set(), set()
    for t in study.get_trials(deepcopy=False):
        index = t.user_attrs.get("index")
        if index is None or t.user_attrs.get("gave_way"):
            continue
        if t.state.name in _DONE:
            done.add(index)
        elif t.state.name in _LIVE:
            running.add(index)
    free = set(range(n_trials)) - done - running
    return done, running - done, free


def _fail_stale(study, stale_after):
    """Mark FAIL the running trials whose heartbeat is older than ``stale_after`` s."""
    optuna = _optuna()
    now = time.time()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        beat = t.user_attrs.get("heartbeat")
        if beat is not None and now - beat > stale_after:
            try:
                study._storage.set_trial_state_values(t._trial_id,
                                                      optuna.trial.TrialState.FAIL)
            except RuntimeError:  # another worker did it first, or the trial just ended
                pass


class _GaveWay(Exception):
    """Another worker claimed the same trial index at the same moment."""


def _objective(config, data, n_trials, worker, log, stale_after):
    optuna = _optuna()

    def objective(trial):
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
            raise _GaveWay(f"trial index {index} was claimed at the same time by trial "
                           f"{rivals[0]}; this one gives way")
        _, _, trial_seed = trial_values(config.seed, index)
        lr = trial.suggest_float("lr", *LR_RANGE, log=True)
        weight_decay = trial.suggest_float("weight_decay", *WEIGHT_DECAY_RANGE, log=True)
        trial.set_user_attr("seed", trial_seed)

        last_beat = [time.time()]

        def on_epoch(tr):
            # each storage write is a transaction (an fsync for SQLite): heartbeats at most
            # every stale_after / 4 seconds, intermediate values only for the pruner
            epoch = tr.current_epoch
            now = time.time()
            if now - last_beat[0] > stale_after / 4:
                trial.set_user_attr("heartbeat", now)
                last_beat[0] = now
            if config.pruner == "none":
                return
            trial.report(float(tr.test_acc_list[-1]), epoch)
            if trial.should_prune():
                trial.set_user_attr("val_acc", [float(a) for a in tr.test_acc_list])
                trial.set_user_attr("train_acc", [float(a) for a in tr.train_acc_list])
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        val, train = run_trial(config, data, lr, weight_decay, trial_seed, on_epoch)
        trial.set_user_attr("val_acc", val)
        trial.set_user_attr("train_acc", train)
        log(f"[{index:>3}] val acc:{val[-1]} | lr:{lr}, weight decay:{weight_decay}")
        return val[-1]

    return objective


def work(url, name, config, worker=0, threads=1, stale_after=60.0, quiet=False):
    """One worker: claim free trial indices of the study and run them until every index
    is complete or pruned (waiting for other workers' running trials, which may go stale)."""
    import nnfast

    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with nnfast.num_threads(threads):
        _work(url, name, config, worker, stale_after, quiet)


def _work(url, name, config, worker, stale_after, quiet):
    study = open_study(url, name, config)
    data = load_data(config)

    def log(line):
        if not quiet:
            print(line, flush=True)

    objective = _objective(config, data, config.trials, worker, log, stale_after)
    while True:
        _fail_stale(study, stale_after)
        done, running, free = index_states(study, config.trials)
        if len(done) >= config.trials:
            return
        if not free:
            time.sleep(POLL_SECONDS)  # others' trials: wait until they end or go stale
            continue
        study.optimize(objective, n_trials=1, catch=(_GaveWay,))


def _worker_main(url, name, config_dict, trials, worker, threads, stale_after, quiet):
    config = SearchConfig(trials=trials, **config_dict)
    try:
        work(url, name, config, worker, threads, stale_after, quiet)
    except KeyboardInterrupt:
        sys.exit(130)


def search(url, name, config, jobs=1, threads=1, stale_after=60.0, quiet=False):
    """Run ``jobs`` workers on this machine (processes when jobs > 1) until the study has
    ``config.trials`` complete or pruned trial indices; returns the study."""
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    open_study(url, name, config)  # create it (and check the settings) once, here
    if jobs == 1:
        work(url, name, config, 0, threads, stale_after, quiet)
    else:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
        procs = [ctx.Process(target=_worker_main,
                             args=(url, name, config.as_dict(), config.trials, w, threads,
                                   stale_after, quiet))
                 for w in range(jobs)]
        for p in procs:
            p.start()
        try:
            for p in procs:
                p.join()
        except KeyboardInterrupt:
            for p in procs:
                p.join()
            raise
        failed = [p.exitcode for p in procs if p.exitcode]
        if failed:
            raise RuntimeError(f"nnfast search: {len(failed)} worker(s) failed "
                               f"(exit codes {failed})")
    return open_study(url, name, config)


def best_trials(study, n_trials):
    """The complete or pruned trials with index < n_trials, one per index, best first:
    complete ones by final validation accuracy (then index), then the pruned ones."""
    seen = {}
    for t in study.get_trials(deepcopy=False):
        index = t.user_attrs.get("index")
        if t.state.name in _DONE and index is not None and index < n_trials \
                and index not in seen:
            seen[index] = t
    return sorted(seen.values(), key=lambda t: (t.state.name != "COMPLETE", -_final(t),
                                                t.user_attrs["index"]))


def _final(trial):
    val = trial.user_attrs.get("val_acc") or [0.0]
    return val[-1] if trial.value is None else trial.value


def format_best(trials, limit=20):
    lines = ["=========== Hyper-Parameter Optimization Result ==========="]
    for i, t in enumerate(trials[:limit]):
        state = "" if t.state.name == "COMPLETE" else f" [{t.state.name.lower()}]"
        lines.append(f"Best-{i + 1}(val acc:{_final(t)}) | lr:{t.params['lr']}, "
                     f"weight decay:{t.params['weight_decay']}  "
                     f"(trial {t.user_attrs['index']}, seed {t.user_attrs['seed']}){state}")
    return "\n".join(lines)


def save_curves(trials, path, limit=20, cols=5):
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


def save_trials_csv(study, path):
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
