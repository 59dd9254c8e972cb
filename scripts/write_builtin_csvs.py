"""Write scikit-learn's five bundled data sets as CSV files into ``runner/datasets/``.

Run once, by hand, to create the shipped files; it needs scikit-learn, which the runner itself
never imports. Usage, from the repository root::

    python scripts/write_builtin_csvs.py

Each file has a header row: the features, named by scikit-learn's feature names made into
snake_case identifiers, then ``target`` (integer class ids, or the raw float target of diabetes).
Floats are written by pandas, which prints the shortest text that reads back to the same double.
"""

import re
from pathlib import Path

import pandas as pd
from sklearn import datasets

OUT_DIR = Path(__file__).resolve().parent.parent / "runner" / "datasets"

LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "digits": datasets.load_digits,
    # Raw units, so the runner's own standardisation is the only scaling applied.
    "diabetes": lambda: datasets.load_diabetes(scaled=False),
}


def snake_case(name):
    """'mean radius' -> 'mean_radius', 'sepal length (cm)' -> 'sepal_length_cm'."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def main():
    for name, load in LOADERS.items():
        bunch = load()
        frame = pd.DataFrame(bunch.data, columns=[snake_case(f) for f in bunch.feature_names])
        if name == "digits":
            # Pixel intensities are whole numbers 0..16; ints keep the file small and exact.
            frame = frame.astype("int64")
        is_classifier = name != "diabetes"
        frame["target"] = bunch.target.astype("int64" if is_classifier else "float64")
        path = OUT_DIR / f"{name}.csv"
        frame.to_csv(path, index=False)
        print(f"wrote {path} {frame.shape}")


if __name__ == "__main__":
    main()
