"""Shared fixtures: hypothesis profiles and a strict-warnings guard for numerical code."""

import os
import warnings

import pytest
from hypothesis import settings

# CI runs more examples; a developer's default run stays quick.
settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def no_runtime_warnings():
    """Turn any RuntimeWarning (overflow, divide by zero, invalid value) into a failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory):
    """An empty MLflow SQLite store, migrated once per session (a fresh one takes seconds)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def project_dir(tmp_path, migrated_store):
    """A working directory whose outputs/mlflow.db is a copy of the migrated store."""
    import shutil

    (tmp_path / "outputs").mkdir()
    shutil.copy(migrated_store, tmp_path / "outputs" / "mlflow.db")
    return tmp_path
