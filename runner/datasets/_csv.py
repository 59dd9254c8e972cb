"""Read a CSV file into a Table, turning every way a file can be wrong into one DataError line."""

import math
import warnings
from pathlib import Path

import numpy as np

from runner.datasets._table import Table
from runner.encoding import MISSING_TEXT, Encoding, category_key, category_order, parse_numbers
from runner.errors import ConfigError, DataError

# task="auto" treats an integer-valued target with at most this many distinct values as classes.
MAX_AUTO_CLASSES = 20


def read_table(path, target, task, missing="error", categorical=()):
    """Read the CSV at ``path``; ``target`` names the target column, the rest are features.

    task : "auto", "classification" or "regression". "auto" picks classification for a target
        that is not numeric, or is integer-valued with at most MAX_AUTO_CLASSES distinct values.
    missing : what a missing cell (see ``runner.encoding.MISSING_TEXT``) does: "error" refuses
        it, "drop" drops its row, "mean" leaves it NaN in X for ``load_dataset`` to fill from
        the training split (a missing target is refused: it is never filled).
    categorical : numeric feature columns to one-hot encode as well; a text column always is.

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
    for column in categorical:
        if column not in features:
            raise ConfigError(
                f"dataset.categorical names {column!r}, which is not a feature column of "
                f"{path}; feature columns are {features}"
            )
    one_hot = [c for c in features if c in categorical or _is_text(frame[c], c, path)]
    frame, notes = _handle_missing(frame, features, target, missing, path)
    categories = {
        c: category_order(key for key in map(category_key, frame[c]) if key is not None)
        for c in one_hot
    }
    encoding = Encoding(tuple(features), categories)
    if categories:
        notes.append(_encoded_note(categories))
    values, class_names = _target_column(frame[target], target, task, path)
    return Table(
        encoding.encode(frame), values, encoding.feature_names, class_names, encoding, tuple(notes)
    )


def _is_text(cells, column, path):
    """True for a column with no number in it; a DataError for numbers mixed with text or
    infinite numbers, naming the first such cell."""
    values, missing = parse_numbers(cells)
    text = ~missing & np.isnan(values)
    if text.any() and (text | missing).all():
        return True
    bad = np.flatnonzero(~missing & ~np.isfinite(values))
    if bad.size:
        fix = "fix that cell"
        if text[bad[0]]:
            fix += f", or set dataset.categorical=[{column}] to one-hot encode the column"
        raise _cell_error(path, column, cells.index[bad[0]], cells.iloc[bad[0]], fix)
    return False


def _handle_missing(frame, features, target, missing, path):
    """The frame as ``missing`` leaves it, and what was done, as lines for the run's log."""
    blank = {c: parse_numbers(frame[c])[1] for c in [*features, target]}
    if missing == "drop":
        keep = ~np.any(list(blank.values()), axis=0)
        dropped = np.flatnonzero(~keep)
        if not dropped.size:
            return frame, []
        if not keep.any():
            raise DataError(
                f"{path}: every row has a missing cell, so dataset.missing=drop leaves none; "
                f"fill the cells, or set dataset.missing=mean"
            )
        shown = ", ".join(str(row + 1) for row in dropped[:10])
        more = f" and {dropped.size - 10} more" if dropped.size > 10 else ""
        note = (
            f"dropped {dropped.size} of {len(frame)} rows with a missing cell "
            f"(dataset.missing=drop): rows {shown}{more}"
        )
        return frame[keep], [note]
    checked = [target] if missing == "mean" else [*features, target]
    for column in checked:
        rows = np.flatnonzero(blank[column])
        if rows.size:
            fix = (
                "fix that cell, or set dataset.missing=drop to drop such rows"
                if column == target
                else "fix that cell, or set dataset.missing=drop (drop such rows) or "
                "dataset.missing=mean (fill in the training rows' mean)"
            )
            if column == target and missing == "mean":
                fix = "a target is never filled; " + fix
            raise _cell_error(path, column, rows[0], frame[column].iloc[rows[0]], fix)
    return frame, []


def _encoded_note(categories):
    """One log line: which columns became how many one-hot columns, and what is unseen."""
    parts = []
    for column, values in categories.items():
        shown = ", ".join(values[:8]) + (f", ... ({len(values)} in all)" if len(values) > 8 else "")
        parts.append(f"{column} -> {len(values)} columns ({shown})")
    return (
        f"one-hot encoded {'; '.join(parts)}; a value the training data lacks gets 0 in all "
        f"of its column's one-hot columns when the model predicts"
    )


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


def _target_column(cells, column, task, path):
    """Class ids and class names, or float targets and None; see read_table for ``task``."""
    values = parse_numbers(cells)[0]
    bad = np.flatnonzero(~np.isfinite(values))
    for row in bad:
        text = cells.iloc[row]
        # Missing cells are gone or refused by now; inf is no target, other text a class label.
        if _is_nonfinite_number(text):
            raise _cell_error(path, column, cells.index[row], text, "fix that cell")
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
            raise _cell_error(path, column, cells.index[bad[0]], cells.iloc[bad[0]], fix)
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


def _is_nonfinite_number(text):
    """True for text that reads as a number but is nan or inf."""
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def _cell_error(path, column, row, text, fix):
    """A DataError that points at one cell: column, 1-based data row and file line.

    row : the cell's 0-based position in the file's data rows (a frame's index label, which
        dropping rows leaves as it was).
    """
    if not text.strip():
        problem = "is empty"
    elif text.strip().lower() in MISSING_TEXT:
        problem = f"is {text!r}, a missing value"
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
