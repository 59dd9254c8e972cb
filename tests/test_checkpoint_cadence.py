"""How often a checkpoint reaches the disk: every_n_epochs, min_interval_s, 0, and the end."""

import pytest

from runner import checkpointing, pipeline
from runner.checkpointing import Checkpointer
from runner.training import load_checkpoint
from tests.helpers import compose_run_config, run_cli


@pytest.fixture
def states():
    """The TrainingStates of epochs 1..10 of a small run, as the trainer hands them over."""
    cfg = compose_run_config("epochs=10", "tracking.enabled=false")
    trainer = pipeline.build_trainer(cfg, pipeline.prepare(cfg))
    handed_over = []
    trainer.run(on_snapshot=handed_over.append)
    return handed_over


def epochs_on_disk(checkpointer, states, clock=None, monkeypatch=None):
    """The epoch in the checkpoint file after each state is handed over (None: no file)."""
    seen = []
    for i, state in enumerate(states):
        if clock is not None:
            monkeypatch.setattr(checkpointing.time, "monotonic", lambda t=clock[i]: t)
        checkpointer(state)
        path = checkpointer.path
        seen.append(load_checkpoint(path)[0].epoch if path.exists() else None)
    return seen


def test_every_n_epochs_without_a_time_limit(tmp_path, states):
    checkpointer = Checkpointer(tmp_path, 3, 0, dict)
    assert epochs_on_disk(checkpointer, states) == [None, None, 3, 3, 3, 6, 6, 6, 9, 9]


def test_not_more_often_than_min_interval_s(tmp_path, states, monkeypatch):
    checkpointer = Checkpointer(tmp_path, 1, 1.0, dict)
    clock = [0.0, 0.4, 0.9, 1.0, 1.5, 2.2, 2.3, 5.0, 5.1, 5.9]  # seconds at each epoch's end
    seen = epochs_on_disk(checkpointer, states, clock, monkeypatch)
    assert seen == [1, 1, 1, 4, 4, 6, 6, 8, 8, 8]


def test_zero_writes_only_when_asked(tmp_path, states):
    checkpointer = Checkpointer(tmp_path, 0, 0, dict)
    assert epochs_on_disk(checkpointer, states) == [None] * 10
    checkpointer.write()  # the end of the run, or Ctrl-C
    assert load_checkpoint(checkpointer.path)[0].epoch == 10


@pytest.mark.slow
@pytest.mark.parametrize(
    "cadence", ["checkpoint.every_n_epochs=0", "checkpoint.min_interval_s=1000"]
)
def test_a_finished_run_leaves_its_last_epoch_on_disk(tmp_path, cadence):
    run_dir = tmp_path / "run"
    result = run_cli(
        "epochs=7", cadence, "tracking.enabled=false", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    state, extra = load_checkpoint(run_dir / "checkpoint.npz")
    assert state.epoch == 7 and len(state.history) == 7
    assert extra["output_dir"] == str(run_dir.resolve())
