"""Pictures and tables for the MLflow UI: the loss curve and the confusion matrix.

Figures use matplotlib's object API with the Agg canvas (no pyplot, no display), so they
can be drawn in the worker process without any GUI backend.
"""

import numpy as np
from matplotlib.figure import Figure


def loss_curve(history):
    """Train and validation loss against epoch.

    history : {metric name: {epoch: value}} as received from the training process.
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
    # Fixed margins: tight_layout would draw the figure once more to measure it (a run's
    # figures are most of the worker's time per run of a sweep).
    figure.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.92)
    return figure


def confusion_counts(y_true, y_pred, n_classes):
    """(n_classes, n_classes) counts, rows the true class, columns the predicted one."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def confusion_table(counts, class_names):
    """Long form for ``mlflow.log_table``: one row per (true, predicted) pair."""
    true, predicted = np.indices(counts.shape)
    return {
        "true": [class_names[i] for i in true.ravel()],
        "predicted": [class_names[j] for j in predicted.ravel()],
        "count": counts.ravel().tolist(),
    }


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
