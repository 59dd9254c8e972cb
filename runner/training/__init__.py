"""Training an engine network: the epoch loop, the Trainer, SGD, schedules and their state.

``EpochLoop`` is the inner loop (minibatch steps over fixed data); ``Trainer`` adds
evaluation, early stopping, the divergence guard and a ``TrainingState`` that a checkpoint
file holds (``state.py``) and from which a run continues bit for bit. Like the engine, this
package imports only NumPy, the standard library and ``runner.engine``/``runner.errors``.
"""

from runner.training.loop import EpochLoop
from runner.training.optim import SGD
from runner.training.schedules import SCHEDULES, scheduled_lr
from runner.training.state import TrainingState, load_checkpoint, save_checkpoint
from runner.training.trainer import FitResult, Schedule, Trainer, evaluate

__all__ = [
    "SCHEDULES",
    "SGD",
    "EpochLoop",
    "FitResult",
    "Schedule",
    "Trainer",
    "TrainingState",
    "evaluate",
    "load_checkpoint",
    "save_checkpoint",
    "scheduled_lr",
]
