"""`python -m runner.diff`: what differs between real runs in a real store."""

import json
import re
import shutil
import sys
from itertools import pairwise

import pytest

from tests.helpers import MlflowServer, run_cli, run_command

pytestmark = pytest.mark.slow

FAST = ("epochs=3", "tracking.log_model=false")


def diff(*args, cwd):
    """Run ``python -m runner.diff``; returns the CompletedProcess (text)."""
    return run_command([sys.executable, "-m", "runner.diff", *args], cwd=cwd)


def train(workdir, *overrides):
    result = run_cli(*overrides, *FAST, cwd=workdir)
    assert result.returncode == 0, result.stderr
    return re.search(r"MLflow run \S+ \((\w+)\)", result.stdout + result.stderr).group(1)


def params(layer_sizes):
    """Parameters per dense layer: fan_in * fan_out weights and fan_out biases."""
    return [i * o + o for i, o in pairwise(layer_sizes)]


@pytest.fixture(scope="module")
def project(tmp_path_factory, migrated_store):
    """Three runs: the default model with seeds 0 and 1, and mlp_4_16_3 with seed 0."""
    workdir = tmp_path_factory.mktemp("diff")
    (workdir / "outputs").mkdir()
    shutil.copy(migrated_store, workdir / "outputs" / "mlflow.db")
    runs = {
        "seed0": train(workdir),
        "seed1": train(workdir, "seed=1"),
        "wide": train(workdir, "model=mlp_4_16_3"),
    }
    return workdir, runs


@pytest.mark.heavy  # two tracked runs with models
def test_a_changed_model_lists_its_layers_with_the_parameter_delta(project):
    workdir, runs = project
    result = diff(runs["seed0"], runs["wide"], "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["groups"] == [{"group": "model", "a": "mlp_4_8_8_3", "b": "mlp_4_16_3"}]
    before, after = params([4, 8, 8, 3]), params([4, 16, 3])  # [40, 72, 27], [80, 51]
    after += [0] * (len(before) - len(after))
    layers = found["architecture"]["layers"]
    assert [row["layer"] for row in layers] == [1, 2, 3]
    assert [row["params_delta"] for row in layers] == [
        b - a for a, b in zip(before, after, strict=True)
    ]
    assert found["architecture"]["n_params"] == {"a": sum(before), "b": sum(after), "delta": -8}
    assert layers[0]["a"]["W_shape"] == "(4, 8)" and layers[0]["b"]["W_shape"] == "(4, 16)"
    assert layers[2]["b"] is None  # mlp_4_16_3 has no third layer

    text = diff(runs["seed0"], runs["wide"], cwd=workdir).stdout.splitlines()
    assert text[2:4] == ["groups:", "  model: mlp_4_8_8_3 → mlp_4_16_3"]
    assert "architecture: 139 → 131 parameters (-8)" in text
    assert "  layer1: W (4, 8) → (4, 16), b (8,) → (16,), params 40 → 80 (+40)" in text
    assert any(line.startswith("  layer3: W (8, 3) → none") and "(-27)" in line for line in text)
    # Most telling first: groups, config, architecture, then the final metrics.
    order = [
        text.index(h) for h in ("groups:", "config:", "architecture: 139 → 131 parameters (-8)")
    ]
    assert order == sorted(order)
    assert text.index("final metrics (what the differences above produced):") > order[-1]


def test_two_seeds_list_only_the_seed(project):
    workdir, runs = project
    result = diff(runs["seed0"], runs["seed1"], "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["groups"] == []
    assert found["config"] == [{"key": "seed", "a": 0, "b": 1}]
    assert found["architecture"]["layers"] == []
    assert found["environment"] == []
    assert {m["key"] for m in found["metrics"]} >= {"val_loss", "test_loss"}

    text = diff(runs["seed0"], runs["seed1"], cwd=workdir).stdout.splitlines()
    causes = text[2 : text.index("final metrics (what the differences above produced):")]
    assert causes == ["config:", "  seed: 0 → 1"]


def test_a_run_against_itself_has_no_differences(project):
    workdir, runs = project
    result = diff(runs["wide"], runs["wide"], cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("no differences")


@pytest.mark.heavy  # an MLflow server's start-up costs tens of seconds on a busy machine
def test_diff_through_a_tracking_server(project, tmp_path):
    workdir, runs = project
    local = json.loads(diff(runs["seed0"], runs["wide"], "--json", cwd=workdir).stdout)
    server = MlflowServer(tmp_path, workdir / "outputs" / "mlflow.db").start()
    try:
        remote = diff(
            runs["seed0"], runs["wide"], "--json", "--tracking-uri", server.uri, cwd=tmp_path
        )
    finally:
        server.stop()
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == local


def test_unknown_run_and_unreachable_store_are_one_line(project_dir):
    store = f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}"
    unknown = diff("0" * 32, "1" * 32, cwd=project_dir)
    assert unknown.returncode == 2
    assert unknown.stderr == (
        f"Error: no run {'0' * 32} in {store}; pass --tracking-uri (or set MLFLOW_TRACKING_URI) "
        f"to the store that holds it\n"
    )
    not_an_id = diff("latest", "1" * 32, cwd=project_dir)
    assert not_an_id.stderr.startswith("Error: 'latest' is not an MLflow run id (32 hex digits)")
    nowhere = diff("0" * 32, "1" * 32, cwd=project_dir / "outputs")
    assert nowhere.stderr.startswith("Error: no MLflow store at sqlite:///")
    down = diff("0" * 32, "1" * 32, "--tracking-uri", "http://127.0.0.1:9", cwd=project_dir)
    assert down.returncode == 2
    assert down.stderr.startswith("Error: MLflow tracking server http://127.0.0.1:9 is not reach")
    for result in (not_an_id, nowhere, down):
        assert len(result.stderr.splitlines()) == 1 and result.returncode == 2
