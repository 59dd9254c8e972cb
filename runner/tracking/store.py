"""Store set-up shared by the tracking worker and the sweep callback."""

from mlflow.exceptions import MlflowException


def ensure_experiment(client, name, artifact_root):
    """The experiment's id, creating it (and, on first use, the store's tables) if needed.

    artifact_root : where a new experiment keeps artifacts (None: the server decides).
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_root)
    except MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(name).experiment_id
