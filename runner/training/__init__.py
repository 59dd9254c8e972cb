"""Training an engine network: the epoch loop, the Trainer, optimizers, schedules, their state.

``EpochLoop`` is the inner loop (minibatch steps over fixed data); ``Trainer`` adds
evaluation, early stopping, the divergence guard and a ``TrainingState`` that a checkpoint
file holds (``state.py``) and from which a run continues bit for bit. Like the engine, this
package imports only NumPy, the standard library and ``runner.engine``/``runner.errors``.
"""

from runner.training.loop import EpochLoop
from runner.training.optim import OPTIMIZERS, SGD, Adam, AdamW, optimizer_settings
from runner.training.schedules import SCHEDULES, scheduled_lr
from runner.training.state import TrainingState, load_checkpoint, save_checkpoint
from runner.training.trainer import FitResult, Schedule, Trainer, evaluate

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adam",
    "AdamW",
    "EpochLoop",
    "FitResult",
    "Schedule",
    "Trainer",
    "TrainingState",
    "evaluate",
    "load_checkpoint",
    "optimizer_settings",
    "save_checkpoint",
    "scheduled_lr",
]
