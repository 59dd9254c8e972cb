"""Evaluation metrics: accuracy for classifiers, RMSE and R² for regressors.

A validation or test row may lie far outside the training rows the standardisation was fitted
on, so RMSE and R² square differences through a per-column scale: no finite input overflows or
underflows on the way, and a result beyond float64 is inf rather than a RuntimeWarning.
"""

import numpy as np


def accuracy(outputs, y):
    """Share of rows whose predicted class is y; one sigmoid output predicts class 1 above 0.5.

    outputs : (n_samples, n_outputs) probabilities; y : (n_samples,) class ids.
    """
    predicted = (outputs[:, 0] > 0.5) if outputs.shape[1] == 1 else outputs.argmax(axis=1)
    return float(np.mean(predicted == y))


def rmse(outputs, Y, scale):
    """Root mean squared error in the targets' original units (``scale`` undoes standardising).

    outputs, Y : (n_samples, n_outputs); scale : float or (n_outputs,).
    """
    errors = _difference(outputs, Y)
    if errors is None:
        return float("inf")
    magnitude, unit_sum = _sum_of_squares(errors)
    with np.errstate(over="ignore"):  # an error beyond float64 is inf
        column_magnitude = magnitude * np.abs(np.broadcast_to(scale, magnitude.shape))
    largest = column_magnitude.max()
    if largest == 0:
        return 0.0
    if not np.isfinite(largest):
        return float("inf")
    mean_square = np.sum((column_magnitude / largest) ** 2 * unit_sum) / errors.size
    return float(largest * np.sqrt(mean_square))


def r2(outputs, Y):
    """Coefficient of determination averaged over outputs, as scikit-learn's ``r2_score``.

    A constant target column scores 1.0 when predicted exactly and 0.0 otherwise; fewer than
    two rows give nan (R² is undefined). Unchanged by standardising Y.
    outputs, Y : (n_samples, n_outputs).
    """
    if Y.shape[0] < 2:
        return float("nan")
    residuals = _difference(Y, outputs)
    if residuals is None:
        return float("-inf")
    residual_magnitude, residual_unit = _sum_of_squares(residuals)
    total_magnitude = _magnitude(Y)
    unit = Y / total_magnitude  # deviations from the mean then lie in [-2, 2]
    total_unit = ((unit - unit.mean(axis=0)) ** 2).sum(axis=0)
    constant = (Y == Y[:1]).all(axis=0) | (total_unit == 0)
    perfect = residual_unit == 0
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        ratio = (residual_magnitude / total_magnitude) ** 2 * (residual_unit / total_unit)
    scores = np.where(perfect, 1.0, np.where(constant, 0.0, 1.0 - ratio))
    return float(np.mean(scores))


def _difference(A, B):
    """A - B, or None where it overflows (an output far beyond the targets' range)."""
    with np.errstate(over="ignore", invalid="ignore"):
        difference = A - B
    return difference if np.isfinite(difference).all() else None


def _sum_of_squares(D):
    """Σ D² per column as (magnitude, unit_sum), Σ D² = magnitude² · unit_sum.

    D / magnitude lies in [-1, 1], so its squares neither overflow nor, for the largest
    entries, underflow.
    """
    magnitude = _magnitude(D)
    return magnitude, ((D / magnitude) ** 2).sum(axis=0)


def _magnitude(A):
    """The largest |value| of each column, 1 for a column of zeros."""
    magnitude = np.abs(A).max(axis=0)
    magnitude[magnitude == 0] = 1.0
    return magnitude
