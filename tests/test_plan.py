"""plan=true: the plan of a run or a sweep, printed by the real CLI, writing nothing.

Each CLI test runs ``python -m runner`` in a temporary folder and compares the folder (and the
MLflow store in it) before and after: the plan must make no run folder, sweep folder, MLflow
run or parent run.
"""

import hashlib
import re
import sys

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from runner.plan import run_if_asked
from runner.sweeps.identity import job_identity
from tests.helpers import compose_config, run_cli, run_command

BATCHES = (8, 16, 32)
MODELS = ("mlp_4_8_8_3", "mlp_4_16_16_3", "mlp_4_32_32_3", "mlp_4_16_3")
# A job's line: number, overrides, layer sizes, parameter count, identity, time.
JOB_LINE = re.compile(
    r"^(\d+)\s+(batch=\d+ model=\w+ epochs=2)\s+(\[[\d, ]+\])\s+([\d,]+)\s+([0-9a-f]{16})\s+(.*)$"
)


def listing(folder):
    """Every path under ``folder`` with the hash of each file's bytes."""
    return {
        str(path.relative_to(folder)): (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        )
        for path in sorted(folder.rglob("*"))
    }


def parameters(sizes):
    """n_in·n_out + n_out per dense layer, summed."""
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:], strict=False))


@pytest.mark.slow
def test_single_run_plan_prints_the_table_and_writes_nothing(tmp_path):
    result = run_cli("plan=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"dense_1 \(Dense\)\s+\(None, 4\)\s+\(4, 8\)", result.stdout)
    assert f"Total params: {parameters([4, 8, 8, 3])}" in result.stdout
    assert "dataset iris: 75 train, 30 val, 45 test rows" in result.stdout  # loaded and split
    assert not re.search(r"trained \d+ epochs", result.stdout)
    assert listing(tmp_path) == {}  # no outputs/: no run folder, no store, no tracking worker


@pytest.mark.slow
def test_a_plan_starts_no_tracking_worker(tmp_path):
    # cli() starts a single run's tracking worker early; the plan must exit before it.
    spy = (
        "import sys, runner.__main__ as entry, runner.pipeline as pipeline\n"
        "pipeline.start_tracking_worker = lambda: print('TRACKING WORKER STARTED')\n"
        "sys.argv = ['runner', 'plan=true']\n"
        "entry.cli()\n"
    )
    result = run_command([sys.executable, "-c", spy], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Total params: 139" in result.stdout
    assert "TRACKING WORKER STARTED" not in result.stdout


@pytest.mark.slow
def test_a_plan_fails_with_the_runs_own_error_when_the_data_does_not_fit(tmp_path):
    plan = run_cli("plan=true", "dataset=wine", cwd=tmp_path)
    run = run_cli("dataset=wine", "tracking.enabled=false", cwd=tmp_path)
    [error] = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    assert "takes 4 input features but dataset 'wine' has 13" in error
    assert plan.returncode == run.returncode == 1
    assert plan.stderr.strip() == error


@pytest.mark.slow
def test_a_sweep_plan_names_the_jobs_that_would_fail(tmp_path):
    result = run_cli("-m", "dataset=iris,wine", "plan=true", cwd=tmp_path)
    assert result.returncode == 1
    assert "job 1 would fail at once: model mlp_4_8_8_3 takes 4 input features" in result.stdout
    assert "1 of 2 jobs of the sweep would fail at once" in result.stderr
    assert listing(tmp_path) == {}


@pytest.mark.slow
def test_plan_false_runs_as_usual(tmp_path):
    result = run_cli("plan=false", "epochs=1", "tracking.enabled=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "trained 1 epochs" in result.stdout


@pytest.mark.slow
def test_the_plan_of_a_3x4_grid_lists_12_jobs_and_leaves_outputs_and_the_store(project_dir):
    earlier = run_cli("epochs=2", "tracking.log_model=false", cwd=project_dir)
    assert earlier.returncode == 0, earlier.stderr
    before = listing(project_dir)

    result = run_cli(
        "-m",
        f"batch={','.join(map(str, BATCHES))}",
        f"model={','.join(MODELS)}",
        "epochs=2",
        "plan=true",
        cwd=project_dir,
    )

    assert result.returncode == 0, result.stderr
    assert listing(project_dir) == before  # no multirun folder, no run, no parent run
    jobs = [m.groups() for m in map(JOB_LINE.match, result.stdout.splitlines()) if m]
    assert [int(number) for number, *_ in jobs] == list(range(12))
    planned = {overrides: rest for _, overrides, *rest in jobs}
    assert len(planned) == 12
    for batch in BATCHES:
        for model in MODELS:
            overrides = f"batch={batch} model={model} epochs=2"
            layers, params, identity, _ = planned[overrides]
            sizes = [int(size) for size in model.split("_")[1:]]
            assert layers == str(sizes)
            assert int(params.replace(",", "")) == parameters(sizes)
            job = compose_config(*overrides.split())  # what the job's run would see
            assert identity == job_identity(OmegaConf.to_container(job, resolve=True))
    assert "12 jobs: 0 already finished, 12 to run" in result.stdout

    # The earlier run (mlp_4_8_8_3, iris, 2 epochs) estimates the 3 jobs of its model.
    client = MlflowClient(f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}")
    [run] = client.search_runs(client.search_experiments()[0].experiment_id)
    seconds = (run.info.end_time - run.info.start_time) / 1000
    for batch in BATCHES:
        assert planned[f"batch={batch} model=mlp_4_8_8_3 epochs=2"][3] == f"~{seconds:.1f} s (of 1)"
        assert planned[f"batch={batch} model=mlp_4_16_3 epochs=2"][3] == "-"
    assert f"Estimated time: {3 * seconds:.1f} s for 3 of the 12 jobs to run" in result.stdout
    # Another number of epochs is another kind of job: no estimate from that run.
    epochs = run_cli("-m", "epochs=2,3", "plan=true", cwd=project_dir)
    assert re.search(r"^0\s+epochs=2\s.*\(of 1\)$", epochs.stdout, re.MULTILINE)
    assert re.search(r"^1\s+epochs=3\s.*\s-$", epochs.stdout, re.MULTILINE)


OPTUNA_SWEEP = (
    "-m",
    "hydra/sweeper=optuna_search",
    "epochs=1",
    "tracking.log_model=false",
)


@pytest.mark.slow
def test_the_optuna_plan_lists_the_space_and_the_trials_left(tmp_path):
    # The study's trials are the sweep's FINISHED children: two of them, one stopped by hand.
    ran = run_cli(*OPTUNA_SWEEP, "hydra.sweeper.n_trials=3", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    (parent,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`runner.sweep` = 'true'"
    )
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    client.set_terminated(children[0].info.run_id, "FAILED")  # as if it had failed
    before = listing(tmp_path)

    result = run_cli(*OPTUNA_SWEEP, "hydra.sweeper.n_trials=5", "plan=true", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (
        f"n_trials=5; 2 finished under MLflow parent run {parent.info.run_name} "
        f"({parent.info.run_id}); 3 left"
    ) in result.stdout
    for key in ("lr: ", "batch: ", "model: "):
        assert f"\n  {key}" in result.stdout
    assert "CategoricalDistribution(choices=(8, 16, 32, 64))" in result.stdout
    assert "  epochs=1 (fixed)" in result.stdout
    assert listing(tmp_path) == before


@pytest.mark.slow
def test_the_optuna_plan_of_a_new_sweep_creates_no_store(tmp_path):
    result = run_cli(*OPTUNA_SWEEP, "plan=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "n_trials=20; 0 finished" in result.stdout and "20 left" in result.stdout
    assert listing(tmp_path) == {}


@pytest.mark.slow
def test_a_sweep_plan_marks_the_jobs_a_run_again_would_skip(tmp_path):
    sweep = ("-m", "batch=16,32", "epochs=2", "tracking.log_model=false")
    ran = run_cli(*sweep, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    (parent,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`runner.sweep` = 'true'"
    )
    (batch32,) = client.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{parent.info.run_id}' and params.batch = '32'",
    )
    client.set_terminated(batch32.info.run_id, "KILLED")  # as if Ctrl-C had stopped it
    before = listing(tmp_path)

    result = run_cli(*sweep, "plan=true", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert re.search(r"^0\s+batch=16 .*finished: skipped$", result.stdout, re.MULTILINE)
    assert not re.search(r"^1\s+batch=32 .*finished: skipped$", result.stdout, re.MULTILINE)
    assert f"continues MLflow parent run {parent.info.run_name}" in result.stdout
    assert "2 jobs: 1 already finished, 1 to run" in result.stdout
    assert listing(tmp_path) == before
    # With sweep.restart=true the same command is a new sweep: nothing is skipped.
    fresh = run_cli(*sweep, "sweep.restart=true", "plan=true", cwd=tmp_path)
    assert "2 jobs: 0 already finished, 2 to run" in fresh.stdout, fresh.stderr


def test_plan_cannot_be_swept(capsys):
    with pytest.raises(SystemExit) as exit:
        run_if_asked(["-m", "plan=true,false"])
    assert exit.value.code == 1
    assert "'plan=true,false' sweeps plan; plan takes one value" in capsys.readouterr().err


def test_commands_without_plan_true_are_left_to_hydra():
    assert run_if_asked(["lr=0.1"]) is None
    assert run_if_asked(["plan=true", "--cfg", "job"]) is None
