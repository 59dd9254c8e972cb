"""What a newcomer meets at the command line (issue 10): ``epochs=0``, damaged files, the
model's name, where errors go, mistyped keys and ``--help``. The command-line tests drive
``python -m runner`` alone, so they run against any checkout of it."""

import io
import re

import numpy as np
import pytest
from mlflow import MlflowClient

from runner import pipeline
from runner.config import is_schema_key, to_run_config, unknown_key_error
from runner.engine.mlp import read_npz
from runner.errors import ConfigError, WeightsError
from runner.overrides import check_overrides
from tests.helpers import compose_config, compose_run_config, free_port, pickle_bomb, run_cli


def only_run(workdir):
    client = MlflowClient(f"sqlite:///{workdir / 'outputs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("runner").experiment_id])
    return run


def one_error_line(result):
    """The single line a user error prints, on stderr, with nothing on stdout."""
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------
# epochs=0 only evaluates


@pytest.mark.slow
def test_epochs_zero_evaluates_and_logs_the_test_metrics(project_dir):
    result = run_cli("epochs=0", "tracking.log_model=false", cwd=project_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "trained 0 epochs" in result.stdout and "test  test_loss" in result.stdout
    run = only_run(project_dir)
    assert run.info.status == "FINISHED"
    assert {"test_loss", "test_accuracy"} <= set(run.data.metrics)


def test_epochs_zero_without_a_val_split_scores_the_untrained_train_loss(tmp_path):
    cfg = compose_run_config("epochs=0", "dataset.val_fraction=0")
    outcome = pipeline.run(cfg, tmp_path)
    parts = pipeline.prepare(cfg)  # the same seed: the same untrained net and split
    train = parts.dataset.train
    assert outcome.objective == parts.net.evaluate(train.X, train.Y, parts.loss)[0]


# ---------------------------------------------------------------------------------------------
# Damaged checkpoints and weights: one line naming the file, from the one reader


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A short untracked run's folder: its checkpoint.npz and weights.npz."""
    workdir = tmp_path_factory.mktemp("trained")
    result = run_cli("epochs=2", "tracking.enabled=false", f"hydra.run.dir={workdir}", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return workdir


def cut_in_half(source, target):
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


@pytest.mark.slow
def test_a_truncated_checkpoint_is_one_line_naming_it(trained_run, tmp_path):
    checkpoint = cut_in_half(trained_run / "checkpoint.npz", tmp_path / "checkpoint.npz")
    result = run_cli(f"resume={checkpoint}", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert f"checkpoint {checkpoint} is truncated or corrupt" in line, line
    assert "pass a whole checkpoint.npz" in line, line


@pytest.mark.slow
def test_truncated_weights_are_one_line_naming_them(trained_run, tmp_path):
    weights = cut_in_half(trained_run / "weights.npz", tmp_path / "weights.npz")
    result = run_cli(f"init_from={weights}", "tracking.enabled=false", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert f"weights file {weights} is truncated or corrupt" in line, line


@pytest.mark.slow
def test_a_file_that_is_no_npz_is_not_called_pickled(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("these are not weights\n")
    result = run_cli(f"init_from={text}", "tracking.enabled=false", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert f"{text} is not an .npz file" in line and "pickled" not in line, line


def npy_bytes():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("what", "content", "says"),
    [
        ("a text file", b"a,b\n1,2\n", "is not an .npz file"),
        ("a lone .npy", npy_bytes(), "single .npy array"),
        ("a zip cut short", b"PK\x03\x04" + b"\0" * 40, "truncated or corrupt"),
    ],
)
def test_the_reader_says_what_the_file_is(tmp_path, what, content, says):
    path = tmp_path / "file.npz"
    path.write_bytes(content)
    for kind, fix in [("weights file", "pass weights"), ("checkpoint", "pass a checkpoint")]:
        with pytest.raises(WeightsError) as raised:
            read_npz(path, kind, fix)
        message = str(raised.value)
        assert message.startswith(f"{kind} {path} ") and says in message, message
        assert message.endswith(fix) and "pickled" not in message, message


def test_a_pickle_inside_an_npz_is_still_called_pickled(tmp_path):
    path = tmp_path / "file.npz"
    bomb, marker = pickle_bomb(tmp_path)
    np.savez(path, W1=bomb)
    with pytest.raises(WeightsError, match="file.npz holds pickled objects"):
        read_npz(path)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# The model's name follows the layers it trains


@pytest.mark.slow
def test_a_model_named_by_its_sizes_is_named_by_the_layers_trained(project_dir):
    result = run_cli(
        "model.layers=[4,16,3]", "epochs=1", "tracking.log_model=false", cwd=project_dir
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Model: "mlp_4_16_3"' in result.stdout and "mlp_4_8_8_3" not in result.stdout
    run = only_run(project_dir)
    assert run.info.run_name.startswith("mlp_4_16_3-"), run.info.run_name
    assert run.data.params["model.name"] == "mlp_4_16_3"


def test_the_name_rule_in_the_config():
    composed = compose_config("model.layers=[4,16,3]")
    assert to_run_config(composed).model.name == "mlp_4_16_3"
    assert composed.model.name == "mlp_4_16_3"  # the config logged as params says the same
    assert compose_run_config("model=mlp_4_16_16_3").model.name == "mlp_4_16_16_3"
    named = compose_run_config("model.name=wide", "model.layers=[4,16,3]")
    assert named.model.name == "wide"  # the user's own name for a model stays


# ---------------------------------------------------------------------------------------------
# Errors go to stderr, exit codes as before


# Config, data and weights errors: tests/test_cli.py's bad inputs, each one line on stderr.


@pytest.mark.slow
def test_a_tracking_error_goes_to_stderr_alone(tmp_path):
    result = run_cli("epochs=1", f"tracking.uri=http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is not reachable" in one_error_line(result)


@pytest.mark.slow
def test_a_refused_override_goes_to_stderr_alone(tmp_path):
    result = run_cli("lr=${oc.env:HOME}", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "interpolations" in one_error_line(result)


@pytest.mark.slow
def test_a_sweep_jobs_error_goes_to_stderr_and_its_job_line_to_stdout(tmp_path):
    result = run_cli("-m", "batch=0", "tracking.enabled=false", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr  # a failed job scores inf
    assert "Error: batch must be > 0" in result.stderr
    assert "Error" not in result.stdout and "#0 batch=0" in result.stdout, result.stdout


# ---------------------------------------------------------------------------------------------
# A mistyped key: the closest keys of the schema, not Hydra's "+key" advice


@pytest.mark.slow
@pytest.mark.parametrize(
    ("typo", "says"),
    [
        ("bacth=32", "unknown key bacth; did you mean batch?"),
        (
            "optimizer.momentun=0.9",
            "unknown key optimizer.momentun; did you mean optimizer.momentum?",
        ),
    ],
)
def test_a_mistyped_key_names_the_key_meant(typo, says, tmp_path):
    result = run_cli(typo, "epochs=1", "tracking.enabled=false", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert says in line and "+" not in line, line


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("bacth", "did you mean batch?"),
        ("modle.layers", "did you mean model.layers?"),
        ("early_stoping.patience", "did you mean early_stopping.patience?"),
        ("momentun", "did you mean optimizer.momentum?"),  # the right name at the wrong depth
        ("epoch", "did you mean epochs or epoch_lines?"),
        ("optimizer.xyz", "valid keys here are ['betas', 'eps', 'gamma', 'min_lr',"),
    ],
)
def test_unknown_keys_get_the_closest_schema_keys(key, says):
    assert not is_schema_key(key)
    message = str(unknown_key_error(key))
    assert message.startswith(f"unknown key {key}; {says}"), message


def test_the_key_check_passes_schema_and_hydra_keys_only():
    check_overrides(["batch=8", "optimizer.momentum=0.9", "model.layers.0=4", "model=mlp_4_16_3"])
    check_overrides(["hydra.run.dir=x", "~early_stopping.patience", "hydra/launcher=joblib"])
    check_overrides(["+bacth=32"])  # what + adds is the schema check's (below)
    for typo in ("~bacth", "++bacth=32"):
        with pytest.raises(ConfigError, match=re.escape(f"'{typo}': unknown key bacth; did")):
            check_overrides([typo])
    with pytest.raises(ConfigError, match="unknown key bacth; did you mean batch"):
        check_overrides(["hydra.sweeper.params.bacth=8,16"])  # a sweep's keys are checked too


def test_an_added_key_gets_the_same_hint_from_the_schema_check():
    with pytest.raises(ConfigError, match=r"^unknown key bacth; did you mean batch\?$"):
        to_run_config(compose_config("+bacth=32"))


# ---------------------------------------------------------------------------------------------
# --help lists what a user can pick


@pytest.mark.slow
def test_help_leaves_out_the_schemas(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "base_" not in result.stdout, result.stdout
    listing = result.stdout.split("== Config ==")[0].splitlines()
    groups = dict(line.split(": ", 1) for line in listing if ": " in line)
    for group, option in [("model", "mlp_4_8_8_3"), ("dataset", "iris"), ("optimizer", "sgd")]:
        assert option in groups[group].split(", "), result.stdout
