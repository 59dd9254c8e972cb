"""Weight initialisers, chosen by name.

Each draws a (fan_in, fan_out) matrix from an explicit ``numpy.random.Generator`` (never the
global RNG) in float64 and the network casts it once, so a float32 and a float64 net built
from the same seed start from the same weights, rounded.
"""

import numpy as np

from runner.engine.activations import RELU_FAMILY
from runner.errors import ConfigError


def he_uniform(rng, fan_in, fan_out, std):
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def he_normal(rng, fan_in, fan_out, std):
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


def glorot_uniform(rng, fan_in, fan_out, std):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def glorot_normal(rng, fan_in, fan_out, std):
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))


def normal(rng, fan_in, fan_out, std):
    return rng.normal(0.0, std, size=(fan_in, fan_out))


def zeros(rng, fan_in, fan_out, std):
    return np.zeros((fan_in, fan_out))


INITIALIZERS = {
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "normal": normal,
    "zeros": zeros,
}
INIT_CHOICES = ("auto", *INITIALIZERS)


def initializer_for(init, activation):
    """Resolve ``auto``: He for the relu family (keeps the forward variance), Glorot otherwise."""
    if init == "auto":
        return he_uniform if activation in RELU_FAMILY else glorot_uniform
    try:
        return INITIALIZERS[init]
    except (KeyError, TypeError):
        raise ConfigError(f"init must be one of {list(INIT_CHOICES)}, got {init!r}") from None
