"""Every config option composes and validates; bad values name their key."""

import pytest

from runner.config import CONF_DIR
from runner.errors import ConfigError
from tests.helpers import compose_run_config

GROUPS = ("model", "dataset", "loss", "optimizer")


@pytest.mark.parametrize(
    "override",
    [
        f"{group}={path.stem}"
        for group in GROUPS
        for path in sorted((CONF_DIR / group).glob("*.yaml"))
    ],
)
def test_every_option_composes(override):
    cfg = compose_run_config(override)
    group, option = override.split("=")
    assert getattr(cfg, group).name == option


def test_defaults_are_the_documented_experiment():
    cfg = compose_run_config()
    assert (cfg.model.name, cfg.dataset.name, cfg.loss.name, cfg.optimizer.name) == (
        "mlp_4_8_8_3",
        "iris",
        "auto",
        "sgd",
    )
    assert (cfg.batch, cfg.lr, cfg.epochs, cfg.seed, cfg.dtype, cfg.shuffle) == (
        32,
        0.1,
        100,
        0,
        "float64",
        True,
    )


def test_layers_override_any_model():
    assert compose_run_config("model.layers=[4,16,3]").model.layers == [4, 16, 3]


def test_optimizer_presets_set_momentum():
    assert compose_run_config("optimizer=momentum").optimizer.momentum == 0.9
    nesterov = compose_run_config("optimizer=nesterov").optimizer
    assert nesterov.nesterov and nesterov.momentum == 0.9


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("batch=0", "batch"),
        ("lr=0", "lr"),
        ("epochs=-2", "epochs"),
        ("seed=-1", "seed"),
        ("dtype=int8", "dtype"),
        ("model.activation=gelu", "model.activation"),
        ("model.output_activation=exp", "model.output_activation"),
        ("model.activations=[relu]", "model.activations"),
        ("model.init=orthogonal", "model.init"),
        ("model.layers=[4]", "model.layers"),
        ("loss.name=hinge", "loss"),
        ("optimizer.schedule=linear", "optimizer.schedule"),
        ("optimizer.gamma=0", "optimizer.gamma"),
        ("early_stopping.patience=0", "early_stopping.patience"),
        ("divergence_factor=1", "divergence_factor"),
        ("+extra=1", "extra"),
        ("+model.depth=3", "model.depth"),
        ("+optimizer.beta=0.9", "optimizer.beta"),
        ("dataset.name=mnist", "dataset.name"),
    ],
)
def test_bad_values_name_their_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose_run_config(override)
