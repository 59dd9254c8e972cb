"""A sweep composes each job's config once in the launching process (runner/sweeps/compose_once.py),
and still checks that every job composes before the first one starts.

Real sweeps (``python -m runner -m``) in a subprocess that counts the job configs Hydra's
config loader composes.
"""

import pickle
import sys

import pytest

from runner.sweeps.compose_once import ComposedOnce
from tests.helpers import run_cli, run_command

# python -m runner, counting Hydra's job compositions: one "composed: <overrides>" line each.
COUNTING_RUNNER = """
import runpy, sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl

load_sweep_config = ConfigLoaderImpl.load_sweep_config

def counted(self, master_config, sweep_overrides):
    print("composed:", " ".join(sweep_overrides), flush=True)
    return load_sweep_config(self, master_config, sweep_overrides)

ConfigLoaderImpl.load_sweep_config = counted
runpy.run_module("runner", run_name="__main__")
"""
SHORT = ("epochs=2",)


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra",
    [
        ("tracking.enabled=false",),
        ("tracking.enabled=false", "hydra.sweeper.max_batch_size=2"),  # two launches
        ("tracking.log_model=false",),  # the identities for resume are what is composed
    ],
    ids=["untracked", "batches", "tracked"],
)
def test_each_job_of_a_grid_sweep_is_composed_once(project_dir, extra):
    command = [sys.executable, "-c", COUNTING_RUNNER, "-m", "seed=3,4,5", *SHORT, *extra]
    result = run_command(command, cwd=project_dir, timeout=180)
    assert result.returncode == 0, result.stderr
    composed = [
        line.split()[1] for line in result.stdout.splitlines() if line.startswith("composed:")
    ]
    assert composed == ["seed=3", "seed=4", "seed=5"]
    [sweep_dir] = (project_dir / "outputs" / "multirun").glob("*/*")
    for number, seed in enumerate((3, 4, 5)):
        job_dir = sweep_dir / str(number)
        assert f"- seed={seed}\n" in (job_dir / ".hydra" / "overrides.yaml").read_text()
        assert "trained 2 epochs" in (job_dir / "runner.log").read_text()


@pytest.mark.slow
def test_a_job_that_does_not_compose_stops_the_sweep_before_any_job_runs(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_cli(
        "-m",
        "seed=1,2",
        "model=mlp_4_8_8_3,no_such_model",
        "tracking.enabled=false",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "no_such_model" in result.stderr
    assert not (sweep_dir / "0").exists()  # job 0 composes; it did not run


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
