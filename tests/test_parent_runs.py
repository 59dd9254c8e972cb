"""A sweep's parent run as the launching process's tracking worker keeps it, on a real store.

The requests of runner.tracking.messages answered in-process (``parent_runs.answer``), and
once through a real worker process, which is how a sweep's launching process asks them.
"""

import pytest
from mlflow import MlflowClient

from runner.errors import TrackingError
from runner.tracking import messages, parent_runs, tags
from runner.tracking.client import TrackingWorker
from runner.tracking.worker import Stores

pytestmark = pytest.mark.slow


@pytest.fixture
def uri(project_dir):
    return f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}"


def open_sweep(uri, resume, request=0):
    return messages.OpenSweep(
        request=request,
        uri=uri,
        experiment="runner",
        artifact_root=None,
        identity="abc123",
        resume=resume,
        run_name="sweep-lr=0.1,0.2",
        tags={tags.SWEEP: "true", tags.SWEEP_IDENTITY: "abc123"},
        params={"sweep.overrides": "lr=0.1,0.2"},
    )


def answered(stores, request):
    reply = parent_runs.answer(stores, request)
    assert isinstance(reply, messages.Answer), reply
    assert reply.request == request.request
    return reply.value


def add_child(client, parent, job, identity, status, val_loss=None):
    run = client.create_run(
        parent.experiment_id,
        tags={
            tags.PARENT_RUN: parent.run_id,
            tags.SWEEP_JOB: str(job),
            tags.JOB_IDENTITY: identity,
            tags.OVERRIDES: f"lr=0.{job + 1}",
        },
    )
    if val_loss is not None:
        client.log_metric(run.info.run_id, "val_loss", val_loss)
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_a_sweep_is_created_then_continued_and_its_children_left_running_end_failed(uri):
    stores = Stores()
    first = answered(stores, open_sweep(uri, resume=True))
    client = MlflowClient(uri)
    parent = client.get_run(first.run_id)
    assert not first.continued and parent.info.run_name == "sweep-lr=0.1,0.2"
    assert parent.data.tags[tags.SWEEP_IDENTITY] == "abc123"
    assert parent.data.params == {"sweep.overrides": "lr=0.1,0.2"}
    sweep = messages.SweepRun(uri, first.experiment_id, first.run_id)
    left_running = add_child(client, sweep, 0, "job0", "RUNNING")
    client.set_terminated(first.run_id, "KILLED")  # the sweep was killed outright

    again = answered(Stores(), open_sweep(uri, resume=True))  # the same sweep run again

    assert again.continued and again.run_id == first.run_id
    assert client.get_run(first.run_id).info.status == "RUNNING"
    child = client.get_run(left_running)
    assert child.info.status == "FAILED"
    assert child.data.tags["failure_reason"] == parent_runs.LEFT_RUNNING
    restarted = answered(Stores(), open_sweep(uri, resume=False))  # sweep.restart=true
    assert not restarted.continued and restarted.run_id != first.run_id


def test_the_jobs_of_a_continued_sweep_are_found_superseded_and_read_as_trials(uri):
    stores = Stores()
    opened = answered(stores, open_sweep(uri, resume=True))
    sweep = messages.SweepRun(uri, opened.experiment_id, opened.run_id)
    client = MlflowClient(uri)
    finished = add_child(client, sweep, 0, "job0", "FINISHED", val_loss=0.25)
    failed = add_child(client, sweep, 1, "job1", "FAILED")
    killed = add_child(client, sweep, 2, "job2", "KILLED")

    found = answered(stores, messages.FindFinishedJobs(1, sweep))
    answered(stores, messages.SupersedeJobs(2, sweep, ("job0", "job1")))  # job 1 runs again
    trials = answered(stores, messages.FindTrials(3, sweep))

    assert found == {"job0"}
    superseded = {
        run: tags.SUPERSEDED in client.get_run(run).data.tags for run in (finished, failed, killed)
    }
    assert superseded == {finished: False, failed: True, killed: False}  # a FINISHED run stays
    assert trials == [
        messages.Trial(0, "FINISHED", False, "lr=0.1", {"val_loss": 0.25}),
        messages.Trial(1, "FAILED", True, "lr=0.2", {}),
        messages.Trial(2, "KILLED", False, "lr=0.3", {}),
    ]


def test_a_request_that_fails_is_refused_naming_the_store():
    sweep = messages.SweepRun("nosuch://store", "0", "abc")
    reply = parent_runs.answer(Stores(), messages.FindTrials(7, sweep))
    assert isinstance(reply, messages.Refused) and reply.request == 7
    assert "the sweep's parent run in MLflow at nosuch://store failed" in reply.message


def test_the_launching_process_gets_its_answers_and_refusals_from_its_worker(uri):
    worker = TrackingWorker()
    try:
        opened = worker.ask(lambda number: open_sweep(uri, resume=True, request=number)).result()
        assert MlflowClient(uri).get_run(opened.run_id).info.status == "RUNNING"
        bad = messages.SweepRun("nosuch://store", "0", "abc")
        with pytest.raises(TrackingError, match="nosuch://store"):
            worker.ask(lambda number: messages.FindTrials(number, bad)).result()
        sweep = messages.SweepRun(uri, opened.experiment_id, opened.run_id)
        assert worker.ask(lambda number: messages.FindTrials(number, sweep)).result() == []
    finally:
        worker.close()
    worker.process.wait()


def test_a_request_to_a_worker_that_died_raises_instead_of_waiting(uri):
    worker = TrackingWorker()
    worker.close()  # end-of-file before any request: the worker exits at once
    asked = worker.ask(lambda number: open_sweep(uri, resume=True, request=number))
    with pytest.raises(TrackingError, match="tracking worker stopped"):
        asked.result()
