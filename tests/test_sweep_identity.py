"""A sweep's identity (what finds its parent run again), the store lookups behind running a
sweep again, and how the grid sweeper numbers the jobs it still runs."""

import shutil

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from mlflow import MlflowClient
from omegaconf import OmegaConf

from runner.config import CONF_DIR, register_configs
from runner.sweeps.grid_sweeper import consecutive_runs
from runner.sweeps.identity import sweep_identity
from runner.sweeps.resume import sweep_identity_of
from runner.tracking import tags
from runner.tracking.lookup import finished_jobs, latest_sweep

OPTUNA = ("hydra/sweeper=optuna_search",)


def identity(*overrides):
    """The identity of ``python -m runner -m <overrides>``, composed as Hydra's multirun does."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        config = loader.load_configuration("config", list(overrides), RunMode.MULTIRUN)
        return sweep_identity_of(config)


BASE = ("lr=0.01,0.1", "seed=0,1,2")


def test_the_same_command_is_the_same_sweep():
    assert identity(*BASE) == identity(*BASE)
    assert identity(*OPTUNA) == identity(*OPTUNA)


@pytest.mark.parametrize(
    "changed",
    [
        ("lr=0.01,0.2", "seed=0,1,2"),  # a value
        ("seed=0,1,2", "lr=0.01,0.1"),  # the order: it numbers the jobs
        (*BASE, "epochs=5"),  # the base config
        (*BASE, "model=mlp_4_16_3"),
        (*BASE, "hydra/sweeper=basic"),  # another sweeper
    ],
)
def test_what_the_sweep_runs_changes_its_identity(changed):
    assert identity(*changed) != identity(*BASE)


@pytest.mark.parametrize(
    "extra",
    [
        ("sweep.restart=true",),
        ("tracking.log_model=false", "checkpoint.every_n_epochs=0"),
        ("hydra/launcher=joblib",),
        ("hydra.sweep.dir=elsewhere",),
        ("hydra.sweeper.max_batch_size=2",),
    ],
)
def test_what_cannot_change_the_jobs_leaves_the_identity(extra):
    assert identity(*BASE, *extra) == identity(*BASE)


def test_a_changed_config_file_is_another_sweep():
    # The same command after an edit in runner/conf/ (here: the default lr) composes another config.
    base = {"lr": 0.1, "seed": 0, "tracking": {"uri": None}}
    same = sweep_identity(list(BASE), "grid", {}, base)
    assert sweep_identity(list(BASE), "grid", {}, {**base, "lr": 0.2}) != same
    assert sweep_identity(list(BASE), "grid", {}, {**base, "tracking": {"uri": "x"}}) == same


def test_more_trials_continue_the_same_optuna_sweep():
    assert identity(*OPTUNA, "hydra.sweeper.n_trials=30") == identity(*OPTUNA)
    assert identity(*OPTUNA, "hydra.sweeper.sampler.seed=1") != identity(*OPTUNA)
    assert identity(*OPTUNA, "hydra.sweeper.params.lr='interval(0.01,0.1)'") != identity(*OPTUNA)


def test_jobs_left_run_in_stretches_of_consecutive_numbers():
    assert consecutive_runs([3, 4, 5]) == [(3, [3, 4, 5])]
    assert consecutive_runs([0, 2, 3, 7]) == [(0, [0]), (2, [2, 3]), (7, [7])]
    assert consecutive_runs([1, 2, 3, 4, 5], max_size=2) == [(1, [1, 2]), (3, [3, 4]), (5, [5])]
    assert consecutive_runs([1, 2], max_size=-1) == [(1, [1, 2])]
    assert consecutive_runs([]) == []


@pytest.fixture
def client(tmp_path, migrated_store):
    shutil.copy(migrated_store, tmp_path / "mlflow.db")
    return MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")


def child(client, experiment_id, parent, identity, status):
    run = client.create_run(
        experiment_id, tags={tags.PARENT_RUN: parent, tags.JOB_IDENTITY: identity}
    )
    client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_finished_jobs_are_the_finished_children_by_identity(client):
    experiment_id = client.create_experiment("runner")
    parent = client.create_run(experiment_id, tags={tags.SWEEP_IDENTITY: "s1"}).info.run_id
    other = client.create_run(experiment_id, tags={tags.SWEEP_IDENTITY: "s2"}).info.run_id
    first = child(client, experiment_id, parent, "a", "FINISHED")
    child(client, experiment_id, parent, "a", "FINISHED")  # finished twice: the first counts
    child(client, experiment_id, parent, "b", "KILLED")
    child(client, experiment_id, parent, "c", "FAILED")
    child(client, experiment_id, other, "c", "FINISHED")  # another sweep's
    found = finished_jobs(client, experiment_id, parent)
    assert {key: run.info.run_id for key, run in found.items()} == {"a": first}


def test_the_newest_parent_of_a_sweep_is_the_one_continued(client):
    experiment_id = client.create_experiment("runner")
    client.create_run(experiment_id, tags={tags.SWEEP_IDENTITY: "s1"}, start_time=1000)
    newest = client.create_run(experiment_id, tags={tags.SWEEP_IDENTITY: "s1"}, start_time=2000)
    client.create_run(experiment_id, tags={tags.SWEEP_IDENTITY: "s2"}, start_time=3000)
    assert latest_sweep(client, experiment_id, "s1").info.run_id == newest.info.run_id
    assert latest_sweep(client, experiment_id, "s3") is None


@pytest.mark.slow
def test_a_single_run_is_tagged_with_its_identity(project_dir):
    from runner.sweeps.identity import job_identity
    from tests.helpers import compose_config, run_cli

    args = ("epochs=2", "tracking.log_model=false")
    assert run_cli(*args, cwd=project_dir).returncode == 0
    store = MlflowClient(f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}")
    (run,) = store.search_runs([store.get_experiment_by_name("runner").experiment_id])
    config = OmegaConf.to_container(compose_config(*args), resolve=True)
    assert run.data.tags[tags.JOB_IDENTITY] == job_identity(config)
