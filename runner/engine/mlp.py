"""The multilayer perceptron: a stack of ``Z = h(X @ W + b)`` layers.

All parameters live in one flat vector, and ``W1, b1, W2, …`` are views into it in that order;
gradients likewise. The optimizer then updates every parameter with one NumPy call, and a
checkpoint is one array. A training pass does one matmul per layer forward and two backward
(dW = Xᵀ Δ, dX = Δ Wᵀ) into buffers allocated once per batch size and reused every step.
"""

import math
import zipfile
from pathlib import Path

import numpy as np

from runner.dtypes import DTYPES
from runner.engine.activations import ACTIVATIONS, BACKPROPS
from runner.engine.initializers import initializer_for
from runner.engine.losses import check_pairing, get_loss
from runner.engine.summary import format_summary, summary_rows
from runner.errors import ConfigError, WeightsError, one_line

PREDICT_BATCH = 4096
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip
NPY_MAGIC = b"\x93NUMPY"


def _check_dtype(dtype):
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ConfigError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    return resolved


class _Workspace:
    """Per-batch-size buffers: each layer's output Z and the gradient Δ at its input."""

    def __init__(self, n_samples, layer_sizes, dtype):
        self.Z = [np.empty((n_samples, size), dtype) for size in layer_sizes[1:]]
        self.delta = [np.empty((n_samples, size), dtype) for size in layer_sizes[1:]]


class MLP:
    """A multilayer perceptron with exact forward and backward passes in NumPy.

    Parameters
    ----------
    layer_sizes : sequence of int, ``[n_features, *hidden, n_outputs]``, e.g. ``[4, 8, 8, 3]``.
    activations : sequence of str, one per layer (``len(layer_sizes) - 1``), from
        ``identity, sigmoid, tanh, relu, leaky_relu, softmax``; the last is the output's.
    bias : whether layers add a bias b (``False`` gives the tutorials' bias-free nets).
    init : ``auto`` (He for the relu family, Glorot otherwise), ``he_uniform``, ``he_normal``,
        ``glorot_uniform``, ``glorot_normal``, ``normal`` (with ``init_std``) or ``zeros``.
        Biases always start at zero.
    dtype : ``float32`` or ``float64``, used end to end.
    rng : ``numpy.random.Generator`` for the initial weights; None means
        ``default_rng(0)``, so an unseeded net is still reproducible.
    """

    def __init__(
        self,
        layer_sizes,
        activations,
        *,
        bias=True,
        init="auto",
        init_std=0.01,
        dtype="float64",
        rng=None,
    ):
        self.layer_sizes = _check_layer_sizes(layer_sizes)
        self.activations = _check_activations(activations, len(self.layer_sizes) - 1)
        self.bias = bool(bias)
        self.dtype = _check_dtype(dtype)
        shapes = self._param_shapes()
        sizes = [math.prod(shape) for shape in shapes.values()]  # exact: np.prod wraps around
        try:
            self.flat_params = np.zeros(sum(sizes), self.dtype)
            self.flat_grads = np.zeros(sum(sizes), self.dtype)
        except (MemoryError, ValueError):  # ValueError: more elements than an array can index
            raise MemoryError(
                f"layer_sizes {self.layer_sizes} have {sum(sizes):,} parameters: their "
                f"{self.dtype} values and gradients do not fit in this machine's memory"
            ) from None
        self.params = self._views(self.flat_params, shapes, sizes)
        self.grads = self._views(self.flat_grads, shapes, sizes)
        self.weights = [self.params[f"W{i}"] for i in range(1, self.n_layers + 1)]
        self.weight_grads = [self.grads[f"W{i}"] for i in range(1, self.n_layers + 1)]
        self.biases = [self.params.get(f"b{i}") for i in range(1, self.n_layers + 1)]
        self.bias_grads = [self.grads.get(f"b{i}") for i in range(1, self.n_layers + 1)]
        # Everything a training pass needs per layer, looked up once rather than every step.
        self._layers = tuple(
            zip(
                self.weights,
                self.biases,
                [ACTIVATIONS[name] for name in self.activations],
                [BACKPROPS[name] for name in self.activations],
                self.weight_grads,
                self.bias_grads,
                strict=True,
            )
        )
        self._workspaces = {}
        self._init_weights(init, init_std, rng if rng is not None else np.random.default_rng(0))

    @property
    def n_layers(self):
        return len(self.layer_sizes) - 1

    @property
    def n_params(self):
        """Total parameter count, Σ n_in·n_out + n_out over the layers."""
        return self.flat_params.size

    def _param_shapes(self):
        shapes = {}
        for i, (n_in, n_out) in enumerate(
            zip(self.layer_sizes, self.layer_sizes[1:], strict=False), start=1
        ):
            shapes[f"W{i}"] = (n_in, n_out)
            if self.bias:
                shapes[f"b{i}"] = (n_out,)
        return shapes

    @staticmethod
    def _views(flat, shapes, sizes):
        views, offset = {}, 0
        for (name, shape), size in zip(shapes.items(), sizes, strict=True):
            views[name] = flat[offset : offset + size].reshape(shape)
            offset += size
        return views

    def _init_weights(self, init, init_std, rng):
        if init == "normal" and not init_std > 0:
            raise ConfigError(f"init_std must be > 0 for init='normal', got {init_std}")
        for W, activation in zip(self.weights, self.activations, strict=True):
            draw = initializer_for(init, activation)
            W[...] = draw(rng, W.shape[0], W.shape[1], init_std)

    # ---------------------------------------------------------------- inference

    def forward(self, X):
        """Run the network on X and return the last layer's output.

        X : array-like of shape (n_samples, n_features)
        Returns a new ndarray of shape (n_samples, layer_sizes[-1]) in the net's dtype.
        """
        Z = self._as_input(X)
        for W, b, activation in zip(self.weights, self.biases, self.activations, strict=True):
            Z = Z @ W
            if b is not None:
                Z += b
            ACTIVATIONS[activation](Z)
        return Z

    def predict(self, X, batch_size=PREDICT_BATCH):
        """Outputs (class probabilities for a softmax or sigmoid net) for X, in batches.

        Working memory is bounded by ``batch_size`` rows whatever the size of X.
        Returns ndarray of shape (n_samples, layer_sizes[-1]).
        """
        X = self._as_input(X)
        out = np.empty((X.shape[0], self.layer_sizes[-1]), self.dtype)
        for start in range(0, X.shape[0], batch_size):
            out[start : start + batch_size] = self.forward(X[start : start + batch_size])
        return out

    def predict_classes(self, X, batch_size=PREDICT_BATCH):
        """Class ids: the arg-max output, or output > 0.5 for a single sigmoid output."""
        P = self.predict(X, batch_size)
        if P.shape[1] == 1:
            return (P[:, 0] > 0.5).astype(np.int64)
        return P.argmax(axis=1)

    def _as_input(self, X):
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.layer_sizes[0]:
            raise ConfigError(
                f"input must have shape (n_samples, {self.layer_sizes[0]}), got {X.shape}"
            )
        return X

    # ---------------------------------------------------------------- training

    def loss(self, X, Y, loss="cross_entropy"):
        """The loss on (X, Y) as a float, computed from logits like the training pass."""
        return self.compute_gradients(X, Y, loss, backward=False)

    def loss_and_grads(self, X, Y, loss="cross_entropy"):
        """The loss and its gradient with respect to every parameter.

        X : (n_samples, n_features); Y : (n_samples, n_outputs) targets.
        Returns (loss, grads) where grads is a new dict keyed like ``params``
        (W1, b1, W2, …) holding copies, so it stays valid after further calls.
        """
        value = self.compute_gradients(X, Y, loss)
        return value, {name: g.copy() for name, g in self.grads.items()}

    def evaluate(self, X, Y, loss="cross_entropy", batch_size=PREDICT_BATCH):
        """The loss and the outputs on (X, Y) from one forward pass, in batches.

        Returns (loss, outputs) with outputs of shape (n_samples, layer_sizes[-1]): what
        ``predict`` gives, computed alongside the loss instead of by a second pass.
        """
        loss = self._resolve_loss(loss)
        X = self._as_input(X)
        Y = np.asarray(Y, dtype=self.dtype)
        outputs = np.empty((X.shape[0], self.layer_sizes[-1]), self.dtype)
        total = 0.0
        for start in range(0, X.shape[0], batch_size):
            stop = min(start + batch_size, X.shape[0])
            ws = self._workspace(stop - start)
            value = self._forward_loss(X[start:stop], Y[start:stop], loss, ws, outputs[start:stop])
            total += value * (stop - start)
        return total / X.shape[0], outputs

    def compute_gradients(self, X, Y, loss, backward=True):
        """Forward and backward pass that fills ``flat_grads`` in place; returns the loss.

        This is the training step's hot path: no allocation beyond a buffer per new batch
        size. ``grads`` views are overwritten by the next call.
        """
        loss = self._resolve_loss(loss)
        X = self._as_input(X)
        Y = np.asarray(Y, dtype=self.dtype)
        if Y.shape != (X.shape[0], self.layer_sizes[-1]):
            raise ConfigError(
                f"targets must have shape ({X.shape[0]}, {self.layer_sizes[-1]}), got {Y.shape}"
            )
        if not backward:
            return self._forward_loss(X, Y, loss, self._workspace(X.shape[0]))
        return self._train_batch(X, Y, loss)

    def _train_batch(self, X, Y, loss):
        """The unchecked hot path: X, Y already validated and in the net's dtype."""
        ws = self._workspace(X.shape[0])
        value = self._forward_loss(X, Y, loss, ws)
        self._backward(X, ws)
        return value

    def _resolve_loss(self, loss):
        resolved = get_loss(loss) if isinstance(loss, str) else loss
        check_pairing(resolved, self.activations[-1], self.layer_sizes[-1])
        return resolved

    def _workspace(self, n_samples):
        ws = self._workspaces.get(n_samples)
        if ws is None:
            # A full batch, the last partial one and a validation set: keep a few, not all.
            if len(self._workspaces) >= 4:
                self._workspaces.clear()
            ws = self._workspaces[n_samples] = _Workspace(n_samples, self.layer_sizes, self.dtype)
        return ws

    def _forward_loss(self, X, Y, loss, ws, outputs=None):
        """Forward into the workspace and leave ∂C/∂A of the output layer in ws.delta[-1].

        ``outputs``, when given, receives the activated output of the last layer.
        """
        Z_prev = X
        matmul, add = np.matmul, np.add
        for (W, b, activate, _, _, _), Z in zip(self._layers[:-1], ws.Z, strict=False):
            matmul(Z_prev, W, out=Z)
            if b is not None:
                add(Z, b, out=Z)
            activate(Z)
            Z_prev = Z
        W, b, activate, backprop, _, _ = self._layers[-1]
        Z, delta = ws.Z[-1], ws.delta[-1]
        matmul(Z_prev, W, out=Z)
        if b is not None:
            add(Z, b, out=Z)
        if loss.fused:
            if outputs is not None:
                outputs[...] = Z
                activate(outputs)
            return loss.function(Z, Y, delta)
        value = loss.function(activate(Z), Y, delta)
        if outputs is not None:
            outputs[...] = Z
        backprop(Z, delta)
        return value

    def _backward(self, X, ws):
        """dW = Z_prevᵀ Δ, db = Σ Δ, Δ_prev = h'(A_prev) ⊙ (Δ Wᵀ), from the last layer down."""
        matmul, add_reduce = np.matmul, np.add.reduce
        layers, Zs, deltas = self._layers, ws.Z, ws.delta
        for i in range(self.n_layers - 1, -1, -1):
            W, _, _, _, dW, db = layers[i]
            delta = deltas[i]
            Z_prev = Zs[i - 1] if i else X
            matmul(Z_prev.T, delta, out=dW)
            if db is not None:
                add_reduce(delta, 0, None, db)
            if i:
                delta_prev = deltas[i - 1]
                matmul(delta, W.T, out=delta_prev)
                layers[i - 1][3](Z_prev, delta_prev)

    # ---------------------------------------------------------------- weights in and out

    def save(self, path):
        """Write the parameters as ``.npz`` with keys W1, b1, W2, … (W shaped (n_in, n_out))."""
        path = Path(path)
        with path.open("wb") as f:
            np.savez(f, **self.params)
        return path

    @classmethod
    def load(cls, path, activations, *, dtype=None):
        """Build a net from an ``.npz`` written by ``save``; layer sizes come from the W shapes.

        The file is read with ``allow_pickle=False``: it can hold numbers only. ``dtype``
        None keeps the file's float32/float64.
        """
        arrays = read_npz(path)
        n_layers = sum(1 for key in arrays if key.startswith("W"))
        bias = "b1" in arrays
        expected = {f"W{i}" for i in range(1, n_layers + 1)}
        if bias:
            expected |= {f"b{i}" for i in range(1, n_layers + 1)}
        _check_keys(path, arrays, expected)
        sizes = [arrays["W1"].shape[0]] + [
            arrays[f"W{i}"].shape[-1] for i in range(1, n_layers + 1)
        ]
        if dtype is None:
            dtype = str(arrays["W1"].dtype) if str(arrays["W1"].dtype) in DTYPES else "float64"
        net = cls(sizes, activations, bias=bias, init="zeros", dtype=dtype)
        net.set_params(arrays, source=path)
        return net

    def load_weights(self, path):
        """Replace this net's parameters with those in an ``.npz``; shapes must match."""
        self.set_params(read_npz(path), source=path)
        return self

    def set_params(self, arrays, source="the given parameters"):
        """Copy arrays into the parameters, refusing a missing, extra or mis-shaped one."""
        _check_keys(source, arrays, set(self.params))
        for name, target in self.params.items():
            value = np.asarray(arrays[name])
            if value.shape != target.shape:
                layer = name[1:]
                raise WeightsError(
                    f"{name} in {source} has shape {value.shape} but layer {layer} of this net "
                    f"{self.layer_sizes} needs {target.shape}"
                )
            if not np.issubdtype(value.dtype, np.number) or not np.all(np.isfinite(value)):
                raise WeightsError(f"{name} in {source} must hold finite numbers only")
            target[...] = value

    # ---------------------------------------------------------------- description

    def summary_rows(self):
        """One dict per layer: input/W/b/output shapes, activation and parameter count."""
        return summary_rows(self.layer_sizes, self.activations, self.bias)

    def summary(self, name=None):
        """The per-layer table as text, like Keras' ``model.summary()``."""
        return format_summary(self.summary_rows(), name or self.default_name())

    def default_name(self):
        return "mlp_" + "_".join(str(size) for size in self.layer_sizes)

    def __repr__(self):
        return (
            f"MLP({list(self.layer_sizes)}, activations={list(self.activations)}, "
            f"bias={self.bias}, dtype={self.dtype.name!r})"
        )


def read_npz(path, what="weights file", fix="pass a weights.npz that runner wrote (MLP.save)"):
    """Read every array of an ``.npz`` without unpickling anything; errors name the file.

    what : the file's kind in the messages; fix : what to do about a file runner cannot read.
    Weights files and training checkpoints are both read here, so their messages agree. The
    file's first bytes decide, as in ``np.load``: a zip is an ``.npz``, NumPy's magic string
    a lone ``.npy``; anything else is no NumPy file at all (``np.load`` would take it for a
    pickle, which ``allow_pickle=False`` refuses with a message about pickles).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{what} {path} does not exist; check the path")
    with path.open("rb") as f:
        start = f.read(len(NPY_MAGIC))
    if start == NPY_MAGIC:
        raise WeightsError(f"{what} {path} is a single .npy array, not an .npz; {fix}")
    if not start.startswith(ZIP_MAGIC):
        raise WeightsError(
            f"{what} {path} is not an .npz file (it does not begin like a zip archive); {fix}"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except ValueError as err:
        if "allow_pickle" not in str(err):  # not NumPy refusing an object array: a bad header
            raise WeightsError(f"{what} {path} is corrupt ({one_line(err)}); {fix}") from None
        raise WeightsError(
            f"{what} {path} holds pickled objects, which runner refuses to load "
            f"({one_line(err)}); {fix}"
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise WeightsError(
            f"{what} {path} is truncated or corrupt ({one_line(err)}); {fix}"
        ) from None


def _check_keys(source, arrays, expected):
    missing = sorted(expected - set(arrays), key=_key_order)
    extra = sorted(set(arrays) - expected, key=_key_order)
    if missing or extra or not expected:
        raise WeightsError(
            f"{source} must hold exactly {sorted(expected, key=_key_order) or 'W1, b1, W2, ...'}"
            f"; missing {missing}, unexpected {extra}"
        )
    n_layers = sum(1 for key in expected if key.startswith("W"))
    for i in range(1, n_layers + 1):
        W = arrays[f"W{i}"]
        if W.ndim != 2:
            raise WeightsError(f"W{i} in {source} must be 2-D (n_in, n_out), got shape {W.shape}")
        if i > 1 and W.shape[0] != arrays[f"W{i - 1}"].shape[1]:
            raise WeightsError(
                f"W{i} in {source} has {W.shape[0]} inputs but layer {i - 1} has "
                f"{arrays[f'W{i - 1}'].shape[1]} outputs"
            )
        b = arrays.get(f"b{i}")
        if b is not None and b.shape != (W.shape[1],):
            raise WeightsError(f"b{i} in {source} has shape {b.shape}, expected ({W.shape[1]},)")


def _key_order(key):
    return (int(key[1:]) if key[1:].isdigit() else 10**9, key)


def _check_layer_sizes(layer_sizes):
    sizes = tuple(layer_sizes) if not isinstance(layer_sizes, str) else ()
    if len(sizes) < 2 or not all(isinstance(s, int | np.integer) and s > 0 for s in sizes):
        raise ConfigError(
            f"layer_sizes must be at least two positive integers [n_features, ..., n_outputs], "
            f"got {layer_sizes!r}"
        )
    return tuple(int(s) for s in sizes)


def _check_activations(activations, n_layers):
    if isinstance(activations, str) or len(activations) != n_layers:
        raise ConfigError(
            f"activations must list one activation per layer ({n_layers}), got {activations!r}"
        )
    for name in activations:
        if name not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return tuple(activations)
