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
    paths = [_save(loss_curve(by_metric), folder / LOSS_CURVE)]
    test = dataset.test
    if dataset.task == "classification" and test.X.shape[0]:
        names = list(dataset.class_names)
        counts = confusion_counts(test.y, net.predict_classes(test.X), len(names))
        paths.append(_save(confusion_figure(counts, names), folder / CONFUSION_MATRIX))
    return tuple(str(path) for path in paths)


def _save(figure, path):
    figure.savefig(path)
    return path


def loss_curve(history):
    """Train and validation loss against epoch.

    history : {metric name: {epoch: value}}, as ``draw_figures`` arranges the trainer's.
    """
    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.add_subplot()
    for key in ("train_loss", "val_loss"):
        points = sorted(history.get(key, {}).items())
        if points:
            axes.plot([e for e, _ in points], [v for _, v in points], label=key)
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title("Loss by epoch")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right")  # where falling curves leave room, without the search
    # Fixed margins: tight_layout would draw the figure once more to measure it (every job
    # of a sweep draws its own).
    figure.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.92)
    return figure


def confusion_figure(counts, class_names):
    side = max(4.0, 1.5 + 0.5 * len(class_names))
    figure = Figure(figsize=(side + 0.5, side), dpi=100)
    axes = figure.add_subplot()
    axes.imshow(counts, cmap="Blues")
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = counts.max() / 2 if counts.size else 0
    for (i, j), count in np.ndenumerate(counts):
        axes.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            color="white" if count > threshold else "black",
        )
    axes.set_title("Confusion matrix (test)")
    figure.tight_layout()
    return figure
