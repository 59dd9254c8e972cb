"""Read a CSV file into a Table, turning every way a file can be wrong into one DataError line."""

import math
import warnings
from pathlib import Path

import numpy as np

from runner.datasets._table import Table
from runner.errors import ConfigError, DataError

# task="auto" treats an integer-valued target with at most this many distinct values as classes.
MAX_AUTO_CLASSES = 20


def read_table(path, target, task):
    """Read the CSV at ``path``; ``target`` names the target column, the rest are features.

    task : "auto", "classification" or "regression". "auto" picks classification for a target
        that is not numeric, or is integer-valued with at most MAX_AUTO_CLASSES distinct values.

    Rows are counted from 1 after the header, and line numbers assume one line per row (no
    newlines inside quoted cells), so an error can point at the exact spot in an editor.
    """
    path = Path(path)
    frame = _read_frame(path)
    columns = list(frame.columns)
    if target is None:
        raise ConfigError(
            f"dataset.target must name the target column of {path}; columns are {columns}"
        )
    if target not in columns:
        raise DataError(
            f"{path} has no column {target!r} for dataset.target; columns are {columns}"
        )
    features = [c for c in columns if c != target]
    if not features:
        raise DataError(f"{path} has only the target column {target!r}; add feature columns")
    X = np.column_stack([_numeric_column(frame[c], c, path) for c in features])
    values, class_names = _target_column(frame[target], target, task, path)
    return Table(X, values, tuple(str(c) for c in features), class_names)


def _read_frame(path):
    """Every cell as text, so a bad cell can be quoted back exactly as the file has it."""
    import pandas as pd  # Deferred: only CSV sources need it.

    if not path.exists():
        raise DataError(f"data file {path} does not exist; set dataset.path to an existing CSV")
    if path.is_dir():
        raise DataError(f"data file {path} is a directory; set dataset.path to a CSV file in it")
    try:
        with warnings.catch_warnings():
            # A first row longer than the header would silently lose cells; make that an error.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, skip_blank_lines=False, index_col=False
            )
    except pd.errors.EmptyDataError:
        raise DataError(
            f"data file {path} is empty; it needs a header row and at least one data row"
        ) from None
    except (pd.errors.ParserError, pd.errors.ParserWarning, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())
        raise DataError(
            f"cannot read {path} as a UTF-8 CSV file ({reason}); "
            "each row needs one comma-separated value per header column"
        ) from None
    except OSError as exc:
        raise DataError(f"cannot read data file {path}: {exc.strerror}") from None
    frame = _drop_trailing_blank_rows(frame)
    if len(frame) == 0:
        raise DataError(f"data file {path} has a header but no data rows; add rows below it")
    return frame


def _drop_trailing_blank_rows(frame):
    """Blank lines at the end of a file are an editor's habit, not rows with missing values."""
    blank = (frame == "").all(axis=1).to_numpy()
    n_rows = len(blank)
    while n_rows and blank[n_rows - 1]:
        n_rows -= 1
    return frame.iloc[:n_rows]


def _numeric_column(cells, column, path):
    """Parse a column of text cells into float64, shape (n_samples,); every cell must be finite."""
    values = _parse(cells)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise _cell_error(path, column, bad[0], cells.iloc[bad[0]])
    return values


def _target_column(cells, column, task, path):
    """Class ids and class names, or float targets and None; see read_table for ``task``."""
    values = _parse(cells)
    bad = np.flatnonzero(~np.isfinite(values))
    for row in bad:
        text = cells.iloc[row]
        # Empty, nan and inf cells are missing targets; other text is a class label.
        if not text.strip() or _is_nonfinite_number(text):
            raise _cell_error(path, column, row, text)
    numeric = bad.size == 0
    if task == "auto":
        few_integers = (
            numeric
            and np.array_equal(values, np.round(values))
            and np.unique(values).size <= MAX_AUTO_CLASSES
        )
        task = "classification" if not numeric or few_integers else "regression"
    if task == "regression":
        if not numeric:
            fix = "fix that cell, or set dataset.task=classification if it holds class labels"
            raise _cell_error(path, column, bad[0], cells.iloc[bad[0]], fix)
        return values, None
    labels = values if numeric else cells.str.strip().to_numpy(dtype=str)
    unique, ids = np.unique(labels, return_inverse=True)
    class_names = tuple(_label_name(label) for label in unique)
    if len(class_names) < 2:
        raise DataError(
            f"{path}: target column {column!r} holds only the class {class_names[0]!r}; "
            "a classifier needs at least two classes"
        )
    return ids.astype(np.int64), class_names


def _parse(cells):
    """Text cells to float64 values, shape (n_samples,); unparseable cells become NaN."""
    import pandas as pd

    return pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64)


def _is_nonfinite_number(text):
    """True for text that reads as a number but is nan or inf."""
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def _cell_error(path, column, row, text, fix="fix that cell or remove the row"):
    """A DataError that points at one cell: column, 1-based data row and file line."""
    if not text.strip():
        problem = "is empty"
    elif _is_nonfinite_number(text):
        problem = f"is {text!r}, not a finite number"
    else:
        problem = f"is {text!r}, not a number"
    # Row 1 is the first data row, on line 2 just below the header.
    location = f"column {column!r}, row {row + 1} (line {row + 2})"
    return DataError(f"{path}: {location} {problem}; {fix}")


def _label_name(label):
    """'3' for the class 3.0, the label itself for text."""
    if isinstance(label, str):
        return str(label)  # A plain str, not NumPy's str_, so names print without np.str_(...).
    return str(int(label)) if float(label).is_integer() else str(float(label))
