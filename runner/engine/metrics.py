"""Evaluation metrics: accuracy for classifiers, RMSE and R² for regressors."""

import numpy as np


def accuracy(outputs, y):
    """Share of rows whose predicted class is y; one sigmoid output predicts class 1 above 0.5.

    outputs : (n_samples, n_outputs) probabilities; y : (n_samples,) class ids.
    """
    predicted = (outputs[:, 0] > 0.5) if outputs.shape[1] == 1 else outputs.argmax(axis=1)
    return float(np.mean(predicted == y))


def rmse(outputs, Y, scale):
    """Root mean squared error in the targets' original units (``scale`` undoes standardising)."""
    return float(np.sqrt(np.mean(((outputs - Y) * scale) ** 2)))


def r2(outputs, Y):
    """Coefficient of determination averaged over outputs; unchanged by standardising Y."""
    residual = np.sum((Y - outputs) ** 2, axis=0)
    total = np.sum((Y - Y.mean(axis=0)) ** 2, axis=0)
    return float(np.mean(1.0 - residual / np.where(total > 0, total, 1.0)))
