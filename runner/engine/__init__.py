"""The NumPy MLP engine: layers, activations, losses, initialisers, SGD and the epoch loop.

It imports only NumPy and the standard library, so it can be used and tested without Hydra
or MLflow.
"""

from runner.engine.activations import ACTIVATIONS
from runner.engine.initializers import INIT_CHOICES, INITIALIZERS
from runner.engine.losses import LOSSES, default_loss_for
from runner.engine.mlp import DTYPES, MLP
from runner.engine.optim import SCHEDULES, SGD, scheduled_lr
from runner.engine.train import EpochLoop

__all__ = [
    "ACTIVATIONS",
    "DTYPES",
    "INITIALIZERS",
    "INIT_CHOICES",
    "LOSSES",
    "MLP",
    "SCHEDULES",
    "SGD",
    "EpochLoop",
    "default_loss_for",
    "scheduled_lr",
]
