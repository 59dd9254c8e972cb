"""Central-difference gradient checks in float64 over every activation × compatible loss."""

import itertools

import numpy as np
import pytest

from runner.engine import ACTIVATIONS, MLP
from runner.engine.losses import LOSSES

HIDDEN = sorted(ACTIVATIONS)
# Every output activation with each loss that accepts it.
PAIRS = [("cross_entropy", "softmax"), ("bce", "sigmoid")] + [
    ("mse", output) for output in sorted(ACTIVATIONS)
]


def numerical_grads(net, X, Y, loss, eps=1e-6):
    """∂C/∂θ by central differences, one parameter at a time."""
    grads = np.zeros_like(net.flat_params)
    for k in range(net.flat_params.size):
        saved = net.flat_params[k]
        net.flat_params[k] = saved + eps
        up = net.loss(X, Y, loss)
        net.flat_params[k] = saved - eps
        down = net.loss(X, Y, loss)
        net.flat_params[k] = saved
        grads[k] = (up - down) / (2 * eps)
    return grads


def targets_for(loss, rng, n, k):
    if loss == "cross_entropy":
        return np.eye(k)[rng.integers(0, k, n)]
    if loss == "bce":
        return rng.integers(0, 2, (n, k)).astype(float)
    return rng.normal(size=(n, k))


def relative_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12)


@pytest.mark.parametrize(("loss", "output"), PAIRS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_backprop_matches_central_differences(loss, output, bias, depth):
    rng = np.random.default_rng(depth * 7 + bias)
    n_outputs = 1 if (loss == "bce" and depth % 2) else 3
    sizes = [4] + [5, 3, 6][: depth - 1] + [n_outputs]
    # Cycle the hidden activations so that every one appears at every depth > 1.
    hidden = list(
        itertools.islice(itertools.cycle(HIDDEN[depth % len(HIDDEN) :] + HIDDEN), depth - 1)
    )
    net = MLP(sizes, hidden + [output], bias=bias, init="glorot_normal", rng=rng)
    if bias:
        net.flat_params += rng.normal(scale=0.1, size=net.flat_params.size)
    X = rng.normal(size=(7, 4))
    Y = targets_for(loss, rng, 7, n_outputs)

    value, grads = net.loss_and_grads(X, Y, loss)

    analytic = np.concatenate([g.ravel() for g in grads.values()])
    assert list(grads) == list(net.params)
    assert relative_error(analytic, numerical_grads(net, X, Y, loss)) < 1e-6
    assert value == pytest.approx(net.loss(X, Y, loss), rel=0, abs=0)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_every_hidden_activation_is_checked(hidden):
    rng = np.random.default_rng(1)
    net = MLP([3, 4, 2], [hidden, "softmax"], init="glorot_normal", rng=rng)
    X = rng.normal(size=(5, 3))
    Y = np.eye(2)[rng.integers(0, 2, 5)]
    _, grads = net.loss_and_grads(X, Y, "cross_entropy")
    analytic = np.concatenate([g.ravel() for g in grads.values()])
    assert relative_error(analytic, numerical_grads(net, X, Y, "cross_entropy")) < 1e-6


def test_losses_cover_the_registry():
    assert {loss for loss, _ in PAIRS} == set(LOSSES)
