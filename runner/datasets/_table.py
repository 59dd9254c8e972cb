"""The whole of a data set before it is split: one form that every source produces."""

from dataclasses import dataclass

import numpy as np

from runner.encoding import Encoding


@dataclass(frozen=True)
class Table:
    """Features and targets of every row, with their names.

    X : ndarray of shape (n_samples, n_features), float64.
    target : ndarray of shape (n_samples,): int64 class ids 0..k-1 for classification, float64
        values for regression.
    feature_names : one name per column of X.
    class_names : one name per class id, or None for a regression target.
    encoding : how raw rows become X's columns; None when each column of X is a raw numeric
        column of that name. X holds NaN for the missing cells it leaves to be filled.
    notes : what reading the data did to it (columns encoded, rows dropped), for the run's log.
    """

    X: np.ndarray
    target: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] | None
    encoding: Encoding | None = None
    notes: tuple[str, ...] = ()
