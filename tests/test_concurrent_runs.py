"""Independent runs started at once on a store that does not exist yet, as a shell loop with
``&`` or a cluster's job array starts them: every run lands, complete."""

import subprocess
import sys

import pytest
from mlflow import MlflowClient

from tests.helpers import start_process

# Eight whole runs at once on 2 cores: about a minute, so it runs with the heavy tests (CI too).
pytestmark = [pytest.mark.slow, pytest.mark.heavy]

RUNS = 8
EPOCHS = 2  # the store is opened at once; more epochs only add training time
EPOCH_METRICS = ("train_loss", "val_loss", "val_accuracy", "lr")
# The model has no part in opening the store; leaving it out halves the test's time.
FAST = ("tracking.log_model=false",)


def test_runs_started_at_once_on_a_fresh_store_all_land(tmp_path):
    assert not (tmp_path / "outputs").exists()
    # conftest's clean_environment has removed MLFLOW_TRACKING_URI: the runs open the
    # default store under outputs/; teardown kills every run's group, passed or failed.
    processes = [
        start_process(
            [sys.executable, "-m", "runner", f"epochs={EPOCHS}", f"seed={seed}", *FAST],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for seed in range(RUNS)
    ]
    outputs = [process.communicate(timeout=280)[0] for process in processes]
    for seed, (process, output) in enumerate(zip(processes, outputs, strict=True)):
        assert process.returncode == 0, f"run seed={seed} failed:\n{output[-3000:]}"

    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("runner")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.data.params["seed"] for run in runs) == [str(s) for s in range(RUNS)]
    for run in runs:
        assert run.info.status == "FINISHED", run.info.run_name
        for key in EPOCH_METRICS:
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
            assert steps == list(range(1, EPOCHS + 1)), (run.info.run_name, key)
