"""The training loop: epochs of minibatch SGD, evaluation, early stopping, divergence guard.

It reports each epoch's metrics to a callable it is given and knows nothing of where they
go (console, MLflow): data flows one way, and the loop stays testable on its own.
"""

import math
from dataclasses import dataclass, field

from runner.engine.metrics import accuracy, r2, rmse
from runner.engine.optim import scheduled_lr
from runner.engine.train import EpochLoop
from runner.errors import DivergenceError


@dataclass
class Schedule:
    """How the learning rate moves with the epoch (see ``scheduled_lr``)."""

    lr: float
    name: str = "constant"
    step_size: int = 10
    gamma: float = 0.5
    min_lr: float = 0.0

    def at(self, epoch, epochs):
        return scheduled_lr(
            self.name,
            self.lr,
            epoch,
            epochs=epochs,
            step_size=self.step_size,
            gamma=self.gamma,
            min_lr=self.min_lr,
        )


@dataclass
class FitResult:
    history: list = field(default_factory=list)  # one dict of metrics per epoch
    best_epoch: int | None = None  # 1-based epoch with the lowest val_loss
    stopped_early: bool = False


def evaluate(net, split, loss, *, task, target_scale=None, prefix="val"):
    """Loss and task metrics of ``net`` on a data split, from one forward pass.

    Returns e.g. {"val_loss": …, "val_accuracy": …} or {"val_loss", "val_rmse", "val_r2"};
    an empty dict for an empty split.
    """
    if split.X.shape[0] == 0:
        return {}
    value, outputs = net.evaluate(split.X, split.Y, loss)
    metrics = {f"{prefix}_loss": value}
    if task == "classification":
        metrics[f"{prefix}_accuracy"] = accuracy(outputs, split.y)
    else:
        scale = 1.0 if target_scale is None else target_scale
        metrics[f"{prefix}_rmse"] = rmse(outputs, split.Y, scale)
        metrics[f"{prefix}_r2"] = r2(outputs, split.Y)
    return metrics


class _DivergenceGuard:
    """Stops training on a non-finite step loss or one far above the first epoch's.

    A stable log-softmax keeps a diverging cross-entropy finite, so the NaN check alone
    would let a blown-up run go on; the multiple of the first epoch's loss catches it.
    During the first epoch the first step's loss is the reference.
    """

    def __init__(self, factor):
        self.factor = factor
        self.reference = None
        self.epoch = 1
        self.lr = None

    def __call__(self, step, value):
        if self.reference is None:
            self.reference = value
        if not math.isfinite(value) or value > self.factor * self.reference:
            raise DivergenceError(
                f"train loss became {value:.6g} at epoch {self.epoch}, step {step + 1} "
                f"(first epoch's loss {self.reference:.6g}, lr {self.lr:g}); try a smaller lr "
                f"or raise divergence_factor (now {self.factor:g})"
            )


def fit(
    net,
    optimizer,
    loss,
    data,
    *,
    epochs,
    batch_size,
    schedule,
    rng,
    shuffle=True,
    patience=None,
    min_delta=0.0,
    restore_best=True,
    divergence_factor=10.0,
    on_epoch=None,
    on_step=None,
):
    """Train ``net`` on ``data.train`` for up to ``epochs`` epochs.

    data : a Dataset (``runner.datasets``): train/val splits, task, target_scale.
    schedule : Schedule giving each epoch's learning rate.
    patience : stop after this many epochs without a val_loss improvement of more than
        ``min_delta``; None trains every epoch. ``restore_best`` then puts back the best
        epoch's weights.
    on_epoch(epoch, metrics) : called after every epoch (1-based) with train_loss, lr and the
        validation metrics. on_step(epoch, step, loss) : after every update.
    Raises DivergenceError as soon as a step's loss is non-finite or exceeds
    ``divergence_factor`` × the first epoch's mean loss.
    """
    loop = EpochLoop(
        net,
        optimizer,
        loss,
        data.train.X,
        data.train.Y,
        batch_size=batch_size,
        shuffle=shuffle,
        rng=rng,
    )
    guard = _DivergenceGuard(divergence_factor)

    def after_step(step, value):
        guard(step, value)
        if on_step is not None:
            on_step(guard.epoch, step, value)

    result = FitResult()
    best_loss, best_params, waited = math.inf, None, 0
    for epoch in range(1, epochs + 1):
        guard.epoch, guard.lr = epoch, schedule.at(epoch - 1, epochs)
        metrics = {"train_loss": loop.run(guard.lr, after_step)}
        if epoch == 1:
            guard.reference = metrics["train_loss"]
        metrics.update(
            evaluate(net, data.val, loop.loss, task=data.task, target_scale=data.target_scale)
        )
        metrics["lr"] = guard.lr
        result.history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        val_loss = metrics.get("val_loss", metrics["train_loss"])
        if val_loss < best_loss - min_delta:
            best_loss, result.best_epoch, waited = val_loss, epoch, 0
            if patience is not None and restore_best:
                best_params = net.flat_params.copy()
        else:
            waited += 1
            if patience is not None and waited >= patience:
                result.stopped_early = True
                break
    if best_params is not None and result.best_epoch != len(result.history):
        net.flat_params[...] = best_params
    return result
