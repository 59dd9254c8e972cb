"""Sweeps whose jobs share a tracking worker, broken on purpose: nothing a job logged is lost.

Each job's run is logged by its process's tracking worker while the next job trains, so these
tests check what docs/reliability.md promises when that overlap meets a failure: a job killed
outright, a server that goes away in the middle of the sweep, Ctrl-C. Every finished job's
run is complete (every epoch, its artifacts); the others are FAILED or KILLED; none RUNNING.
"""

import glob
import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from tests.helpers import MlflowServer, read_until, start_process

pytestmark = [pytest.mark.slow, pytest.mark.heavy]

EPOCH_KEYS = ("train_loss", "val_loss", "val_accuracy", "lr")
# Epochs of a job that trains until the test stops it: minutes of training, far longer than
# the test waits for it, yet bounded should the test's own kill ever miss it.
UNTIL_STOPPED = 20_000


def start_sweep(workdir, *args, env=None):
    """Start ``python -m runner -m <args>`` through start_process: its group is killed at
    teardown, passed or failed."""
    return start_process(
        [sys.executable, "-m", "runner", "-m", *args],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def children_by_job(client, experiment="runner"):
    """{job number: run} of every child run, and the parent run (None before it exists)."""
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=1000) if found else []
    parents = [r for r in runs if r.data.tags.get("runner.sweep") == "true"]
    children = {
        int(r.data.tags["runner.sweep_job"]): r for r in runs if "runner.sweep_job" in r.data.tags
    }
    return children, parents[0] if parents else None


def wait_until(condition, process=None, timeout=300):
    """Poll until ``condition()`` gives a value; fail if the sweep (if given) exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the sweep exited early:\n{process.stdout.read()}")
        time.sleep(0.3)
    raise AssertionError("timed out waiting")


def job_training(client, job):
    """The job's run once it is RUNNING with at least one epoch's metrics stored."""

    def check():
        run = children_by_job(client)[0].get(job)
        return (
            run if run and run.info.status == "RUNNING" and "val_loss" in run.data.metrics else None
        )

    return check


def job_trains(workdir, job):
    """True once the job's runner.log has an epoch line: it trains, and the jobs before it
    have returned, their runs possibly still being logged by the worker."""

    def check():
        logs = glob.glob(
            str(workdir / "outputs" / "multirun" / "*" / "*" / str(job) / "runner.log")
        )
        return bool(logs) and "epoch " in open(logs[0]).read()

    return check


def assert_complete(client, run, epochs, with_model=False):
    """FINISHED, every epoch of every metric, the test metrics, the artifacts, the model."""
    assert run.info.status == "FINISHED", run.data.tags.get("failure_reason")
    run_id = run.info.run_id
    for key in EPOCH_KEYS:
        steps = sorted(m.step for m in client.get_metric_history(run_id, key))
        assert steps == list(range(1, epochs + 1)), key
    stored = client.get_run(run_id)
    assert "test_accuracy" in stored.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"weights.npz", "loss_curve.png", "confusion_matrix.json"} <= artifacts
    assert bool(stored.outputs.model_outputs) == with_model  # the pyfunc model, when asked


def process_writing(log_path):
    """The pid of the process that holds ``log_path`` open (the job's Hydra log)."""
    for fd_dir in glob.glob("/proc/[0-9]*/fd"):
        try:
            for fd in os.listdir(fd_dir):
                if os.readlink(os.path.join(fd_dir, fd)) == log_path:
                    return int(fd_dir.split("/")[2])
        except OSError:
            continue
    return None


def test_a_job_killed_outright_fails_alone(project_dir):
    # Two joblib workers: job 0 trains 3 epochs, job 1 until its process is SIGKILLed.
    process = start_sweep(
        project_dir,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"epochs=3,{UNTIL_STOPPED}",
        "tracking.log_model=false",
    )
    client = MlflowClient(f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}")
    wait_until(job_training(client, 1), process)
    wait_until(lambda: glob.glob(str(project_dir / "outputs/multirun/*/*/1/runner.log")), process)
    (log,) = glob.glob(str(project_dir / "outputs/multirun/*/*/1/runner.log"))
    pid = wait_until(lambda: process_writing(log), process)
    assert pid != process.pid  # a joblib worker, not the launching process
    os.kill(pid, signal.SIGKILL)
    output, _ = process.communicate(timeout=300)
    assert process.returncode != 0, output  # joblib reports its lost worker
    children, parent = children_by_job(client)
    assert sorted(children) == [0, 1]
    assert_complete(client, children[0], epochs=3)
    assert children[1].info.status == "FAILED"
    assert "ended without finishing" in children[1].data.tags["failure_reason"]
    assert parent.info.status == "FAILED"


def test_a_killed_basic_sweep_leaves_nothing_running(project_dir):
    # The basic launcher trains in the launching process: SIGKILL ends the sweep itself,
    # while the worker may still be logging job 0 (with its model: seconds).
    process = start_sweep(project_dir, f"epochs=3,{UNTIL_STOPPED}")
    client = MlflowClient(f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}")
    wait_until(job_trains(project_dir, 1), process)
    process.kill()  # the launching process alone: its worker goes on (teardown kills the group)
    process.wait(timeout=60)

    def settled():  # the worker, alone now, finishes job 0 and ends job 1 and the parent
        children, parent = children_by_job(client)
        statuses = [r.info.status for r in [parent, *children.values()]]
        return (children, parent) if "RUNNING" not in statuses else None

    children, parent = wait_until(settled, timeout=120)
    assert_complete(client, children[0], epochs=3, with_model=True)
    assert children[1].info.status == "FAILED"
    assert parent.info.status == "FAILED"
    assert "killed" in parent.data.tags["failure_reason"]


def test_ctrl_c_mid_sweep_keeps_every_finished_job(project_dir):
    process = start_sweep(project_dir, f"epochs=5,5,{UNTIL_STOPPED}")  # with the pyfunc model
    client = MlflowClient(f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}")
    # Job 2 trains; job 1's run (and model) may still be on its way to the store.
    wait_until(job_trains(project_dir, 2), process)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 130, output
    children, parent = children_by_job(client)
    for job in (0, 1):
        assert_complete(client, children[job], epochs=5, with_model=True)
    assert children[2].info.status == "KILLED"
    assert parent.info.status == "KILLED"


def test_a_server_outage_mid_sweep_loses_nothing(tmp_path, migrated_store):
    server = MlflowServer(tmp_path, migrated_store).start()
    try:
        process = start_sweep(
            tmp_path,
            "seed=0,1,2,3",
            "epochs=40",
            "tracking.log_model=false",
            env={"MLFLOW_TRACKING_URI": server.uri},
        )
        client = MlflowClient(server.uri)
        wait_until(lambda: 0 in children_by_job(client)[0], process)
        server.stop()
        # The worker says so when it meets the outage.
        lines = read_until(process, r".*is not answering", timeout=300)
        server.start()
        output, _ = process.communicate(timeout=400)
        output = "".join(lines) + output
        assert process.returncode == 0, output
        assert "is not answering" in output and "Traceback" not in output
        children, parent = children_by_job(client)
        assert sorted(children) == [0, 1, 2, 3]
        for run in children.values():
            assert_complete(client, run, epochs=40)
        assert parent.info.status == "FINISHED"
    finally:
        server.stop()
