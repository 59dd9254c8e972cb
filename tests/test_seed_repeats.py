"""Seeds as repeats, through the CLI into a real store: a 2-config × 3-seed sweep, its report,
the parent's table by config and its plot."""

import io
import json
import math
import shutil
import statistics
import subprocess
import sys

import pandas as pd
import pytest
from mlflow import MlflowClient
from PIL import Image

from tests.helpers import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.heavy]  # default pytest's 10-minute budget

T_975_2DOF = 4.302652729911275  # Student t, 0.975 quantile, 2 degrees of freedom (tables)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, migrated_store):
    """(project folder, client, parent, children) of one 2-model × 3-seed sweep."""
    folder = tmp_path_factory.mktemp("repeats")
    (folder / "outputs").mkdir()
    shutil.copy(migrated_store, folder / "outputs" / "mlflow.db")
    result = run_cli(
        "-m",
        "model=mlp_4_8_8_3,mlp_4_16_3",
        "seed=0,1,2",
        "epochs=3",
        "tracking.log_model=false",
        cwd=folder,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    client = MlflowClient(f"sqlite:///{folder / 'outputs' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("runner").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("runner.sweep") == "true"]
    children = [r for r in runs if r is not parent]
    assert len(children) == 6 and {c.info.status for c in children} == {"FINISHED"}
    return folder, client, parent, children


def report(folder, *args):
    result = subprocess.run(
        [sys.executable, "-m", "runner.report", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def column(lines, name):
    """The values under a right-aligned header ``name`` of a printed table (header first)."""
    end = lines[0].index(f" {name} ") + len(name) + 1
    return [line[:end].split()[-1] for line in lines[1:]]


def test_the_report_has_one_row_per_config_with_mean_interval_std_and_n(sweep):
    folder, client, parent, children = sweep
    out = report(folder, "--csv", "by_config.csv")
    assert "6 runs, 0 failed; 2 configs × seeds" in out
    table = pd.read_csv(folder / "by_config.csv")
    assert len(table) == 2 and list(table["n"]) == [3, 3] and list(table["failed"]) == [0, 0]
    assert list(table["rank"]) == [1, 2]
    assert list(table["val_loss_mean"]) == sorted(table["val_loss_mean"])
    for row in table.itertuples():
        losses = [
            c.data.metrics["val_loss"] for c in children if c.data.params["model.name"] == row.model
        ]
        assert len(losses) == 3
        mean, std = statistics.mean(losses), statistics.stdev(losses)
        half = T_975_2DOF * std / math.sqrt(3)
        assert row.val_loss_mean == pytest.approx(mean, rel=1e-12)
        assert row.val_loss_std == pytest.approx(std, rel=1e-12)
        assert row.val_loss_ci95_low == pytest.approx(mean - half, rel=1e-9)
        assert row.val_loss_ci95_high == pytest.approx(mean + half, rel=1e-9)
    # The parent run holds the same table.
    logged = client.download_artifacts(parent.info.run_id, "results_by_config.csv", str(folder))
    pd.testing.assert_frame_equal(pd.read_csv(logged), table)
    logged = client.download_artifacts(parent.info.run_id, "results_by_config.json", str(folder))
    as_json = json.loads(open(logged).read())
    assert as_json["columns"] == list(table.columns) and len(as_json["data"]) == 2


def test_the_parent_has_a_png_of_the_objective_by_swept_key(sweep):
    folder, client, parent, _ = sweep
    path = client.download_artifacts(parent.info.run_id, "objective.png", str(folder))
    data = open(path, "rb").read()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.verify()  # a complete PNG, not only its first bytes
    assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200


def test_each_run_on_request_swept_keys_first_without_per_layer_params(sweep):
    folder, _, _, children = sweep
    lines = report(folder, "--runs").splitlines()
    header = lines[1].split()
    assert header[:6] == ["rank", "job", "model", "seed", "model.layers", "n_params"]
    assert header[6] == "val_loss" and not [c for c in header if c.startswith("layer")]
    losses = sorted(round(c.data.metrics["val_loss"], 6) for c in children)
    assert [float(v) for v in column(lines[1:8], "val_loss")] == losses  # ranked, best first
    assert set(column(lines[1:8], "n_params")) == {"139", "131"}  # integers as integers
    assert max(map(len, lines[1:8])) < 200
    with_layers = report(folder, "--runs", "--layers").splitlines()[1].split()
    assert with_layers[6] == "layer1.W_shape" and "layer3.W_shape" in with_layers
