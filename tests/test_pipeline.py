"""The training run as a whole: determinism, early stopping, divergence, weights in and out."""

import dataclasses
import io

import numpy as np
import pytest

from runner import pipeline
from runner.engine import MLP
from runner.errors import ConfigError, DivergenceError, WeightsError
from runner.progress import Progress
from runner.training import load_checkpoint
from tests.helpers import compose_run_config


def run(tmp_path, *overrides):
    return pipeline.run(compose_run_config(*overrides), tmp_path)


def test_same_seed_gives_bit_identical_metrics_and_weights(tmp_path):
    first = run(tmp_path / "a", "epochs=5")
    second = run(tmp_path / "b", "epochs=5")
    assert first.fit.history == second.fit.history
    assert first.test_metrics == second.test_metrics
    assert (tmp_path / "a/weights.npz").read_bytes() == (tmp_path / "b/weights.npz").read_bytes()


def test_another_seed_gives_another_run(tmp_path):
    assert (
        run(tmp_path / "a", "epochs=2").fit.history
        != run(tmp_path / "b", "epochs=2", "seed=1").fit.history
    )


def test_default_experiment_reaches_90_percent_on_iris(tmp_path):
    outcome = run(tmp_path)
    assert len(outcome.fit.history) == 100
    assert outcome.test_metrics["test_accuracy"] >= 0.9
    assert outcome.objective == outcome.val_metrics["val_loss"]


def test_float32_run_stays_float32(tmp_path):
    outcome = run(tmp_path, "epochs=2", "dtype=float32")
    assert outcome.net.dtype == np.float32
    assert outcome.dataset.train.X.dtype == np.float32


def test_early_stopping_restores_the_best_epoch(tmp_path):
    outcome = run(tmp_path, "epochs=300", "lr=0.5", "early_stopping.patience=5")
    result = outcome.fit
    assert result.stopped_early and len(result.history) < 300
    assert len(result.history) == result.best_epoch + 5
    best = min(h["val_loss"] for h in result.history)
    assert result.history[result.best_epoch - 1]["val_loss"] == best
    assert outcome.val_metrics["val_loss"] == pytest.approx(best, rel=1e-12)


def test_a_diverging_run_stops_with_epoch_step_and_lr(tmp_path):
    with pytest.raises(DivergenceError, match=r"epoch 1, step \d+ .*lr 100"):
        run(tmp_path, "lr=100", "epochs=5")


def test_a_finite_but_exploding_loss_is_caught(tmp_path):
    # A stable log-softmax keeps this loss finite; the multiple of the first loss stops it.
    with pytest.raises(DivergenceError, match="divergence_factor"):
        run(tmp_path, "lr=30", "epochs=50", "model=mlp_13_16_3", "dataset=wine")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optimizer.momentum=1.5"], r"^optimizer\.momentum must be in \[0, 1\), got 1\.5$"),
        (["optimizer.nesterov=true"], r"^optimizer\.nesterov needs optimizer\.momentum > 0"),
        (["optimizer.weight_decay=-1"], r"^optimizer\.weight_decay must be >= 0"),
    ],
)
def test_engine_argument_errors_name_the_config_key(overrides, message):
    # SGD names its own arguments; the pipeline puts the config keys in their place.
    with pytest.raises(ConfigError, match=message):
        pipeline.prepare(compose_run_config(*overrides))


def test_init_from_starts_from_saved_weights(tmp_path):
    trained = run(tmp_path / "a", "epochs=20")
    restarted = run(tmp_path / "b", "epochs=0", f"init_from={trained.weights_path}")
    assert restarted.test_metrics == trained.test_metrics
    np.testing.assert_array_equal(restarted.net.flat_params, trained.net.flat_params)


def test_init_from_with_the_wrong_shapes_names_the_layer(tmp_path):
    path = MLP([4, 8, 6, 3], ["relu", "relu", "softmax"]).save(tmp_path / "other.npz")
    with pytest.raises(WeightsError, match=r"W2 in .*other.npz has shape \(8, 6\)"):
        run(tmp_path, "epochs=1", f"init_from={path}")


def test_init_from_a_shallower_net_names_the_missing_layer(tmp_path):
    path = MLP([4, 16, 3], ["relu", "softmax"]).save(tmp_path / "shallow.npz")
    with pytest.raises(WeightsError, match=r"shallow.npz .*missing \['W3', 'b3'\]"):
        run(tmp_path, "epochs=1", f"init_from={path}")


def histories_with_batch_order_seed(shuffle, order_seed):
    """The epochs' metrics when the batch-order generator is seeded with ``order_seed``."""
    cfg = compose_run_config("epochs=3", f"shuffle={shuffle}", "tracking.enabled=false")
    trainer = pipeline.build_trainer(cfg, pipeline.prepare(cfg))
    trainer.loop.rng = np.random.default_rng(order_seed)
    return trainer.run().history


def test_unshuffled_training_follows_the_data_order():
    # Unshuffled, the batch-order generator is never asked: its seed changes nothing.
    assert histories_with_batch_order_seed("false", 1) == histories_with_batch_order_seed(
        "false", 2
    )
    assert histories_with_batch_order_seed("true", 1) != histories_with_batch_order_seed("true", 2)


def test_regression_reports_rmse_in_target_units(tmp_path):
    outcome = run(tmp_path, "model=mlp_10_32_1", "dataset=diabetes", "epochs=30", "lr=0.01")
    # Diabetes progression spans 25–346; a fitted model's RMSE is tens, not fractions.
    assert 30 < outcome.test_metrics["test_rmse"] < 90
    assert 0.2 < outcome.test_metrics["test_r2"] < 1


def test_progress_bar_draws_and_erases_itself(caplog):
    stream = io.StringIO()
    progress = Progress(2, 3, show_bar=True, stream=stream)
    progress._last_draw = -1.0  # as if the last draw were long ago
    progress.on_step(1, 0, 0.5)
    with caplog.at_level("INFO", logger="runner"):
        progress.on_epoch(1, {"train_loss": 0.5, "lr": 0.1})
    assert "[#####" in stream.getvalue() and stream.getvalue().endswith("\r")
    assert caplog.messages == ["epoch 1/2  train_loss 0.5000  lr 0.1"]


def raw_csv(tmp_path, scale):
    """60 rows of two features and a target, all of the order of ``scale``."""
    rng = np.random.default_rng(0)
    rows = (rng.normal(size=(60, 3)) * scale).tolist()
    path = tmp_path / "raw.csv"
    path.write_text("a,b,t\n" + "".join(f"{a!r},{b!r},{t!r}\n" for a, b, t in rows))
    return path


@pytest.mark.parametrize(
    ("batch", "where"), [("4", r"epoch 1, step 2"), ("64", "the validation after epoch 1")]
)
def test_an_overflow_is_divergence_not_a_runtime_warning(
    tmp_path, no_runtime_warnings, batch, where
):
    # Unscaled 1e10 inputs: the first update makes weights whose next product overflows float32.
    path = raw_csv(tmp_path, 1e10)
    with pytest.raises(DivergenceError, match=rf"left the range of float32 in {where} \(overflow"):
        run(
            tmp_path,
            "dataset=csv",
            f"dataset.path={path}",
            "dataset.target=t",
            "dataset.standardize=false",
            "dtype=float32",
            "model.layers=[2,4,1]",
            "model.output_activation=identity",
            f"batch={batch}",
            "epochs=3",
        )


def test_the_pipeline_runs_a_job_without_hydra(tmp_path):
    # What __main__ hands over is plain data: the whole run, checkpoint included, needs no Hydra.
    cfg = compose_run_config("epochs=3", "tracking.enabled=false")
    job = pipeline.Job(cfg, dataclasses.asdict(cfg), ["epochs=3"], tmp_path / "run")
    objective = pipeline.train(job)
    state, extra = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert state.epoch == 3
    assert objective == state.history[-1]["val_loss"]
    assert extra == {
        "config": job.config,
        "overrides": ["epochs=3"],
        "output_dir": str((tmp_path / "run").resolve()),
        "run_id": None,
        "uri": None,
    }


# 2**45 hidden units: a petabyte of weights, beyond any address space; 2**62 and 2**63: more
# elements than a NumPy array can index (np.prod of the shape wrapped 4 * 2**62 around to 0).
@pytest.mark.parametrize("hidden", [2**45, 2**62, 2**63])
def test_a_model_too_large_for_memory_is_a_config_error_naming_the_layers(hidden):
    cfg = compose_run_config(f"model.layers=[4,{hidden},3]")
    with pytest.raises(ConfigError, match=rf"model.layers=\[4, {hidden}, 3\] is too large") as err:
        pipeline.prepare(cfg)
    assert "\n" not in str(err.value)
