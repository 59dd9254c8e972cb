"""A sweep stopped (Ctrl-C, SIGTERM, SIGKILL) and run again with the same command continues:
one parent, the finished jobs kept as they are, the others run, one FINISHED child per job."""

import glob
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.helpers import run_cli, start_cli_until

pytestmark = [pytest.mark.slow, pytest.mark.heavy]

# Six jobs of a few seconds each (digits, 200 epochs: 2-5 s of training at batch 64 to 8, many
# times the 0.3 s the test takes to see a job train; 30 epochs had become 0.3-0.8 s and let a
# job finish before the signal came): long enough that a job still trains when the test stops
# the sweep, short enough to run the rest again.
SWEEP = (
    "seed=0,1,2,3,4,5",
    "dataset=digits",
    "model=mlp_64_128_64_10",
    "epochs=200",
    "tracking.log_model=false",
)
OPTUNA = (
    "hydra/sweeper=optuna_search",
    "hydra.sweeper.n_trials=6",
    "~hydra.sweeper.params.model",
    "dataset=digits",
    "model=mlp_64_128_64_10",
    "epochs=200",
    "tracking.log_model=false",
)


def store(project_dir):
    return MlflowClient(f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}")


def sweep_runs(client):
    """(parents, children) in the experiment, each a list of runs."""
    experiment = client.get_experiment_by_name("runner")
    runs = client.search_runs([experiment.experiment_id], max_results=1000) if experiment else []
    parents = [r for r in runs if r.data.tags.get("runner.sweep") == "true"]
    children = [r for r in runs if "runner.sweep_job" in r.data.tags]
    return parents, children


def finished_by_job(children):
    """{job number: run id} of the FINISHED children (failing on two for one job)."""
    finished = [r for r in children if r.info.status == "FINISHED"]
    jobs = [int(r.data.tags["runner.sweep_job"]) for r in finished]
    assert len(jobs) == len(set(jobs)), f"a job finished twice: {sorted(jobs)}"
    return {job: r.info.run_id for job, r in zip(jobs, finished, strict=True)}


def wait_until(condition, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out waiting")


def job_trains(project_dir, job):
    """True once job ``job``'s runner.log has an epoch line: the jobs before it returned."""

    def check():
        logs = glob.glob(str(project_dir / "outputs" / "multirun" / "*" / "*" / str(job) / "*.log"))
        return any("epoch " in Path(log).read_text() for log in logs)

    return check


def stop_during_job(project_dir, args, job, sig):
    """Start the sweep, send ``sig`` while job ``job`` trains (after jobs before it printed
    their lines); return (process, output)."""
    process, lines = start_cli_until(
        "-m", *args, cwd=project_dir, pattern=rf"#{job - 1} .*FINISHED", timeout=300
    )
    wait_until(job_trains(project_dir, job))
    process.send_signal(sig)
    rest, _ = process.communicate(timeout=300)
    return process, "".join(lines) + rest


def assert_one_finished_child_per_job(client, n_jobs):
    """One parent, FINISHED, with a FINISHED child per job; every other child superseded."""
    parents, children = sweep_runs(client)
    assert len(parents) == 1, [p.info.run_name for p in parents]
    assert parents[0].info.status == "FINISHED"
    finished = finished_by_job(children)
    assert sorted(finished) == list(range(n_jobs))
    done = [r for r in children if r.info.status == "FINISHED"]
    assert len({r.data.tags["runner.job_identity"] for r in done}) == n_jobs
    for run in children:
        if run.info.status != "FINISHED":
            assert run.data.tags.get("runner.superseded") == "true", run.info.run_name
            assert run.info.status != "RUNNING", run.info.run_name  # never left RUNNING
    return parents[0], finished


def run_again_finishing_the_rest(project_dir, args, client, before):
    """Run the sweep ``args`` again: it counts the ``before`` jobs ({job: run id}) as finished,
    ends with one FINISHED child per job, and leaves the finished ones' runs as they were."""
    again = run_cli("-m", *args, cwd=project_dir, timeout=300)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert f"6 jobs: {len(before)} already finished, {6 - len(before)} to run" in output
    _, after = assert_one_finished_child_per_job(client, 6)
    assert {job: after[job] for job in before} == before


@pytest.mark.parametrize(
    "sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_stopped_sweep_run_again_trains_only_what_did_not_finish(project_dir, sig, code):
    process, output = stop_during_job(project_dir, SWEEP, job=3, sig=sig)
    assert process.returncode == code, output
    client = store(project_dir)
    before = finished_by_job(sweep_runs(client)[1])
    assert sorted(before) == [0, 1, 2]

    again = run_cli("-m", *SWEEP, cwd=project_dir, timeout=300)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert "6 jobs: 3 already finished, 3 to run" in output
    assert sorted(re.findall(r"^#(\d) .*FINISHED", output, re.M)) == ["3", "4", "5"], output
    parent, after = assert_one_finished_child_per_job(client, 6)
    assert {job: after[job] for job in before} == before  # not trained again
    killed = [r for r in sweep_runs(client)[1] if r.info.status == "KILLED"]
    assert [r.data.tags["runner.sweep_job"] for r in killed] == ["3"]  # still there, superseded
    table = client.download_artifacts(parent.info.run_id, "results.csv", str(project_dir))
    assert len(Path(table).read_text().splitlines()) == 1 + 6  # the reused children count

    # A finished sweep run again trains nothing, and says so.
    runs_before = len(sweep_runs(client)[1])
    third = run_cli("-m", *SWEEP, cwd=project_dir, timeout=300)
    output = third.stdout + third.stderr
    assert third.returncode == 0, output
    assert "6 jobs: 6 already finished, 0 to run" in output and "nothing to train" in output
    assert not re.search(r"^#\d ", output, re.M) and "Launching" not in output
    assert len(sweep_runs(client)[1]) == runs_before
    assert_one_finished_child_per_job(client, 6)
    logged = client.download_artifacts(parent.info.run_id, "results.json", str(project_dir))
    assert len(json.loads(Path(logged).read_text())["data"]) == 6  # replaced, not appended to


def tracking_workers(folder):
    """The pids of the tracking workers started from ``folder`` (detached: no children of the
    sweep's process, which forked them in a session of their own)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            if b"runner.tracking" in command and (proc / "cwd").resolve() == folder.resolve():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_a_sweep_killed_outright_with_its_tracking_worker_runs_again(project_dir):
    # SIGKILL of the sweep and of the worker that would end its runs: they stay RUNNING.
    process, _ = start_cli_until(
        "-m", *SWEEP, cwd=project_dir, pattern=r"#1 .*FINISHED", timeout=300
    )
    wait_until(job_trains(project_dir, 2))
    # The worker creates a job's run while the job trains: wait until the store has it.
    wait_until(lambda: "RUNNING" in [r.info.status for r in sweep_runs(store(project_dir))[1]])
    workers = tracking_workers(project_dir)
    assert workers
    for pid in [process.pid, *workers]:
        os.kill(pid, signal.SIGKILL)
    process.wait(timeout=60)
    client = store(project_dir)
    parents, children = sweep_runs(client)
    assert [p.info.status for p in parents] == ["RUNNING"]
    assert "RUNNING" in [r.info.status for r in children]
    before = finished_by_job(children)

    started = time.monotonic()
    run_again_finishing_the_rest(project_dir, SWEEP, client, before)
    # The runs the killed sweep left RUNNING were ended when it reopened its parent, so the
    # end of the sweep did not wait for them (it would have, for outage_wait_s + 60 s).
    assert time.monotonic() - started < 120


def test_sweep_restart_starts_a_new_parent(project_dir):
    args = ("seed=0,1", "epochs=3", "tracking.log_model=false")
    assert run_cli("-m", *args, cwd=project_dir).returncode == 0
    again = run_cli("-m", *args, "sweep.restart=true", cwd=project_dir)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert "2 jobs: 0 already finished, 2 to run" in output
    parents, children = sweep_runs(store(project_dir))
    assert len(parents) == 2 and len(children) == 4
    assert len({p.data.tags["runner.sweep_identity"] for p in parents}) == 1
    # The newest parent with that identity is the one the next run continues.
    third = run_cli("-m", *args, cwd=project_dir)
    assert "2 jobs: 2 already finished, 0 to run" in third.stdout + third.stderr


def test_a_joblib_sweep_run_again_trains_only_what_did_not_finish(project_dir):
    args = ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *SWEEP)
    process, output = stop_during_job(project_dir, args, job=3, sig=signal.SIGINT)
    client = store(project_dir)
    before = finished_by_job(sweep_runs(client)[1])
    assert len(before) < 6, output

    run_again_finishing_the_rest(project_dir, args, client, before)


def test_an_optuna_sweep_run_again_ends_with_its_n_trials(project_dir):
    process, output = stop_during_job(project_dir, OPTUNA, job=3, sig=signal.SIGINT)
    assert process.returncode == 130, output
    client = store(project_dir)
    first = sweep_runs(client)[1]
    before = finished_by_job(first)
    assert sorted(before) == [0, 1, 2]
    killed_params = {r.data.params["lr"] for r in first if r.data.tags["runner.sweep_job"] == "3"}

    again = run_cli("-m", *OPTUNA, cwd=project_dir, timeout=300)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert "6 trials: 3 already finished, 3 to run" in output
    parents, children = sweep_runs(client)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert len(finished) == 6  # six trials in all, not 3 + 6
    jobs = sorted(int(r.data.tags["runner.sweep_job"]) for r in finished)
    assert jobs == [0, 1, 2, 4, 5, 6]  # numbered on; trial 3 was stopped and asked again as 4
    assert {job: run_id for job, run_id in finished_by_job(children).items() if job < 3} == before
    retried = [r for r in finished if r.data.tags["runner.sweep_job"] == "4"]
    assert {r.data.params["lr"] for r in retried} == killed_params
    lrs = [r.data.params["lr"] for r in finished]
    assert len(set(lrs)) == 6  # the continued sampler drew new points, not the first ones again

    third = run_cli("-m", *OPTUNA, cwd=project_dir, timeout=300)
    output = third.stdout + third.stderr
    assert "6 trials: 6 already finished, 0 to run" in output and "nothing to train" in output
    assert len(sweep_runs(client)[1]) == len(children)
