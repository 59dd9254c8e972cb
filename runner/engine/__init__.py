"""The NumPy MLP engine, the math of a network: layers, activations, losses, initialisers, metrics.

It imports only NumPy and the standard library (ruff's banned-api rules hold this), so it can
be used and tested without Hydra or MLflow. Training it is ``runner.training``'s job.
"""

from runner.engine.activations import ACTIVATIONS
from runner.engine.initializers import INIT_CHOICES, INITIALIZERS
from runner.engine.losses import LOSSES, default_loss_for
from runner.engine.mlp import DTYPES, MLP

__all__ = [
    "ACTIVATIONS",
    "DTYPES",
    "INITIALIZERS",
    "INIT_CHOICES",
    "LOSSES",
    "MLP",
    "default_loss_for",
]
