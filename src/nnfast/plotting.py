"""Learning-curve and benchmark-ratio PNGs (matplotlib, imported only when called).

The figure is drawn with matplotlib's object API on an Agg canvas: no pyplot, no display and no
change to the user's global matplotlib backend.
"""
from __future__ import annotations

import os
from typing import (TYPE_CHECKING, Any, List, Mapping, Optional, Sequence, Tuple, Type,
                    TypeVar, Union)

if TYPE_CHECKING:  # matplotlib is optional and imported only when a chart is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    import numpy.typing as npt

# the functions return the path they were given
_Path = TypeVar("_Path", bound=Union[str, "os.PathLike[str]"])
_Labels = Union["npt.NDArray[Any]", Sequence[int]]

__all__ = ["save_learning_curve", "save_ratio_chart", "save_misclassified"]


def _require_matplotlib(what: str = "saving a learning curve"
                        ) -> Tuple[Type[Figure], Type[FigureCanvasAgg]]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            f"{what} needs matplotlib: pip install \"nnfast[examples]\" "
            "(or pip install matplotlib)"
        ) from None
    return Figure, FigureCanvasAgg


def _series(history: Mapping[str, List[Any]], key: str) -> Tuple[List[Any], List[Any]]:
    """(epochs, values) of ``history[key]``, skipping unrecorded (None) values."""
    pairs = [(e, v) for e, v in zip(history["epoch"], history.get(key, [])) if v is not None]
    return [e for e, _ in pairs], [v for _, v in pairs]


def save_learning_curve(history: Mapping[str, List[Any]],
                        path: _Path, title: Optional[str] = None,
                        dpi: int = 100) -> _Path:
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
    _save(fig, path, dpi)
    return path


def _save(fig: Figure, path: Union[str, "os.PathLike[str]"], dpi: int) -> None:
    """Lay out ``fig`` and write it to ``path`` as PNG (creating its folder)."""
    fig.tight_layout()
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)


def save_ratio_chart(labels: Sequence[str], series: Mapping[str, Sequence[Optional[float]]],
                     path: _Path, title: Optional[str] = None, dpi: int = 100) -> _Path:
    """Horizontal bars of speed-up ratios on a log axis, one group of bars per label.

    ``series`` maps a legend entry (e.g. ``"vs reference"``) to one ratio per label (None:
    not measured, no bar). Bars start at 1 (as fast), so a ratio below 1 points left.
    Returns ``path``.
    """
    Figure, FigureCanvasAgg = _require_matplotlib("saving a benchmark chart")
    from matplotlib.ticker import FuncFormatter
    if not labels:
        raise ValueError("save_ratio_chart: no ratios to plot")
    for name, values in series.items():
        if len(values) != len(labels):
            raise ValueError(f"save_ratio_chart: series {name!r} has {len(values)} values "
                             f"for {len(labels)} labels")
    n, k = len(labels), max(1, len(series))
    height = 0.8 / k
    fig = Figure(figsize=(8, 1.2 + 0.28 * n * k), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for j, (name, values) in enumerate(series.items()):
        ys = [i + (j - (k - 1) / 2) * height for i, v in enumerate(values) if v is not None]
        xs = [v for v in values if v is not None]
        bars = ax.barh(ys, [v - 1 for v in xs], left=1, height=height, label=name)
        ax.bar_label(bars, labels=[f"{v:.2g}x" for v in xs], fontsize=7, padding=2)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_yticks(range(n))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up of nnfast (median time of the other / nnfast's), log scale")
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    _save(fig, path, dpi)
    return path


def save_misclassified(images: npt.ArrayLike, true: _Labels, pred: _Labels, path: _Path,
                       columns: int = 8, dpi: int = 100) -> _Path:
    """A grid of digit images titled ``true -> predicted``, saved as a PNG at ``path``.

    ``images`` is (N, 784), (N, 28, 28) or (N, 1, 28, 28) (any scale; shown in grey), ``true``
    and ``pred`` hold N labels each. At most the first 64 are drawn. Returns ``path``.
    """
    import numpy as np

    Figure, FigureCanvasAgg = _require_matplotlib("saving misclassified digits")
    images = np.asarray(images)
    n = min(len(images), 64)
    if n == 0:
        raise ValueError("save_misclassified: no image to draw")
    if len(true) < n or len(pred) < n:
        raise ValueError(f"save_misclassified: need a true and a predicted label per image "
                         f"({n}), got {len(true)} and {len(pred)}")
    side = int(round(np.sqrt(images[0].size)))
    if side * side != images[0].size:
        raise ValueError(f"save_misclassified: images must be square, got "
                         f"{images[0].size} pixels each")
    columns = min(columns, n)
    rows = -(-n // columns)
    fig = Figure(figsize=(1.2 * columns, 1.35 * rows), dpi=dpi)
    FigureCanvasAgg(fig)
    for i in range(rows * columns):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i].reshape(side, side), cmap="gray", interpolation="nearest")
            ax.set_title(f"{int(true[i])} -> {int(pred[i])}", fontsize=8)
    _save(fig, path, dpi)
    return path
