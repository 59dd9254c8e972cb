"""What MLflow's UI reads of runner's experiments and runs: their kind and their source."""

import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import SourceType
from mlflow.utils import mlflow_tags

from runner.tracking import tags
from runner.tracking.store import ensure_experiment, open_store

UI_BUNDLE = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"


@pytest.fixture
def client(tmp_path, migrated_store):
    shutil.copy(migrated_store, tmp_path / "mlflow.db")
    return open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")


def kind(client, name):
    return client.get_experiment_by_name(name).tags.get(tags.EXPERIMENT_KIND)


def test_a_new_experiment_opens_on_its_training_runs(client, tmp_path):
    ensure_experiment(client, "runner", (tmp_path / "artifacts").as_uri())
    assert kind(client, "runner") == "custom_model_development"


def test_an_experiment_without_a_kind_gets_one_and_a_chosen_kind_stays(client):
    bare = client.create_experiment("made by hand")
    chosen = client.create_experiment("genai", tags={tags.EXPERIMENT_KIND: "genai_development"})
    assert ensure_experiment(client, "made by hand", None) == bare
    assert ensure_experiment(client, "genai", None) == chosen
    assert kind(client, "made by hand") == "custom_model_development"
    assert kind(client, "genai") == "genai_development"


@pytest.mark.skipif(not UI_BUNDLE.is_dir(), reason="this MLflow ships without its UI")
def test_the_kind_is_the_one_the_installed_mlflow_ui_calls_machine_learning():
    # MLflow defines its experiment kinds only in the UI's JavaScript, not in Python.
    bundle = "".join(path.read_text(errors="replace") for path in UI_BUNDLE.glob("main.*.js"))
    assert f'CUSTOM_MODEL_DEVELOPMENT="{tags.MODEL_TRAINING}"' in bundle
    assert f'"{tags.EXPERIMENT_KIND}"' in bundle


def test_source_tags_are_mlflows_own():
    assert tags.SOURCE_NAME == mlflow_tags.MLFLOW_SOURCE_NAME
    assert tags.SOURCE_TYPE == mlflow_tags.MLFLOW_SOURCE_TYPE
    assert tags.LOCAL_SOURCE == SourceType.to_string(SourceType.LOCAL)
