"""A run's pictures for the MLflow UI, drawn by the training process: the loss curve and the
confusion matrix.

Drawn where the run trained, once it has, and saved beside its weights; the worker only
stores the files. The training process has the history and the network at hand and waits
for its worker anyway, while the worker is the busy one: importing matplotlib (about a
second) and drawing (a few tenths per run) there would come on top of MLflow's start-up in a
single run, and on top of every job's logging in a sweep.

matplotlib's object API with the Agg canvas: no pyplot, no display, no GUI backend. Import
this module lazily: an untracked run draws nothing.
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from runner.tracking.artifacts import confusion_counts

LOSS_CURVE = "loss_curve.png"
CONFUSION_MATRIX = "confusion_matrix.png"


# One figure of each kind is kept and drawn again with the next run's data: a sweep's jobs draw
# the same two pictures over and over, and building a figure (its axes, ticks and first text
# layout) costs as much as drawing it (0.24 s a job built anew, 0.12 s redrawn). A figure is
# built anew when what fixes its layout changes (the curves it shows, the class names). The
# files are the same, byte for byte, as from a figure built for the run (tests/test_figures.py).
_kept = {}  # kind → (what fixes its layout, Figure)


def draw_figures(history, net, dataset, folder):
    """Save the run's figures in ``folder``; return their paths, logged under their names.

    history : the per-epoch metric dicts of every epoch trained (those of a resumed run too).
    net, dataset : the trained network and its data set; a classifier with test rows gets
        the confusion matrix of its test split.
    """
    folder = Path(folder)
    by_metric = {}
    for epoch, metrics in enumerate(history, start=1):
        for key, value in metrics.items():
            by_metric.setdefault(key, {})[epoch] = value
    loss = _kept_figure("loss", _losses(by_metric), _new_loss_curve)
    paths = [_save(_plot_losses(loss, by_metric), folder / LOSS_CURVE)]
    test = dataset.test
    if dataset.task == "classification" and test.X.shape[0]:
        names = tuple(dataset.class_names)
        counts = confusion_counts(test.y, net.predict_classes(test.X), len(names))
        confusion = _kept_figure("confusion", names, _new_confusion_figure)
        paths.append(_save(_fill_confusion(confusion, counts), folder / CONFUSION_MATRIX))
    return tuple(str(path) for path in paths)


def _kept_figure(kind, layout, build):
    if kind not in _kept or _kept[kind][0] != layout:
        _kept[kind] = (layout, build(layout))
    return _kept[kind][1]


def _save(figure, path):
    figure.savefig(path)
    return path


def loss_curve(history):
    """Train and validation loss against epoch.

    history : {metric name: {epoch: value}}, as ``draw_figures`` arranges the trainer's.
    """
    return _plot_losses(_new_loss_curve(_losses(history)), history)


def _losses(history):
    return tuple(key for key in ("train_loss", "val_loss") if history.get(key))


def _new_loss_curve(keys):
    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.add_subplot()
    for key in keys:
        axes.plot([], [], label=key)
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title("Loss by epoch")
    axes.grid(alpha=0.3)
    if keys:
        axes.legend(loc="upper right")  # where falling curves leave room, without the search
    # Fixed margins: tight_layout would draw the figure once more to measure it (every job
    # of a sweep draws its own).
    figure.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.92)
    return figure


def _plot_losses(figure, history):
    axes = figure.axes[0]
    for line in axes.lines:
        points = sorted(history[line.get_label()].items())
        line.set_data([e for e, _ in points], [v for _, v in points])
    axes.relim()
    axes.autoscale_view()
    return figure


def confusion_figure(counts, class_names):
    """The confusion matrix: counts (n_classes, n_classes), true classes down, predicted across."""
    return _fill_confusion(_new_confusion_figure(tuple(class_names)), counts)


def _new_confusion_figure(class_names):
    side = max(4.0, 1.5 + 0.5 * len(class_names))
    figure = Figure(figsize=(side + 0.5, side), dpi=100)
    axes = figure.add_subplot()
    n = len(class_names)
    axes.imshow(np.zeros((n, n)), cmap="Blues")
    ticks = range(n)
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for i, j in np.ndindex(n, n):
        axes.text(j, i, "", ha="center", va="center")
    axes.set_title("Confusion matrix (test)")
    figure.tight_layout()  # once per set of class names: their lengths set the margins
    return figure


def _fill_confusion(figure, counts):
    axes = figure.axes[0]
    image = axes.images[0]
    image.set_data(counts)
    image.set_clim(counts.min(), counts.max())  # what imshow chooses for new data
    threshold = counts.max() / 2 if counts.size else 0
    for text, count in zip(axes.texts, counts.flat, strict=True):
        text.set_text(str(count))
        text.set_color("white" if count > threshold else "black")
    return figure
