"""A short end-to-end demo: train a small network with nnfast, offline.

    python -m nnfast.demo [--epochs N] [--seed S] [--net {two-layer,convnet}]

Data: a synthetic, reproducible 3-class "spiral" set (no download). It trains
a TwoLayerNet with Adam through the Trainer, or a small SimpleConvNet on the
same points rendered as 8x8 images, and prints the reference Trainer's
progress lines and the final accuracy.
"""
import argparse
import time

import numpy as np


def spiral(n_per_class=200, n_classes=3, noise=0.2, seed=0):
    """Points on ``n_classes`` interleaved spiral arms: x (N, 2) float64, t (N,) int64."""
    rng = np.random.default_rng(seed)
    xs, ts = [], []
    for k in range(n_classes):
        r = np.linspace(0.05, 1.0, n_per_class)
        theta = np.linspace(k * 4.0, (k + 1) * 4.0, n_per_class) + rng.normal(0, noise, n_per_class)
        xs.append(np.column_stack([r * np.sin(theta), r * np.cos(theta)]))
        ts.append(np.full(n_per_class, k))
    x, t = np.concatenate(xs), np.concatenate(ts)
    order = rng.permutation(len(t))
    return x[order], t[order].astype(np.int64)


def render(x, size=8):
    """Each 2-D point as a (1, size, size) image with one blurred bright spot."""
    grid = np.linspace(-1.0, 1.0, size)
    gy = np.exp(-((x[:, 1:2] - grid) ** 2) * 8.0)
    gx = np.exp(-((x[:, 0:1] - grid) ** 2) * 8.0)
    return (gy[:, :, None] * gx[:, None, :])[:, None, :, :]


def main(argv=None):
    from nnfast.nets import SimpleConvNet, TwoLayerNet
    from nnfast.trainer import Trainer

    p = argparse.ArgumentParser(prog="python -m nnfast.demo", description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--net", choices=["two-layer", "convnet"], default="two-layer")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    args = p.parse_args(argv)

    np.random.seed(args.seed)
    x, t = spiral(seed=args.seed)
    if args.net == "convnet":
        x = render(x)
        net = SimpleConvNet(input_dim=(1, 8, 8),
                            conv_param={"filter_num": 8, "filter_size": 3, "pad": 1, "stride": 1},
                            hidden_size=32, output_size=3, weight_init_std=0.1)
    else:
        net = TwoLayerNet(input_size=2, hidden_size=64, output_size=3, weight_init_std=0.5)
    split = int(0.8 * len(t))
    trainer = Trainer(net, x[:split], t[:split], x[split:], t[split:], epochs=args.epochs,
                      mini_batch_size=32, optimizer="Adam", optimizer_param={"lr": 0.01},
                      verbose=not args.quiet)
    start = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - start
    acc = net.accuracy(x[split:], t[split:])
    print(f"demo: {args.net} on {split} spiral points, {args.epochs} epochs in {elapsed:.2f} s; "
          f"test accuracy {acc:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
