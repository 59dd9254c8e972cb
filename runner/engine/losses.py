"""Losses, chosen by name, each the mean over the batch of a per-sample loss.

A loss computes its value and the gradient that starts back-propagation in one pass.
``cross_entropy`` and ``bce`` are *fused* with their output activation: they read the
output layer's pre-activation A (the logits) and write ∂C/∂A directly, as (p − y)/batch,
so no softmax Jacobian is ever formed and log never sees 0. ``mse`` reads the activated
output Z and writes ∂C/∂Z; the network then back-propagates it through the activation.
The pairing is explicit: ``Loss.output_activation`` names the one activation a fused loss
accepts, and ``check_pairing`` refuses any other.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from runner.errors import ConfigError


def cross_entropy(A, Y, delta):
    """Softmax cross-entropy −Σ_k y_k log p_k from logits, averaged over the batch.

    A : ndarray (n_samples, n_classes), the logits; overwritten (shifted by the row max).
    Y : ndarray (n_samples, n_classes), targets whose rows sum to 1 (one-hot or soft).
    delta : ndarray like A, receives ∂C/∂A = (softmax(A) − Y) / n_samples.
    Returns the loss as a float. log-sum-exp keeps it finite for any finite logits.
    """
    n = A.shape[0]
    # ufunc methods called directly: half the per-call overhead of A.max()/A.sum() on small A.
    np.subtract(A, np.maximum.reduce(A, 1, None, None, True), out=A)
    np.exp(A, out=delta)
    sums = np.add.reduce(delta, 1, None, None, True)
    loss = (np.add.reduce(np.log(sums), None) - np.vdot(Y, A)) / n
    delta /= sums
    delta -= Y
    delta /= n
    return float(loss)


def bce(A, Y, delta):
    """Sigmoid binary cross-entropy from logits, summed over outputs, averaged over the batch.

    Per sample: Σ_k softplus(a_k) − y_k·a_k, which equals −Σ_k y_k log p_k + (1−y_k) log(1−p_k)
    with p = sigmoid(a) but never takes the log of 0. Works for one binary output or several
    independent (multi-label) outputs.

    A : ndarray (n_samples, n_outputs), the logits; left unchanged.
    Y : ndarray (n_samples, n_outputs), targets in [0, 1].
    delta : ndarray like A, receives ∂C/∂A = (sigmoid(A) − Y) / n_samples.
    """
    n = A.shape[0]
    softplus = np.logaddexp(0.0, A, out=delta)
    loss = (softplus.sum() - np.vdot(Y, A)) / n
    # sigmoid(a) = exp(a − softplus(a)), exact in both tails.
    np.subtract(A, softplus, out=delta)
    np.exp(delta, out=delta)
    delta -= Y
    delta /= n
    return float(loss)


def mse(Z, Y, delta):
    """Squared error Σ_k (y_k − z_k)² per sample, averaged over the batch.

    This is the tutorials' C = Σ‖y − z‖² divided by the batch size (scikit-learn halves it
    and also divides by n_outputs; Keras divides by n_outputs: compare with care).

    Z : ndarray (n_samples, n_outputs), the activated output; left unchanged.
    delta : ndarray like Z, receives ∂C/∂Z = 2 (Z − Y) / n_samples.
    """
    n = Z.shape[0]
    np.subtract(Z, Y, out=delta)
    loss = np.vdot(delta, delta) / n
    delta *= 2.0
    delta /= n
    return float(loss)


@dataclass(frozen=True)
class Loss:
    """A loss function and the output activation it is fused with (None: any, not fused)."""

    name: str
    function: Callable
    output_activation: str | None

    @property
    def fused(self):
        return self.output_activation is not None


LOSSES = {
    "cross_entropy": Loss("cross_entropy", cross_entropy, "softmax"),
    "bce": Loss("bce", bce, "sigmoid"),
    "mse": Loss("mse", mse, None),
}


def get_loss(name):
    """Look a loss up by name, with an error that lists the choices."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"loss must be one of {sorted(LOSSES)}, got {name!r}") from None


def check_pairing(loss, output_activation, n_outputs):
    """Refuse a loss whose gradient would be wrong for this output layer."""
    if loss.output_activation not in (None, output_activation):
        hint = {"softmax": "cross_entropy", "sigmoid": "bce"}.get(output_activation, "mse")
        raise ConfigError(
            f"loss {loss.name!r} needs a {loss.output_activation} output layer but the model's "
            f"output activation is {output_activation!r}; use the {hint!r} loss or set the output "
            f"activation to {loss.output_activation}"
        )
    if loss.name == "cross_entropy" and n_outputs < 2:
        raise ConfigError(
            "loss 'cross_entropy' needs at least 2 outputs (softmax over one output is always 1); "
            "for a single binary output use a sigmoid output with the 'bce' loss"
        )


def default_loss_for(output_activation):
    """The loss that naturally fits an output activation: what ``loss=auto`` picks."""
    return {"softmax": "cross_entropy", "sigmoid": "bce"}.get(output_activation, "mse")
