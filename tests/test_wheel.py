"""A wheel of the runner, installed into a fresh virtualenv, runs the default experiment from an
empty folder: the configs and the shipped CSVs travel inside the package (issue 10).

Nothing is downloaded. The wheel is built without build isolation, with this environment's
setuptools (the ``test`` extra asks for one that builds wheels by itself). The fresh
virtualenv gets the runner's dependencies through a ``.pth`` file naming this interpreter's
site-packages folders: a path in a ``.pth`` file is only appended to ``sys.path`` (the ``.pth``
files inside that folder, among them the editable install's import hook, are not run), so the
source checkout cannot stand in for the wheel; the test checks that it does not.
"""

import shutil
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.helpers import REPO, run_command

pytestmark = [pytest.mark.slow, pytest.mark.heavy]  # default pytest's 10-minute budget

# What the wheel is built from (pyproject.toml reads README.md as the long description).
SOURCES = ("pyproject.toml", "README.md", "runner")


def build_wheel(folder):
    """The runner's wheel, built from a copy of its sources in ``folder``.

    A copy: setuptools keeps a build/ folder beside the sources and packs whatever it holds,
    so files a checkout once had could reach the wheel from a stale one.
    """
    source = folder / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(REPO / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    result = run_command([*command, "-w", folder / "dist", source], cwd=folder, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (folder / "dist").glob("runner-*.whl")
    return wheel


def fresh_virtualenv(folder, wheel):
    """A virtualenv with the wheel installed and this interpreter's packages importable."""
    venv.create(folder, with_pip=False)
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": folder, "platbase": folder}))
    ours = [path for path in sys.path if Path(path).name == "site-packages"]
    (site_packages / "dependencies.pth").write_text("\n".join(ours) + "\n")
    python = folder / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps"]
    result = run_command([*install, "--no-index", wheel], cwd=folder, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return python


def test_a_wheel_in_a_fresh_virtualenv_runs_the_default_experiment(tmp_path):
    python = fresh_virtualenv(tmp_path / "venv", build_wheel(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    # An empty PYTHONPATH is ignored: the developer's own (a worktree) must not reach the run.
    env = {"PYTHONPATH": ""}

    where = run_command([python, "-c", "import runner; print(runner.__file__)"], cwd=empty, env=env)
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "venv"), where

    result = run_command([python, "-m", "runner"], cwd=empty, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    client = MlflowClient(f"sqlite:///{empty / 'outputs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("runner").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["model.name"] == "mlp_4_8_8_3"
    assert run.data.metrics["test_accuracy"] >= 0.9
