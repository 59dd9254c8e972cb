"""Data sets by name, split into train/val/test, standardised and encoded for an MLP.

``load_dataset(spec)`` is the one way in; ``spec.py`` lists a data set's options once. Every
source (the CSVs shipped beside this module, sets drawn from a seed, a user's CSV file) first
becomes a ``Table`` of all rows; one code path then splits, standardises and encodes it, so
every set reaches the model in the same form.

This package imports only NumPy, pandas (lazily, to read CSVs), the standard library and
``runner.streams`` (which of the run's random streams the data draws from).
"""

from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path

import numpy as np

from runner import streams
from runner.datasets._builtin import load_builtin, load_digits28
from runner.datasets._csv import read_table
from runner.datasets._generated import GENERATED_NAMES, generate
from runner.datasets._locate import find_data_file
from runner.datasets._prepare import encode_classes, fill_missing, fit_scaler, split_rows
from runner.datasets.spec import (
    CSV_OPTIONS,
    DATASET_NAMES,
    GENERATED_OPTIONS,
    DatasetOptions,
    DatasetSpec,
)
from runner.encoding import Encoding
from runner.errors import ConfigError, DataError

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "DatasetOptions",
    "DatasetSpec",
    "Encoding",
    "Split",
    "load_dataset",
]

_DEFAULTS = {
    f.name: f.default if f.default_factory is MISSING else f.default_factory()
    for f in fields(DatasetOptions)
}


@dataclass(frozen=True)
class Split:
    """One part of a data set (train, val or test), as the model consumes it.

    X : ndarray of shape (n_samples, n_features), C-contiguous, in the requested dtype.
    Y : ndarray of shape (n_samples, n_outputs), same dtype: one-hot rows, one 0/1 column (two
        classes asked for with ``n_outputs=1``), or the regression targets.
    y : ndarray of shape (n_samples,), int64 class ids, or None for regression; kept beside Y so
        accuracy needs no decoding of Y.
    """

    X: np.ndarray
    Y: np.ndarray
    y: np.ndarray | None


@dataclass(frozen=True)
class Dataset:
    """A split, ready-to-train data set and what is needed to read results back.

    name : "iris", "digits28", "moons", ..., or "csv:<file name>" for a user's file.
    task : "classification" or "regression".
    feature_names : one name per column of X.
    class_names : one name per class id, or None for regression.
    train, val, test : the three splits; val (or test) has 0 rows when its fraction is 0.
    target_mean, target_scale : ndarray of shape (n_outputs,), float64, regression only (None
        for classification): the standardised targets Y are (raw - target_mean) / target_scale,
        so ``Y * target_scale + target_mean`` and ``rmse * target_scale`` are in the original
        units. With ``standardize=False`` they are 0 and 1, so that code needs no special case.
    feature_mean, feature_scale : ndarray of shape (n_features,), float64: X is
        (raw - feature_mean) / feature_scale, so a served model can take raw rows. 0 and 1
        with ``standardize=False``.
    encoding : how a raw row (the file's feature columns: numbers, text, missing cells)
        becomes the unstandardised X row; with it and the scales, a model takes raw rows.
    notes : what loading did to the data (columns encoded, rows dropped, cells filled), one
        line each, for the run's log.
    """

    name: str
    task: str
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] | None
    train: Split
    val: Split
    test: Split
    target_mean: np.ndarray | None
    target_scale: np.ndarray | None
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    encoding: Encoding
    notes: tuple[str, ...] = ()

    @property
    def n_features(self) -> int:
        """Width of X: the input size of the first layer."""
        return self.train.X.shape[1]

    @property
    def n_outputs(self) -> int:
        """Width of Y: the output size the last layer must have."""
        return self.train.Y.shape[1]

    @property
    def n_classes(self) -> int | None:
        """Number of classes, or None for regression."""
        return None if self.class_names is None else len(self.class_names)


def load_dataset(name, **options) -> Dataset:
    """Load a data set and split, standardise and encode it.

    Parameters
    ----------
    name : a DatasetSpec, or a data set's name with the spec's other fields as keywords:
        ``load_dataset("iris", seed=1)`` is ``load_dataset(DatasetSpec("iris", seed=1))``.
        The same spec gives bit-identical splits. A fraction of 0 gives an empty split of
        shape (0, n_features). ``standardize`` centres and scales every feature (and a
        regression target) with the mean and std of the train rows only, so nothing about val
        or test leaks into training. ``path``, ``target``, ``task``, ``missing`` and
        ``categorical`` apply to "csv" only (task auto: classification for a non-numeric
        target or one with at most 20 distinct integer values; text and ``categorical``
        columns are one-hot encoded, see ``runner.encoding``; missing "mean" fills a missing
        feature cell with its column's mean over the train rows only); ``n_samples``,
        ``noise``, ``n_classes`` and ``n_features`` to the generated sets, each where it
        applies (xor and moons take n_samples and noise, spirals adds n_classes, blobs
        n_features).

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError : an option that cannot work (unknown name, fraction out of range, an
        option the set does not take).
    DataError : a file that cannot be read, a bad cell, too few rows to fill the splits, or
        a value whose square ``dtype`` cannot hold (see ``_check_magnitudes``).
    """
    if isinstance(name, DatasetSpec):
        if options:
            raise TypeError("pass a DatasetSpec or a name with options, not both")
        spec = name
    else:
        spec = DatasetSpec(name, **options)
    seed, dtype = spec.seed, spec.dtype
    val_fraction, test_fraction, standardize = (
        spec.val_fraction,
        spec.test_fraction,
        spec.standardize,
    )
    rng = streams.generator(seed, streams.DATA)  # generated rows first, then the split
    table = _read_table(spec, rng)
    name = f"csv:{Path(spec.path).name}" if spec.name == "csv" else spec.name

    is_classifier = table.class_names is not None
    labels = table.target if is_classifier else None
    rows = split_rows(len(table.X), labels, val_fraction, test_fraction, rng)
    _check_split_sizes(name, table, rows, val_fraction, test_fraction)

    X, notes = table.X, table.notes
    encoding = table.encoding or Encoding(table.feature_names)
    if np.isnan(X).any():  # only dataset.missing=mean leaves cells to fill
        X, fill, note = fill_missing(X, rows[0], encoding, name)
        encoding, notes = replace(encoding, fill=fill), (*notes, note)
    feature_mean, feature_scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
    if standardize:
        feature_mean, feature_scale = fit_scaler(X[rows[0]])
        X = _standardized(X, feature_mean, feature_scale)
    _check_magnitudes(X, table.feature_names, name, dtype, standardize)
    if is_classifier:
        Y = encode_classes(table.target, len(table.class_names), spec.n_outputs, dtype)
        target_mean = target_scale = None
    else:
        Y = table.target[:, None]
        target_mean, target_scale = np.zeros(1), np.ones(1)
        if standardize:
            target_mean, target_scale = fit_scaler(Y[rows[0]])
            Y = _standardized(Y, target_mean, target_scale)
        _check_magnitudes(Y, ["target"], name, dtype, standardize)
    train, val, test = (
        Split(
            X=np.ascontiguousarray(X[r], dtype=dtype),
            Y=np.ascontiguousarray(Y[r], dtype=dtype),
            y=table.target[r] if is_classifier else None,
        )
        for r in rows
    )
    return Dataset(
        name=name,
        task="classification" if is_classifier else "regression",
        feature_names=table.feature_names,
        class_names=table.class_names,
        train=train,
        val=val,
        test=test,
        target_mean=target_mean,
        target_scale=target_scale,
        feature_mean=feature_mean,
        feature_scale=feature_scale,
        encoding=encoding,
        notes=notes,
    )


def _standardized(A, mean, scale):
    """(A - mean) / scale; inf where a value lies too far out (``_check_magnitudes`` says so)."""
    with np.errstate(over="ignore"):
        return (A - mean) / scale


def _check_magnitudes(A, columns, dataset_name, dtype, standardized):
    """Refuse a column with a value whose square overflows ``dtype``.

    Squares are what a network takes of its inputs' scale (the loss, the metrics), so such a
    value would turn into inf or a RuntimeWarning mid-run. After standardising, it means a
    validation or test row lies that many standard deviations from the training rows.
    """
    limit = float(np.sqrt(np.finfo(dtype).max))
    with np.errstate(invalid="ignore"):
        too_large = ~(np.abs(A) < limit).all(axis=0)
    if not too_large.any():
        return
    index = int(np.argmax(too_large))
    value = A[np.argmax(~(np.abs(A[:, index]) < limit)), index]
    column = columns[index]
    if standardized:
        distance = f"{abs(value):g}" if np.isfinite(value) else "over 1e308"
        raise DataError(
            f"column {column!r} of dataset '{dataset_name}' has a value {distance} standard "
            f"deviations from the training rows' mean, beyond what {dtype} can square "
            f"({limit:.3g}); rescale the column, drop the outlier, or set "
            f"dataset.standardize=false"
        )
    raise DataError(
        f"column {column!r} of dataset '{dataset_name}' has the value {value:g}, beyond what "
        f"{dtype} can square ({limit:.3g}); rescale the column or set dataset.standardize=true"
    )


def _read_table(spec, rng):
    """All rows of the spec's set as a Table; an option the set does not take is a ConfigError.

    rng : the run's data stream, which a generated set draws its rows from.
    """
    name = spec.name
    if name != "csv":
        for key in CSV_OPTIONS:
            if getattr(spec, key) != _DEFAULTS[key]:
                raise ConfigError(
                    f"dataset.{key} applies only to dataset 'csv', not {name!r}; remove it"
                )
    params = {key: getattr(spec, key) for key in GENERATED_OPTIONS}
    if name in GENERATED_NAMES:
        return generate(name, rng, params)
    for key, value in params.items():
        if value is not None:
            raise ConfigError(
                f"dataset.{key} applies only to the generated sets {list(GENERATED_NAMES)}, "
                f"not {name!r}; remove it"
            )
    if name == "csv":
        if spec.path is None:
            raise ConfigError("dataset.path must name a CSV file when dataset.name is 'csv'")
        return read_table(
            find_data_file(spec.path), spec.target, spec.task, spec.missing, tuple(spec.categorical)
        )
    if name == "digits28":
        return load_digits28()
    return load_builtin(name)


def _check_split_sizes(name, table, rows, val_fraction, test_fraction):
    """Raise DataError when a class has no train row, or a split asked for came out empty."""
    train, val, test = rows
    if table.class_names is not None:
        counts = np.bincount(table.target, minlength=len(table.class_names))
        train_counts = np.bincount(table.target[train], minlength=len(table.class_names))
        if (train_counts == 0).any():
            c = np.flatnonzero(train_counts == 0)[0]
            raise DataError(
                f"dataset {name!r}: class {table.class_names[c]!r} has {counts[c]} row(s), too "
                f"few to keep one for training after the val/test fractions "
                f"({val_fraction}, {test_fraction}); add rows or lower the fractions"
            )
    elif len(train) == 0:
        raise DataError(
            f"dataset {name!r} has {len(table.X)} row(s), too few to keep one for training; "
            f"add rows or lower dataset.val_fraction and dataset.test_fraction"
        )
    for key, fraction, part in (("val", val_fraction, val), ("test", test_fraction, test)):
        if fraction > 0 and len(part) == 0:
            raise DataError(
                f"dataset {name!r} has {len(table.X)} row(s), too few for a non-empty {key} split "
                f"with dataset.{key}_fraction={fraction}; add rows or raise the fraction"
            )
