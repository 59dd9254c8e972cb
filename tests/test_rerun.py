"""`python -m runner.rerun`: real runs trained again from a real store, bit for bit."""

import copy
import re
import shutil
import signal
import sys

import numpy as np
import pytest
from mlflow import MlflowClient

from runner.rerun import NOT_PINNED, Mismatch, compose, first_difference, pins, verify
from runner.tracking.runinfo import connect, flatten, load_run, weights_digest
from tests.helpers import MlflowServer, run_cli, run_command, start_cli_until

pytestmark = pytest.mark.slow

FAST = ("tracking.log_model=false",)
# Tens of milliseconds an epoch, so a signal after epoch 5 lands mid-training.
LONG = ("model=mlp_64_128_64_10", "dataset=digits", "epochs=30", "optimizer=momentum", "lr=0.01")


def rerun(*args, cwd, env=None):
    """Run ``python -m runner.rerun``; returns the CompletedProcess (text)."""
    return run_command([sys.executable, "-m", "runner.rerun", *args], cwd=cwd, timeout=300, env=env)


def run_id_of(output):
    return re.search(r"MLflow run \S+ \((\w+)\)", output).group(1)


def train(workdir, *overrides):
    result = run_cli(*overrides, cwd=workdir)
    assert result.returncode == 0, result.stderr
    return run_id_of(result.stdout + result.stderr)


def write_csv(path, seed=0):
    """Three separable classes in four numeric features, with a header row."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1, 2], 40)
    features = rng.normal(size=(120, 4)) + labels[:, None]
    rows = [
        ",".join(f"{v:.6f}" for v in row) + f",{c}" for row, c in zip(features, labels, strict=True)
    ]
    path.write_text("a,b,c,d,label\n" + "\n".join(rows) + "\n")


def interrupted_and_resumed(workdir):
    """A run stopped by SIGINT after epoch 5, then finished with resume=<run id>."""
    process, lines = start_cli_until(*LONG, *FAST, cwd=workdir, pattern=r"epoch +5/")
    process.send_signal(signal.SIGINT)
    lines.append(process.stdout.read())
    assert process.wait(timeout=120) == 130, "".join(lines)
    run_id = "".join(lines).strip().splitlines()[-1].rsplit("=", 1)[1]
    assert train(workdir, f"resume={run_id}") == run_id
    return run_id


def sweep_child(workdir):
    """The second job (seed=1) of a two-job sweep: its overrides come from the sweep."""
    sweep = run_cli("-m", "seed=0,1", "epochs=3", *FAST, cwd=workdir)
    assert sweep.returncode == 0, sweep.stderr
    client = MlflowClient(f"sqlite:///{workdir / 'outputs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("runner").experiment_id
    (child,) = [
        r
        for r in client.search_runs([experiment])
        if "runner.sweep_job" in r.data.tags and r.data.params["seed"] == "1"
    ]
    return child.info.run_id


CSV = ("dataset=csv", "dataset.path=data.csv", "dataset.target=label")
ORIGINALS = {
    # The pyfunc model doubles a run's time and plays no part in what a rerun reproduces.
    "default": lambda workdir: train(workdir, "epochs=5", *FAST),
    "float32 momentum": lambda workdir: train(
        workdir, "dtype=float32", "optimizer=momentum", "lr=0.05", "epochs=8", *FAST
    ),
    "sweep child": sweep_child,
    "resumed": interrupted_and_resumed,
    "csv": lambda workdir: train(workdir, *CSV, "epochs=5", *FAST),
}


class Project:
    """A project folder whose outputs/mlflow.db gets each kind of original run once, on demand."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.client = MlflowClient(f"sqlite:///{workdir / 'outputs' / 'mlflow.db'}")
        self._runs = {}

    def run(self, kind):
        if kind not in self._runs:
            self._runs[kind] = ORIGINALS[kind](self.workdir)
        return self._runs[kind]


@pytest.fixture(scope="module")
def project(tmp_path_factory, migrated_store):
    workdir = tmp_path_factory.mktemp("rerun")
    (workdir / "outputs").mkdir()
    shutil.copy(migrated_store, workdir / "outputs" / "mlflow.db")
    write_csv(workdir / "data.csv")
    return Project(workdir)


# A sweep and an interrupted run cost the most, and the default run checks the same path as
# float32 with momentum: those run with the heavy tests, which CI runs too.
@pytest.mark.parametrize(
    "kind",
    [
        "default",
        pytest.param("float32 momentum", marks=pytest.mark.heavy),
        pytest.param("sweep child", marks=pytest.mark.heavy),
        pytest.param("resumed", marks=pytest.mark.heavy),
        "csv",
    ],
)
def test_rerun_verify_reports_identical(project, kind, tmp_path):
    workdir, client = project.workdir, project.client
    original = project.run(kind)
    result = rerun(original, "--verify", cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "identical: weights SHA-256" in result.stdout
    new = re.search(rf"rerun of {original}: run (\w+) in ", result.stdout).group(1)
    assert new != original
    rerun_run, original_run = client.get_run(new), client.get_run(original)
    assert rerun_run.info.status == "FINISHED"
    assert rerun_run.data.tags["runner.rerun_of"] == original
    assert rerun_run.info.experiment_id == original_run.info.experiment_id
    # The claim checked from the store itself, not through the code under test.
    for key in original_run.data.metrics:
        history = [(m.step, m.value) for m in client.get_metric_history(original, key)]
        again = [(m.step, m.value) for m in client.get_metric_history(new, key)]
        assert sorted(again) == sorted(history), key
    weights = [
        dict(np.load(client.download_artifacts(r, "weights.npz", str(tmp_path / r))))
        for r in (original, new)
    ]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        np.testing.assert_array_equal(weights[0][key], weights[1][key])


@pytest.mark.heavy
def test_rerun_names_the_digest_of_a_changed_csv(project):
    workdir, client = project.workdir, project.client
    write_csv(workdir / "changing.csv")
    overrides = ("dataset=csv", "dataset.path=changing.csv", "dataset.target=label", "epochs=2")
    original = train(workdir, *overrides, *FAST)
    logged = {
        i.dataset.name: i.dataset.digest for i in client.get_run(original).inputs.dataset_inputs
    }
    lines = (workdir / "changing.csv").read_text().splitlines()
    lines[1] = "5.0," + lines[1].split(",", 1)[1]  # one feature of the first row, in some split
    (workdir / "changing.csv").write_text("\n".join(lines) + "\n")

    result = rerun(original, "--verify", cwd=workdir)
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "digest" in x]
    found = re.search(
        r"the data set's digest differs: logged (\w+), now (\w+) \(\w+ split (\S+),", line
    )
    assert found, line
    assert logged[found.group(3)] == found.group(1) != found.group(2)
    assert "file changing.csv" in line
    assert "Traceback" not in result.stderr


def test_verify_names_the_first_epoch_and_array_that_differ(project):
    """Two real runs one ulp apart in one place: verify says where."""
    uri, client = connect(f"sqlite:///{project.workdir / 'outputs' / 'mlflow.db'}")
    default = project.run("default")
    original, other = load_run(client, uri, default), load_run(client, uri, default)
    last_epoch, value = other.histories["val_loss"][-1]
    other.histories["val_loss"][-1] = (last_epoch, np.nextafter(value, np.inf))
    with pytest.raises(Mismatch, match=rf"the metrics part at epoch {last_epoch}: val_loss"):
        verify(original, other)
    assert first_difference(original, other)[0] == last_epoch

    other = load_run(client, uri, default)
    for key in original.weights:
        changed = {k: v.copy() for k, v in original.weights.items()}
        changed[key].flat[-1] = np.nextafter(changed[key].flat[-1], np.inf)
        assert weights_digest(changed) != weights_digest(original.weights), key
        other.weights = changed
        with pytest.raises(Mismatch, match=rf"arrays that differ: {key}\n"):
            verify(original, other)


def test_keys_the_overrides_no_longer_give_are_pinned(project):
    """A runner/conf/ file changed since the run: its logged values go on the command line."""
    uri, client = connect(f"sqlite:///{project.workdir / 'outputs' / 'mlflow.db'}")
    original = load_run(client, uri, project.run("csv"))
    today = copy.deepcopy(original.config)
    assert pins(original, today) == []
    today["model"]["layers"] = [4, 16, 3]
    today["dataset"]["path"] = "other.csv"
    today["lr"] = 0.5
    today["tracking"]["uri"] = "http://elsewhere"  # the rerun sets the store itself
    del today["model"]["init_std"]
    assert sorted(pins(original, today)) == [
        "dataset.path='data.csv'",
        "lr=0.1",
        "model.init_std=0.01",
        "model.layers=[4,8,8,3]",
    ]
    # Every logged value written as an override composes back to itself.
    every = pins(original, {})
    logged = {k: v for k, v in original.flat_config.items() if k not in NOT_PINNED}
    assert len(every) == len(logged)
    composed = flatten(compose(every, env=None))
    assert {k: v for k, v in composed.items() if k not in NOT_PINNED} == logged


@pytest.mark.heavy  # an MLflow server's start-up costs tens of seconds on a busy machine
def test_rerun_through_a_tracking_server(project, tmp_path):
    workdir = project.workdir
    original = project.run("float32 momentum")  # before the server copies the store
    server = MlflowServer(tmp_path, workdir / "outputs" / "mlflow.db").start()
    try:
        result = rerun(original, "--verify", "--tracking-uri", server.uri, cwd=workdir)
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"in {server.uri}" in result.stdout
    assert "identical: weights SHA-256" in result.stdout


def test_unknown_run_and_unreachable_store_are_one_line(project_dir):
    unknown = rerun("0" * 32, cwd=project_dir)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        f"Error: no run {'0' * 32} in sqlite:///{project_dir / 'outputs' / 'mlflow.db'}; pass "
        f"--tracking-uri (or set MLFLOW_TRACKING_URI) to the store that holds it"
    )
    down = rerun("0" * 32, "--tracking-uri", "http://127.0.0.1:9", cwd=project_dir)
    assert down.returncode == 2
    assert down.stderr.startswith("Error: MLflow tracking server http://127.0.0.1:9 is not reach")
    assert len(down.stderr.strip().splitlines()) == 1


def test_a_run_that_did_not_finish_is_refused(project_dir):
    client = MlflowClient(f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}")
    experiment = client.create_experiment("runner", (project_dir / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    client.log_text(run_id, "seed: 0\n", "config.yaml")
    client.set_terminated(run_id, "KILLED")
    result = rerun(run_id, cwd=project_dir)
    assert result.returncode == 2
    assert result.stderr == f"Error: run {run_id} is KILLED, not FINISHED; rerun a finished run\n"
