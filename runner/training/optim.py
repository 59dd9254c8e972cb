"""Optimizers over a network's flat parameters: SGD (momentum, Nesterov), Adam and AdamW.

An optimizer updates the network's single flat parameter vector from its single flat
gradient vector, so one step is a few NumPy calls whatever the depth. Every rule follows
PyTorch's ``torch.optim`` (tests/test_engine_adam.py checks Adam and AdamW against it), with
one convention of our own: weight decay acts on the weight matrices only, never the biases
(as scikit-learn's ``alpha`` and Keras' kernel regularisers do).

Each optimizer's keyword arguments are its settings (the config keys it reads, see
``optimizer_settings``), and ``state()``/``load_state()`` carry what it accumulates across
steps into a checkpoint and back, so a resumed run continues bit for bit.
"""

import inspect

import numpy as np

from runner.errors import ConfigError


class SGD:
    """w ← w − lr·g, optionally with momentum μ, Nesterov look-ahead and L2 weight decay.

    Momentum follows PyTorch's convention (v ← μv + g; w ← w − lr·v), which stays correct when
    the learning rate changes between epochs.

    Parameters
    ----------
    net : MLP whose ``flat_params`` and ``flat_grads`` this optimizer updates.
    momentum : μ in [0, 1); 0 is plain SGD.
    nesterov : use g + μv instead of v (needs momentum > 0).
    weight_decay : λ ≥ 0 adds λ·W to the gradient of every weight matrix (not the biases).
    """

    def __init__(self, net, *, momentum=0.0, nesterov=False, weight_decay=0.0):
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ConfigError("nesterov needs momentum > 0, e.g. 0.9")
        _check_weight_decay(weight_decay)
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
            _add_l2_gradient(self.net, self.weight_decay)
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

    def state(self):
        """A copy of the momentum buffer (nothing for plain SGD), for a checkpoint."""
        return {} if self.velocity is None else {"velocity": self.velocity.copy()}

    def load_state(self, state):
        """Continue from what ``state()`` returned (here or in an earlier process)."""
        if self.velocity is not None:
            self.velocity[...] = state["velocity"]


class Adam:
    """Adam (Kingma & Ba) as ``torch.optim.Adam`` computes it, with L2 weight decay.

    Per step t (from 1), with g the gradient and λ the weight decay (weights only):
    g ← g + λ·W; m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²;
    w ← w − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε). The bias corrections undo the
    pull of m and v towards their zero start; ε is added after the square root of the
    corrected v, as PyTorch does; the operations run in torch's order, and the two agree to
    rounding. The learning rate is given to every ``step``, so schedules apply to it as to
    SGD's.

    Parameters
    ----------
    net : MLP whose ``flat_params`` and ``flat_grads`` this optimizer updates.
    betas : (β1, β2), each in [0, 1): the decay rates of the running mean m of the gradient
        and the running mean v of its square.
    eps : ε > 0, which keeps the step finite where v is near zero.
    weight_decay : λ ≥ 0 adds λ·W to the gradient of every weight matrix (not the biases).
    """

    decoupled = False  # AdamW's decay acts on the weights, not through the gradient

    def __init__(self, net, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        betas = tuple(betas)
        if len(betas) != 2 or not all(0.0 <= beta < 1.0 for beta in betas):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {list(betas)}")
        if not eps > 0.0:
            raise ConfigError(f"eps must be > 0, got {eps}")
        _check_weight_decay(weight_decay)
        self.net = net
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.m = np.zeros_like(net.flat_params)
        self.v = np.zeros_like(net.flat_params)
        self.steps = 0  # t, the number of updates so far
        self._scratch = np.empty_like(net.flat_params)

    def step(self, lr):
        """Apply one update from the gradients the last backward pass left in the net."""
        net, m, v, scratch = self.net, self.m, self.v, self._scratch
        g = net.flat_grads
        beta1, beta2 = self.betas
        if self.weight_decay and self.decoupled:
            for W in net.weights:
                W *= 1.0 - lr * self.weight_decay
        elif self.weight_decay:
            _add_l2_gradient(net, self.weight_decay)
        self.steps += 1
        # m ← m + (1 − β1)(g − m): β1·m + (1 − β1)·g as torch's lerp computes it.
        np.subtract(g, m, out=scratch)
        scratch *= 1.0 - beta1
        m += scratch
        # v ← β2·v + ((1 − β2)·g)·g, in the order of torch's addcmul.
        v *= beta2
        np.multiply(g, 1.0 - beta2, out=scratch)
        scratch *= g
        v += scratch
        step_size = lr / (1.0 - beta1**self.steps)
        np.sqrt(v, out=scratch)
        scratch /= (1.0 - beta2**self.steps) ** 0.5
        scratch += self.eps
        # w ← w + (−step_size·m)/denominator, in the order of torch's addcdiv, through the
        # gradient buffer, which the next backward pass overwrites anyway.
        np.multiply(m, -step_size, out=g)
        g /= scratch
        net.flat_params += g

    def state(self):
        """Copies of m and v and the step count t, for a checkpoint."""
        return {"m": self.m.copy(), "v": self.v.copy(), "steps": np.array(self.steps)}

    def load_state(self, state):
        """Continue from what ``state()`` returned (here or in an earlier process)."""
        self.m[...] = state["m"]
        self.v[...] = state["v"]
        self.steps = int(state["steps"])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    Before each Adam step the weights shrink, W ← W − lr·λ·W, instead of λ·W being added to
    the gradient, where Adam's division by √v would weaken the decay of weights whose
    gradients are large.
    The default λ = 0.01 is PyTorch's.
    """

    decoupled = True

    def __init__(self, net, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(net, betas=betas, eps=eps, weight_decay=weight_decay)


# The update rules by the name a config gives (optimizer.name); the presets momentum and
# nesterov are SGD with its momentum keys set.
OPTIMIZERS = {"sgd": SGD, "momentum": SGD, "nesterov": SGD, "adam": Adam, "adamw": AdamW}


def optimizer_settings(name):
    """The keyword arguments of the optimizer called ``name``: the settings it reads."""
    parameters = inspect.signature(OPTIMIZERS[name]).parameters.values()
    return tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)


def _check_weight_decay(weight_decay):
    if weight_decay < 0.0:
        raise ConfigError(f"weight_decay must be >= 0, got {weight_decay}")


def _add_l2_gradient(net, weight_decay):
    """g_W ← g_W + λ·W for every weight matrix: the gradient of (λ/2)·‖W‖²."""
    for W, dW in zip(net.weights, net.weight_grads, strict=True):
        dW += weight_decay * W
