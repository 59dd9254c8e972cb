"""Runs tracked in real MLflow stores and read back with MlflowClient, as a person reviews them."""

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from runner.datasets import load_dataset
from runner.engine import MLP
from tests.helpers import REPO, MlflowServer, run_cli, run_command, start_cli_until, start_process

pytestmark = pytest.mark.slow


def store_client(project_dir):
    return MlflowClient(f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}")


@pytest.fixture
def fluent_uri():
    """Point MLflow's fluent API (load_table, runs:/ URIs) at a store for one test."""
    yield mlflow.set_tracking_uri
    mlflow.set_tracking_uri(None)


def only_run(client, experiment="runner"):
    experiment = client.get_experiment_by_name(experiment)
    (run,) = client.search_runs([experiment.experiment_id])
    return run


def test_default_run_is_fully_tracked(project_dir, fluent_uri):
    result = run_cli(cwd=project_dir)
    assert result.returncode == 0, result.stderr
    client = store_client(project_dir)
    fluent_uri(client.tracking_uri)
    run = only_run(client)
    run_id = run.info.run_id

    assert run.info.status == "FINISHED"
    assert run.info.run_name == "mlp_4_8_8_3-batch32-lr0.1-seed0"
    params = run.data.params
    assert params["model.layers"] == "[4, 8, 8, 3]"
    assert params["batch"] == "32" and params["optimizer.momentum"] == "0.0"
    assert params["n_params"] == "139"
    assert [params[f"layer{i}.W_shape"] for i in (1, 2, 3)] == ["(4, 8)", "(8, 8)", "(8, 3)"]
    for key in ("train_loss", "val_loss", "val_accuracy", "lr"):
        history = client.get_metric_history(run_id, key)
        assert sorted(m.step for m in history) == list(range(1, 101)), key
    assert run.data.metrics["test_accuracy"] >= 0.9

    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {
        "config.yaml",
        "weights.npz",
        "loss_curve.png",
        "layers.json",
        "model_summary.txt",
        "confusion_matrix.png",
        "confusion_matrix.json",
        "overrides.yaml",
    } <= artifacts
    table = json.loads(
        client.download_artifacts(run_id, "layers.json", str(project_dir))
        and (project_dir / "layers.json").read_text()
    )
    layers = pd.DataFrame(table["data"], columns=table["columns"])
    assert list(layers["W_shape"]) == ["(4, 8)", "(8, 8)", "(8, 3)"]
    # The figures are drawn beside the weights and logged as they are.
    for figure in ("loss_curve.png", "confusion_matrix.png"):
        (drawn,) = project_dir.glob(f"outputs/*/*/{figure}")
        logged = client.download_artifacts(run_id, figure, str(project_dir))
        assert Path(logged).read_bytes() == drawn.read_bytes()
    assert list(layers["params"]) == [40, 72, 27]
    assert run.data.tags["command"] == "python -m runner"
    # MLflow's UI: the experiment opens on its runs; the Source column names the command (not
    # the tracking worker that logged it) and Version the checkout's commit, when it has one.
    assert client.get_experiment_by_name("runner").tags["mlflow.experimentKind"] == (
        "custom_model_development"
    )
    assert run.data.tags["mlflow.source.name"] == "python -m runner"
    assert run.data.tags["mlflow.source.type"] == "LOCAL"
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True)
    commit = head.stdout.decode().strip() if head.returncode == 0 else None
    assert run.data.tags.get("mlflow.source.git.commit") == commit
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {
        "iris-train",
        "iris-val",
        "iris-test",
    }

    # The pyfunc model takes raw iris rows and gives what the engine gives.
    weights = client.download_artifacts(run_id, "weights.npz", str(project_dir))
    net = MLP.load(weights, ["relu", "relu", "softmax"])
    raw = load_dataset("iris", test_fraction=0.3, standardize=False)
    scaled = load_dataset("iris", test_fraction=0.3)
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    rows = pd.DataFrame(raw.test.X, columns=list(raw.feature_names))
    predicted = model.predict(rows)
    np.testing.assert_allclose(np.asarray(predicted), net.predict(scaled.test.X), rtol=1e-12)

    # The README's `mlflow models predict` command serves the same numbers from a CSV.
    rows.head(3).to_csv(project_dir / "rows.csv", index=False)
    served = run_command(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "predict",
            "-m",
            f"runs:/{run_id}/model",
            "-i",
            "rows.csv",
            "-t",
            "csv",
            "--env-manager",
            "local",
        ],
        cwd=project_dir,
        env={"MLFLOW_TRACKING_URI": client.tracking_uri},
    )
    assert served.returncode == 0, served.stderr
    predictions = json.loads(served.stdout.strip().splitlines()[-1])["predictions"]
    np.testing.assert_allclose(
        [list(row.values()) for row in predictions], net.predict(scaled.test.X[:3]), rtol=1e-12
    )


def test_a_run_that_raises_is_failed_with_its_reason(project_dir):
    result = run_cli("lr=100", cwd=project_dir)
    assert result.returncode == 1
    run = only_run(store_client(project_dir))
    assert run.info.status == "FAILED"
    assert "train loss became" in run.data.tags["failure_reason"]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_training_kills_the_run(project_dir, signum, code):
    process, _ = start_cli_until(
        "epochs=20000",  # bounded: the test stops it at epoch 2000
        "tracking.log_model=false",
        cwd=project_dir,
        pattern=r"epoch +2000/",
    )
    process.send_signal(signum)  # well into training
    output = process.stdout.read()
    assert process.wait(timeout=60) == code
    assert "KILLED" in output and "Traceback" not in output
    run = only_run(store_client(project_dir))
    assert run.info.status == "KILLED"


def test_per_step_losses_are_logged_when_asked(project_dir):
    result = run_cli(
        "epochs=3",
        "tracking.log_every_n_steps=1",
        "tracking.log_model=false",
        "experiment=steps",
        cwd=project_dir,
    )
    assert result.returncode == 0, result.stderr
    client = store_client(project_dir)
    run = only_run(client, "steps")
    # iris: 75 training rows in batches of 32 → 3 steps per epoch.
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_step_loss")]
    assert sorted(steps) == list(range(1, 10))


@pytest.fixture
def mlflow_server(tmp_path, migrated_store):
    """A real `mlflow server` on 127.0.0.1 with a temporary backend, stopped after the test."""
    server = MlflowServer(tmp_path, migrated_store).start()
    yield server.uri
    server.stop()


@pytest.mark.heavy  # a real mlflow server: about a minute
def test_round_trip_through_a_real_mlflow_server(tmp_path, mlflow_server, fluent_uri):
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = run_cli(
        "epochs=5", "experiment=remote", cwd=workdir, env={"MLFLOW_TRACKING_URI": mlflow_server}
    )
    assert result.returncode == 0, result.stderr
    assert not (workdir / "outputs" / "mlflow.db").exists()  # nothing went to the local store
    client = MlflowClient(mlflow_server)
    run = only_run(client, "remote")
    assert run.info.status == "FINISHED"
    assert run.data.params["n_params"] == "139"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5]
    assert "weights.npz" in {a.path for a in client.list_artifacts(run.info.run_id)}
    fluent_uri(mlflow_server)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    raw = load_dataset("iris", test_fraction=0.3, standardize=False)
    predicted = model.predict(pd.DataFrame(raw.test.X, columns=list(raw.feature_names)))
    assert predicted.shape == (45, 3)


def test_an_unreachable_server_fails_fast_before_training(tmp_path):
    with socket.socket() as closed:  # bound, not listening: refuses, and no one can take it
        closed.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{closed.getsockname()[1]}"
        started = time.monotonic()
        result = run_cli(cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert f"{uri} is not reachable" in output and "epoch" not in output


def test_a_hard_killed_run_ends_failed_not_running(project_dir):
    process, _ = start_cli_until(
        "epochs=20000",  # bounded: the test stops it at epoch 2000
        "tracking.log_model=false",
        cwd=project_dir,
        pattern=r"epoch +2000/",
    )
    process.kill()  # SIGKILL: no handler runs; the worker reads end-of-file on its pipe
    process.wait(timeout=30)
    client = store_client(project_dir)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name("runner")
        runs = experiment and client.search_runs([experiment.experiment_id])
        if runs and runs[0].info.status != "RUNNING":
            break
        time.sleep(0.5)
    (run,) = runs
    assert run.info.status == "FAILED"
    assert "ended without finishing" in run.data.tags["failure_reason"]


def test_a_run_is_in_the_store_while_it_trains(project_dir):
    # Bounded: a few thousand epochs of digits, stopped by the test long before the end.
    epochs = 3000
    with (project_dir / "output.txt").open("w") as output:
        process = start_process(
            [
                sys.executable,
                "-m",
                "runner",
                "model=mlp_64_128_64_10",
                "dataset=digits",
                f"epochs={epochs}",
                "tracking.log_model=false",
            ],
            cwd=project_dir,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    client, deadline = store_client(project_dir), time.monotonic() + 120
    runs = None
    while not runs:
        assert process.poll() is None, "the run ended before it appeared in the store"
        assert time.monotonic() < deadline, "the run never appeared in the store"
        experiment = client.get_experiment_by_name("runner")
        runs = experiment and client.search_runs([experiment.experiment_id])
        time.sleep(0.3)
    process.send_signal(signal.SIGINT)  # the run is in the store: is it still training?
    assert process.wait(timeout=120) == 130
    text = (project_dir / "output.txt").read_text()
    stopped = re.search(r"Ctrl-C: stopped after epoch (\d+)", text)
    assert stopped and int(stopped.group(1)) < epochs, text[-2000:]
    assert only_run(client).info.status == "KILLED"
