"""The tracking server goes away in the middle of a run: training goes on, no metric is lost."""

import re
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from tests.helpers import MlflowServer

pytestmark = [pytest.mark.slow, pytest.mark.heavy]

EPOCHS = 150
RUN = (
    "model=mlp_64_128_64_10",
    "dataset=digits",
    f"epochs={EPOCHS}",
    "batch=32",
    "optimizer=momentum",
    "lr=0.01",
    "tracking.log_model=false",
    "experiment=outage",
)
KEYS = ("train_loss", "val_loss", "val_accuracy", "lr")


def start_run(workdir, uri, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *RUN, *extra],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**__import__("os").environ, "MLFLOW_TRACKING_URI": uri},
    )


def wait_for_run(uri, timeout=120):
    """The run's id once the worker has created it on the server."""
    client, deadline = MlflowClient(uri), time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name("outage")
        runs = experiment and client.search_runs([experiment.experiment_id])
        if runs:
            return runs[0].info.run_id
        time.sleep(0.3)
    raise AssertionError("the run never appeared on the server")


def assert_every_epoch_logged(uri, run_id):
    client = MlflowClient(uri)
    assert client.get_run(run_id).info.status == "FINISHED"
    for key in KEYS:
        steps = sorted(m.step for m in client.get_metric_history(run_id, key))
        assert steps == list(range(1, EPOCHS + 1)), key


def test_a_server_stopped_and_restarted_mid_run_gets_every_epoch(tmp_path, migrated_store):
    server = MlflowServer(tmp_path, migrated_store).start()
    try:
        process = start_run(tmp_path, server.uri)
        run_id = wait_for_run(server.uri)
        server.stop()
        time.sleep(5)  # training goes on while metrics cannot be sent
        server.start()
        output, _ = process.communicate(timeout=400)
        assert process.returncode == 0, output
        assert "is not answering" in output and "Traceback" not in output
        assert_every_epoch_logged(server.uri, run_id)
    finally:
        server.stop()


def test_a_server_that_stays_away_leaves_an_upload_file(tmp_path, migrated_store):
    server = MlflowServer(tmp_path, migrated_store).start()
    try:
        process = start_run(tmp_path, server.uri, "tracking.outage_wait_s=4")
        run_id = wait_for_run(server.uri)
        server.stop()
        output, _ = process.communicate(timeout=400)
        assert process.returncode == 0, output  # training succeeded; nothing was dropped
        command = re.search(r"Upload it later with: (python -m \S+ (\S+))", output)
        assert command, output
        server.start()
        upload = subprocess.run(
            [sys.executable, "-m", "runner.tracking.upload", command.group(2)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert upload.returncode == 0, upload.stderr
        assert run_id in upload.stdout
        assert_every_epoch_logged(server.uri, run_id)
    finally:
        server.stop()
