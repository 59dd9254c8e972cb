"""Reading runs back from MLflow: a run's checkpoint (resume=), a sweep's parent and its jobs."""

import logging
from pathlib import Path

from runner.tracking import tags


def existing_experiment(uri, name):
    """(client, experiment id) of the experiment ``name`` in the store at ``uri``, only read:
    None when the experiment or the store is not there (a SQLite file that does not exist is
    not opened, since MLflow would create it). Raises when the store cannot be read; a server
    that does not answer fails in seconds, not minutes."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None
    from mlflow import MlflowClient

    from runner.tracking.client import check_reachable

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    check_reachable(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    return experiment and (client, experiment.experiment_id)


def checkpoint_of_run(uri, run_id):
    """The checkpoint path a run recorded in its tags, or None if there is no such run."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        run = MlflowClient(uri).get_run(run_id)
    except MlflowException:
        return None
    return run.data.tags.get(tags.CHECKPOINT)


def latest_sweep(client, experiment_id, sweep_identity):
    """The newest parent run of the sweep with this identity in the experiment, or None."""
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{tags.SWEEP_IDENTITY}` = '{sweep_identity}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0] if found else None


def child_attempts(client, experiment_id, parent_run_id):
    """Every child run of a sweep's parent, oldest first (a job may have several attempts)."""
    return client.search_runs(
        [experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=50000,
    )


def finished_jobs(client, experiment_id, parent_run_id):
    """{job identity: its FINISHED child run} under a sweep's parent: the jobs not to run again.

    Children without an identity (logged before runs had one) count as no job. Should a job
    have finished twice, its first run is the one kept.
    """
    finished = {}
    for run in child_attempts(client, experiment_id, parent_run_id):
        identity = run.data.tags.get(tags.JOB_IDENTITY)
        if run.info.status == "FINISHED" and identity:
            finished.setdefault(identity, run)
    return finished
