"""One experiment from a validated config: dataset → model → training → test → weights.

Nothing here knows Hydra or MLflow: the entry point hands in a ``RunConfig`` and callables
for the per-epoch and per-step reports, so the whole run is testable on its own.
"""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runner.config import RunConfig, model_names_with_inputs
from runner.datasets import load_dataset
from runner.engine import MLP, SGD, default_loss_for
from runner.engine.fit import FitResult, Schedule, Trainer, evaluate
from runner.engine.losses import check_pairing, get_loss
from runner.errors import ConfigError, DataError

log = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.npz"


@dataclass
class Outcome:
    """What a finished run produced."""

    net: MLP
    dataset: object
    loss: str
    fit: FitResult
    train_seconds: float  # wall time of the epochs alone, without set-up, test or saving
    val_metrics: dict  # of the final weights
    test_metrics: dict
    weights_path: Path

    @property
    def objective(self):
        """The final validation loss (train loss without a val split): what sweeps minimise."""
        return self.val_metrics.get("val_loss", self.fit.history[-1]["train_loss"])


def build_dataset(cfg: RunConfig):
    d = cfg.dataset
    return load_dataset(
        d.name,
        seed=cfg.seed,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        standardize=d.standardize,
        n_outputs=cfg.model.layers[-1],
        dtype=cfg.dtype,
        path=d.path,
        target=d.target,
        task=d.task,
        n_samples=d.n_samples,
        noise=d.noise,
        n_classes=d.n_classes,
        n_features=d.n_features,
    )


def resolve_loss(cfg: RunConfig):
    """The loss name: ``auto`` becomes the one that fits the output activation."""
    activations = cfg.model.layer_activations()
    name = default_loss_for(activations[-1]) if cfg.loss.name == "auto" else cfg.loss.name
    check_pairing(get_loss(name), activations[-1], cfg.model.layers[-1])
    return name


def check_model_fits_data(cfg: RunConfig, dataset):
    """Refuse a model whose first or last layer does not match the data set."""
    layers, name = list(cfg.model.layers), cfg.model.name
    if layers[0] != dataset.n_features:
        fitting = model_names_with_inputs(dataset.n_features)
        hint = f"model={fitting[0]}" if fitting else f"model.layers=[{dataset.n_features}, ...]"
        raise ConfigError(
            f"model {name} takes {layers[0]} input features but dataset '{dataset.name}' has "
            f"{dataset.n_features}; pick a model whose first layer is {dataset.n_features} "
            f"(e.g. {hint})"
        )
    if layers[-1] != dataset.n_outputs:
        what = (
            f"{dataset.n_classes} classes"
            if dataset.task == "classification"
            else f"{dataset.n_outputs} regression target(s)"
        )
        raise ConfigError(
            f"model {name} has {layers[-1]} outputs but dataset '{dataset.name}' has {what}; "
            f"set model.layers=[{', '.join(map(str, layers[:-1]))}, {dataset.n_outputs}] "
            f"or pick another model"
        )


def build_model(cfg: RunConfig, rng):
    m = cfg.model
    net = MLP(
        list(m.layers),
        m.layer_activations(),
        bias=m.bias,
        init=m.init,
        init_std=m.init_std,
        dtype=cfg.dtype,
        rng=rng,
    )
    if cfg.init_from:
        net.load_weights(cfg.init_from)
    return net


def prepare(cfg: RunConfig):
    """Everything a run needs, checked before the first step: (dataset, net, optimizer, loss)."""
    loss = resolve_loss(cfg)
    dataset = build_dataset(cfg)
    check_model_fits_data(cfg, dataset)
    if dataset.train.X.shape[0] == 0:
        raise DataError(f"dataset '{dataset.name}' has no training rows")
    init_seed, _ = np.random.SeedSequence(cfg.seed).spawn(2)
    net = build_model(cfg, np.random.default_rng(init_seed))
    o = cfg.optimizer
    optimizer = SGD(net, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    return dataset, net, optimizer, loss


def build_trainer(cfg: RunConfig, prepared):
    """The Trainer for a config and what ``prepare`` made for it; batch order from the seed."""
    dataset, net, optimizer, loss = prepared
    _, shuffle_seed = np.random.SeedSequence(cfg.seed).spawn(2)
    o, stopping = cfg.optimizer, cfg.early_stopping
    return Trainer(
        net,
        optimizer,
        loss,
        dataset,
        epochs=cfg.epochs,
        batch_size=cfg.batch,
        schedule=Schedule(cfg.lr, o.schedule, o.step_size, o.gamma, o.min_lr),
        rng=np.random.default_rng(shuffle_seed),
        shuffle=cfg.shuffle,
        patience=stopping.patience,
        min_delta=stopping.min_delta,
        restore_best=stopping.restore_best,
        divergence_factor=cfg.divergence_factor,
    )


def run(
    cfg: RunConfig,
    output_dir,
    *,
    on_epoch=None,
    on_step=None,
    on_snapshot=None,
    prepared=None,
    resume=None,
):
    """Train and test the model the config describes; write its weights to ``output_dir``.

    resume : a TrainingState (from a checkpoint) to continue from instead of epoch 0.
    on_snapshot(state) : after every epoch, the state a checkpoint would hold.
    """
    prepared = prepared or prepare(cfg)
    dataset, net, _, loss = prepared
    trainer = build_trainer(cfg, prepared)
    if resume is not None:
        trainer.restore(resume)
    started = time.perf_counter()
    result = trainer.run(on_epoch=on_epoch, on_step=on_step, on_snapshot=on_snapshot)
    train_seconds = time.perf_counter() - started
    scale = dataset.target_scale
    val_metrics = evaluate(net, dataset.val, loss, task=dataset.task, target_scale=scale)
    test_metrics = evaluate(
        net, dataset.test, loss, task=dataset.task, target_scale=scale, prefix="test"
    )
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    weights_path = net.save(output_dir / WEIGHTS_FILE)
    return Outcome(
        net, dataset, loss, result, train_seconds, val_metrics, test_metrics, weights_path
    )
