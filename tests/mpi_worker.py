"""Run by tests/test_distributed.py under ``mpiexec -n N python tests/mpi_worker.py CASE OUT``.

Cases:
  equivalence  DistributedTrainer on every rank, then (rank 0) the 1-process Trainer on the
               same data and seeds; writes the parameters' largest relative differences
  raise        rank 1 raises in its 3rd gradient (under abort_on_error)
  kill         rank 1 kills itself with SIGKILL in its 3rd gradient
"""
import json
import os
import signal
import sys

import nnfast  # noqa: F401  (before NumPy: nnfast sets the BLAS environment)
import numpy as np

from nnfast import distributed, nets
from nnfast.trainer import Trainer

nnfast.set_num_threads(1)


def data(n, dtype, shape=(1, 28, 28), seed=1):
    rng = np.random.RandomState(seed)
    x = rng.rand(n, *shape).astype(dtype)
    t = rng.randint(0, 10, size=n)
    return x, t


def run(trainer_class, net_factory, dtype, steps, batch, seed=0, **kwargs):
    x, t = data(120, dtype)
    np.random.seed(seed)
    net = net_factory(dtype)
    tr = trainer_class(net, x[:100], t[:100], x[100:], t[100:], epochs=1,
                       mini_batch_size=batch, optimizer="adam",
                       optimizer_param={"lr": 0.001}, verbose=False,
                       loss_after_update=False, eval_loss=True,
                       evaluate_sample_num_per_epoch=20, **kwargs)
    tr.max_iter = steps
    tr.train()
    return net, tr


def deep(dtype):
    return nets.DeepConvNet(dtype=dtype)


def simple(dtype):
    return nets.SimpleConvNet(hidden_size=20, dtype=dtype)


def rel_diff(a, b):
    return max(float(np.max(np.abs(a.params[k].astype(np.float64) - b.params[k]))
                     / max(float(np.max(np.abs(b.params[k]))), 1e-300)) for k in b.params)


def equivalence(out):
    comm = distributed.world()
    cases = {
        # name: (net, dtype, steps, global batch, sampling)
        "deep_f64_choice": (deep, np.float64, 50, 10, "choice"),
        "simple_f64_permutation": (simple, np.float64, 30, 15, "permutation"),
        "simple_f32_choice": (simple, np.float32, 30, 16, "choice"),
    }
    result = {}
    for name, (factory, dtype, steps, batch, sampling) in cases.items():
        dnet, dtr = run(distributed.DistributedTrainer, factory, dtype, steps, batch,
                        sampling=sampling, shuffle_seed=3)
        if comm.Get_rank() == 0:
            snet, str_ = run(Trainer, factory, dtype, steps, batch, sampling=sampling,
                             shuffle_seed=3)
            result[name] = {
                "rel_diff": rel_diff(dnet, snet),
                "bitwise": all(np.array_equal(dnet.params[k], snet.params[k])
                               for k in snet.params),
                "loss_rel_diff": max(abs(float(a) - float(b)) / abs(float(b)) for a, b in
                                     zip(dtr.train_loss_list, str_.train_loss_list)),
                "steps": len(dtr.train_loss_list),
                "acc": [dtr.final_test_acc, str_.final_test_acc],
                "history_acc": [dtr.history["test_acc"], str_.history["test_acc"]],
                "test_loss": [dtr.history["test_loss"], str_.history["test_loss"]],
                "rng_equal": True,
            }
        # every rank's generator is where the 1-process run's is
        state = np.random.get_state()[1]
        states = comm.gather(state, root=0)
        if comm.Get_rank() == 0:
            result[name]["rng_equal"] = all(np.array_equal(s, states[0]) for s in states)
        same = comm.gather(np.concatenate([p.ravel() for p in dnet.params.values()]), root=0)
        if comm.Get_rank() == 0:
            result[name]["replicas_equal"] = all(np.array_equal(s, same[0]) for s in same)
    if comm.Get_rank() == 0:
        result["size"] = comm.Get_size()
        with open(out, "w") as f:
            json.dump(result, f)


class Faulty(nets.SimpleConvNet):
    """SimpleConvNet whose 3rd gradient on rank 1 fails as ``how`` says."""

    how = None
    calls = 0

    def gradient(self, x, t):
        self.calls += 1
        if self.calls == 3 and distributed.world().Get_rank() == 1:
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("injected failure on rank 1")
        return super().gradient(x, t)


def fault(how):
    Faulty.how = how
    x, t = data(60, np.float32)
    np.random.seed(0)
    net = Faulty(hidden_size=10, dtype=np.float32)
    tr = distributed.DistributedTrainer(net, x[:50], t[:50], x[50:], t[50:], epochs=100,
                                        mini_batch_size=10, verbose=False)
    distributed.abort_on_error(tr.train)


if __name__ == "__main__":
    case = sys.argv[1]
    if case == "equivalence":
        equivalence(sys.argv[2])
    else:
        fault(case)
