"""RMSE and R² against scikit-learn, and at the ends of float64 where naive squares overflow."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import r2_score, root_mean_squared_error

from runner.engine.metrics import accuracy, r2, rmse


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


def regression(n_samples=50, n_outputs=3, seed=0):
    rng = np.random.default_rng(seed)
    Y = rng.normal(size=(n_samples, n_outputs))
    return Y + rng.normal(scale=0.5, size=Y.shape), Y


def test_r2_matches_scikit_learn():
    outputs, Y = regression()
    assert r2(outputs, Y) == pytest.approx(r2_score(Y, outputs), rel=1e-12)


def test_rmse_in_original_units_matches_scikit_learn():
    outputs, Y = regression(n_outputs=1)
    scale = np.array([250.0])
    expected = root_mean_squared_error(Y * scale, outputs * scale)
    assert rmse(outputs, Y, scale) == pytest.approx(expected, rel=1e-12)
    assert rmse(outputs, Y, 1.0) == pytest.approx(root_mean_squared_error(Y, outputs), rel=1e-12)


def test_rmse_with_one_scale_per_output():
    outputs, Y = regression(n_outputs=2)
    scale = np.array([2.0, 1e-3])
    expected = np.sqrt(np.mean(((outputs - Y) * scale) ** 2))
    assert rmse(outputs, Y, scale) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("outputs", "Y"),
    [
        ([[1.0, 2.0], [1.0, 3.0]], [[1.0, 2.0], [1.0, 3.0]]),  # constant column predicted exactly
        ([[1.5, 2.0], [1.0, 3.0]], [[1.0, 2.0], [1.0, 3.0]]),  # ... and not: 0 for that column
        ([[0.0], [1.0], [2.0]], [[5.0], [5.0], [5.0]]),
    ],
)
def test_r2_of_a_constant_target_is_scikit_learns(outputs, Y):
    outputs, Y = np.array(outputs), np.array(Y)
    assert r2(outputs, Y) == r2_score(Y, outputs)


def test_r2_of_a_single_row_is_undefined():
    assert np.isnan(r2(np.array([[0.0]]), np.array([[1.0]])))


def test_far_out_targets_give_exact_finite_metrics():
    # Found by the hostile-CSV test: a test row 7.7e283 training standard deviations out.
    # Naively its square overflows; R² is 1 - (v²) / (v²/2) = -1 exactly.
    value, scale = 7.74705269e283, 1.29081347e-284
    outputs, Y = np.zeros((2, 1)), np.array([[value], [0.0]])
    assert r2(outputs, Y) == -1.0
    assert rmse(outputs, Y, np.array([scale])) == pytest.approx(value * scale / np.sqrt(2))


def test_metrics_beyond_float64_are_infinite_not_warnings():
    outputs, Y = np.zeros((2, 1)), np.array([[1e300], [-1e300]])
    assert rmse(outputs, Y, np.array([1e300])) == np.inf
    tiny = np.array([[1e-300], [0.0]])  # R² compares 1e300² with 1e-300²: -inf
    assert r2(np.array([[1e300], [0.0]]), tiny) == -np.inf
    assert r2(np.array([[1.7e308], [0.0]]), np.array([[-1.7e308], [0.0]])) == -np.inf


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(
    arrays(np.float64, st.tuples(st.integers(2, 6), st.integers(1, 3)), elements=finite),
    arrays(np.float64, st.tuples(st.integers(2, 6), st.integers(1, 3)), elements=finite),
)
def test_any_finite_values_give_metrics_without_warnings(outputs, Y):
    n = min(len(outputs), len(Y))
    k = min(outputs.shape[1], Y.shape[1])
    outputs, Y = outputs[:n, :k], Y[:n, :k]
    assert rmse(outputs, Y, np.ones(k)) >= 0
    score = r2(outputs, Y)
    assert score <= 1.0 and not np.isnan(score)


def test_accuracy_of_one_sigmoid_output_thresholds_at_one_half():
    assert accuracy(np.array([[0.2], [0.7], [0.5]]), np.array([0, 1, 1])) == pytest.approx(2 / 3)
