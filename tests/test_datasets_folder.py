"""``datasets/``, the home of a user's own tables (issue 10, item 17): where a relative
``dataset.path`` is looked for, and a run from a folder holding ``datasets/`` tracked end to end.

A ``datasets/`` folder in the folder a run starts from is on ``sys.path`` (``python -m`` puts
the current folder first), and a folder without ``__init__.py`` imports as a namespace
package: ``import datasets`` succeeds there even without Hugging Face's ``datasets``. MLflow
3.17 imports that package only inside ``mlflow.data.from_huggingface`` and
``HuggingFaceDatasetSource.load``, which the runner never calls (it logs NumPy inputs); with
the real package installed, its ``__init__.py`` wins over a namespace folder anyway. The
tracked run below goes through every MLflow path the runner uses (the worker, ``log_input``,
the pyfunc model, loading it back) from such a folder.
"""

import sys

import pytest
from mlflow import MlflowClient

from runner.datasets import _locate, load_dataset
from runner.errors import DataError
from tests.helpers import run_cli, run_command

# Two features; the class is whether x0 > x1.
TABLE = "x0,x1,label\n" + "".join(
    f"{a},{b},{int(a > b)}\n" for a in range(8) for b in range(8) if a != b
)


def write_table(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TABLE)
    return path


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A source checkout (a folder with pyproject.toml) whose datasets/ the lookup uses."""
    root = tmp_path / "checkout"
    (root / "datasets").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    monkeypatch.setattr(_locate, "SOURCE_ROOT", root)
    return root


@pytest.fixture
def run_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_a_relative_path_is_found_in_the_current_folder_first(run_folder, checkout):
    write_table(run_folder / "t.csv")
    (run_folder / "datasets").mkdir()
    (run_folder / "datasets" / "t.csv").write_text("not,the,file\n")
    assert str(_locate.find_data_file("t.csv")) == "t.csv"


def test_then_in_datasets_of_the_current_folder(run_folder, checkout):
    write_table(run_folder / "datasets" / "t.csv")
    write_table(checkout / "datasets" / "t.csv")
    assert str(_locate.find_data_file("t.csv")) == "datasets/t.csv"
    assert load_dataset("csv", path="t.csv", target="label").name == "csv:t.csv"


def test_then_in_datasets_of_the_source_checkout(run_folder, checkout):
    write_table(checkout / "datasets" / "sub" / "t.csv")
    assert _locate.find_data_file("sub/t.csv") == checkout / "datasets" / "sub" / "t.csv"


def test_an_installed_wheel_has_no_checkout_to_look_in(run_folder, tmp_path, monkeypatch):
    site_packages = tmp_path / "site-packages"  # holds Hugging Face's datasets/, no pyproject
    write_table(site_packages / "datasets" / "t.csv")
    monkeypatch.setattr(_locate, "SOURCE_ROOT", site_packages)
    with pytest.raises(DataError) as caught:
        _locate.find_data_file("t.csv")
    assert str(site_packages) not in str(caught.value)


def test_a_missing_file_names_every_place_looked(run_folder, checkout):
    with pytest.raises(DataError) as caught:
        load_dataset("csv", path="nope.csv", target="label")
    message = str(caught.value)
    for place in (run_folder, run_folder / "datasets", checkout / "datasets"):
        assert f"{place / 'nope.csv'}" in message
    assert "put the file in a datasets/ folder" in message and "\n" not in message


def test_run_from_the_checkout_root_looks_in_its_datasets_once(checkout, monkeypatch):
    monkeypatch.chdir(checkout)
    with pytest.raises(DataError) as caught:
        _locate.find_data_file("nope.csv")
    assert str(caught.value).count(str(checkout / "datasets" / "nope.csv")) == 1


def test_an_absolute_path_is_taken_as_it_is(run_folder, checkout):
    write_table(checkout / "datasets" / "t.csv")
    absolute = run_folder / "t.csv"
    assert _locate.find_data_file(absolute) == absolute  # reading it then says it is missing


@pytest.mark.heavy
@pytest.mark.slow
def test_a_tracked_run_from_a_folder_holding_datasets(tmp_path):
    write_table(tmp_path / "datasets" / "my_table.csv")
    (tmp_path / "my_configs" / "dataset").mkdir(parents=True)
    (tmp_path / "my_configs" / "dataset" / "my_table.yaml").write_text(
        "defaults:\n  - csv\n  - _self_\npath: my_table.csv\ntarget: label\n"
    )
    args = ["--config-dir", "my_configs", "dataset=my_table", "model.layers=[2,8,2]", "epochs=5"]
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("runner").experiment_id])
    assert run.info.status == "FINISHED"
    inputs = {i.dataset.name for i in run.inputs.dataset_inputs}
    assert inputs == {"csv:my_table.csv-train", "csv:my_table.csv-val", "csv:my_table.csv-test"}
    # The model loads and predicts in a process started in that folder, datasets/ on its path.
    load = (
        "import mlflow, pandas as pd; "
        f"model = mlflow.pyfunc.load_model('runs:/{run.info.run_id}/model'); "
        "print(model.predict(pd.DataFrame({'x0': [7.0], 'x1': [0.0]})).shape)"
    )
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"}
    loaded = run_command([sys.executable, "-c", load], cwd=tmp_path, env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip().endswith("(1, 2)")
