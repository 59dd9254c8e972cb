"""Toy data sets drawn from a seed: small 2-D problems whose decision boundary one can plot."""

import math
import numbers

import numpy as np

from runner.datasets._table import Table
from runner.errors import ConfigError

N_SAMPLES = 400  # Total rows before splitting; enough for a smooth boundary, fast to train.


def make_xor(rng, n_samples, noise):
    """Gaussian clouds at the corners (+-1, +-1); the class is the xor of the corner's signs."""
    corner = _balanced_labels(rng, n_samples, 4)
    signs = np.stack([corner // 2, corner % 2], axis=1)  # 0 or 1 per coordinate
    X = (2.0 * signs - 1.0) + noise * rng.standard_normal((n_samples, 2))
    return X, signs[:, 0] ^ signs[:, 1]


def make_moons(rng, n_samples, noise):
    """Two interleaving half circles, as scikit-learn's make_moons, plus Gaussian noise."""
    n_outer = n_samples // 2
    n_inner = n_samples - n_outer
    outer = np.linspace(0.0, np.pi, n_outer)
    inner = np.linspace(0.0, np.pi, n_inner)
    X = np.concatenate(
        [
            np.stack([np.cos(outer), np.sin(outer)], axis=1),
            np.stack([1.0 - np.cos(inner), 0.5 - np.sin(inner)], axis=1),
        ]
    )
    y = np.repeat([0, 1], [n_outer, n_inner])
    return X + noise * rng.standard_normal(X.shape), y


def make_spirals(rng, n_samples, noise, n_classes):
    """``n_classes`` arms winding out from the origin, each turned 2*pi/n_classes from the last."""
    y = _balanced_labels(rng, n_samples, n_classes)
    radius = rng.uniform(0.0, 1.0, n_samples)
    angle = 4.0 * radius + 2.0 * np.pi * y / n_classes  # 4 radians: about 2/3 of a turn per arm
    X = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return X + noise * rng.standard_normal(X.shape), y


def make_blobs(rng, n_samples, noise, n_classes, n_features):
    """Isotropic Gaussian clusters with std ``noise`` around centres drawn from [-10, 10]^d."""
    centres = rng.uniform(-10.0, 10.0, (n_classes, n_features))
    y = _balanced_labels(rng, n_samples, n_classes)
    return centres[y] + noise * rng.standard_normal((n_samples, n_features)), y


# Name -> (generator, its keyword arguments with defaults). A key missing from a set's defaults
# is one that set does not take, which load_dataset reports rather than ignores.
GENERATORS = {
    "xor": (make_xor, {"n_samples": N_SAMPLES, "noise": 0.2}),
    "moons": (make_moons, {"n_samples": N_SAMPLES, "noise": 0.1}),
    "spirals": (make_spirals, {"n_samples": N_SAMPLES, "noise": 0.05, "n_classes": 3}),
    "blobs": (
        make_blobs,
        {"n_samples": N_SAMPLES, "noise": 1.0, "n_classes": 3, "n_features": 2},
    ),
}
GENERATED_NAMES = tuple(GENERATORS)


def generate(name, rng, params):
    """Draw the set ``name`` of GENERATORS as a Table.

    params : dict of n_samples, noise, n_classes and n_features; None means "the default",
        and any other value for a key the set does not take is a ConfigError.
    rng : the run's data stream (``runner.streams.DATA``); the split draws from it next.
    """
    make, defaults = GENERATORS[name]
    kwargs = dict(defaults)
    for key, value in params.items():
        if value is None:
            continue
        if key not in defaults:
            raise ConfigError(
                f"dataset.{key} does not apply to dataset {name!r}, which takes "
                f"{sorted(defaults)}; remove it"
            )
        kwargs[key] = value
    _check(kwargs)
    X, y = make(rng, **kwargs)
    n_classes = kwargs.get("n_classes", 2)
    feature_names = tuple(f"x{i}" for i in range(X.shape[1]))
    class_names = tuple(str(c) for c in range(n_classes))
    return Table(np.ascontiguousarray(X), y.astype(np.int64), feature_names, class_names)


def _check(kwargs):
    """Raise ConfigError naming the first parameter that cannot produce a usable set."""
    n_classes = kwargs.get("n_classes", 2)
    for key, minimum in (("n_classes", 2), ("n_features", 1), ("n_samples", 2 * n_classes)):
        value = kwargs.get(key, minimum)
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"dataset.{key} must be an integer >= {minimum}, got {value!r}")
    noise = kwargs["noise"]
    is_real = isinstance(noise, numbers.Real) and not isinstance(noise, bool)
    if not (is_real and math.isfinite(noise) and noise >= 0):
        raise ConfigError(f"dataset.noise must be a finite number >= 0, got {noise!r}")


def _balanced_labels(rng, n_samples, n_classes):
    """Class ids 0..n_classes-1 in equal shares (the first classes get the remainder), shuffled."""
    return rng.permutation(np.arange(n_samples) % n_classes)
