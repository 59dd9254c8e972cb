"""Interrupt a real run, resume it, and get exactly what an uninterrupted run gets."""

import re
import shutil
import signal

import numpy as np
import pytest
from mlflow import MlflowClient

from tests.helpers import run_cli, start_cli_until

pytestmark = pytest.mark.slow

# Tens of milliseconds an epoch, so a signal after epoch 10 lands mid-training.
RUN = (
    "model=mlp_64_128_64_10",
    "dataset=digits",
    "epochs=60",
    "batch=32",
    "optimizer=momentum",
    "lr=0.01",
    "tracking.log_model=false",
    "tracking.log_every_n_steps=10",
)
KEYS = ("train_loss", "val_loss", "val_accuracy", "lr", "train_step_loss")


def outcome(workdir, run_id):
    """(weights, metric histories, final metrics, status) of a run, read back from MLflow."""
    client = MlflowClient(f"sqlite:///{workdir / 'outputs' / 'mlflow.db'}")
    run = client.get_run(run_id)
    path = client.download_artifacts(run_id, "weights.npz", str(workdir))
    with np.load(path) as data:
        weights = {key: data[key] for key in data.files}
    histories = {
        key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        for key in KEYS
    }
    finals = {k: v for k, v in run.data.metrics.items() if k.startswith("test_")}
    return weights, histories, finals, run.info.status


def run_id_of(output):
    return re.search(r"MLflow run \S+ \((\w+)\)", output).group(1)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, migrated_store):
    workdir = tmp_path_factory.mktemp("straight")
    (workdir / "outputs").mkdir()
    shutil.copy(migrated_store, workdir / "outputs" / "mlflow.db")
    result = run_cli(*RUN, cwd=workdir)
    assert result.returncode == 0, result.stderr
    return outcome(workdir, run_id_of(result.stdout + result.stderr))


def interrupt(workdir, signum):
    """Start the run, signal it after epoch 10, return (exit code, output)."""
    process, lines = start_cli_until(*RUN, cwd=workdir, pattern=r"epoch +10/")
    process.send_signal(signum)
    lines.append(process.stdout.read())
    return process.wait(timeout=120), "".join(lines)


@pytest.mark.parametrize(
    ("signum", "code", "by"),
    [
        (signal.SIGINT, 130, "run id"),
        pytest.param(  # up-arrow, then resume=<id>
            signal.SIGTERM, 143, "run id and its overrides", marks=pytest.mark.heavy
        ),
        pytest.param(signal.SIGINT, 130, "checkpoint path", marks=pytest.mark.heavy),
    ],
)
def test_interrupted_run_resumes_bit_identical(project_dir, uninterrupted, signum, code, by):
    returncode, output = interrupt(project_dir, signum)
    assert returncode == code, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("Resume with: python -m runner resume="), output
    assert "Traceback" not in output
    run_id = last.rsplit("=", 1)[1]
    stopped = int(re.search(r"stopped after epoch (\d+)", output).group(1))
    assert 10 <= stopped < 60
    client = MlflowClient(f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}")
    assert client.get_run(run_id).info.status == "KILLED"
    checkpoint = re.search(r"checkpoint (\S+checkpoint\.npz)", output).group(1)

    target = checkpoint if by == "checkpoint path" else run_id
    repeated = RUN if by == "run id and its overrides" else ()
    resumed = run_cli(*repeated, f"resume={target}", cwd=project_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert run_id_of(resumed.stdout + resumed.stderr) == run_id  # the same MLflow run goes on
    assert f"resuming {checkpoint} after epoch {stopped}" in resumed.stdout + resumed.stderr

    weights, histories, finals, status = outcome(project_dir, run_id)
    expected_weights, expected_histories, expected_finals, _ = uninterrupted
    assert status == "FINISHED"
    assert weights.keys() == expected_weights.keys()
    for key, value in weights.items():
        np.testing.assert_array_equal(value, expected_weights[key])
    assert histories == expected_histories  # every epoch once, bit-identical values
    assert finals == expected_finals


def test_resume_refuses_overrides_that_change_the_run(tmp_path):
    run = ("epochs=2", "lr=0.05", "tracking.enabled=false", f"hydra.run.dir={tmp_path}")
    assert run_cli(*run, cwd=tmp_path).returncode == 0
    checkpoint = tmp_path / "checkpoint.npz"
    result = run_cli(*run, "lr=0.5", "batch=8", f"resume={checkpoint}", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stdout + result.stderr
    assert "lr=0.5 differs from the run's lr=0.05; batch=8 differs from the run's batch=32" in (
        result.stderr
    )


def test_resume_of_an_unknown_run_names_it(project_dir):
    result = run_cli("resume=0123456789abcdef", cwd=project_dir)
    assert result.returncode == 1
    assert "resume=0123456789abcdef is neither a checkpoint file nor a run" in (
        result.stdout + result.stderr
    )
