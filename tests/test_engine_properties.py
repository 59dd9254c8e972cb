"""Property tests: numerical safety of activations and losses on any finite input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from runner.engine.activations import sigmoid, softmax
from runner.engine.losses import bce, cross_entropy, mse

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
logits = st.integers(1, 6).flatmap(
    lambda n: st.integers(2, 5).flatmap(lambda k: arrays(np.float64, (n, k), elements=finite))
)


@pytest.mark.usefixtures("no_runtime_warnings")
@given(logits)
def test_softmax_rows_sum_to_one(A):
    P = softmax(A.copy())
    assert np.all(P >= 0)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.usefixtures("no_runtime_warnings")
@given(logits, st.floats(-1e3, 1e3))
def test_softmax_is_shift_invariant(A, shift):
    np.testing.assert_allclose(softmax(A + shift), softmax(A.copy()), atol=1e-12)


@pytest.mark.usefixtures("no_runtime_warnings")
@given(arrays(np.float64, st.integers(1, 20), elements=st.floats(-1e308, 1e308)))
def test_sigmoid_never_overflows(a):
    s = sigmoid(a.reshape(1, -1).copy())
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(s[a.reshape(1, -1) > 40] == 1.0)


@pytest.mark.usefixtures("no_runtime_warnings")
@given(logits, st.data())
def test_cross_entropy_is_finite_and_its_gradient_sums_to_zero(A, data):
    n, k = A.shape
    Y = np.eye(k)[data.draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))]
    delta = np.empty_like(A)
    value = cross_entropy(A.copy(), Y, delta)
    assert np.isfinite(value) and value >= 0
    np.testing.assert_allclose(delta.sum(axis=1), 0.0, atol=1e-12)


@pytest.mark.usefixtures("no_runtime_warnings")
@given(logits, st.data())
def test_bce_is_finite_for_extreme_logits(A, data):
    Y = data.draw(arrays(np.float64, A.shape, elements=st.sampled_from([0.0, 1.0])))
    delta = np.empty_like(A)
    value = bce(A, Y, delta)
    assert np.isfinite(value) and value >= 0
    assert np.all(np.abs(delta) <= 1.0 / A.shape[0])


@pytest.mark.usefixtures("no_runtime_warnings")
@given(logits)
def test_mse_is_finite(A):
    delta = np.empty_like(A)
    assert np.isfinite(mse(A, np.zeros_like(A), delta))


def test_cross_entropy_of_a_confident_wrong_answer_is_the_logit_gap():
    # log-sum-exp: −log softmax([1e4, 0])[1] = 1e4 exactly, where log(p) would give inf.
    delta = np.empty((1, 2))
    assert cross_entropy(np.array([[1e4, 0.0]]), np.array([[0.0, 1.0]]), delta) == 1e4
