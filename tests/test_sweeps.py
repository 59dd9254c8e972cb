"""Sweeps with -m: parent and child runs in MLflow, parallel jobs, failures, Optuna."""

import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from mlflow import MlflowClient

from runner.sweeps.callback import swept_keys
from tests.helpers import run_cli, start_process

pytestmark = pytest.mark.slow

FAST = ("epochs=3", "tracking.log_model=false")


def sweep_runs(project_dir, experiment="runner"):
    """(parent, children) of the one sweep in the project's store."""
    client = MlflowClient(f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(experiment)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get("runner.sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1  # nothing outside the sweep
    return client, parent, children


def test_swept_keys_are_the_sweep_overrides_and_the_search_space_in_order():
    overrides = ["lr=0.01,0.1", "epochs=3", "+extra=range(2)", "seed=glob(*)", "model=mlp_4_8_8_3"]
    assert swept_keys(overrides, None) == ["lr", "extra", "seed"]
    assert swept_keys(["epochs=3", "lr=0.1,1"], {"lr": "interval(0.001, 1)", "batch": "x"}) == [
        "lr",
        "batch",
    ]


def test_grid_sweep_is_one_parent_with_a_child_per_job(project_dir):
    result = run_cli("-m", "batch=16,32", "lr=0.01,0.1", *FAST, cwd=project_dir)
    assert result.returncode == 0, result.stderr
    client, parent, children = sweep_runs(project_dir)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sweep.overrides"].startswith("batch=16,32 lr=0.01,0.1")
    assert sorted(c.info.status for c in children) == ["FINISHED"] * 4
    # Logged by one worker while the next job trained, and complete when the sweep ended.
    for child in children:
        for key in ("train_loss", "val_loss", "val_accuracy", "lr"):
            steps = [m.step for m in client.get_metric_history(child.info.run_id, key)]
            assert sorted(steps) == [1, 2, 3], key
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"weights.npz", "loss_curve.png", "confusion_matrix.json"} <= artifacts
    # The console: one line per job; the epoch lines only in each job's runner.log.
    job_lines = re.findall(r"^#(\d) (.+)  FINISHED  objective", result.stdout, re.M)
    assert sorted(job for job, _ in job_lines) == ["0", "1", "2", "3"], result.stdout
    assert dict(job_lines)["0"].startswith("batch=16 lr=0.01")
    assert "epoch 1/3" not in result.stdout + result.stderr
    logs = list((project_dir / "outputs" / "multirun").glob("*/*/*/runner.log"))
    assert len(logs) == 4 and all("epoch 3/3" in log.read_text() for log in logs)
    assert {(c.data.params["batch"], c.data.params["lr"]) for c in children} == {
        ("16", "0.01"),
        ("16", "0.1"),
        ("32", "0.01"),
        ("32", "0.1"),
    }
    # Named by what varies first, so MLflow's narrow Run Name column tells them apart; the
    # Source column names each one's command, the parent's the sweep's.
    assert sorted(c.info.run_name for c in children) == [
        "batch16-lr0.01 · mlp_4_8_8_3",
        "batch16-lr0.1 · mlp_4_8_8_3",
        "batch32-lr0.01 · mlp_4_8_8_3",
        "batch32-lr0.1 · mlp_4_8_8_3",
    ]
    sources = {c.data.tags["mlflow.source.name"] for c in children}
    assert "python -m runner batch=16 lr=0.01 epochs=3 tracking.log_model=False" in sources
    assert parent.data.tags["mlflow.source.name"].startswith("python -m runner -m batch=16,32")
    assert parent.data.tags["mlflow.source.type"] == "LOCAL"
    parent_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"results.json", "results.csv", "objective.png"} <= parent_artifacts
    assert "results_by_config.csv" not in parent_artifacts  # no seed repeats a config
    best = min(children, key=lambda c: c.data.metrics["val_loss"])
    assert parent.data.tags["best_child_run_id"] == best.info.run_id
    assert best.data.tags["runner.best_in_sweep"] == "true"
    assert parent.data.metrics["best_val_loss"] == best.data.metrics["val_loss"]
    table = client.download_artifacts(parent.info.run_id, "results.csv", str(project_dir))
    lines = open(table).read().splitlines()
    assert lines[0].startswith("rank,run_id") and best.info.run_id in lines[1]

    # python -m runner.report reads the same sweep back into the same ranked table.
    report = subprocess.run(
        [sys.executable, "-m", "runner.report", "--csv", "report.csv"],
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    assert parent.info.run_id in report.stdout and "4 runs, 0 failed" in report.stdout
    ranked = pd.read_csv(project_dir / "report.csv")
    assert list(ranked["rank"]) == [1, 2, 3, 4] and ranked["run_id"][0] == best.info.run_id
    assert list(ranked["val_loss"]) == sorted(ranked["val_loss"])


@pytest.mark.heavy
@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_sixteen_parallel_jobs_on_a_fresh_store_lose_nothing(tmp_path, attempt):
    # A fresh, empty default store and a new experiment, as the issue demands: no copy.
    seeds = ",".join(str(seed) for seed in range(16))
    result = run_cli(
        "-m",
        "hydra/launcher=joblib",
        f"seed={seeds}",
        f"experiment=fresh{attempt}",
        *FAST,
        cwd=tmp_path,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output and "Error" not in output
    client, parent, children = sweep_runs(tmp_path, f"fresh{attempt}")
    assert len(children) == 16 and parent.info.status == "FINISHED"
    default = client.get_experiment_by_name("Default")
    assert not client.search_runs([default.experiment_id])
    for child in children:
        assert child.info.status == "FINISHED"
        for key in ("train_loss", "val_loss", "val_accuracy", "lr"):
            steps = [m.step for m in client.get_metric_history(child.info.run_id, key)]
            assert sorted(steps) == [1, 2, 3], (child.info.run_name, key)
        # Two jobs at a time on two cores: one BLAS thread each.
        assert child.data.tags["runner.blas_threads"] == "1"


@pytest.mark.heavy
def test_a_diverging_job_fails_alone(project_dir):
    result = run_cli("-m", "lr=0.1,100,0.05", *FAST, cwd=project_dir)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "3 jobs, 2 finished, 1 failed" in output and "train loss became" in output
    client, parent, children = sweep_runs(project_dir)
    status = {c.data.params["lr"]: c.info.status for c in children}
    assert status == {"0.1": "FINISHED", "100.0": "FAILED", "0.05": "FINISHED"}
    (failed,) = [c for c in children if c.info.status == "FAILED"]
    assert "train loss became" in failed.data.tags["failure_reason"]
    table = open(client.download_artifacts(parent.info.run_id, "results.csv", str(project_dir)))
    last = table.read().splitlines()[-1]
    assert "FAILED" in last and "train loss became" in last


@pytest.mark.heavy
def test_optuna_sweep_runs_its_trials_as_children(project_dir):
    result = run_cli(
        "-m",
        "hydra/sweeper=optuna_search",
        "hydra.sweeper.n_trials=6",
        *FAST,
        cwd=project_dir,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    _, parent, children = sweep_runs(project_dir)
    assert len(children) == 6 and all(c.info.status == "FINISHED" for c in children)
    assert parent.data.params["sweep.sweeper"] == "optuna_search"
    best = min(c.data.metrics["val_loss"] for c in children)
    assert parent.data.metrics["best_val_loss"] == best
    assert f"Best value: {best}" in result.stdout + result.stderr


@pytest.mark.heavy
def test_a_failed_job_scores_inf_for_the_sweeper(tmp_path):
    # Both learning rates diverge: Optuna's best value is then what a failed job returns.
    result = run_cli(
        "-m",
        "hydra/sweeper=optuna_search",
        "hydra.sweeper.n_trials=2",
        "lr=choice(100,200)",
        "tracking.enabled=false",
        *FAST,
        cwd=tmp_path,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("Error: train loss became") == 2, output
    assert re.search(r"\] Best value: inf$", result.stdout, re.MULTILINE), output


def test_ctrl_c_ends_a_sweep_and_its_running_job_killed(project_dir):
    # Job 0 trains 20 epochs; job 1 far more than the test lets it train (bounded all the same).
    # A sweep's console shows one line per job, so the moment to strike is an event in the
    # store: job 1's run is there, RUNNING.
    process = start_process(
        [sys.executable, "-m", "runner", "-m", "epochs=20,20000", "tracking.log_model=false"],
        cwd=project_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = MlflowClient(f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}")
    query = "tags.`runner.sweep_job` = '1'"
    deadline = time.monotonic() + 180

    def job_1_running():
        experiment = client.get_experiment_by_name("runner")  # the sweep's start creates it
        return experiment and client.search_runs([experiment.experiment_id], query)

    while not job_1_running():
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "job 1's run never appeared in the store"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)  # as Ctrl-C in a terminal: the launching process
    output = process.stdout.read()
    assert process.wait(timeout=120) == 130, output
    assert "Traceback" not in output, output
    _, parent, children = sweep_runs(project_dir)
    assert parent.info.status == "KILLED", parent.data.tags.get("failure_reason")
    statuses = {c.data.tags["runner.sweep_job"]: c.info.status for c in children}
    assert statuses == {"0": "FINISHED", "1": "KILLED"}


def test_a_crashed_sweep_ends_its_parent_failed(project_dir):
    result = run_cli("-m", "batch=32,abc", *FAST, cwd=project_dir)
    assert result.returncode == 1
    _, parent, _ = sweep_runs(project_dir)
    assert parent.info.status == "FAILED"
    assert "exit code 1" in parent.data.tags["failure_reason"]
