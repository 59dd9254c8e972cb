"""Worked examples from the tutorials, a hand-computed SGD step, and parameter counts."""

import numpy as np
import pytest

from runner.engine import MLP
from runner.training import SGD

SEED_2_3_2_2 = {
    "W1": [[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]],
    "b1": [0.1, 0.2, 0.3],
    "W2": [[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]],
    "b2": [0.1, 0.2],
    "W3": [[0.1, 0.3], [0.2, 0.4]],
    "b3": [0.1, 0.2],
}


def test_forward_matches_the_2_3_2_2_worked_example():
    net = MLP([2, 3, 2, 2], ["sigmoid", "sigmoid", "identity"])
    net.set_params({name: np.array(value) for name, value in SEED_2_3_2_2.items()})
    # a1 = x·W1 + b1 = [0.3, 0.7, 1.1] → z1 = σ(a1) = [0.5744, 0.6682, 0.7503]
    # a2 = z1·W2 + b2 = [0.5163, 1.2140] → z2 = σ(a2) = [0.6263, 0.7710]
    # y = z2·W3 + b3 = [0.31682708, 0.69627909]
    np.testing.assert_allclose(net.forward([[1.0, 0.5]]), [[0.31682708, 0.69627909]], atol=5e-9)


def test_bias_free_2_3_1_net_is_two_sigmoid_matmuls():
    # The tutorials' 2-3-1 net without bias on X = [[1,2],[3,4],[5,6]]: all samples at once.
    X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    rng = np.random.default_rng(0)
    beta, gamma = rng.uniform(size=(2, 3)), rng.uniform(size=(3, 1))
    net = MLP([2, 3, 1], ["sigmoid", "sigmoid"], bias=False)
    net.set_params({"W1": beta, "W2": gamma})
    expected = 1 / (1 + np.exp(-(1 / (1 + np.exp(-X @ beta))) @ gamma))
    np.testing.assert_allclose(net.forward(X), expected, rtol=1e-15)
    assert list(net.params) == ["W1", "W2"] and net.n_params == 9


def test_one_sgd_step_through_a_relu_layer_by_hand():
    net = MLP([2, 2, 1], ["relu", "identity"], bias=False)
    net.set_params({"W1": np.array([[1.0, -1.0], [0.0, 1.0]]), "W2": np.array([[1.0], [2.0]])})
    X, Y = np.array([[1.0, 2.0]]), np.array([[1.0]])
    # a1 = [1·1 + 2·0, 1·(−1) + 2·1] = [1, 1];  z1 = relu(a1) = [1, 1]
    # z2 = z1·W2 = 1 + 2 = 3;  C = (3 − 1)² = 4
    # Δ2 = 2(z2 − y)/1 = 4;  dW2 = z1ᵀ Δ2 = [[4], [4]]
    # dX = Δ2 W2ᵀ = [4, 8];  Δ1 = relu'(a1) ⊙ dX = [4, 8]
    # dW1 = Xᵀ Δ1 = [[1·4, 1·8], [2·4, 2·8]] = [[4, 8], [8, 16]]
    loss, grads = net.loss_and_grads(X, Y, "mse")
    assert loss == 4.0
    np.testing.assert_array_equal(grads["W2"], [[4.0], [4.0]])
    np.testing.assert_array_equal(grads["W1"], [[4.0, 8.0], [8.0, 16.0]])
    # w ← w − 0.01·g
    net.compute_gradients(X, Y, "mse")
    SGD(net).step(0.01)
    np.testing.assert_allclose(net.params["W1"], [[0.96, -1.08], [-0.08, 0.84]], rtol=1e-15)
    np.testing.assert_allclose(net.params["W2"], [[0.96], [1.96]], rtol=1e-15)


def test_one_sgd_step_with_bias_by_hand():
    net = MLP([2, 1], ["identity"])
    net.set_params({"W1": np.array([[0.5], [-0.5]]), "b1": np.array([0.0])})
    X, Y = np.array([[1.0, 2.0]]), np.array([[1.0]])
    # z = 0.5 − 1.0 + 0 = −0.5;  C = (1 − (−0.5))² = 2.25;  Δ = 2(−0.5 − 1) = −3
    # dW = Xᵀ Δ = [[−3], [−6]];  db = Σ Δ = [−3];  lr 0.1 → W = [[0.8], [0.1]], b = [0.3]
    assert net.compute_gradients(X, Y, "mse") == 2.25
    SGD(net).step(0.1)
    np.testing.assert_allclose(net.params["W1"], [[0.8], [0.1]], rtol=1e-15)
    np.testing.assert_allclose(net.params["b1"], [0.3], rtol=1e-15)


@pytest.mark.parametrize(
    ("sizes", "count"), [([3, 2], 8), ([4, 8, 8, 3], 139), ([784, 15, 10], 11935)]
)
def test_parameter_counts(sizes, count):
    net = MLP(sizes, ["relu"] * (len(sizes) - 2) + ["softmax"])
    assert net.n_params == count
    assert f"Total params: {count:,}" in net.summary()
    assert sum(row["params"] for row in net.summary_rows()) == count


def test_summary_lists_each_layer_like_keras():
    text = MLP([4, 8, 8, 3], ["relu", "relu", "softmax"]).summary()
    lines = text.splitlines()
    assert lines[0] == 'Model: "mlp_4_8_8_3"'
    rows = [line.split() for line in lines if line.startswith("dense_")]
    assert rows == [
        ["dense_1", "(Dense)", "(None,", "4)", "(4,", "8)", "(8,)", "(None,", "8)", "relu", "40"],
        ["dense_2", "(Dense)", "(None,", "8)", "(8,", "8)", "(8,)", "(None,", "8)", "relu", "72"],
        [
            "dense_3",
            "(Dense)",
            "(None,",
            "8)",
            "(8,",
            "3)",
            "(3,)",
            "(None,",
            "3)",
            "softmax",
            "27",
        ],
    ]


def test_sgd_step_matches_scikit_learn():
    """Oracle: one full-batch SGD step of scikit-learn's MLPClassifier from the same weights."""
    neural_network = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    clf = neural_network.MLPClassifier(
        hidden_layer_sizes=(8, 8),
        solver="sgd",
        learning_rate_init=0.1,
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        batch_size=20,
        shuffle=False,
        random_state=0,
    )
    clf.partial_fit(X, y, classes=[0, 1, 2])
    net = MLP([4, 8, 8, 3], ["relu", "relu", "softmax"], rng=rng)
    for theirs, ours in zip(clf.coefs_ + clf.intercepts_, net.weights + net.biases, strict=True):
        theirs[...] = ours  # in place: sklearn's optimizer holds references to these arrays
    clf.partial_fit(X, y)
    net.compute_gradients(X, np.eye(3)[y], "cross_entropy")
    SGD(net).step(0.1)
    for theirs, ours in zip(clf.coefs_ + clf.intercepts_, net.weights + net.biases, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_a_network_too_large_to_allocate_says_how_many_parameters_it_has():
    with pytest.raises(MemoryError, match="73,786,976,294,838,206,467 parameters"):
        MLP([4, 2**63, 3], ["relu", "softmax"])  # 4·2**63 + 2**63 + 2**63·3 + 3
