"""The whole of a data set before it is split: one form that every source produces."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Table:
    """Features and targets of every row, with their names.

    X : ndarray of shape (n_samples, n_features), float64.
    target : ndarray of shape (n_samples,): int64 class ids 0..k-1 for classification, float64
        values for regression.
    feature_names : one name per column of X.
    class_names : one name per class id, or None for a regression target.
    """

    X: np.ndarray
    target: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] | None
