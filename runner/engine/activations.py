"""Activation functions and their derivatives, chosen by name.

Every function works in place on a preallocated buffer, so a training step allocates
nothing. Derivatives are written from the activation's *output* Z (as scikit-learn does),
because Z is what the forward pass keeps: ``backprop(Z, dZ)`` turns the gradient with
respect to the output, dZ, into the gradient with respect to the pre-activation,
``h'(A) ⊙ dZ``, overwriting dZ.
"""

import numpy as np

LEAKY_RELU_SLOPE = 0.01


def identity(A):
    """Return A unchanged: the output layer of a regression net."""
    return A


def sigmoid(A):
    """1 / (1 + exp(-A)) in place, as exp(-log(1 + exp(-A))).

    ``logaddexp`` never overflows, so |A| > 700 gives exactly 0 or 1 without a
    RuntimeWarning, and tiny outputs keep full relative precision (unlike 0.5·(1 + tanh)).
    """
    np.logaddexp(0.0, np.negative(A, out=A), out=A)
    np.negative(A, out=A)
    return np.exp(A, out=A)


def tanh(A):
    """Hyperbolic tangent in place."""
    return np.tanh(A, out=A)


def relu(A):
    """max(A, 0) in place."""
    return np.maximum(A, 0.0, out=A)


def leaky_relu(A):
    """max(A, 0.01·A) in place: negative inputs keep a small slope."""
    return np.maximum(A, A * LEAKY_RELU_SLOPE, out=A)


def softmax(A):
    """Row-wise softmax in place; the row max is subtracted first so exp cannot overflow."""
    A -= A.max(axis=1, keepdims=True)
    np.exp(A, out=A)
    A /= A.sum(axis=1, keepdims=True)
    return A


ACTIVATIONS = {
    "identity": identity,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "softmax": softmax,
}


def _identity_backprop(Z, dZ):
    return dZ


def _sigmoid_backprop(Z, dZ):
    dZ *= Z
    dZ *= 1.0 - Z
    return dZ


def _tanh_backprop(Z, dZ):
    dZ *= 1.0 - Z * Z
    return dZ


# Multiplying by a mask, not assigning through one: a boolean-indexed write branches on
# every element and costs 5-8× more on a half-zero mask.
def _relu_backprop(Z, dZ):
    return np.multiply(dZ, Z > 0, out=dZ)


def _leaky_relu_backprop(Z, dZ):
    one, slope = Z.dtype.type(1), Z.dtype.type(LEAKY_RELU_SLOPE)
    return np.multiply(dZ, np.where(Z > 0, one, slope), out=dZ)


def _softmax_backprop(Z, dZ):
    # The Jacobian-vector product of softmax: Z ⊙ (dZ − Σ_k dZ_k Z_k), row by row.
    dZ -= np.einsum("ij,ij->i", dZ, Z)[:, None]
    dZ *= Z
    return dZ


BACKPROPS = {
    "identity": _identity_backprop,
    "sigmoid": _sigmoid_backprop,
    "tanh": _tanh_backprop,
    "relu": _relu_backprop,
    "leaky_relu": _leaky_relu_backprop,
    "softmax": _softmax_backprop,
}

# Activations whose He initialisation keeps the forward variance; the rest get Glorot.
RELU_FAMILY = frozenset({"relu", "leaky_relu"})
