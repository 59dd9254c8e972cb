"""What names a data set and how to cut it: the one list of a data set's options.

``DatasetOptions`` is also the config schema of the ``dataset`` group (``runner.config``
registers it as is), so a key, its default and its comment are written here once.
``DatasetSpec`` adds what the rest of a run decides (seed, dtype, the model's outputs) and is
what ``load_dataset`` takes.
"""

from dataclasses import dataclass, field, fields

import numpy as np

from runner.datasets._builtin import BUILTIN_NAMES
from runner.datasets._generated import GENERATED_NAMES
from runner.dtypes import DTYPES
from runner.errors import ConfigError

DATASET_NAMES = (*BUILTIN_NAMES, "digits28", *GENERATED_NAMES, "csv")
TASKS = ("auto", "classification", "regression")
MISSING_MODES = ("error", "drop", "mean")
CSV_OPTIONS = ("path", "target", "task", "missing", "categorical")  # options only "csv" takes
GENERATED_OPTIONS = ("n_samples", "noise", "n_classes", "n_features")  # generated sets only


@dataclass
class DatasetOptions:
    """A data set's own options: the keys of the ``dataset`` config group.

    Refuses, when built, a value that cannot work (``dataset.<key>`` names it); whether an
    option applies to the named set is checked when the set is loaded.
    """

    name: str  # a shipped, generated or csv data set: one of DATASET_NAMES
    path: str | None = None  # csv only: the file to read
    target: str | None = None  # csv only: the target column
    task: str = "auto"  # csv only: auto, classification or regression
    # csv only: a missing cell (empty, NaN, NA, N/A, null) is an error, drops its row (drop),
    # or, in a feature, is filled with the training split's mean of its column (mean)
    missing: str = "error"
    # csv only: numeric feature columns to one-hot encode (text columns always are)
    categorical: list[str] = field(default_factory=list)
    val_fraction: float = 0.2  # share of all rows for validation
    test_fraction: float = 0.2  # share of all rows for the final test
    standardize: bool = True  # scale features with the training part's mean and std
    n_samples: int | None = None  # generated sets only: rows to generate
    noise: float | None = None  # generated sets only: noise level
    n_classes: int | None = None  # spirals/blobs only
    n_features: int | None = None  # blobs only

    def __post_init__(self):
        if self.name not in DATASET_NAMES:
            raise ConfigError(
                f"dataset.name must be one of {list(DATASET_NAMES)}, got {self.name!r}"
            )
        for key in ("val_fraction", "test_fraction"):
            value = getattr(self, key)
            if not _is_real(value) or not 0 <= value < 1:
                raise ConfigError(f"dataset.{key} must be a number in [0, 1), got {value!r}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(
                f"dataset.val_fraction + dataset.test_fraction must be below 1 to leave train "
                f"rows, got {self.val_fraction} + {self.test_fraction}"
            )
        if not isinstance(self.standardize, bool):
            raise ConfigError(
                f"dataset.standardize must be true or false, got {self.standardize!r}"
            )
        if self.task not in TASKS:
            raise ConfigError(f"dataset.task must be one of {list(TASKS)}, got {self.task!r}")
        if self.missing not in MISSING_MODES:
            raise ConfigError(
                f"dataset.missing must be one of {list(MISSING_MODES)}, got {self.missing!r}"
            )
        if not isinstance(self.categorical, list | tuple) or not all(
            isinstance(column, str) for column in self.categorical
        ):
            raise ConfigError(
                f"dataset.categorical must be a list of column names, got {self.categorical!r}"
            )

    def spec(self, *, seed, n_outputs, dtype):
        """The DatasetSpec of these options in a run with this seed, output size and dtype."""
        options = {f.name: getattr(self, f.name) for f in fields(DatasetOptions)}
        return DatasetSpec(**options, seed=seed, n_outputs=n_outputs, dtype=dtype)


@dataclass
class DatasetSpec(DatasetOptions):
    """A data set's options and what the run around it decides: all ``load_dataset`` needs.

    seed : the run's seed; generated rows and then the split (stratified by class for
        classification) draw from its data stream, ``runner.streams.DATA``.
    n_outputs : encoding request for classes: 1 with two classes gives one 0/1 column for a
        sigmoid output; anything else gives one-hot. It is never checked against the model
        here: the caller compares ``Dataset.n_outputs`` with its network.
    """

    seed: int = 0  # one seed for the split and any generated rows
    n_outputs: int | None = None  # the model's output width
    dtype: str = "float64"  # of X and Y: float32 or float64

    def __post_init__(self):
        super().__post_init__()
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")


def _is_int(value):
    """True for a Python or NumPy integer, but not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value):
    """True for a Python or NumPy int or float, but not a bool."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
