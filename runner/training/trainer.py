"""The training loop: epochs of minibatch SGD, evaluation, early stopping, divergence guard.

It reports each epoch's metrics to a callable it is given and knows nothing of where they
go (console, MLflow): data flows one way, and the loop stays testable on its own.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from runner.engine.metrics import accuracy, r2, rmse
from runner.errors import DivergenceError
from runner.training.loop import EpochLoop
from runner.training.schedules import scheduled_lr
from runner.training.state import TrainingState


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
        self.steps_done = 0  # in this epoch
        self.lr = None

    def __call__(self, step, value):
        self.steps_done = step + 1
        if self.reference is None:
            self.reference = value
        if not math.isfinite(value) or value > self.factor * self.reference:
            raise DivergenceError(
                f"train loss became {value:.6g} at epoch {self.epoch}, step {step + 1} "
                f"(first epoch's loss {self.reference:.6g}, lr {self.lr:g}); try a smaller lr "
                f"or a larger divergence factor (now {self.factor:g})"
            )

    def overflowed(self, err, dtype, where):
        """The error for arithmetic that left ``dtype``'s range: weights past saving."""
        return DivergenceError(
            f"training left the range of {dtype} in {where} ({err}, lr {self.lr:g}); try a "
            f"smaller lr, or standardised inputs"
        )


class Trainer:
    """Epochs of minibatch SGD with evaluation, early stopping and a divergence guard.

    After every completed epoch it keeps ``snapshot``, a TrainingState from which
    ``restore`` continues bit for bit: same weights, optimizer state, batch order (the RNG state),
    early-stopping and divergence-guard state. A run interrupted mid-epoch therefore
    resumes from the last completed epoch and ends exactly as an uninterrupted one.

    data : a Dataset (``runner.datasets``): train/val splits, task, target_scale.
    schedule : Schedule giving each epoch's learning rate.
    patience : stop after this many epochs without a val_loss improvement of more than
        ``min_delta``; None trains every epoch. ``restore_best`` then ends with the best
        epoch's weights.
    """

    def __init__(
        self,
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
    ):
        self.net, self.optimizer, self.data = net, optimizer, data
        self.epochs, self.schedule, self.rng = epochs, schedule, rng
        self.patience, self.min_delta, self.restore_best = patience, min_delta, restore_best
        self.loop = EpochLoop(
            net,
            optimizer,
            loss,
            data.train.X,
            data.train.Y,
            batch_size=batch_size,
            shuffle=shuffle,
            rng=rng,
        )
        self.guard = _DivergenceGuard(divergence_factor)
        self.epoch = 0
        self.history = []
        self.best_loss, self.best_epoch, self.waited, self.best_params = math.inf, None, 0, None
        self.stopped_early = False
        self.snapshot = self.state()

    def state(self):
        """The trainer as it stands: a TrainingState to checkpoint or restore.

        Taken after every epoch, so it copies only what later epochs change in place (weights,
        the optimizer's state). The history list is shared, since it is only appended to (the
        state's part is its first ``epoch`` entries), and so are the best weights, which a new
        best replaces rather than overwrites.
        """
        return TrainingState(
            epoch=self.epoch,
            params=self.net.flat_params.copy(),
            optimizer=self.optimizer.state(),
            rng_state=self.rng.bit_generator.state,
            history=self.history,
            best_loss=self.best_loss,
            best_epoch=self.best_epoch,
            waited=self.waited,
            best_params=self.best_params,
            guard_reference=self.guard.reference,
            stopped_early=self.stopped_early,
        )

    def restore(self, state):
        """Continue from a TrainingState taken by ``state`` (here or in an earlier process)."""
        self.net.flat_params[...] = state.params
        self.optimizer.load_state(state.optimizer)
        self.rng.bit_generator.state = state.rng_state
        self.epoch, self.history = state.epoch, list(state.history[: state.epoch])
        self.best_loss, self.best_epoch = state.best_loss, state.best_epoch
        self.waited, self.stopped_early = state.waited, state.stopped_early
        self.best_params = None if state.best_params is None else state.best_params.copy()
        self.guard.reference = state.guard_reference
        self.snapshot = self.state()

    def run(self, on_epoch=None, on_step=None, on_snapshot=None):
        """Train the remaining epochs; return a FitResult over all of them.

        on_epoch(epoch, metrics) : after every epoch (1-based) with train_loss, the
            validation metrics and lr. on_step(epoch, step, loss) : after every update.
        on_snapshot(state) : after every epoch, with the new ``snapshot`` (to checkpoint).
        Raises DivergenceError as soon as a step's loss is non-finite or exceeds
        ``divergence_factor`` × the first epoch's mean loss.
        """
        guard, data = self.guard, self.data

        def after_step(step, value):
            guard(step, value)
            if on_step is not None:
                on_step(guard.epoch, step, value)

        while self.epoch < self.epochs and not self.stopped_early:
            epoch = self.epoch + 1
            guard.epoch, guard.lr = epoch, self.schedule.at(epoch - 1, self.epochs)
            guard.steps_done = 0
            # An overflow is divergence, reported as one: never a RuntimeWarning, nor inf or
            # nan carried on into the weights.
            with np.errstate(over="raise", divide="raise", invalid="raise"):
                try:
                    metrics = {"train_loss": self.loop.run(guard.lr, after_step)}
                except FloatingPointError as err:
                    where = f"epoch {epoch}, step {guard.steps_done + 1}"
                    raise guard.overflowed(err, self.net.dtype, where) from None
                if epoch == 1:
                    guard.reference = metrics["train_loss"]
                try:
                    metrics.update(
                        evaluate(
                            self.net,
                            data.val,
                            self.loop.loss,
                            task=data.task,
                            target_scale=data.target_scale,
                        )
                    )
                except FloatingPointError as err:
                    where = f"the validation after epoch {epoch}"
                    raise guard.overflowed(err, self.net.dtype, where) from None
            metrics["lr"] = guard.lr
            self._track_best(epoch, metrics.get("val_loss", metrics["train_loss"]))
            self.history.append(metrics)
            self.epoch = epoch
            self.snapshot = self.state()
            if on_snapshot is not None:
                on_snapshot(self.snapshot)
            if on_epoch is not None:
                on_epoch(epoch, metrics)
        if self.best_params is not None and self.best_epoch != self.epoch:
            self.net.flat_params[...] = self.best_params
        return FitResult(list(self.history), self.best_epoch, self.stopped_early)

    def _track_best(self, epoch, val_loss):
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.waited = val_loss, epoch, 0
            if self.patience is not None and self.restore_best:
                self.best_params = self.net.flat_params.copy()
        else:
            self.waited += 1
            if self.patience is not None and self.waited >= self.patience:
                self.stopped_early = True
