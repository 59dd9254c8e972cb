"""SGD variants and learning-rate schedules against their textbook formulas."""

import math

import numpy as np
import pytest

from runner.engine import MLP
from runner.errors import ConfigError
from runner.training import SGD, EpochLoop, scheduled_lr


def fresh_net():
    return MLP([3, 4, 2], ["tanh", "softmax"], rng=np.random.default_rng(2))


def batches(n_steps):
    rng = np.random.default_rng(9)
    return [(rng.normal(size=(6, 3)), np.eye(2)[rng.integers(0, 2, 6)]) for _ in range(n_steps)]


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_follows_the_pytorch_convention(nesterov):
    net, reference = fresh_net(), fresh_net()
    opt = SGD(net, momentum=0.9, nesterov=nesterov)
    w, v = reference.flat_params.copy(), np.zeros_like(reference.flat_params)
    for step, (X, Y) in enumerate(batches(4)):
        lr = 0.1 / (step + 1)  # a changing rate must not disturb the velocity
        reference.flat_params[...] = w
        reference.compute_gradients(X, Y, "cross_entropy")
        g = reference.flat_grads.copy()
        v = 0.9 * v + g
        w = w - lr * (g + 0.9 * v if nesterov else v)
        net.compute_gradients(X, Y, "cross_entropy")
        opt.step(lr)
    np.testing.assert_allclose(net.flat_params, w, rtol=1e-13)


def test_weight_decay_adds_lambda_w_to_weights_not_biases():
    net, reference = fresh_net(), fresh_net()
    X, Y = batches(1)[0]
    reference.compute_gradients(X, Y, "cross_entropy")
    expected = {
        k: p - 0.5 * (reference.grads[k] + (0.01 * p if k[0] == "W" else 0.0))
        for k, p in reference.params.items()
    }
    net.compute_gradients(X, Y, "cross_entropy")
    SGD(net, weight_decay=0.01).step(0.5)
    for name, value in expected.items():
        np.testing.assert_allclose(net.params[name], value, rtol=1e-14)


@pytest.mark.parametrize(
    ("schedule", "epoch", "expected"),
    [
        ("constant", 7, 0.1),
        ("step", 9, 0.1),
        ("step", 10, 0.05),
        ("step", 25, 0.025),
        ("exponential", 3, 0.1 * 0.5**3),
        ("cosine", 0, 0.1),
        ("cosine", 50, 0.05),
        ("cosine", 100, 0.0),
    ],
)
def test_schedules(schedule, epoch, expected):
    lr = scheduled_lr(schedule, 0.1, epoch, epochs=100, step_size=10, gamma=0.5)
    assert math.isclose(lr, expected, rel_tol=1e-12, abs_tol=1e-15)


def test_bad_optimizer_settings_name_the_engine_arguments():
    # The engine speaks of its own arguments; the pipeline maps them to config keys.
    with pytest.raises(ConfigError, match=r"^momentum must be in \[0, 1\), got 1\.5$"):
        SGD(fresh_net(), momentum=1.5)
    with pytest.raises(ConfigError, match=r"^nesterov needs momentum > 0"):
        SGD(fresh_net(), nesterov=True)
    with pytest.raises(ConfigError, match=r"^weight_decay must be >= 0"):
        SGD(fresh_net(), weight_decay=-1.0)
    with pytest.raises(ConfigError, match=r"^schedule must be one of"):
        scheduled_lr("linear", 0.1, 0, epochs=1)


def test_epoch_loop_keeps_the_last_partial_batch_and_averages_per_sample():
    net = fresh_net()
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(10, 3)), np.eye(2)[rng.integers(0, 2, 10)]
    seen = []
    loop = EpochLoop(net, SGD(net), "cross_entropy", X, Y, batch_size=4, shuffle=False)
    reference = fresh_net()
    ref_opt, expected_total = SGD(reference), 0.0
    for start in range(0, 10, 4):
        expected_total += reference.compute_gradients(
            X[start : start + 4], Y[start : start + 4], "cross_entropy"
        ) * len(X[start : start + 4])
        ref_opt.step(0.1)
    mean = loop.run(0.1, on_step=lambda step, value: seen.append(step))
    assert seen == [0, 1, 2] and loop.steps_per_epoch == 3
    assert mean == pytest.approx(expected_total / 10, rel=1e-15)
    np.testing.assert_array_equal(net.flat_params, reference.flat_params)


def test_shuffled_epochs_are_reproducible_from_the_seed():
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(50, 3)), np.eye(2)[rng.integers(0, 2, 50)]
    results = []
    for _ in range(2):
        net = fresh_net()
        loop = EpochLoop(
            net, SGD(net), "cross_entropy", X, Y, batch_size=8, rng=np.random.default_rng(11)
        )
        results.append(([loop.run(0.1) for _ in range(3)], net.flat_params.copy()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_stays_in_the_net_dtype(dtype):
    net = MLP([3, 5, 2], ["relu", "softmax"], dtype=dtype)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(9, 3)), np.eye(2)[rng.integers(0, 2, 9)]
    loop = EpochLoop(net, SGD(net, momentum=0.9), "cross_entropy", X, Y, batch_size=4)
    loop.run(0.1)
    ws = net._workspaces[4]
    arrays = [net.flat_params, net.flat_grads, loop.X, loop.Y, *ws.Z, *ws.delta]
    assert {a.dtype.name for a in arrays} == {dtype}
    assert net.forward(X).dtype.name == dtype


def test_dtype_is_validated():
    with pytest.raises(ConfigError, match="dtype must be one of"):
        MLP([2, 2], ["softmax"], dtype="float16")
