"""Tables as people have them: text and categorical columns one-hot encoded, missing cells
refused, dropped or filled, and the same encoding inside the logged pyfunc model."""

import re

import mlflow
import numpy as np
import pandas as pd
import pytest

from runner.datasets import load_dataset
from runner.encoding import Encoding, category_key
from runner.engine import MLP
from runner.errors import ConfigError, DataError
from runner.pipeline import prepare
from tests.helpers import compose_run_config, run_cli

# size and weight are numbers (weight unique and never missing, so a row of a split can be
# found in the file again); colour is text, zone a number code listed in dataset.categorical.
# Row 3 lacks size, row 6 colour, row 9 zone.
N_ROWS = 60


def shop_csv(path, rows=N_ROWS):
    """The test table: label 'yes' where size plus a bonus for red or zone 2 is large."""
    rng = np.random.default_rng(7)
    lines = ["size,weight,colour,zone,label"]
    for i in range(rows):
        colour = ["red", "green", "blue"][i % 3]
        zone = 1 + (i * 7) % 3
        size = rng.normal()
        label = "yes" if size + (colour == "red") + (zone == 2) > 0.9 else "no"
        cells = [f"{size:.4f}", f"{10 + i * 0.37:.2f}", colour, str(zone)]
        for row, column in ((3, 0), (6, 2), (9, 3)):
            if i == row:
                cells[column] = ""
        lines.append(",".join([*cells, label]))
    path.write_text("\n".join(lines) + "\n")
    return path


def shop(path, **options):
    return load_dataset("csv", path=path, target="label", categorical=["zone"], **options)


# --- the encoding ------------------------------------------------------------------------------


def test_text_and_categorical_columns_become_one_hot_columns_in_a_fixed_order(tmp_path):
    data = shop(shop_csv(tmp_path / "shop.csv"), missing="drop", standardize=False)
    assert data.feature_names == (
        "size",
        "weight",
        "colour=blue",
        "colour=green",
        "colour=red",
        "zone=1",
        "zone=2",
        "zone=3",
    )
    X = np.concatenate([data.train.X, data.val.X, data.test.X])
    onehot = X[:, 2:]
    assert set(np.unique(onehot)) == {0.0, 1.0}
    assert (onehot[:, :3].sum(axis=1) == 1).all() and (onehot[:, 3:].sum(axis=1) == 1).all()
    # The categories come from the data, not from the split: another seed, the same columns.
    assert shop(tmp_path / "shop.csv", missing="drop", seed=5).feature_names == data.feature_names


def test_an_unseen_value_gets_zeros_and_numbers_name_one_category():
    encoding = Encoding(("x", "c"), {"c": ("1", "a")})
    rows = pd.DataFrame({"x": [0.5, 1.0, 2.0], "c": ["purple", 1.0, "a"]})
    np.testing.assert_array_equal(
        encoding.encode(rows), [[0.5, 0.0, 0.0], [1.0, 1.0, 0.0], [2.0, 0.0, 1.0]]
    )
    assert category_key(1) == category_key(1.0) == category_key(" 1.0 ") == "1"
    assert category_key("NA") is None and category_key("") is None


def test_raw_rows_by_name_or_in_feature_order_encode_alike():
    encoding = Encoding(("x", "c"), {"c": ("a", "b")})
    by_name = encoding.rows(pd.DataFrame({"c": ["b"], "x": [3.0], "extra": [0]}))
    in_order = encoding.rows([[3.0, "b"]])
    np.testing.assert_array_equal(encoding.encode(by_name), encoding.encode(in_order))
    with pytest.raises(ValueError, match=r"rows of 2 values in the order \['x', 'c'\]"):
        encoding.rows([[3.0]])


def test_a_missing_cell_at_prediction_is_filled_only_by_a_model_that_fills():
    rows = pd.DataFrame({"x": [None, 2.0], "c": ["a", None]})
    with pytest.raises(ValueError, match=r"column 'x', row 1 is missing.*dataset.missing=mean"):
        Encoding(("x", "c"), {"c": ("a", "b")}).transform(rows)
    filling = Encoding(("x", "c"), {"c": ("a", "b")}, fill=(1.5, 0.25, 0.75))
    np.testing.assert_array_equal(filling.transform(rows), [[1.5, 1.0, 0.0], [2.0, 0.25, 0.75]])


def test_numbers_mixed_with_text_are_refused_with_the_categorical_hint(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("x,y,t\n1,2,0\n3,4x,1\n5,6,0\n")
    with pytest.raises(DataError, match=r"column 'y', row 2 \(line 3\) is '4x'.*categorical=\[y\]"):
        load_dataset("csv", path=path, target="t")


def test_categorical_must_name_a_feature_column(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset.categorical names 'label'"):
        load_dataset(
            "csv", path=shop_csv(tmp_path / "s.csv"), target="label", categorical=["label"]
        )


@pytest.mark.parametrize("name", ["iris", "moons"])
def test_categorical_and_missing_apply_to_csv_only(name):
    with pytest.raises(ConfigError, match="dataset.missing applies only to dataset 'csv'"):
        load_dataset(name, missing="drop")


# --- missing cells -----------------------------------------------------------------------------


def test_missing_error_names_the_first_missing_cell_and_both_other_modes(tmp_path):
    with pytest.raises(
        DataError,
        match=r"column 'size', row 4 \(line 5\) is empty; .*dataset.missing=drop .*missing=mean",
    ):
        shop(shop_csv(tmp_path / "shop.csv"))


def test_missing_drop_drops_the_rows_and_says_which(tmp_path):
    data = shop(shop_csv(tmp_path / "shop.csv"), missing="drop")
    assert sum(len(s.X) for s in (data.train, data.val, data.test)) == N_ROWS - 3
    assert "dropped 3 of 60 rows with a missing cell (dataset.missing=drop): rows 4, 7, 10" in (
        data.notes
    )
    assert data.encoding.fill is None


def test_missing_mean_fills_from_the_training_split_only(tmp_path):
    path = shop_csv(tmp_path / "shop.csv")
    raw = pd.read_csv(path)
    data = shop(path, missing="mean", standardize=False)
    # The training rows in the file, found by their unique weight.
    train = raw.set_index(raw["weight"].round(2)).loc[data.train.X[:, 1].round(2)]
    size_mean = train["size"].mean()  # pandas skips the missing cell
    assert not np.isclose(size_mean, raw["size"].mean())  # the whole table's differs
    assert data.encoding.fill[0] == pytest.approx(size_mean, rel=1e-12)
    shares = train["colour"].value_counts(normalize=True)  # of the cells that are there
    assert data.encoding.fill[2:5] == pytest.approx(shares[["blue", "green", "red"]], rel=1e-12)
    X = np.concatenate([data.train.X, data.val.X, data.test.X])
    assert not np.isnan(X).any()
    filled = X[np.isclose(X[:, 1], raw.loc[3, "weight"])][0]
    assert filled[0] == pytest.approx(size_mean, rel=1e-12)
    (note,) = [n for n in data.notes if n.startswith("filled")]
    assert "training split's means" in note and "not the whole table's" in note
    assert "size: 1 cell(s)" in note and "colour: 1 cell(s)" in note and "zone: 1" in note


def test_missing_mean_never_fills_a_target(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,t\n1,a\n2,\n3,b\n4,a\n")
    with pytest.raises(DataError, match=r"column 't', row 2 \(line 3\).*a target is never filled"):
        load_dataset("csv", path=path, target="t", missing="mean")


def test_missing_mean_needs_a_training_value_in_each_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y,t\n" + "".join(f"{i},,{i % 2}\n" for i in range(10)))
    with pytest.raises(DataError, match=r"column 'y' has no value in the training split"):
        load_dataset("csv", path=path, target="t", missing="mean")


def test_an_unknown_missing_mode_is_refused():
    with pytest.raises(ConfigError, match=r"dataset.missing must be one of \['error', 'drop'"):
        load_dataset("csv", path="x.csv", target="t", missing="zero")


# --- the model's input size --------------------------------------------------------------------


def test_the_first_layer_is_checked_against_the_encoded_width(tmp_path):
    path = shop_csv(tmp_path / "shop.csv")
    cfg = compose_run_config(
        "dataset=csv",
        f"dataset.path={path}",
        "dataset.target=label",
        "dataset.categorical=[zone]",
        "dataset.missing=drop",
    )
    message = (
        "model mlp_4_8_8_3 takes 4 input features but dataset 'csv:shop.csv' has 8 after "
        "one-hot encoding (colour: 3 columns, zone: 3 columns); pick a model whose first layer "
        "is 8 (e.g. model.layers=[8, 8, 8, 2])"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        prepare(cfg)


# --- through the command line, into a store, out of the logged model ---------------------------


@pytest.mark.slow
# mean is the mode whose model does more than encode; drop runs with the heavy tests.
@pytest.mark.parametrize("missing", [pytest.param("drop", marks=pytest.mark.heavy), "mean"])
def test_a_table_with_text_and_missing_cells_trains_logs_and_serves_raw_rows(project_dir, missing):
    path = shop_csv(project_dir / "shop.csv")
    overrides = [
        "dataset=csv",
        "dataset.path=shop.csv",
        "dataset.target=label",
        "dataset.categorical=[zone]",
        f"dataset.missing={missing}",
        "model.layers=[8,16,2]",
        "model.activations=[relu,softmax]",
        "epochs=30",
    ]
    result = run_cli(*overrides, cwd=project_dir)
    assert result.returncode == 0, result.stderr
    console = result.stdout + result.stderr
    done = "dropped 3 of 60 rows" if missing == "drop" else "filled missing cells"
    for line in ("one-hot encoded colour -> 3 columns (blue, green, red)", done):
        assert line in console
        (log,) = (project_dir / "outputs").glob("*/*/runner.log")
        assert line in log.read_text()

    uri = f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        (run_id,) = mlflow.search_runs(experiment_names=["runner"])["run_id"]
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
        weights = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/weights.npz")
    finally:
        mlflow.set_tracking_uri(None)
    net = MLP.load(weights, ["relu", "softmax"])
    data = shop(path, missing=missing)  # what the run trained on: the same spec, the same X
    raw = pd.read_csv(path).drop(columns="label")
    raw["zone"] = raw["zone"].astype(float)  # MLflow refuses int64 for a double column
    by_weight = raw.set_index(raw["weight"].round(2), drop=False)
    for split in (data.train, data.test):
        weight = split.X[:, 1] * data.feature_scale[1] + data.feature_mean[1]
        rows = by_weight.loc[weight.round(2)].reset_index(drop=True)
        if missing == "drop":
            assert not rows.isna().any().any()
        predicted = model.predict(rows)
        np.testing.assert_allclose(predicted.to_numpy(), net.predict(split.X), rtol=1e-10)
    if missing == "mean":  # the three rows with a missing cell are among them, unfilled
        assert raw.isna().sum().sum() == 3
        assert not model.predict(raw).isna().any().any()
