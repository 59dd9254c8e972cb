"""The confusion matrix of a run's test split, counted and laid out as an MLflow table.

The worker logs the table; the pictures are drawn by the training process
(``runner.tracking.figures``), so the worker never imports matplotlib.
"""

import numpy as np


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
