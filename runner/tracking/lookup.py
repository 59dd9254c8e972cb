"""Reading a run back from MLflow in the training process: only when resuming."""

from runner.tracking import tags


def checkpoint_of_run(uri, run_id):
    """The checkpoint path a run recorded in its tags, or None if there is no such run."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        run = MlflowClient(uri).get_run(run_id)
    except MlflowException:
        return None
    return run.data.tags.get(tags.CHECKPOINT)
