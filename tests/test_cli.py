"""``python -m runner`` as a person runs it: real Hydra runs in subprocesses."""

import re

import numpy as np
import pytest

from tests.helpers import pickle_bomb, run_cli

pytestmark = pytest.mark.slow

COMMAND_LINES = [
    [],
    ["model=mlp_4_8_8_3", "batch=32"],
    ["model=mlp_64_128_64_10", "dataset=digits", "lr=0.05", "epochs=30", "loss=cross_entropy"],
    ["model.activation=tanh", "optimizer=momentum", "seed=3", "dtype=float32"],
    ["optimizer=adam", "lr=0.01"],
]


@pytest.mark.parametrize("args", COMMAND_LINES, ids=lambda args: " ".join(args) or "default")
def test_documented_command_lines_run(args, tmp_path):
    # Tracking is tested in test_tracking.py; here it would only cost seconds per run.
    result = run_cli(*args, f"hydra.run.dir={tmp_path}", "tracking.enabled=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "weights.npz").is_file()
    accuracy = float(re.search(r"test_accuracy (\S+)", result.stdout).group(1))
    assert accuracy >= 0.9
    # Hydra's job name comes from the config, not from `python -m`'s __main__.
    assert (tmp_path / "runner.log").is_file()
    assert re.search(r"epoch +1/", (tmp_path / "runner.log").read_text())


def test_help_lists_our_groups(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for group in ("model:", "dataset:", "loss:", "optimizer:"):
        assert group in result.stdout
    assert "mlp_784_15_10" in result.stdout and "digits28" in result.stdout


def test_cfg_job_prints_the_composed_config(tmp_path):
    result = run_cli("--cfg", "job", "batch=64", cwd=tmp_path)
    assert result.returncode == 0
    assert "batch: 64" in result.stdout and "name: mlp_4_8_8_3" in result.stdout


def test_two_cli_runs_with_one_seed_are_identical(tmp_path):
    runs = []
    for name in ("a", "b"):
        directory = f"hydra.run.dir={tmp_path / name}"
        result = run_cli("epochs=5", directory, "tracking.enabled=false", cwd=tmp_path)
        assert result.returncode == 0
        with np.load(tmp_path / name / "weights.npz") as weights:
            runs.append(
                (
                    [line for line in result.stdout.splitlines() if "loss" in line],
                    {key: weights[key] for key in weights.files},
                )
            )
    assert runs[0][0] == runs[1][0]
    for key, value in runs[0][1].items():
        np.testing.assert_array_equal(value, runs[1][1][key])


def write(path, text):
    path.write_text(text)
    return path


def csv_case(tmp_path, text, *extra):
    path = write(tmp_path / "data.csv", text)
    return [
        "dataset=csv",
        f"dataset.path={path}",
        "dataset.target=label",
        "model.layers=[2,4,2]",
        *extra,
    ]


def weights_case(tmp_path, kind):
    path = tmp_path / "w.npz"
    if kind == "pickle":  # unpickling it would create the folder tmp/the-pickle-ran
        np.savez(path, W1=pickle_bomb(tmp_path)[0])
    elif kind == "garbage":
        path.write_bytes(b"\x00garbage")
    elif kind == "shape":
        np.savez(
            path,
            W1=np.zeros((4, 9)),
            b1=np.zeros(9),
            W2=np.zeros((9, 8)),
            b2=np.zeros(8),
            W3=np.zeros((8, 3)),
            b3=np.zeros(3),
        )
    return [f"init_from={path}"]


# (case id, args or a function of tmp_path giving them, what the message must name)
BAD_INPUTS = [
    ("batch zero", ["batch=0"], "batch"),
    ("negative lr", ["lr=-0.1"], "lr"),
    ("negative epochs", ["epochs=-1"], "epochs"),
    ("added key", ["+learning_rate=0.1"], "learning_rate"),
    ("added nested key", ["+model.dropout=0.5"], "model.dropout"),
    (
        "mistyped key",
        ["modle.layers=[4,3]"],
        "unknown key modle.layers; did you mean model.layers?",
    ),
    ("unknown activation", ["model.activation=swish"], "model.activation"),
    ("unknown initializer", ["model.init=orthogonal"], "model.init"),
    ("unknown dtype", ["dtype=float16"], "dtype"),
    ("first layer vs features", ["model=mlp_13_16_3"], "model=mlp_4"),
    ("last layer vs classes", ["model.layers=[4,8,2]"], "model.layers"),
    ("loss vs output activation", ["loss=bce"], "loss"),
    ("momentum out of range", ["optimizer.momentum=1.5"], "optimizer.momentum must be in [0, 1)"),
    (
        "unknown optimizer name",  # issue 10: it ran SGD and logged the name
        ["optimizer.name=rmsprop"],
        "optimizer.name must be one of ['adam', 'adamw', 'momentum', 'nesterov', 'sgd']",
    ),
    ("adam eps not positive", ["optimizer=adam", "optimizer.eps=0"], "optimizer.eps must be > 0"),
    (
        "cross_entropy on one output",
        ["model=mlp_30_16_1", "dataset=breast_cancer", "model.output_activation=softmax"],
        "cross_entropy",
    ),
    ("csv without path", ["dataset=csv"], "dataset.path"),
    (
        "csv file missing",
        ["dataset=csv", "dataset.path=nowhere.csv", "dataset.target=y"],
        "nowhere.csv",
    ),
    (
        "csv target missing",
        lambda tmp: csv_case(tmp, "a,b,label\n1,2,0\n")[:2] + ["dataset.target=class"],
        "class",
    ),
    (
        "csv non-numeric cell",
        lambda tmp: csv_case(tmp, "a,b,label\n" + "1,2,0\n3,4,1\n" * 10 + "5,oops,0\n"),
        "row 21",
    ),
    (
        "csv NaN cell",
        lambda tmp: csv_case(tmp, "a,b,label\n" + "1,2,0\n3,4,1\n" * 10 + "5,,0\n"),
        "column 'b'",
    ),
    ("csv empty file", lambda tmp: csv_case(tmp, ""), "data.csv"),
    ("weights file missing", ["init_from=missing.npz"], "missing.npz"),
    ("weights with a pickle", lambda tmp: weights_case(tmp, "pickle"), "w.npz holds pickled"),
    ("weights not an npz", lambda tmp: weights_case(tmp, "garbage"), "w.npz"),
    ("weights of another shape", lambda tmp: weights_case(tmp, "shape"), "W1"),
]


@pytest.mark.parametrize(("case", "args", "named"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_fails_in_one_clear_message(case, args, named, tmp_path):
    args = args(tmp_path) if callable(args) else args
    result = run_cli("epochs=2", f"hydra.run.dir={tmp_path / 'run'}", *args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    lines = result.stderr.strip().splitlines()  # the whole output is that one line, on stderr
    assert result.stdout == "", output
    assert len(lines) == 1 and lines[0].startswith("Error: ") and named in lines[0], output
    assert not (tmp_path / "run" / "weights.npz").exists()
    assert not (tmp_path / "the-pickle-ran").exists()


# Overrides Hydra itself refuses while composing the config, before runner sees it: Hydra's
# own short message (a few lines, ending in its HYDRA_FULL_ERROR hint), never a traceback.
HYDRA_BAD_INPUTS = [
    ("batch not a number", ["batch=abc"], "Value 'abc' of type 'str' could not be converted"),
    ("unknown loss option", ["loss=hinge"], "Could not find 'loss/hinge'"),
    ("unknown model file", ["model=mlp_9_9"], "Could not find 'model/mlp_9_9'"),
]


@pytest.mark.parametrize(
    ("case", "args", "named"), HYDRA_BAD_INPUTS, ids=[c[0] for c in HYDRA_BAD_INPUTS]
)
def test_an_override_hydra_refuses_fails_with_its_message(case, args, named, tmp_path):
    result = run_cli("epochs=2", f"hydra.run.dir={tmp_path / 'run'}", *args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert named in output and "Traceback" not in output, output
    assert output.strip().endswith("HYDRA_FULL_ERROR=1 for a complete stack trace."), output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, tracked",
    [
        ([], True),
        (["model=mlp_4_8_8_3", "batch=32"], True),
        (["-m", "seed=0,1"], True),  # a sweep's worker opens its parent run while Hydra starts
        (["--multirun", "lr=0.01,0.1"], True),
        (["-m", "seed=0,1", "tracking.enabled=false"], False),
        (["tracking.enabled=false"], False),
        (["--help"], False),
        (["-m", "--cfg", "job"], False),
    ],
)
def test_the_tracking_worker_starts_with_the_command_only_for_tracked_training(args, tracked):
    from runner.__main__ import trains_tracked

    assert trains_tracked(args) is tracked
