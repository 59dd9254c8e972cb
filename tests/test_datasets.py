"""Tests of runner.datasets: shipped and generated sets, splits, scaling, encoding, CSV errors."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runner.datasets import DATASET_NAMES, Dataset, load_dataset
from runner.errors import ConfigError, DataError

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "runner" / "datasets"

# name -> (rows in all, features, outputs with the default one-hot encoding)
SHAPES = {
    "iris": (150, 4, 3),
    "wine": (178, 13, 3),
    "breast_cancer": (569, 30, 2),
    "digits": (1797, 64, 10),
    "diabetes": (442, 10, 1),
    "digits28": (1797, 784, 10),
    "xor": (400, 2, 2),
    "moons": (400, 2, 2),
    "spirals": (400, 2, 3),
    "blobs": (400, 2, 3),
}


def all_rows(dataset, field):
    """One field of the train, val and test splits stacked, in that order."""
    return np.concatenate([getattr(s, field) for s in (dataset.train, dataset.val, dataset.test)])


def write_csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- every named set ---------------------------------------------------------------------------


def test_every_name_but_csv_has_its_expected_shape():
    assert set(DATASET_NAMES) == set(SHAPES) | {"csv"}


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shapes_and_dtypes(name, dtype):
    n_rows, n_features, n_outputs = SHAPES[name]
    data = load_dataset(name, dtype=dtype)
    assert isinstance(data, Dataset)
    assert (data.n_features, data.n_outputs) == (n_features, n_outputs)
    assert len(data.feature_names) == n_features
    assert sum(len(s.X) for s in (data.train, data.val, data.test)) == n_rows
    for split in (data.train, data.val, data.test):
        assert split.X.shape == (len(split.X), n_features)
        assert split.Y.shape == (len(split.X), n_outputs)
        assert split.X.dtype == split.Y.dtype == np.dtype(dtype)
        assert split.X.flags.c_contiguous and split.Y.flags.c_contiguous
        if data.task == "classification":
            assert split.y.dtype == np.int64 and split.y.shape == (len(split.X),)
        else:
            assert split.y is None


def test_iris_is_150_rows_of_4_features_in_3_named_classes():
    data = load_dataset("iris")
    assert data.name == "iris" and data.task == "classification"
    assert data.class_names == ("setosa", "versicolor", "virginica")
    assert data.n_classes == 3
    assert data.feature_names[0] == "sepal_length_cm"


def test_split_is_stratified_by_class():
    data = load_dataset("iris", val_fraction=0.2, test_fraction=0.2)
    assert np.bincount(data.test.y).tolist() == [10, 10, 10]
    assert np.bincount(data.val.y).tolist() == [10, 10, 10]
    assert np.bincount(data.train.y).tolist() == [30, 30, 30]


def test_splits_partition_the_rows(tmp_path):
    rows = "".join(f"{i},{i % 3}\n" for i in range(60))
    data = load_dataset(
        "csv", path=write_csv(tmp_path, "id,t\n" + rows), target="t", standardize=False
    )
    ids = [set(s.X[:, 0]) for s in (data.train, data.val, data.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set.union(*ids) == set(range(60))


def test_zero_val_fraction_gives_an_empty_val_split():
    data = load_dataset("iris", val_fraction=0.0)
    assert data.val.X.shape == (0, 4) and data.val.Y.shape == (0, 3) and data.val.y.shape == (0,)


# --- standardisation ---------------------------------------------------------------------------


def test_standardisation_is_fitted_on_train_only():
    data = load_dataset("wine")
    np.testing.assert_allclose(data.train.X.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(data.train.X.std(axis=0), 1.0, rtol=1e-12)
    assert np.abs(data.val.X.mean(axis=0)).max() > 1e-3
    assert np.abs(data.test.X.mean(axis=0)).max() > 1e-3


def test_standardize_false_keeps_raw_values():
    data = load_dataset("iris", standardize=False)
    raw = pd.read_csv(DATA_DIR / "iris.csv").drop(columns="target").to_numpy()
    assert sorted(map(tuple, all_rows(data, "X"))) == sorted(map(tuple, raw))


def test_constant_column_maps_to_zero(tmp_path):
    rows = "".join(f"{i},0.1,{i % 2}\n" for i in range(20))
    data = load_dataset("csv", path=write_csv(tmp_path, "a,const,t\n" + rows), target="t")
    assert np.all(all_rows(data, "X")[:, 1] == 0.0)


def test_regression_targets_are_standardised_and_invertible():
    data = load_dataset("diabetes")
    raw = pd.read_csv(DATA_DIR / "diabetes.csv")["target"].to_numpy()
    np.testing.assert_allclose(data.train.Y.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(data.train.Y.std(), 1.0, rtol=1e-12)
    assert data.target_mean.shape == data.target_scale.shape == (1,)
    restored = all_rows(data, "Y") * data.target_scale + data.target_mean
    np.testing.assert_allclose(np.sort(restored[:, 0]), np.sort(raw), rtol=1e-12)


def test_unstandardised_regression_reports_identity_scaling():
    data = load_dataset("diabetes", standardize=False)
    assert data.target_mean.tolist() == [0.0] and data.target_scale.tolist() == [1.0]


def test_classification_has_no_target_scaling():
    data = load_dataset("iris")
    assert data.target_mean is None and data.target_scale is None


# --- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iris", "diabetes", "moons"])
def test_same_seed_gives_identical_arrays(name):
    a, b = load_dataset(name, seed=7), load_dataset(name, seed=7)
    for field in ("X", "Y"):
        assert np.array_equal(all_rows(a, field), all_rows(b, field))


@pytest.mark.parametrize("name", ["iris", "diabetes", "moons"])
def test_different_seed_gives_a_different_split(name):
    a, b = load_dataset(name, seed=0), load_dataset(name, seed=1)
    assert not np.array_equal(a.test.X, b.test.X)


# --- target encoding ---------------------------------------------------------------------------


def test_one_hot_rows_match_class_ids():
    data = load_dataset("digits")
    assert np.array_equal(data.train.Y.argmax(axis=1), data.train.y)
    assert np.all(data.train.Y.sum(axis=1) == 1.0)


def test_binary_set_with_one_output_is_one_column():
    data = load_dataset("breast_cancer", n_outputs=1)
    assert data.n_outputs == 1 and data.n_classes == 2
    assert np.array_equal(data.train.Y[:, 0], data.train.y.astype(float))


def test_one_output_request_for_many_classes_stays_one_hot():
    assert load_dataset("iris", n_outputs=1).n_outputs == 3


# --- digits28 ----------------------------------------------------------------------------------


def test_digits28_upscales_each_pixel_to_a_3x3_block_inside_a_zero_border():
    small = load_dataset("digits", standardize=False)
    large = load_dataset("digits28", standardize=False)
    assert np.array_equal(small.train.y, large.train.y)
    images = large.train.X.reshape(-1, 28, 28)
    originals = small.train.X.reshape(-1, 8, 8)
    assert np.all(images[:, :2, :] == 0) and np.all(images[:, -2:, :] == 0)
    assert np.all(images[:, :, :2] == 0) and np.all(images[:, :, -2:] == 0)
    for dr in range(3):
        for dc in range(3):
            assert np.array_equal(images[:, 2 + dr : 26 : 3, 2 + dc : 26 : 3], originals)


# --- generated sets ----------------------------------------------------------------------------


def test_generated_sets_take_their_parameters():
    data = load_dataset("blobs", n_samples=120, n_classes=4, n_features=5, noise=0.5)
    assert (data.n_features, data.n_classes) == (5, 4)
    assert sum(len(s.X) for s in (data.train, data.val, data.test)) == 120
    assert load_dataset("spirals", n_classes=5).n_classes == 5


def test_moons_without_noise_matches_scikit_learn():
    datasets = pytest.importorskip("sklearn.datasets")
    data = load_dataset("moons", n_samples=101, noise=0.0, standardize=False)
    X, y = datasets.make_moons(n_samples=101, shuffle=False)
    ours = sorted(zip(map(tuple, all_rows(data, "X").round(12)), all_rows(data, "y"), strict=True))
    theirs = sorted(zip(map(tuple, X.round(12)), y, strict=True))
    assert ours == theirs


def test_xor_labels_are_the_xor_of_the_corner_signs():
    data = load_dataset("xor", noise=0.01, standardize=False)
    X, y = all_rows(data, "X"), all_rows(data, "y")
    assert np.array_equal(y, ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(int))


def test_generated_data_depends_on_the_seed():
    a = load_dataset("blobs", seed=0, standardize=False)
    b = load_dataset("blobs", seed=1, standardize=False)
    assert not np.array_equal(np.sort(all_rows(a, "X"), axis=0), np.sort(all_rows(b, "X"), axis=0))


def test_parameter_a_generated_set_does_not_take_is_rejected():
    with pytest.raises(ConfigError, match="dataset.n_classes"):
        load_dataset("moons", n_classes=3)


def test_generator_parameter_on_a_shipped_set_is_rejected():
    with pytest.raises(ConfigError, match="dataset.noise"):
        load_dataset("iris", noise=0.1)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"n_samples": 3}, "n_samples"), ({"noise": -1.0}, "noise"), ({"n_classes": 1}, "n_classes")],
)
def test_generator_parameter_out_of_range_is_rejected(kwargs, key):
    with pytest.raises(ConfigError, match=f"dataset.{key}"):
        load_dataset("spirals", **kwargs)


# --- argument checks ---------------------------------------------------------------------------


def test_unknown_name_lists_the_names():
    with pytest.raises(ConfigError, match=r"dataset.name must be one of \['iris'.*'csv'\]"):
        load_dataset("mnist")


@pytest.mark.parametrize(
    "kwargs",
    [{"test_fraction": 1.0}, {"val_fraction": -0.1}, {"val_fraction": 0.5, "test_fraction": 0.5}],
)
def test_fractions_out_of_range_are_rejected(kwargs):
    with pytest.raises(ConfigError, match="_fraction"):
        load_dataset("iris", **kwargs)


def test_unknown_dtype_is_rejected():
    with pytest.raises(ConfigError, match="dtype must be one of"):
        load_dataset("iris", dtype="float16")


@pytest.mark.parametrize(
    ("key", "value"), [("path", "x.csv"), ("target", "t"), ("task", "regression")]
)
def test_csv_option_on_another_set_is_rejected(key, value):
    with pytest.raises(ConfigError, match=f"dataset.{key} applies only to dataset 'csv'"):
        load_dataset("iris", **{key: value})


# --- CSV files ---------------------------------------------------------------------------------


def test_csv_with_string_labels_maps_sorted_labels_to_ids(tmp_path):
    rows = "".join(f"{i},{i * 2},{label}\n" for i, label in enumerate(["b", "a", "c"] * 6))
    data = load_dataset("csv", path=write_csv(tmp_path, "x,z,kind\n" + rows), target="kind")
    assert data.name == "csv:data.csv" and data.task == "classification"
    assert data.class_names == ("a", "b", "c") and data.feature_names == ("x", "z")
    X, y = all_rows(data, "X"), all_rows(data, "y")
    # Standardisation keeps the order of x, and x % 3 gives the label b, a, c -> id 1, 0, 2.
    order = np.argsort(X[:, 0])
    assert y[order].tolist() == [1, 0, 2] * 6


def test_csv_with_sparse_integer_labels_names_classes_by_value(tmp_path):
    rows = "".join(f"{i},{label}\n" for i, label in enumerate([3, 7, 9] * 5))
    data = load_dataset("csv", path=write_csv(tmp_path, "x,t\n" + rows), target="t")
    assert data.class_names == ("3", "7", "9") and data.n_outputs == 3


def test_csv_with_many_float_targets_is_regression(tmp_path):
    rows = "".join(f"{i},{i * 0.5 + 0.25}\n" for i in range(30))
    data = load_dataset("csv", path=write_csv(tmp_path, "x,t\n" + rows), target="t")
    assert data.task == "regression" and data.class_names is None and data.n_outputs == 1


def test_csv_task_can_be_forced(tmp_path):
    rows = "".join(f"{i},{i % 2}\n" for i in range(30))
    path = write_csv(tmp_path, "x,t\n" + rows)
    assert load_dataset("csv", path=path, target="t", task="regression").task == "regression"


def test_csv_trailing_blank_lines_are_ignored(tmp_path):
    rows = "".join(f"{i},{i % 2}\n" for i in range(20))
    data = load_dataset("csv", path=write_csv(tmp_path, "x,t\n" + rows + "\n\n"), target="t")
    assert sum(len(s.X) for s in (data.train, data.val, data.test)) == 20


def test_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv does not exist"):
        load_dataset("csv", path=tmp_path / "nope.csv", target="t")


def test_csv_directory_instead_of_file(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        load_dataset("csv", path=tmp_path, target="t")


def test_csv_empty_file(tmp_path):
    with pytest.raises(DataError, match=r"empty\.csv is empty"):
        load_dataset("csv", path=write_csv(tmp_path, "", "empty.csv"), target="t")


def test_csv_header_only(tmp_path):
    with pytest.raises(DataError, match=r"head\.csv has a header but no data rows"):
        load_dataset("csv", path=write_csv(tmp_path, "x,t\n", "head.csv"), target="t")


def test_csv_without_target_lists_the_columns(tmp_path):
    path = write_csv(tmp_path, "x,t\n1,0\n")
    with pytest.raises(ConfigError, match=r"dataset.target must name .*data\.csv.*\['x', 't'\]"):
        load_dataset("csv", path=path)


def test_csv_missing_target_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path, "x,t\n1,0\n")
    with pytest.raises(DataError, match=r"data\.csv has no column 'label'.*\['x', 't'\]"):
        load_dataset("csv", path=path, target="label")


def test_csv_without_path_is_rejected():
    with pytest.raises(ConfigError, match="dataset.path"):
        load_dataset("csv", target="t")


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("abc", r"is 'abc', not a number; .*dataset\.categorical=\[y\]"),
        ("", r"is empty; .*dataset\.missing=drop .*dataset\.missing=mean"),
        ("nan", "is 'nan', a missing value"),
        ("NA", "is 'NA', a missing value"),
        ("inf", "is 'inf', not a finite number; fix that cell$"),
    ],
)
def test_csv_bad_feature_cell_names_column_row_line_and_value(tmp_path, cell, problem):
    path = write_csv(tmp_path, f"x,y,t\n1,2,0\n3,4,1\n5,{cell},0\n6,7,1\n")
    with pytest.raises(DataError, match=rf"data\.csv: column 'y', row 3 \(line 4\) {problem}"):
        load_dataset("csv", path=path, target="t")


@pytest.mark.parametrize("cell", ["", "nan", "-inf"])
def test_csv_missing_target_cell_names_its_row(tmp_path, cell):
    path = write_csv(tmp_path, f"x,t\n1,0\n2,{cell}\n3,1\n")
    with pytest.raises(DataError, match=r"data\.csv: column 't', row 2 \(line 3\)"):
        load_dataset("csv", path=path, target="t")


def test_csv_text_target_forced_to_regression_names_the_cell(tmp_path):
    path = write_csv(tmp_path, "x,t\n1,0.5\n2,high\n3,1.5\n")
    with pytest.raises(DataError, match=r"column 't', row 2 \(line 3\) is 'high'.*task"):
        load_dataset("csv", path=path, target="t", task="regression")


def test_csv_ragged_row_is_a_data_error(tmp_path):
    path = write_csv(tmp_path, "x,t\n1,0\n2,1,9\n")
    with pytest.raises(DataError, match=r"cannot read .*data\.csv as a UTF-8 CSV"):
        load_dataset("csv", path=path, target="t")


def test_csv_binary_file_is_a_data_error(tmp_path):
    path = tmp_path / "blob.csv"
    path.write_bytes(b"x,t\n\xff\xfe\x00\x81,1\n")
    with pytest.raises(DataError, match=r"cannot read .*blob\.csv"):
        load_dataset("csv", path=path, target="t")


def test_csv_with_a_single_class_is_rejected(tmp_path):
    path = write_csv(tmp_path, "x,t\n1,yes\n2,yes\n")
    with pytest.raises(DataError, match=r"data\.csv: target column 't' holds only the class 'yes'"):
        load_dataset("csv", path=path, target="t")


def test_csv_too_small_to_train_names_the_class(tmp_path):
    path = write_csv(tmp_path, "x,t\n" + "".join(f"{i},a\n" for i in range(10)) + "10,b\n11,b\n")
    with pytest.raises(DataError, match=r"class 'b' has 2 row\(s\)"):
        load_dataset("csv", path=path, target="t", val_fraction=0.3, test_fraction=0.3)


def test_csv_too_small_for_a_test_split(tmp_path):
    path = write_csv(tmp_path, "x,t\n1,0.5\n2,1.5\n")
    with pytest.raises(DataError, match="test split"):
        load_dataset("csv", path=path, target="t", task="regression", val_fraction=0.0)


# --- shipped files -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits", "diabetes"])
def test_shipped_csv_equals_scikit_learn_exactly(name):
    datasets = pytest.importorskip("sklearn.datasets")
    kwargs = {"scaled": False} if name == "diabetes" else {}
    bunch = getattr(datasets, f"load_{name}")(**kwargs)
    frame = pd.read_csv(DATA_DIR / f"{name}.csv")
    assert np.array_equal(frame.drop(columns="target").to_numpy(dtype=float), bunch.data)
    assert np.array_equal(frame["target"].to_numpy(), bunch.target)


def test_feature_scaler_maps_raw_rows_to_the_standardised_ones():
    raw = load_dataset("iris", standardize=False)
    scaled = load_dataset("iris")
    np.testing.assert_allclose(
        (raw.test.X - scaled.feature_mean) / scaled.feature_scale, scaled.test.X, rtol=1e-15
    )
    assert np.all(raw.feature_mean == 0) and np.all(raw.feature_scale == 1)


def outlier_csv(tmp_path, value):
    """20 rows whose x varies by 1e-200 and one row (never a training row here) with x=value."""
    rows = [(1e-200 if i % 2 else 0.0, i % 2) for i in range(20)]
    rows[19] = (value, 1)
    return write_csv(tmp_path, "x,y\n" + "".join(f"{x},{y}\n" for x, y in rows))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_row_too_many_standard_deviations_out_is_refused(tmp_path, dtype):
    # Row 19 lands in the validation part; 1e100 / 1e-200 standard deviations squares to inf.
    path = outlier_csv(tmp_path, 1e100)
    with pytest.raises(DataError, match=rf"column 'x' of .*data\.csv.* {dtype} can square"):
        load_dataset("csv", path=path, target="y", dtype=dtype)
    dataset = load_dataset("csv", path=path, target="y", standardize=False)
    assert dataset.val.X.max() == 1e100  # float64 squares it (1e200); unscaled, it may stay


def test_an_unstandardised_value_beyond_float32_squares_is_refused(tmp_path):
    path = outlier_csv(tmp_path, 1e20)
    with pytest.raises(DataError, match="has the value 1e[+]20, beyond what float32 can square"):
        load_dataset("csv", path=path, target="y", standardize=False, dtype="float32")
