"""Generated data, initial weights and batch order each draw from a stream of their own."""

import numpy as np
import pytest

from runner import pipeline, streams
from runner.datasets._generated import make_xor
from runner.engine import MLP
from tests.helpers import compose_run_config

# Where a stream of a run could come from: the seed itself, or one of its first children.
CANDIDATES = ("seed", 0, 1, 2, 3)


def candidate_rng(seed, candidate):
    if candidate == "seed":
        return np.random.default_rng(seed)
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[candidate])


def data_stream(seed, dataset):
    """The stream whose draws make the xor set's rows (all rows, in any order)."""
    rows = np.sort(dataset.train.X, axis=0)
    for candidate in CANDIDATES:
        X, _ = make_xor(candidate_rng(seed, candidate), n_samples=400, noise=0.2)
        if np.array_equal(np.sort(X, axis=0), rows):
            return candidate
    pytest.fail("the xor rows come from none of the candidate streams")


def init_stream(seed, cfg, net):
    """The stream the network's initial weights were drawn from."""
    m = cfg.model
    for candidate in CANDIDATES:
        rng = candidate_rng(seed, candidate)
        drawn = MLP(list(m.layers), m.layer_activations(), init=m.init, rng=rng)
        if np.array_equal(drawn.flat_params, net.flat_params):
            return candidate
    pytest.fail("the initial weights come from none of the candidate streams")


def batch_stream(seed, rng):
    """The stream the trainer shuffles minibatches with, before its first draw."""
    for candidate in CANDIDATES:
        if candidate_rng(seed, candidate).bit_generator.state == rng.bit_generator.state:
            return candidate
    pytest.fail("the batch order comes from none of the candidate streams")


@pytest.mark.parametrize("seed", [0, 7])
def test_data_weights_and_batch_order_come_from_three_different_streams(seed):
    # With one shared stream, the first weights would be the same draws as the data's noise.
    cfg = compose_run_config(
        "dataset=xor",
        "model.layers=[2,8,2]",
        f"seed={seed}",
        "dataset.standardize=false",
        "dataset.val_fraction=0",
        "dataset.test_fraction=0",
        "tracking.enabled=false",
    )
    parts = pipeline.prepare(cfg)
    trainer = pipeline.build_trainer(cfg, parts)
    used = {
        "data": data_stream(seed, parts.dataset),
        "init": init_stream(seed, cfg, parts.net),
        "batches": batch_stream(seed, trainer.rng),
    }
    assert len(set(used.values())) == 3, used


def test_each_purpose_is_the_seeds_child_at_its_documented_index():
    for purpose in (streams.DATA, streams.INIT, streams.BATCHES):
        expected = np.random.default_rng(np.random.SeedSequence(5).spawn(3)[purpose])
        assert streams.generator(5, purpose).random(4).tolist() == expected.random(4).tolist()
    assert len({streams.DATA, streams.INIT, streams.BATCHES}) == 3
