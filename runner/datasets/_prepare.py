"""Turn a Table into model inputs: split rows, standardise columns, encode classes."""

import numpy as np

from runner.errors import DataError


def split_rows(n_rows, labels, val_fraction, test_fraction, rng):
    """Row indices of the train, val and test splits, each an int64 array in shuffled order.

    labels : ndarray of shape (n_rows,) of class ids to stratify by, so every split keeps the
        class proportions of the whole set; None for a plain permutation (regression).
    Each class (or the whole set) gives round(fraction * size) rows to test, then to val, and
    the rest to train.
    """
    groups = (
        [np.arange(n_rows)]
        if labels is None
        else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    )
    train, val, test = [], [], []
    for rows in groups:
        rows = rng.permutation(rows)
        n_test = _share(test_fraction, len(rows))
        n_val = _share(val_fraction, len(rows))
        test.append(rows[:n_test])
        val.append(rows[n_test : n_test + n_val])
        train.append(rows[n_test + n_val :])
    # Shuffle across classes too, so a split never lists one class after another.
    return tuple(rng.permutation(np.concatenate(parts)) for parts in (train, val, test))


def _share(fraction, size):
    """round(fraction * size), rounding halves up rather than to even."""
    return int(fraction * size + 0.5)


def fit_scaler(A):
    """Column means and scales of A, shape (n_columns,) each, so (A - mean) / scale has std 1.

    A constant column gets its value as mean and scale 1, so it maps to exactly 0; testing
    constancy exactly avoids dividing by the rounding noise A.std() leaves for such a column.
    """
    # Computed on each column divided by its largest magnitude, so that values near the ends
    # of float64 (1e308 squares to inf; 1e-300 squares to 0) neither overflow nor underflow.
    magnitude = np.abs(A).max(axis=0)
    magnitude[magnitude == 0] = 1.0
    unit = A / magnitude
    mean = unit.mean(axis=0) * magnitude
    scale = unit.std(axis=0) * magnitude
    constant = (A == A[:1]).all(axis=0) | (scale == 0)
    mean[constant] = A[0, constant]
    scale[constant] = 1.0
    return mean, scale


def encode_classes(y, n_classes, n_outputs, dtype):
    """Targets of shape (n_samples, n_outputs) for class ids y of shape (n_samples,).

    One-hot (n_samples, n_classes), except one 0/1 column for two classes when n_outputs == 1,
    the encoding a single sigmoid unit with binary cross-entropy expects.
    """
    if n_classes == 2 and n_outputs == 1:
        return y[:, None].astype(dtype)
    Y = np.zeros((len(y), n_classes), dtype=dtype)
    Y[np.arange(len(y)), y] = 1.0
    return Y


def fill_missing(X, train_rows, encoding, name):
    """X with each NaN cell filled with its column's mean over the training rows only.

    The means come from the training split, not the whole table, so nothing of the val and
    test rows leaks into training; a one-hot column's mean is its value's share of the
    training rows. encoding : the data set's Encoding (X's columns and their raw columns).
    Returns (filled X, the means as a tuple, one log line on what was filled).
    """
    sources = encoding.sources
    missing = np.isnan(X)
    train = X[train_rows]
    empty = np.flatnonzero(np.isnan(train).all(axis=0))
    if empty.size:
        raise DataError(
            f"dataset {name!r}: column {sources[empty[0]]!r} has no value in the training "
            f"split, so dataset.missing=mean has no mean to fill it with; fill some of its "
            f"cells, drop the column, or set dataset.missing=drop"
        )
    means = np.nanmean(train, axis=0)
    filled = []
    for column in encoding.columns:
        span = [i for i, source in enumerate(sources) if source == column]
        cells = int(missing[:, span].any(axis=1).sum())
        if cells:
            value = (
                "its values' shares" if column in encoding.categories else f"{means[span[0]]:.6g}"
            )
            filled.append(f"{column}: {cells} cell(s) with {value}")
    note = (
        f"filled missing cells with the training split's means (dataset.missing=mean; not "
        f"the whole table's, so nothing of val or test leaks): {'; '.join(filled)}"
    )
    return np.where(missing, means, X), tuple(means.tolist()), note
