"""Weights in and out: the npz format, and refusals that name the layer or the file."""

import numpy as np
import pytest

from runner.engine import MLP
from runner.errors import WeightsError
from tests.helpers import pickle_bomb

ACTS = ["relu", "relu", "softmax"]


@pytest.fixture
def net():
    return MLP([4, 8, 8, 3], ACTS, rng=np.random.default_rng(5))


def test_save_writes_the_tutorials_keys_and_shapes(net, tmp_path):
    path = net.save(tmp_path / "weights.npz")
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["W1", "W2", "W3", "b1", "b2", "b3"]
        assert data["W1"].shape == (4, 8) and data["b3"].shape == (3,)


def test_load_round_trips_bit_for_bit(net, tmp_path):
    loaded = MLP.load(net.save(tmp_path / "w.npz"), activations=ACTS)
    assert loaded.layer_sizes == (4, 8, 8, 3)
    np.testing.assert_array_equal(loaded.flat_params, net.flat_params)
    X = np.random.default_rng(0).normal(size=(5, 4))
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))


def test_load_keeps_float32(tmp_path):
    net = MLP([2, 3], ["softmax"], dtype="float32")
    assert MLP.load(net.save(tmp_path / "w.npz"), ["softmax"]).dtype == np.float32


def test_load_without_bias(tmp_path):
    net = MLP([2, 3, 1], ["sigmoid", "sigmoid"], bias=False)
    assert MLP.load(net.save(tmp_path / "w.npz"), ["sigmoid", "sigmoid"]).bias is False


def test_shape_mismatch_names_the_layer(net, tmp_path):
    other = MLP([4, 8, 6, 3], ACTS).save(tmp_path / "other.npz")
    with pytest.raises(WeightsError, match=r"W2 in .*other.npz has shape \(8, 6\).*layer 2"):
        net.load_weights(other)


def test_missing_key_is_named(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, W1=np.zeros((2, 3)), b1=np.zeros(3), W2=np.zeros((3, 1)))
    with pytest.raises(WeightsError, match=r"missing \['b2'\]"):
        MLP.load(path, ["relu", "sigmoid"])


def test_pickled_object_array_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    bomb, marker = pickle_bomb(tmp_path)
    np.savez(path, W1=bomb)
    # The message, not the folder name: pytest's folder for this test holds "pickled" too.
    with pytest.raises(
        WeightsError, match=r"evil\.npz holds pickled objects, which runner refuses"
    ):
        MLP.load(path, ["relu"])
    assert not marker.exists(), "loading the weights ran the pickle inside them"


def test_missing_file_and_garbage_are_clear(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        MLP.load(tmp_path / "nope.npz", ["relu"])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(WeightsError, match="garbage.npz"):
        MLP.load(garbage, ["relu"])


def test_non_finite_weights_are_refused(net, tmp_path):
    params = {k: v.copy() for k, v in net.params.items()}
    params["W3"][0, 0] = np.nan
    with pytest.raises(WeightsError, match="W3 .* finite"):
        net.set_params(params)


def test_predict_in_batches_equals_forward(net):
    X = np.random.default_rng(1).normal(size=(1001, 4))
    np.testing.assert_array_equal(net.predict(X, batch_size=64), net.forward(X))
    assert net.predict_classes(X).shape == (1001,)
