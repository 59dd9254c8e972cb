"""Raw feature rows to the numbers a network takes: one encoder for training and for serving.

A data set's feature columns as people keep them (numbers, text labels, empty cells) become
the columns of X here, both when a CSV is loaded for training and when the logged pyfunc model
is given raw rows, so that the two cannot encode a row differently. A module of its own, with
NumPy, pandas (imported when used) and the standard library only, because the data sets and
the model's code (which ships without the data sets) both need it.
"""

import math
from dataclasses import asdict, dataclass, field

import numpy as np

# Cells read as missing, compared after stripping spaces and ignoring case: an empty cell and
# the usual spellings of "no value". Any other text is a value.
MISSING_TEXT = ("", "nan", "na", "n/a", "null")


@dataclass(frozen=True)
class Encoding:
    """How a data set's raw feature columns become the columns of X.

    columns : the raw feature columns in the data's order; a raw row is one value per column.
    categories : column -> its values in a fixed order, for each column encoded one-hot. Such
        a column becomes one 0/1 column per value, named ``column=value``, in its place. A
        value outside the list (one the training data never had) gets 0 in all of them, as
        scikit-learn's ``OneHotEncoder(handle_unknown="ignore")`` does.
    fill : one number per column of X to stand in for a missing cell (dataset.missing=mean:
        the training split's means), or None: a missing cell is an error.
    """

    columns: tuple[str, ...]
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fill: tuple[float, ...] | None = None

    @property
    def feature_names(self):
        """One name per column of X: the raw column's, or ``column=value`` for a one-hot one."""
        return tuple(name for _, name in self._features())

    @property
    def sources(self):
        """The raw column each column of X comes from, one per column of X."""
        return tuple(column for column, _ in self._features())

    def _features(self):
        for column in self.columns:
            values = self.categories.get(column)
            if values is None:
                yield column, column
            else:
                yield from ((column, f"{column}={value}") for value in values)

    def describe(self):
        """'' for numbers only; else what the one-hot columns add, e.g. 'colour: 3 columns'."""
        return ", ".join(f"{c}: {len(v)} columns" for c, v in self.categories.items())

    def rows(self, model_input):
        """A DataFrame of raw rows with ``columns``, from what a caller passes to the model.

        model_input : a DataFrame holding every one of ``columns`` (taken by name; others are
            ignored), or rows in feature order (a DataFrame without those names, an array or
            a list of lists). Raises ValueError when neither fits.
        """
        import pandas as pd

        if isinstance(model_input, pd.DataFrame) and set(self.columns) <= set(model_input):
            return model_input[list(self.columns)]
        frame = pd.DataFrame(model_input)
        if frame.shape[1] != len(self.columns):
            raise ValueError(
                f"expected rows of {len(self.columns)} values in the order {list(self.columns)}, "
                f"or a table with those column names; got {frame.shape[1]} unnamed values a row"
            )
        frame.columns = list(self.columns)
        return frame

    def encode(self, frame):
        """X of shape (n_rows, n_features), float64, with NaN where a cell is missing.

        frame : a pandas DataFrame holding ``columns``. Raises ValueError naming the column
            and row (counted from 1) of a cell in a numeric column that is not a finite number.
        """
        parts = []
        for column in self.columns:
            cells = frame[column]
            if column in self.categories:
                parts.append(one_hot(cells, self.categories[column]))
                continue
            values, missing = parse_numbers(cells)
            bad = np.flatnonzero(~missing & ~np.isfinite(values))
            if bad.size:
                raise ValueError(
                    f"column {column!r}, row {bad[0] + 1}: {cells.iloc[bad[0]]!r} is not a "
                    f"finite number"
                )
            parts.append(values[:, None])
        return np.hstack(parts) if parts else np.empty((len(frame), 0))

    def transform(self, frame):
        """``encode``, with each missing cell filled from ``fill``; ValueError without one."""
        X = self.encode(frame)
        missing = np.isnan(X)
        if not missing.any():
            return X
        if self.fill is None:
            row, col = np.argwhere(missing)[0]
            raise ValueError(
                f"column {self.sources[col]!r}, row {row + 1} is missing; this model was "
                f"trained with dataset.missing=error or drop and fills no cell (train with "
                f"dataset.missing=mean for a model that does)"
            )
        return np.where(missing, np.asarray(self.fill), X)

    def decode(self, X):
        """Raw rows (a DataFrame with ``columns``) that encode to X, which has no missing cell.

        A one-hot group becomes its largest column's value; values that all read as numbers
        come back as numbers, so that a served model's signature asks for numbers.
        """
        import pandas as pd

        frame, start = {}, 0
        for column in self.columns:
            values = self.categories.get(column)
            if values is None:
                frame[column] = X[:, start]
                start += 1
                continue
            chosen = np.asarray(values, dtype=object)[X[:, start : start + len(values)].argmax(1)]
            numbers = [_number(value) for value in values]
            if None not in numbers:
                chosen = np.asarray([_number(value) for value in chosen], dtype=np.float64)
            frame[column] = chosen
            start += len(values)
        return pd.DataFrame(frame)

    def to_dict(self):
        """JSON-ready fields, as ``from_dict`` reads them back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, fields):
        fill = fields.get("fill")
        return cls(
            columns=tuple(fields["columns"]),
            categories={c: tuple(v) for c, v in fields.get("categories", {}).items()},
            fill=None if fill is None else tuple(fill),
        )


def parse_numbers(cells):
    """(values, missing) of a column: float64 values with NaN where ``missing`` is True.

    cells : a pandas Series of text (a CSV's cells) or of values (a served request's). A cell
    that is neither a number nor missing is NaN and not missing; ``inf`` stays infinite.
    """
    import pandas as pd

    cells = pd.Series(cells)
    if pd.api.types.is_numeric_dtype(cells.dtype) and not pd.api.types.is_bool_dtype(cells):
        values = cells.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.isnan(values)
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    unread = np.isnan(values)
    if not unread.any():  # a column of numbers, the common case: no text to look at
        return values, unread
    missing = np.zeros(len(cells), dtype=bool)
    text = cells[unread]
    missing[unread] = text.isna() | text.astype(str).str.strip().str.lower().isin(MISSING_TEXT)
    return values, missing


def category_key(value):
    """The category a cell names, or None for a missing cell.

    Text is stripped; a number is written the shortest way ("1" for 1, 1.0 and "1.0"), so a
    category reads the same from a CSV's text and from a request's JSON number.
    """
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else str(value)
    if text.lower() in MISSING_TEXT:
        return None
    number = _number(text)
    if number is None or not math.isfinite(number):
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def category_order(values):
    """``values`` (category keys) in a fixed order: numbers by value first, then text sorted."""

    def key(value):
        number = _number(value)
        return (0, number, "") if number is not None else (1, 0.0, value)

    return tuple(sorted(set(values), key=key))


def one_hot(cells, values):
    """(n_rows, len(values)) 0/1 columns for a column's cells; a missing cell's row is NaN."""
    import pandas as pd

    index = {value: i for i, value in enumerate(values)}
    encoded = np.zeros((len(cells), len(values)))
    for row, (cell, absent) in enumerate(zip(cells, pd.isna(cells), strict=True)):
        key = None if absent else category_key(cell)
        if key is None:
            encoded[row] = np.nan
        elif key in index:
            encoded[row, index[key]] = 1.0
    return encoded


def _number(text):
    """float(text), or None for text that is not a number."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None
