"""The tracking worker's run sessions against a real SQLite store, without a training process.

A signal can stop the training process anywhere, also between one epoch's metrics; these
tests set up exactly such half-logged runs, which a subprocess test meets only by chance.
"""

import dataclasses

import mlflow
import pytest
from mlflow import MlflowClient

from runner import pipeline
from runner.tracking import messages
from runner.tracking.client import TrackingWorker, start_message
from runner.tracking.figures import draw_figures
from runner.tracking.worker import RunSession
from tests.helpers import compose_run_config

pytestmark = pytest.mark.slow

EPOCH_KEYS = ("train_loss", "val_loss", "val_accuracy", "lr")


@pytest.fixture
def start(project_dir):
    """The start message of a default run, logging to the project's store."""
    run_cfg = compose_run_config("tracking.log_model=false")
    parts = pipeline.prepare(run_cfg)
    yield start_message(
        config=dataclasses.asdict(run_cfg),
        overrides=[],
        net=parts.net,
        model_name=run_cfg.model.name,
        dataset=parts.dataset,
        loss=parts.loss,
        uri=f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}",
        experiment="runner",
        log_model=False,
        outage_wait_s=10.0,
        output_dir=project_dir,
        checkpoint_path=project_dir / "checkpoint.npz",
    )
    mlflow.set_tracking_uri(None)


def epoch_metrics(epoch):
    """Distinct, made-up values for one epoch, as the trainer reports them."""
    return {"train_loss": 1 / epoch, "val_loss": 2 / epoch, "val_accuracy": epoch / 10, "lr": 0.1}


# Timestamps (ms) of the two processes: a SQL store merges rows equal in every field, so
# a point logged again only shows as a duplicate with the later process's timestamp.
FIRST, RESUMED = 1_000, 2_000


def rows(step, metrics, timestamp):
    return [(key, value, step, timestamp) for key, value in metrics.items()]


def step_rows(first, last, timestamp):
    return [("train_step_loss", 1 / step, step, timestamp) for step in range(first, last + 1)]


def logged_steps(client, run_id, key):
    return sorted(metric.step for metric in client.get_metric_history(run_id, key))


def test_a_resume_sends_what_a_half_logged_epoch_lacks_and_nothing_twice(start):
    # The first process got through epoch 4's train_loss when the signal came; the
    # checkpoint holds 4 epochs; per-step losses ran up to step 50 of the next epoch.
    first = RunSession(start)
    first.open()
    for epoch in (1, 2, 3):
        first.log_metrics(rows(epoch, epoch_metrics(epoch), FIRST))
    first.log_metrics(rows(4, {"train_loss": epoch_metrics(4)["train_loss"]}, FIRST))
    first.log_metrics(step_rows(1, 50, FIRST))
    first.end("KILLED", "interrupted")

    history = [epoch_metrics(epoch) for epoch in (1, 2, 3, 4)]
    resumed = RunSession(dataclasses.replace(start, resume_run_id=first.run_id, history=history))
    resumed.open()
    resumed.log_metrics(step_rows(41, 60, RESUMED))  # epoch 5 again from its start: steps 41-60
    resumed.log_metrics(rows(5, epoch_metrics(5), RESUMED))
    resumed.end("KILLED", "interrupted again")

    client = MlflowClient(start.uri)
    for key in EPOCH_KEYS:
        assert logged_steps(client, first.run_id, key) == [1, 2, 3, 4, 5], key
        values = {m.step: m.value for m in client.get_metric_history(first.run_id, key)}
        assert values == {epoch: epoch_metrics(epoch)[key] for epoch in range(1, 6)}
    assert logged_steps(client, first.run_id, "train_step_loss") == list(range(1, 61))
    assert resumed.history["val_loss"] == {e: epoch_metrics(e)["val_loss"] for e in range(1, 6)}


def blas_threads():
    from threadpoolctl import threadpool_info

    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def test_training_keeps_one_blas_thread_until_the_worker_has_started(start):
    usual = blas_threads()
    if usual < 2:
        pytest.skip("BLAS runs one thread here anyway")
    worker = TrackingWorker()
    try:
        run = worker.start_run(start)
        assert blas_threads() == 1  # while the worker imports MLflow and opens the store
        assert worker.warm.wait(300)  # the worker created the run
        run.log_epoch(1, epoch_metrics(1))
        assert blas_threads() == usual and run.run_id is not None
        reply = run.end("KILLED", "test over")
        assert isinstance(reply, messages.Done) and reply.info.run_id == run.run_id
    finally:
        worker.close()
    assert MlflowClient(start.uri).get_run(run.run_id).info.status == "KILLED"


def test_a_sweep_job_returns_only_once_its_run_is_in_the_store(start):
    # The sweep's end counts the children in the store: a job that returned before its
    # worker created the run (the worker still importing MLflow) would be missed.
    client = MlflowClient(start.uri)
    parent = client.create_run(client.create_experiment("sweeps")).info.run_id
    worker = TrackingWorker()
    try:
        run = worker.start_run(dataclasses.replace(start, sweep=messages.SweepJob(parent, 0, 1)))
        assert run.end("FAILED", "job crashed", wait=False) is None
        assert run.run_id is not None
        assert client.get_run(run.run_id).info.run_name == start.run_name
    finally:
        worker.close()


def test_a_process_waits_at_exit_for_the_runs_it_left_to_its_worker(start, tmp_path):
    # Under SLURM the job's processes die with it, the detached worker too: the process
    # that owns the worker must not exit while its runs are still being logged.
    import pickle
    import subprocess
    import sys

    message = tmp_path / "start.pickle"
    message.write_bytes(pickle.dumps(start))
    job = (
        "import pickle, sys\n"
        "from runner.tracking.client import tracking_worker\n"
        "run = tracking_worker().start_run(pickle.loads(open(sys.argv[1], 'rb').read()))\n"
        "run.end('KILLED', 'job over', wait=False)\n"
    )
    subprocess.run([sys.executable, "-c", job, str(message)], check=True, timeout=120)
    (run,) = MlflowClient(start.uri).search_runs(
        [MlflowClient(start.uri).get_experiment_by_name("runner").experiment_id]
    )
    assert run.info.status == "KILLED"


def test_the_next_run_is_created_while_the_last_one_is_still_being_logged(start, monkeypatch):
    # A sweep's job waits until its run exists; the job before it is still having its
    # figures and model logged. Here that logging is held until the new run is created.
    import queue
    import threading

    from runner.tracking import worker

    logging_held, release = threading.Event(), threading.Event()
    finish = worker.RunSession.finish

    def held_finish(session, result):
        logging_held.set()
        assert release.wait(120), "the test never released the first run's logging"
        finish(session, result)

    monkeypatch.setattr(worker.RunSession, "finish", held_finish)
    inbox, replies = queue.Queue(), queue.Queue()
    serving = threading.Thread(target=worker.serve, args=(inbox, replies.put))
    serving.start()
    weights = f"{start.output_dir}/weights.npz"
    parts = pipeline.prepare(compose_run_config())
    parts.net.save(weights)
    figures = draw_figures([epoch_metrics(1)], parts.net, parts.dataset, start.output_dir)
    try:
        inbox.put(dataclasses.replace(start, run=0))
        inbox.put(messages.Finish(0, weights, rows(1, epoch_metrics(1), FIRST), figures))
        assert logging_held.wait(120)
        inbox.put(dataclasses.replace(start, run=1, run_name="second"))
        answered = [replies.get(timeout=120), replies.get(timeout=120)]
        assert [(type(r), r.run) for r in answered] == [
            (messages.Started, 0),
            (messages.Started, 1),
        ]
        assert MlflowClient(start.uri).get_run(answered[1].info.run_id).info.status == "RUNNING"
        release.set()
        inbox.put(messages.Finish(1, weights, rows(1, epoch_metrics(1), FIRST), figures))
        done = [replies.get(timeout=120), replies.get(timeout=120)]
        assert [(type(r), r.run) for r in done] == [(messages.Done, 0), (messages.Done, 1)]
    finally:
        release.set()
        inbox.put(None)
        serving.join(120)
    client = MlflowClient(start.uri)
    for reply in done:
        run = client.get_run(reply.info.run_id)
        assert run.info.status == "FINISHED"
        assert {"loss_curve.png", "confusion_matrix.png", "layers.json", "config.yaml"} <= {
            artifact.path for artifact in client.list_artifacts(run.info.run_id)
        }
