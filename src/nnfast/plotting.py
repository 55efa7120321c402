"""Learning-curve PNG from a Trainer's ``history`` (matplotlib, imported only when called).

The figure is drawn with matplotlib's object API on an Agg canvas: no pyplot, no display and no
change to the user's global matplotlib backend.
"""
import os

__all__ = ["save_learning_curve"]


def _require_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "saving a learning curve needs matplotlib: pip install \"nnfast[examples]\" "
            "(or pip install matplotlib)"
        ) from None
    return Figure, FigureCanvasAgg


def _series(history, key):
    """(epochs, values) of ``history[key]``, skipping unrecorded (None) values."""
    pairs = [(e, v) for e, v in zip(history["epoch"], history.get(key, [])) if v is not None]
    return [e for e, _ in pairs], [v for _, v in pairs]


def save_learning_curve(history, path, title=None, dpi=100):
    """Two panels, loss and accuracy per epoch (train and test), saved as a PNG at ``path``.

    ``history`` is ``Trainer.history`` (keys ``epoch, train_loss, test_loss, train_acc,
    test_acc``; None values are left out).  Returns ``path``.
    """
    Figure, FigureCanvasAgg = _require_matplotlib()
    if not history.get("epoch"):
        raise ValueError("save_learning_curve: history holds no evaluated epoch yet")
    fig = Figure(figsize=(8, 3.2), dpi=dpi)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for key, label, style in (("train_loss", "train (mean of the epoch's batches)", "-o"),
                              ("test_loss", "test", "-s")):
        x, y = _series(history, key)
        if y:
            ax_loss.plot(x, y, style, markersize=3, label=label)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend(fontsize=8)
    ax_loss.grid(alpha=0.3)
    for key, label, style in (("train_acc", "train", "-o"), ("test_acc", "test", "-s")):
        x, y = _series(history, key)
        if y:
            ax_acc.plot(x, y, style, markersize=3, label=label)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend(fontsize=8, loc="lower right")
    ax_acc.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    return path
