"""Checkpoints: a trainer restored from one ends exactly as an uninterrupted trainer."""

import io

import numpy as np
import pytest

from runner import pipeline
from runner.errors import DivergenceError, WeightsError
from runner.training import load_checkpoint, save_checkpoint
from tests.helpers import compose_run_config, pickle_bomb


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
        ("epochs=20", "optimizer=adam", "lr=0.01", "optimizer.weight_decay=1e-3"),
        ("epochs=20", "optimizer=adamw", "lr=0.01", "dtype=float32", "optimizer.schedule=cosine"),
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


def test_snapshot_is_the_last_completed_epoch_even_mid_epoch(tmp_path):
    overrides = ("epochs=12", "optimizer=momentum", "batch=8")
    straight = trainer_for(*overrides)
    expected = straight.run()

    trainer, after_epoch_7 = trainer_for(*overrides), {}

    def record(epoch, metrics):
        if epoch == 7:
            after_epoch_7["params"] = trainer.net.flat_params.copy()
            after_epoch_7["velocity"] = trainer.optimizer.velocity.copy()

    def stop_mid_epoch_8(epoch, step, loss):
        if (epoch, step) == (8, 4):  # four updates into epoch 8: weights half-trained
            raise StopAfter

    with pytest.raises(StopAfter):
        trainer.run(on_epoch=record, on_step=stop_mid_epoch_8)
    snapshot = trainer.snapshot
    assert snapshot.epoch == 7 and len(snapshot.history[: snapshot.epoch]) == 7
    assert not np.array_equal(trainer.net.flat_params, after_epoch_7["params"])
    np.testing.assert_array_equal(snapshot.params, after_epoch_7["params"])
    np.testing.assert_array_equal(snapshot.optimizer["velocity"], after_epoch_7["velocity"])

    # What an interrupt writes, resumed, ends as if nothing had happened.
    state, _ = load_checkpoint(save_checkpoint(tmp_path / "checkpoint.npz", snapshot, {}))
    resumed = trainer_for(*overrides)
    resumed.restore(state)
    assert resumed.run().history == expected.history
    np.testing.assert_array_equal(resumed.net.flat_params, straight.net.flat_params)


def resumed_from(overrides, stop_epoch, tmp_path):
    """A trainer interrupted after ``stop_epoch``, checkpointed and restored in a new one."""
    interrupted = trainer_for(*overrides)

    def stop(epoch, metrics):
        if epoch == stop_epoch:
            raise StopAfter

    with pytest.raises(StopAfter):
        interrupted.run(on_epoch=stop)
    path = save_checkpoint(tmp_path / "checkpoint.npz", interrupted.snapshot, {})
    resumed = trainer_for(*overrides)
    resumed.restore(load_checkpoint(path)[0])
    return resumed


def test_resume_one_epoch_before_early_stopping_keeps_its_state(tmp_path):
    # Interrupted on the epoch before the stop: epochs waited, best loss and epoch, and the
    # best weights all come from before the interrupt; losing any of them changes the end.
    overrides = ("epochs=300", "lr=0.5", "early_stopping.patience=5")
    straight = trainer_for(*overrides)
    expected = straight.run()
    assert expected.stopped_early and len(expected.history) == expected.best_epoch + 5
    resumed = resumed_from(overrides, expected.best_epoch + 4, tmp_path)
    result = resumed.run()
    assert (result.best_epoch, result.stopped_early) == (expected.best_epoch, True)
    assert result.history == expected.history
    np.testing.assert_array_equal(resumed.net.flat_params, straight.net.flat_params)


def test_resume_keeps_the_divergence_guards_first_epoch_reference(tmp_path):
    # lr=3.8 diverges at epoch 3 against epoch 1's loss; a guard that forgot it would take
    # epoch 3's first, already huge, step loss as its reference and train on.
    overrides = ("epochs=50", "lr=3.8")
    with pytest.raises(DivergenceError, match="at epoch 3") as straight:
        trainer_for(*overrides).run()
    resumed = resumed_from(overrides, 2, tmp_path)
    with pytest.raises(DivergenceError) as after_resume:
        resumed.run()
    assert str(after_resume.value) == str(straight.value)


def test_a_write_cut_short_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    trainer = trainer_for("epochs=2")
    trainer.run()
    path = save_checkpoint(tmp_path / "checkpoint.npz", trainer.snapshot, {"old": True})
    real_savez = np.savez

    def cut_short(file, **arrays):
        """Write the first part of the archive, then fail as a full disk or a kill would."""
        buffer = io.BytesIO()
        real_savez(buffer, **arrays)
        file.write(buffer.getvalue()[:200])
        file.flush()
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", cut_short)
    with pytest.raises(OSError):
        save_checkpoint(path, trainer.snapshot, {"newer": True})
    assert load_checkpoint(path)[1] == {"old": True}


def test_a_pickle_or_garbage_is_not_a_checkpoint(tmp_path):
    # A real checkpoint with a pickle smuggled in as its momentum buffer.
    trainer = trainer_for("epochs=2", "optimizer=momentum")
    trainer.run()
    path = save_checkpoint(tmp_path / "pickled.npz", trainer.snapshot, {})
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["optimizer.velocity"], marker = pickle_bomb(tmp_path)
    np.savez(path, **arrays)
    with pytest.raises(
        WeightsError, match=r"pickled.npz holds pickled objects, which runner refuses.*allow_pickle"
    ):
        load_checkpoint(path)
    assert not marker.exists(), "loading the checkpoint ran the pickle inside it"
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="garbage.npz is not an .npz file"):
        load_checkpoint(garbage)


def test_an_earlier_snapshot_saves_only_its_own_epochs(tmp_path):
    trainer = trainer_for("epochs=6", "optimizer=momentum")
    snapshots = {}
    trainer.run(on_snapshot=lambda state: snapshots.setdefault(state.epoch, state))
    path = save_checkpoint(tmp_path / "checkpoint.npz", snapshots[3], {})
    state, _ = load_checkpoint(path)
    assert state.epoch == 3 and state.history == trainer.history[:3]
    assert not np.array_equal(state.params, trainer.net.flat_params)


def test_a_truncated_checkpoint_is_refused_naming_the_file(tmp_path):
    # What a power loss can leave (checkpoints are not fsync'ed): the first bytes of a zip.
    trainer = trainer_for("epochs=2")
    trainer.run()
    path = save_checkpoint(tmp_path / "checkpoint.npz", trainer.snapshot, {})
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(WeightsError, match="checkpoint.npz is truncated or corrupt"):
        load_checkpoint(path)
