"""One epoch of minibatch SGD: the inner loop that every training run spends its time in.

Each epoch draws one permutation and gathers the data into preallocated buffers in that
order; every step then takes a contiguous slice (a view, no copy). The per-step cost is one
forward/backward pass and one update, independent of the data set's size.
"""

import numpy as np


class EpochLoop:
    """Minibatch passes over fixed training data.

    Parameters
    ----------
    net : MLP to train.
    optimizer : SGD over ``net``.
    loss : loss name or ``Loss``; checked against the net's output activation once, here.
    X : (n_samples, n_features); Y : (n_samples, n_outputs). Cast to the net's dtype once.
    batch_size : samples per step; the last partial batch is kept.
    shuffle : a new order every epoch from ``rng``; False keeps the data's order (the
        tutorials' sequential minibatches).
    rng : numpy.random.Generator for the permutations.
    """

    def __init__(self, net, optimizer, loss, X, Y, *, batch_size, shuffle=True, rng=None):
        self.net = net
        self.optimizer = optimizer
        self.loss = net._resolve_loss(loss)
        self.X = np.ascontiguousarray(net._as_input(X))
        self.Y = np.ascontiguousarray(Y, dtype=net.dtype)
        if self.Y.shape != (self.X.shape[0], net.layer_sizes[-1]):
            raise ValueError(f"Y must have shape {(self.X.shape[0], net.layer_sizes[-1])}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._X_order = np.empty_like(self.X) if shuffle else self.X
        self._Y_order = np.empty_like(self.Y) if shuffle else self.Y

    @property
    def steps_per_epoch(self):
        return -(-self.X.shape[0] // self.batch_size)

    def run(self, lr, on_step=None):
        """Train one epoch at learning rate ``lr``; return the mean training loss.

        The mean weights each step's loss by its batch size, so it is the average
        per-sample loss seen during the epoch. ``on_step(step, loss)`` is called after
        every update (step counts from 0 within the epoch) and may raise to stop.
        """
        n = self.X.shape[0]
        if self.shuffle:
            order = self.rng.permutation(n)
            np.take(self.X, order, axis=0, out=self._X_order)
            np.take(self.Y, order, axis=0, out=self._Y_order)
        X, Y, bs = self._X_order, self._Y_order, self.batch_size
        train_batch, step_update, loss = self.net._train_batch, self.optimizer.step, self.loss
        total = 0.0
        for step, start in enumerate(range(0, n, bs)):
            value = train_batch(X[start : start + bs], Y[start : start + bs], loss)
            step_update(lr)
            total += value * min(bs, n - start)
            if on_step is not None:
                on_step(step, value)
        return total / n
