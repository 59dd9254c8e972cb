"""Training state in and out: everything needed to continue a run bit for bit.

A checkpoint is one ``.npz`` holding arrays (parameters, the optimizer's state such as SGD's
momentum or Adam's m, v and step count, best-so-far weights, the metric history as a float
table) and a JSON document (epoch, RNG state, early-stopping and divergence-guard state, plus
whatever the caller adds, such as the config). It is written to a
temporary file and renamed over the old one, so a crash mid-write leaves the previous
checkpoint intact, and read with ``allow_pickle=False``.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runner.engine.mlp import read_npz
from runner.errors import WeightsError

FORMAT = 2  # 2: the optimizer's state as "optimizer.<name>" arrays; 1 held SGD's "velocity"
OPTIMIZER_PREFIX = "optimizer."


@dataclass
class TrainingState:
    """The trainer after ``epoch`` completed epochs."""

    epoch: int
    params: np.ndarray  # the net's flat parameter vector
    optimizer: dict  # the optimizer's state() (arrays by name), e.g. Adam's m, v and steps
    rng_state: dict  # the batch-order Generator's bit_generator.state
    history: list = field(default_factory=list)  # metrics per epoch; its first `epoch` count
    best_loss: float = float("inf")
    best_epoch: int | None = None
    waited: int = 0  # epochs since the best, for early stopping
    best_params: np.ndarray | None = None
    guard_reference: float | None = None  # the divergence guard's first-epoch loss
    stopped_early: bool = False


def save_checkpoint(path, state, extra):
    """Write ``state`` and the JSON-ready dict ``extra`` atomically to ``path``."""
    path = Path(path)
    history = state.history[: state.epoch]
    keys = list(history[0]) if history else []
    arrays = {
        "params": state.params,
        "history": np.array([[h[k] for k in keys] for h in history], dtype=np.float64),
    }
    arrays.update({OPTIMIZER_PREFIX + name: value for name, value in state.optimizer.items()})
    if state.best_params is not None:
        arrays["best_params"] = state.best_params
    info = {
        "format": FORMAT,
        "epoch": state.epoch,
        "rng_state": state.rng_state,
        "history_keys": keys,
        "best_loss": state.best_loss,
        "best_epoch": state.best_epoch,
        "waited": state.waited,
        "guard_reference": state.guard_reference,
        "stopped_early": state.stopped_early,
        "extra": extra,
    }
    arrays["info"] = np.array(json.dumps(info))
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as f:
        np.savez(f, **arrays)
    os.replace(temporary, path)
    return path


def load_checkpoint(path):
    """Read a checkpoint: (TrainingState, extra). Errors name the file and what is wrong."""
    path = Path(path)
    arrays = read_npz(
        path, "checkpoint", "pass a whole checkpoint.npz runner wrote, or train again"
    )
    try:
        info = json.loads(str(arrays.pop("info")))
    except (ValueError, KeyError) as err:
        raise WeightsError(f"{path} is not a runner checkpoint ({err})") from None
    if info.get("format") not in (1, FORMAT):
        raise WeightsError(f"{path} has checkpoint format {info.get('format')}, not {FORMAT}")
    optimizer = {
        name.removeprefix(OPTIMIZER_PREFIX): arrays[name]
        for name in arrays
        if name.startswith(OPTIMIZER_PREFIX)
    }
    if "velocity" in arrays:  # format 1: SGD's momentum buffer
        optimizer["velocity"] = arrays["velocity"]
    keys = info["history_keys"]
    history = [dict(zip(keys, map(float, row), strict=True)) for row in arrays["history"]]
    state = TrainingState(
        epoch=info["epoch"],
        params=arrays["params"],
        optimizer=optimizer,
        rng_state=info["rng_state"],
        history=history,
        best_loss=info["best_loss"],
        best_epoch=info["best_epoch"],
        waited=info["waited"],
        best_params=arrays.get("best_params"),
        guard_reference=info["guard_reference"],
        stopped_early=info["stopped_early"],
    )
    return state, info["extra"]
