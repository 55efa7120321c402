"""Scaling of data-parallel training on one machine (docs/scaling.md): MPI allreduce latency
and bandwidth, and training throughput of 1 process vs ``mpiexec -n N`` ranks, for nnfast and
(when a Python with torch is given) PyTorch DistributedDataParallel on gloo.

Reproduce (the numbers in docs/scaling.md; about 6 minutes on 2 cores):
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # as root only
    python benchmarks/scaling.py suite --rounds 3 --torch-python /path/to/python-with-torch

Pieces (``suite`` runs them, interleaved round by round so that noise hits all alike):
    mpiexec -n 2 python benchmarks/scaling.py allreduce
    [mpiexec -n N] python benchmarks/scaling.py train --net deepconv --batch 200 --threads 1
    [mpiexec -n N] PYTHON_WITH_TORCH benchmarks/scaling.py train --impl torch ...
Each prints one JSON line (rank 0). ``train`` times ``--steps`` training steps (Adam, float32,
random images, no evaluation) after ``--warmup`` steps; on N ranks the global batch is split,
and nnfast's step is ``DistributedTrainer.train_step`` (gradient, one allreduce, update).
The torch model has the same layers and sizes (nnfast.bench.workloads.torch_model);
under mpiexec it is wrapped in DistributedDataParallel (gloo; rank and size from OpenMPI's
environment, mpiexec only launches the processes).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

NETS = {"simpleconv": "SimpleConvNet", "deepconv": "DeepConvNet"}


def _world_from_env():
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", 0)))
    size = int(os.environ.get("OMPI_COMM_WORLD_SIZE", os.environ.get("PMI_SIZE", 1)))
    return rank, size


# --------------------------------------------------------------------------- allreduce

def allreduce(args):
    import numpy as np
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rows = []
    for nbytes in [8 * 4 ** k for k in range(12)] + ([args.extra_bytes] if args.extra_bytes else []):
        buf = np.ones(max(1, nbytes // 4), dtype=np.float32)
        reps = max(5, min(2000, int(2e8 // max(nbytes, 1e4))))
        for _ in range(3):
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        samples = []
        for _ in range(5):
            comm.Barrier()
            start = time.perf_counter()
            for _ in range(reps):
                comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            samples.append((time.perf_counter() - start) / reps)
        t = comm.allreduce(statistics.median(samples), op=MPI.MAX)
        rows.append({"bytes": buf.nbytes, "seconds": t})
    if comm.Get_rank() == 0:
        print(json.dumps({"kind": "allreduce", "ranks": comm.Get_size(), "rows": rows}))


# --------------------------------------------------------------------------- train

def _nnfast_step(args, rank, size):
    import nnfast

    nnfast.set_num_threads(args.threads)
    import numpy as np

    from nnfast import nets
    from nnfast.trainer import Trainer

    rng = np.random.RandomState(0)
    n = args.batch * (args.warmup + args.steps + 1)
    x = rng.rand(n, 1, 28, 28).astype(np.float32)
    t = rng.randint(0, 10, size=n)
    np.random.seed(0)
    net = getattr(nets, NETS[args.net])(dtype=np.float32)
    kwargs = dict(epochs=1, mini_batch_size=args.batch, optimizer="adam",
                  optimizer_param={"lr": 0.001}, verbose=False, loss_after_update=False,
                  evaluate_sample_num_per_epoch=10)
    comm = None
    if size > 1:
        from nnfast.distributed import DistributedTrainer, world

        comm = _TimedComm(world())
        tr = DistributedTrainer(net, x, t, x[:10], t[:10], comm=comm, **kwargs)
        barrier = comm.Barrier
        pack = tr.grad_buffer.pack

        def timed_pack(*a, **k):  # the copy of the layers' gradients into the buffer
            start = time.perf_counter()
            out = pack(*a, **k)
            comm.pack_seconds += time.perf_counter() - start
            return out

        tr.grad_buffer.pack = timed_pack
    else:
        tr = Trainer(net, x, t, x[:10], t[:10], **kwargs)
        barrier = lambda: None  # noqa: E731
    for _ in range(args.warmup):  # the first step also evaluates (the toolkit's epoch 0)
        tr.train_step()
    barrier()
    if comm is not None:
        comm.seconds = comm.pack_seconds = 0.0
    start = time.perf_counter()
    for _ in range(args.steps):
        tr.train_step()
    barrier()
    elapsed = time.perf_counter() - start
    if comm is None:
        return elapsed, {}
    return elapsed, {"grad_buffer_bytes": int(tr.grad_buffer.nbytes),
                     "allreduce_ms_per_step": 1e3 * comm.seconds / args.steps,
                     "pack_ms_per_step": 1e3 * comm.pack_seconds / args.steps}


class _TimedComm:
    """A communicator that adds up the time spent in Allreduce (waiting for the slower
    rank included)."""

    def __init__(self, comm):
        self._comm = comm
        self.seconds = self.pack_seconds = 0.0

    def __getattr__(self, name):
        return getattr(self._comm, name)

    def Allreduce(self, *args, **kwargs):  # noqa: N802 (MPI's name)
        start = time.perf_counter()
        self._comm.Allreduce(*args, **kwargs)
        self.seconds += time.perf_counter() - start


def _torch_step(args, rank, size):
    import numpy as np
    import torch

    from nnfast.bench.workloads import torch_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torch_model(NETS[args.net]).train()
    if size > 1:
        import torch.distributed as dist

        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(args.port))
        dist.init_process_group("gloo", rank=rank, world_size=size)
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.RandomState(0)
    local = args.batch // size
    x = torch.from_numpy(rng.rand(local, 1, 28, 28).astype(np.float32))
    t = torch.from_numpy(rng.randint(0, 10, size=local))

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), t).backward()
        opt.step()

    def barrier():
        if size > 1:
            torch.distributed.barrier()

    for _ in range(args.warmup):
        step()
    barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    barrier()
    elapsed = time.perf_counter() - start
    if size > 1:
        torch.distributed.destroy_process_group()
    return elapsed, {"torch": torch.__version__}


def train(args):
    rank, size = _world_from_env()
    run = _torch_step if args.impl == "torch" else _nnfast_step
    elapsed, extra = run(args, rank, size)
    if rank == 0:
        print(json.dumps({"kind": "train", "impl": args.impl, "net": args.net,
                          "batch": args.batch, "ranks": size, "threads": args.threads,
                          "steps": args.steps, "seconds": elapsed,
                          "img_per_s": args.steps * args.batch / elapsed, **extra}))


# --------------------------------------------------------------------------- suite

def _launch(cmd, env):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def suite(args):
    here = os.path.abspath(__file__)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    mpiexec = ["mpiexec", "--oversubscribe", "--bind-to", "none"]
    results = []
    ar = _launch(mpiexec + ["-n", "2", sys.executable, here, "allreduce", "--extra-bytes",
                            str(4 * 123_553)], env)
    print(json.dumps(ar), flush=True)
    if args.json:
        with open(args.json + ".allreduce", "w") as f:
            f.write(json.dumps(ar) + "\n")
    impls = [("nnfast", sys.executable)]
    if args.torch_python:
        impls.append(("torch", args.torch_python))
    configs = [(net, batch) for net in ("simpleconv", "deepconv") for batch in (100, 200)]
    for rnd in range(args.rounds):
        for net, batch in configs:
            steps = str(args.steps if net == "deepconv" else 3 * args.steps)
            for impl, python in impls:
                base = [python, here, "train", "--impl", impl, "--net", net, "--batch",
                        str(batch), "--steps", steps]
                for ranks, threads in ((1, 1), (1, 2), (2, 1)):
                    cmd = base + ["--threads", str(threads), "--port", str(29500 + rnd)]
                    if ranks > 1:
                        cmd = mpiexec + ["-n", str(ranks)] + cmd
                    row = _launch(cmd, env)
                    row["round"] = rnd
                    results.append(row)
                    print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


# --------------------------------------------------------------------------- report

def report(args):
    """Markdown tables of a ``suite --json`` file (medians over the rounds) and, from
    ``--allreduce`` (the suite's first output line, saved), the allreduce table."""
    if args.allreduce:
        with open(args.allreduce) as f:
            ar = json.loads(f.readline())
        n = ar["ranks"]
        print(f"| bytes | time per allreduce | algorithm bandwidth | bus bandwidth "
              f"(x 2(N-1)/N, N={n}) |")
        print("|---:|---:|---:|---:|")
        for r in ar["rows"]:
            t, b = r["seconds"], r["bytes"]
            print(f"| {b:,} | {t * 1e6:,.1f} us | {b / t / 1e9:.2f} GB/s | "
                  f"{2 * (n - 1) / n * b / t / 1e9:.2f} GB/s |")
        print()
    with open(args.json) as f:
        rows = [r for r in json.load(f) if r["kind"] == "train"]
    groups = {}
    for r in rows:
        groups.setdefault((r["net"], r["batch"], r["impl"], r["ranks"], r["threads"]),
                          []).append(r)
    med = {k: statistics.median(r["img_per_s"] for r in v) for k, v in groups.items()}
    spread = {k: (min(r["img_per_s"] for r in v), max(r["img_per_s"] for r in v))
              for k, v in groups.items()}
    print("| network | global batch | impl | 1 process x 1 thread | 1 process x 2 threads | "
          "2 ranks x 1 thread | 2 ranks / 1x1 | 2 ranks / 1x2 | allreduce + wait per step "
          "| gradient pack per step |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for net in NETS:
        for batch in (100, 200):
            for impl in ("nnfast", "torch"):
                keys = [(net, batch, impl, 1, 1), (net, batch, impl, 1, 2),
                        (net, batch, impl, 2, 1)]
                if not all(k in med for k in keys):
                    continue
                a, b, c = (med[k] for k in keys)
                cells = [f"{med[k]:,.0f} img/s ({spread[k][0]:,.0f}-{spread[k][1]:,.0f})"
                         for k in keys]
                extra = groups[keys[2]]
                ar = statistics.median(r.get("allreduce_ms_per_step", float("nan"))
                                       for r in extra)
                pk = statistics.median(r.get("pack_ms_per_step", float("nan"))
                                       for r in extra)
                comm = ("(inside backward)", "(inside backward)") if impl == "torch" else \
                    (f"{ar:.2f} ms", f"{pk:.2f} ms")
                print(f"| {NETS[net]} | {batch} | {impl} | " + " | ".join(cells)
                      + f" | {c / a:.2f}x | {c / b:.2f}x | {comm[0]} | {comm[1]} |")


# --------------------------------------------------------------------------- model

# Links of a cluster: (name, alpha = per-message latency in s, beta = s per byte).
LINKS = (("1 GbE", 50e-6, 1 / 125e6), ("10 GbE", 20e-6, 1 / 1.25e9),
         ("100 Gb/s InfiniBand", 2e-6, 1 / 12.5e9))
PARAMS = {"SimpleConvNet": 433_890, "DeepConvNet": 123_552, "SmallAlexNet": 108_362,
          "MultiLayerNet [100]*6": 130_010}


def ring_allreduce_seconds(nbytes, machines, alpha, beta):
    """Ring allreduce (reduce-scatter then allgather): 2(N-1) messages of S/N bytes."""
    if machines == 1:
        return 0.0
    return 2 * (machines - 1) * alpha + 2 * (machines - 1) / machines * nbytes * beta


def model(args):
    """Speed-up of N machines (one rank each) over one, from the measured 1-process step
    time: step(N) = compute(B) / N + allreduce(S), compute linear in the batch."""
    with open(args.json) as f:
        rows = json.load(f)
    step = {}
    for r in rows:
        if r["kind"] == "train" and r["impl"] == "nnfast" and r["ranks"] == 1 \
                and r["threads"] == args.threads:
            step.setdefault((r["net"], r["batch"]), []).append(r["seconds"] / r["steps"])
    machines = (1, 2, 4, 8, 16, 32)
    print("| network (params, float32 buffer) | global batch | link | "
          + " | ".join(f"N={n}" for n in machines) + " |")
    print("|---|---|---|" + "---|" * len(machines))
    for key, name in NETS.items():
        nbytes = 4 * (PARAMS[name] + 1)
        for batch in (100, 200):
            if (key, batch) not in step:
                continue
            compute = statistics.median(step[key, batch])
            for link, alpha, beta in LINKS:
                cells = []
                for n in machines:
                    t = compute / n + ring_allreduce_seconds(nbytes, n, alpha, beta)
                    cells.append(f"{compute / t:.1f}x")
                print(f"| {name} ({PARAMS[name]:,}, {nbytes / 1e6:.2f} MB) | {batch} | {link} "
                      f"| " + " | ".join(cells) + " |")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("allreduce")
    a.add_argument("--extra-bytes", type=int, default=0,
                   help="also time this size (e.g. a network's gradient buffer)")
    t = sub.add_parser("train")
    t.add_argument("--impl", choices=("nnfast", "torch"), default="nnfast")
    t.add_argument("--net", choices=sorted(NETS), default="deepconv")
    t.add_argument("--batch", type=int, default=200, help="global batch")
    t.add_argument("--threads", type=int, default=1, help="threads per process")
    t.add_argument("--steps", type=int, default=10)
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--port", type=int, default=29500)
    s = sub.add_parser("suite")
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--steps", type=int, default=10, help="DeepConvNet steps (3x for Simple)")
    s.add_argument("--torch-python", default=None)
    s.add_argument("--json", default=None)
    r = sub.add_parser("report")
    r.add_argument("--json", required=True, help="the results of `suite --json`")
    r.add_argument("--allreduce", default=None, help="a file holding the allreduce line")
    m = sub.add_parser("model")
    m.add_argument("--json", required=True, help="the results of `suite --json`")
    m.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    {"allreduce": allreduce, "train": train, "suite": suite, "report": report,
     "model": model}[args.cmd](args)


if __name__ == "__main__":
    main()
