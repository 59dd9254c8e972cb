"""Opening the MLflow store, safe for any number of processes starting at once on a fresh one.

MLflow creates and migrates a SQLite store's tables the first time a process opens it, inside
``MlflowClient(uri)`` (its TrackingServiceClient builds the store at once), without a lock:
eight runs started together in a fresh folder fail with "duplicate column name: step" or
"table ... already exists" and lose their metrics. Here that opening, and the creation of the
experiment, happen under a file lock beside the ``.db``. MLflow keeps one store per URI for
the life of the process, so only the first opening migrates and later ones are cheap. A
tracking server (http) serialises its own store: no lock then.
"""

from contextlib import nullcontext
from pathlib import Path

from filelock import FileLock
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from runner.tracking import tags


def store_lock(uri):
    """A lock for the SQLite file ``uri`` names (``<file>.db.lock``), else a no-op context."""
    if not uri.startswith("sqlite:///"):
        return nullcontext()
    database = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return FileLock(f"{Path(database)}.lock")


def open_store(uri):
    """An MlflowClient for ``uri``, whose store this process opens (and migrates) under the lock.

    Every process's first access to a store must go through here: MlflowClient's constructor
    is already that first access.
    """
    with store_lock(uri):
        return MlflowClient(uri)


def ensure_experiment(client, name, artifact_root):
    """The experiment's id, creating it if needed, under the store's lock.

    artifact_root : where a new experiment keeps artifacts (None: the server decides).
    A new experiment, and one that has no kind yet, is marked as model training, so that
    MLflow's UI opens it on its runs rather than its GenAI overview; a kind someone chose stays.
    """
    kind = {tags.EXPERIMENT_KIND: tags.MODEL_TRAINING}
    with store_lock(client.tracking_uri):
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return client.create_experiment(name, artifact_location=artifact_root, tags=kind)
            except MlflowException:  # created meanwhile through a server by another process
                experiment = client.get_experiment_by_name(name)
        if tags.EXPERIMENT_KIND not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, *kind.popitem())
        return experiment.experiment_id
