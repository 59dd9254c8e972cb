"""A job's identity changes with what is trained and with nothing else."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from runner.config import CONF_DIR, register_configs
from runner.sweeps.identity import job_identity


def composed(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


def test_the_same_config_has_the_same_identity():
    assert job_identity(composed()) == job_identity(composed())
    assert len(job_identity(composed())) == 16


@pytest.mark.parametrize(
    "override",
    [
        "lr=0.05",
        "batch=16",
        "seed=1",
        "model.layers=[4,16,3]",
        "optimizer=momentum",
        "dataset.val_fraction=0.3",
        "epochs=7",
        "dtype=float32",
        "model.activation=tanh",
    ],
)
def test_what_is_trained_changes_the_identity(override):
    assert job_identity(composed(override)) != job_identity(composed())


@pytest.mark.parametrize(
    "override",
    [
        "tracking.enabled=false",
        "tracking.log_model=false",
        "experiment=other",
        "progress=true",
        "epoch_lines=false",
        "checkpoint.every_n_epochs=5",
        "resume=abc",
        "sweep.restart=true",
        "model.name=renamed",
        "lr=0.1",
        "lr=1e-1",
    ],
)
def test_what_cannot_change_the_result_leaves_the_identity(override):
    assert job_identity(composed(override)) == job_identity(composed())
