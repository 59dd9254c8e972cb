"""Initialisers draw with the spread their names promise, from the Generator they are given."""

import numpy as np
import pytest

from runner.engine import MLP
from runner.engine.initializers import INITIALIZERS, initializer_for
from runner.errors import ConfigError

FAN_IN, FAN_OUT = 400, 300


def draw(name, std=0.05):
    return INITIALIZERS[name](np.random.default_rng(0), FAN_IN, FAN_OUT, std)


@pytest.mark.parametrize(
    ("name", "expected_std"),
    [
        ("he_normal", np.sqrt(2 / FAN_IN)),
        ("he_uniform", np.sqrt(2 / FAN_IN)),  # U(±√(6/fan_in)) has variance 2/fan_in
        ("glorot_normal", np.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("glorot_uniform", np.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("normal", 0.05),
    ],
)
def test_spread_matches_the_name(name, expected_std):
    W = draw(name)
    assert W.shape == (FAN_IN, FAN_OUT)
    assert abs(W.mean()) < 0.02 * expected_std  # the sample mean errs by ~0.003 σ here
    assert W.std() == pytest.approx(expected_std, rel=0.02)


def test_uniform_initialisers_stay_within_their_limits():
    assert np.abs(draw("he_uniform")).max() <= np.sqrt(6 / FAN_IN)
    assert np.abs(draw("glorot_uniform")).max() <= np.sqrt(6 / (FAN_IN + FAN_OUT))
    assert not draw("zeros").any()


def test_auto_is_he_for_the_relu_family_and_glorot_otherwise():
    assert initializer_for("auto", "relu") is INITIALIZERS["he_uniform"]
    assert initializer_for("auto", "leaky_relu") is INITIALIZERS["he_uniform"]
    assert initializer_for("auto", "tanh") is INITIALIZERS["glorot_uniform"]
    with pytest.raises(ConfigError, match="init must be one of"):
        initializer_for("orthogonal", "relu")


def test_weights_come_from_the_given_generator_and_biases_start_at_zero():
    first = MLP([4, 8, 3], ["relu", "softmax"], rng=np.random.default_rng(7))
    again = MLP([4, 8, 3], ["relu", "softmax"], rng=np.random.default_rng(7))
    other = MLP([4, 8, 3], ["relu", "softmax"], rng=np.random.default_rng(8))
    np.testing.assert_array_equal(first.flat_params, again.flat_params)
    assert not np.array_equal(first.flat_params, other.flat_params)
    assert not first.params["b1"].any() and not first.params["b2"].any()
