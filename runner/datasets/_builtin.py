"""The data sets shipped with the package, and digits28 derived from one of them."""

from dataclasses import replace
from pathlib import Path

import numpy as np

from runner.datasets._csv import read_table
from runner.datasets._table import Table

# The CSVs sit beside this module, inside the package, so an installed wheel has them; datasets/
# at the repository root holds the user's own tables (_locate.py).
DATA_DIR = Path(__file__).resolve().parent

# Name -> class names by class id; None marks the regression set. The CSVs store only the ids.
CLASS_NAMES = {
    "iris": ("setosa", "versicolor", "virginica"),
    "wine": ("class_0", "class_1", "class_2"),
    "breast_cancer": ("malignant", "benign"),
    "digits": tuple(str(d) for d in range(10)),
    "diabetes": None,
}
BUILTIN_NAMES = tuple(CLASS_NAMES)


def load_builtin(name):
    """Read the shipped CSV of ``name`` (a key of CLASS_NAMES) into a Table."""
    class_names = CLASS_NAMES[name]
    task = "regression" if class_names is None else "classification"
    table = read_table(DATA_DIR / f"{name}.csv", "target", task)
    return replace(table, class_names=class_names)


def load_digits28():
    """The 8x8 digits as 28x28 images, so MNIST-shaped (784-input) nets train on shipped data.

    Each image is upscaled x3 by repeating pixels (8x8 -> 24x24) and padded with 2 zero pixels on
    every side, like MNIST's border; X has shape (1797, 784), pixels flattened row by row.
    """
    digits = load_builtin("digits")
    images = digits.X.reshape(-1, 8, 8)
    large = images.repeat(3, axis=1).repeat(3, axis=2)
    padded = np.pad(large, ((0, 0), (2, 2), (2, 2)))
    feature_names = tuple(f"pixel_{r}_{c}" for r in range(28) for c in range(28))
    return Table(
        padded.reshape(len(images), 28 * 28), digits.target, feature_names, digits.class_names
    )
