"""Shared fixtures: hypothesis profiles, a clean environment, no process left behind, and a
strict-warnings guard for numerical code."""

import os
import warnings

import pytest
from hypothesis import settings

from tests.helpers import kill_started

pytest_plugins = ("pytester",)  # tests/test_fixtures.py runs pytest inside pytest

# CI (.ci/run) passes --hypothesis-profile=ci: the same 200 examples on every run, so a CI
# failure is never luck. A developer's default run fuzzes: 50 new random examples each time.
# `pytest --hypothesis-profile=fuzz` digs deeper (500 random examples per property).
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, database=None)
# Explicitly random: Hypothesis's own default derandomizes wherever CI is set in the environment.
settings.register_profile("dev", max_examples=50, deadline=None, derandomize=False)
settings.register_profile("fuzz", max_examples=500, deadline=None, derandomize=False)
settings.load_profile("dev")

# Variables of the developer's shell that would redirect or change the runs under test:
# MLFLOW_TRACKING_URI would send them to a team server, HYDRA_FULL_ERROR changes the output.
FOREIGN_PREFIXES = ("MLFLOW_", "HYDRA_", "RUNNER_")


@pytest.fixture(scope="session", autouse=True)
def clean_environment():
    """Remove MLFLOW_*, HYDRA_* and RUNNER_* variables for the whole session."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(FOREIGN_PREFIXES):
                patch.delenv(name)
        yield


@pytest.fixture(autouse=True)
def kill_started_processes():
    """Kill the process group of everything the test started (tests/helpers.start_process),
    whether the test passed or failed."""
    yield
    kill_started()


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
