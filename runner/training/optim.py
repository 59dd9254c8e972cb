"""Minibatch SGD with momentum, Nesterov and L2 weight decay.

The optimizer updates the network's single flat parameter vector from its single flat
gradient vector, so one step is two or three NumPy calls whatever the depth. Momentum follows
PyTorch's convention (v ← μv + g; w ← w − lr·v), which stays correct when the learning rate
changes between epochs.
"""

import numpy as np

from runner.errors import ConfigError


class SGD:
    """w ← w − lr·g, optionally with momentum μ, Nesterov look-ahead and L2 weight decay.

    Parameters
    ----------
    net : MLP whose ``flat_params`` and ``flat_grads`` this optimizer updates.
    momentum : μ in [0, 1); 0 is plain SGD.
    nesterov : use g + μv instead of v (needs momentum > 0).
    weight_decay : λ ≥ 0 adds λ·W to the gradient of every weight matrix (not the biases,
        as in scikit-learn's ``alpha`` and Keras' kernel regularisers).
    """

    def __init__(self, net, *, momentum=0.0, nesterov=False, weight_decay=0.0):
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ConfigError("nesterov needs momentum > 0, e.g. 0.9")
        if weight_decay < 0.0:
            raise ConfigError(f"weight_decay must be >= 0, got {weight_decay}")
        self.net = net
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.velocity = np.zeros_like(net.flat_params) if momentum else None
        self._scratch = np.empty_like(net.flat_params) if nesterov else None

    def step(self, lr):
        """Apply one update from the gradients the last backward pass left in the net."""
        g = self.net.flat_grads
        if self.weight_decay:
            for W, dW in zip(self.net.weights, self.net.weight_grads, strict=True):
                dW += self.weight_decay * W
        if self.velocity is not None:
            v = self.velocity
            v *= self.momentum
            v += g
            if self.nesterov:
                np.multiply(v, self.momentum, out=self._scratch)
                g += self._scratch
            else:
                g = v
        # In place on the gradient buffer, which the next backward pass overwrites anyway.
        np.multiply(g, -lr, out=self.net.flat_grads)
        self.net.flat_params += self.net.flat_grads
