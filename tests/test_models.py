"""Every model file in runner/conf/model/ composes and trains one epoch on its data set."""

import math

import numpy as np
import pytest

from runner import pipeline
from runner.config import CONF_DIR
from tests.helpers import compose_run_config

# The data set each model is made for, as its file's "Trains on:" comment says.
DATA_FOR_MODEL = {
    "mlp_3_2": ["dataset=blobs", "dataset.n_features=3", "dataset.n_classes=2"],
    "mlp_2_3_1": ["dataset=xor"],
    "mlp_2_3_2_2": ["dataset=moons"],
    "mlp_4_8_8_3": ["dataset=iris"],
    "mlp_4_16_3": ["dataset=iris"],
    "mlp_4_16_16_3": ["dataset=iris"],
    "mlp_4_32_32_3": ["dataset=iris"],
    "mlp_13_16_3": ["dataset=wine"],
    "mlp_30_16_1": ["dataset=breast_cancer"],
    "mlp_64_128_64_10": ["dataset=digits"],
    "mlp_10_32_1": ["dataset=diabetes"],
    "mlp_784_15_10": ["dataset=digits28"],
}
PARAM_COUNTS = {"mlp_3_2": 8, "mlp_4_8_8_3": 139, "mlp_784_15_10": 11935}


def test_every_model_file_is_covered():
    assert {path.stem for path in (CONF_DIR / "model").glob("*.yaml")} == set(DATA_FOR_MODEL)


@pytest.mark.parametrize("model", sorted(DATA_FOR_MODEL))
def test_model_trains_one_epoch_on_its_data(model, tmp_path):
    cfg = compose_run_config(f"model={model}", *DATA_FOR_MODEL[model], "epochs=1")
    outcome = pipeline.run(cfg, tmp_path)
    (metrics,) = outcome.fit.history
    assert math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["val_loss"])
    assert outcome.weights_path.is_file()
    assert outcome.net.layer_sizes == tuple(cfg.model.layers)
    if model in PARAM_COUNTS:
        assert outcome.net.n_params == PARAM_COUNTS[model]
    if model == "mlp_2_3_1":
        assert outcome.net.bias is False
    test_keys = (
        {"test_loss", "test_accuracy"}
        if outcome.dataset.task == "classification"
        else {"test_loss", "test_rmse", "test_r2"}
    )
    assert set(outcome.test_metrics) == test_keys
    assert np.all(np.isfinite(outcome.net.flat_params))
