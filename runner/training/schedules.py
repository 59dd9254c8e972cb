"""Learning-rate schedules: each epoch's rate as a pure function of the epoch.

Being pure, a schedule needs no state in a checkpoint: a resumed run recomputes its rate.
"""

import math

from runner.errors import ConfigError


def constant_lr(base_lr, epoch, epochs, step_size, gamma, min_lr):
    return base_lr


def step_lr(base_lr, epoch, epochs, step_size, gamma, min_lr):
    return base_lr * gamma ** (epoch // step_size)


def exponential_lr(base_lr, epoch, epochs, step_size, gamma, min_lr):
    return base_lr * gamma**epoch


def cosine_lr(base_lr, epoch, epochs, step_size, gamma, min_lr):
    return min_lr + (base_lr - min_lr) * (1.0 + math.cos(math.pi * epoch / max(epochs, 1))) / 2.0


SCHEDULES = {
    "constant": constant_lr,
    "step": step_lr,
    "exponential": exponential_lr,
    "cosine": cosine_lr,
}


def scheduled_lr(schedule, base_lr, epoch, *, epochs, step_size=10, gamma=0.5, min_lr=0.0):
    """The learning rate for a 0-based epoch, as a pure function of the epoch.

    constant: base_lr. step: base_lr·γ^⌊epoch/step_size⌋. exponential: base_lr·γ^epoch.
    cosine: min_lr + (base_lr − min_lr)(1 + cos(π·epoch/epochs))/2, PyTorch's
    CosineAnnealingLR with T_max = epochs. Being pure, it needs no state in a checkpoint.
    """
    try:
        rule = SCHEDULES[schedule]
    except (KeyError, TypeError):
        raise ConfigError(
            f"schedule must be one of {sorted(SCHEDULES)}, got {schedule!r}"
        ) from None
    return rule(base_lr, epoch, epochs, step_size, gamma, min_lr)
