"""A sweep composes each job's config once in the launching process (runner/sweeps/compose_once.py),
and still checks that every job composes before the first one starts.

Real Hydra sweeps of runner's config, in this process, with a task function that records
what each job received instead of training.
"""

import pickle

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.hydra import Hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException

from runner.config import CONF_DIR, register_configs
from runner.sweeps.compose_once import ComposedOnce

register_configs()


@pytest.fixture
def compositions(monkeypatch):
    """The overrides of every job config Hydra's loader composes, in order."""
    composed = []
    load_sweep_config = ConfigLoaderImpl.load_sweep_config

    def counted(self, master_config, sweep_overrides):
        composed.append(list(sweep_overrides))
        return load_sweep_config(self, master_config, sweep_overrides)

    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config", counted)
    return composed


def sweep(tmp_path, *overrides, ran=None):
    """Run ``python -m runner -m <overrides>`` in this process; [(job number, seed)] of the
    jobs in the order they ran (also in ``ran``, for a sweep that raises)."""
    ran = [] if ran is None else ran

    def task(cfg):
        ran.append((HydraConfig.get().job.num, cfg.seed))
        return 0.0

    hydra = Hydra.create_main_hydra_file_or_module(
        calling_file=None, calling_module="runner", config_path=str(CONF_DIR), job_name="runner"
    )
    try:
        hydra.multirun(
            config_name="config",
            task_function=task,
            overrides=[*overrides, "tracking.enabled=false", f"hydra.sweep.dir={tmp_path}"],
        )
    finally:
        GlobalHydra().clear()
    return ran


def test_each_job_of_a_grid_sweep_is_composed_once(tmp_path, compositions):
    ran = sweep(tmp_path, "seed=3,4,5")
    assert ran == [(0, 3), (1, 4), (2, 5)]
    assert [job[0] for job in compositions] == ["seed=3", "seed=4", "seed=5"]
    assert "- seed=5\n" in (tmp_path / "2" / ".hydra" / "overrides.yaml").read_text()


def test_a_job_that_does_not_compose_stops_the_sweep_before_any_job_runs(tmp_path):
    ran = []
    with pytest.raises(ConfigCompositionException):
        sweep(tmp_path, "seed=1,2", "model=mlp_4_8_8_3,no_such_model", ran=ran)
    assert ran == []


def test_jobs_of_batches_keep_their_numbers_and_are_composed_once(tmp_path, compositions):
    ran = sweep(tmp_path, "seed=0,1,2", "hydra.sweeper.max_batch_size=2")
    assert ran == [(0, 0), (1, 1), (2, 2)]
    assert [job[0] for job in compositions] == ["seed=0", "seed=1", "seed=2"]


class Loader:
    """A stand-in for Hydra's loader: each composition is a new object."""

    def load_sweep_config(self, master_config, sweep_overrides):
        return {"overrides": list(sweep_overrides)}


def test_a_kept_config_is_handed_out_once_then_composed_anew():
    loader, master = ComposedOnce(Loader()), object()
    kept = loader.compose(master, ["seed=1"])
    assert loader.load_sweep_config(master, ["seed=1"]) is kept
    assert loader.load_sweep_config(master, ["seed=1"]) is not kept  # the launcher's job is it
    loader.compose(master, ["seed=2"])
    loader.forget()
    assert not loader.kept


def test_only_so_many_configs_are_kept():
    loader, master = ComposedOnce(Loader(), keep_at_most=2), object()
    for seed in range(3):
        loader.compose(master, [f"seed={seed}"])
    assert [overrides for _, overrides in loader.kept] == [("seed=0",), ("seed=1",)]


def test_a_pickled_loader_leaves_the_kept_configs_behind():
    loader = ComposedOnce(Loader())
    loader.compose(object(), ["seed=1"])
    copy = pickle.loads(pickle.dumps(loader))  # as a joblib, Ray or submitit job receives it
    assert copy.kept == {}
    assert copy.load_sweep_config(None, ["seed=2"]) == {"overrides": ["seed=2"]}
