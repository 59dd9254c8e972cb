"""The tracking server goes away in the middle of a run: training goes on, no metric is lost."""

import re
import subprocess
import sys
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from runner import pipeline
from runner.engine import MLP
from tests.helpers import (
    MlflowServer,
    compose_run_config,
    read_until,
    run_command,
    start_process,
)

pytestmark = [pytest.mark.slow, pytest.mark.heavy]

# About 10 ms an epoch on an idle machine: long enough that the server is stopped, missed and
# restarted while training goes on (the test fails, rather than passes, should training end first).
EPOCHS = 1500
RUN = (
    "model=mlp_64_128_64_10",
    "dataset=digits",
    "batch=32",
    "optimizer=momentum",
    "lr=0.01",
    "experiment=outage",
)
KEYS = ("train_loss", "val_loss", "val_accuracy", "lr")
EPOCH_LINE = r"epoch +(\d+)/"


def start_run(workdir, uri, *extra):
    return start_process(
        [sys.executable, "-m", "runner", *RUN, *extra],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"MLFLOW_TRACKING_URI": uri},
    )


def wait_for_run(uri, process, timeout=120):
    """The run's id once the worker has created it on the server (the run still training)."""
    client, deadline = MlflowClient(uri), time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        experiment = client.get_experiment_by_name("outage")
        runs = experiment and client.search_runs([experiment.experiment_id])
        if runs:
            return runs[0].info.run_id
        time.sleep(0.3)
    raise AssertionError("the run never appeared on the server while it trained")


def assert_every_epoch_logged(uri, run_id, epochs):
    client = MlflowClient(uri)
    assert client.get_run(run_id).info.status == "FINISHED"
    for key in KEYS:
        steps = sorted(m.step for m in client.get_metric_history(run_id, key))
        assert steps == list(range(1, epochs + 1)), key


@pytest.mark.timeout(1200)  # 1500 epochs: about 20 s on an idle machine, minutes on a busy one
def test_a_server_stopped_and_restarted_mid_run_gets_every_epoch(tmp_path, migrated_store):
    server = MlflowServer(tmp_path, migrated_store).start()
    process = start_run(tmp_path, server.uri, f"epochs={EPOCHS}", "tracking.log_model=false")
    run_id = wait_for_run(server.uri, process)
    server.stop()
    # Events, in the order the run prints them: the worker finds the server gone, then
    # training prints further epochs (it goes on while nothing can be sent).
    output = read_until(process, r"MLflow at \S+ is not answering")
    after_outage = read_until(process, EPOCH_LINE)
    epoch = int(re.match(EPOCH_LINE, after_outage[-1]).group(1))
    assert epoch < EPOCHS, "training ended before the outage was noticed"
    server.start()
    output += after_outage + read_until(process, r"MLflow at \S+ is back")
    rest, _ = process.communicate(timeout=600)
    output = "".join(output) + rest
    assert process.returncode == 0, output
    assert "Traceback" not in output
    # The epochs printed after the stop and before the restart were trained during the outage.
    assert re.search(rf"^epoch +{EPOCHS}/{EPOCHS} ", output, re.MULTILINE), output[-2000:]
    assert_every_epoch_logged(server.uri, run_id, EPOCHS)
    server.stop()


def test_a_server_that_stays_away_leaves_an_upload_file(tmp_path, migrated_store):
    epochs = 150
    server = MlflowServer(tmp_path, migrated_store).start()
    process = start_run(tmp_path, server.uri, f"epochs={epochs}", "tracking.outage_wait_s=4")
    run_id = wait_for_run(server.uri, process)
    server.stop()
    output, _ = process.communicate(timeout=400)
    assert process.returncode == 0, output  # training succeeded; nothing was dropped
    command = re.search(r"Upload it later with: (python -m \S+ (\S+))", output)
    assert command, output
    server.start()
    upload = run_command(
        [sys.executable, "-m", "runner.tracking.upload", command.group(2)],
        cwd=tmp_path,
        timeout=300,
    )
    assert upload.returncode == 0, upload.stderr
    assert run_id in upload.stdout
    assert_every_epoch_logged(server.uri, run_id, epochs)

    # The end of the run came with the upload: its artifacts and a model that predicts (an
    # MLflow 3 logged model, found through runs:/, not among the run's artifacts).
    client = MlflowClient(server.uri)
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"weights.npz", "loss_curve.png", "confusion_matrix.json"} <= artifacts, artifacts
    assert client.get_run(run_id).data.metrics["test_accuracy"] > 0.8
    weights = client.download_artifacts(run_id, "weights.npz", str(tmp_path))
    net = MLP.load(weights, ["relu", "relu", "softmax"])
    scaled = pipeline.prepare(compose_run_config(*RUN)).dataset
    raw = pipeline.prepare(compose_run_config(*RUN, "dataset.standardize=false")).dataset
    mlflow.set_tracking_uri(server.uri)
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
        rows = pd.DataFrame(raw.test.X[:5], columns=list(raw.feature_names))
        predicted = np.asarray(model.predict(rows))
    finally:
        mlflow.set_tracking_uri(None)
    np.testing.assert_allclose(predicted, net.predict(scaled.test.X[:5]), rtol=1e-12)
    server.stop()
