"""Checkpoints: a trainer restored from one ends exactly as an uninterrupted trainer."""

import numpy as np
import pytest

from runner import pipeline
from runner.errors import WeightsError
from runner.training import load_checkpoint, save_checkpoint
from tests.helpers import compose_run_config


def trainer_for(*overrides):
    cfg = compose_run_config("tracking.enabled=false", *overrides)
    return pipeline.build_trainer(cfg, pipeline.prepare(cfg))


class StopAfter(Exception):
    pass


@pytest.mark.parametrize(
    "overrides",
    [
        ("epochs=30", "optimizer=momentum", "optimizer.schedule=cosine"),
        ("epochs=300", "lr=0.5", "early_stopping.patience=5"),
        ("epochs=20", "model=mlp_30_16_1", "dataset=breast_cancer", "dtype=float32"),
    ],
)
def test_restored_trainer_ends_bit_identical(overrides, tmp_path):
    straight = trainer_for(*overrides)
    expected = straight.run()

    interrupted = trainer_for(*overrides)

    def stop_at_epoch_7(epoch, metrics):
        if epoch == 7:
            raise StopAfter

    with pytest.raises(StopAfter):
        interrupted.run(on_epoch=stop_at_epoch_7)
    path = save_checkpoint(tmp_path / "checkpoint.npz", interrupted.snapshot, {"note": "x"})
    state, extra = load_checkpoint(path)
    assert extra == {"note": "x"} and state.epoch == 7

    resumed = trainer_for(*overrides)
    resumed.restore(state)
    result = resumed.run()
    assert result.history == expected.history
    assert (result.best_epoch, result.stopped_early) == (
        expected.best_epoch,
        expected.stopped_early,
    )
    np.testing.assert_array_equal(resumed.net.flat_params, straight.net.flat_params)


def test_snapshot_is_the_last_completed_epoch_even_mid_epoch():
    trainer = trainer_for("epochs=5")
    trainer.run()
    before = trainer.snapshot
    trainer.net.flat_params += 1.0  # a half-done epoch changes the weights, not the snapshot
    assert before.epoch == 5
    assert not np.array_equal(before.params, trainer.net.flat_params)


def test_a_write_cut_short_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    trainer = trainer_for("epochs=2")
    trainer.run()
    path = save_checkpoint(tmp_path / "checkpoint.npz", trainer.snapshot, {})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError):
        save_checkpoint(path, trainer.snapshot, {"newer": True})
    assert load_checkpoint(path)[1] == {}


def test_a_pickle_or_garbage_is_not_a_checkpoint(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="garbage.npz is not a runner checkpoint"):
        load_checkpoint(garbage)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, info=np.array([{"x": 1}], dtype=object))
    with pytest.raises(WeightsError, match="pickled.npz"):
        load_checkpoint(pickled)


def test_an_earlier_snapshot_saves_only_its_own_epochs(tmp_path):
    trainer = trainer_for("epochs=6", "optimizer=momentum")
    snapshots = {}
    trainer.run(on_snapshot=lambda state: snapshots.setdefault(state.epoch, state))
    path = save_checkpoint(tmp_path / "checkpoint.npz", snapshots[3], {})
    state, _ = load_checkpoint(path)
    assert state.epoch == 3 and state.history == trainer.history[:3]
    assert not np.array_equal(state.params, trainer.net.flat_params)
