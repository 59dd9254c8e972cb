"""Checkpoints of a run: when to write them, and finding one to resume from.

The trainer hands over its state after every epoch; this writes it to
``<run dir>/checkpoint.npz`` every ``checkpoint.every_n_epochs`` epochs, but not more often
than every ``checkpoint.min_interval_s`` seconds: a write costs 1-2 ms, more than a whole
epoch of a small net. The latest state is always kept in memory, so the end of a run and a
Ctrl-C or SIGTERM write the last completed epoch whatever the throttle skipped; only a hard
kill (SIGKILL, power loss) can lose up to ``min_interval_s`` of training.
"""

import time
from pathlib import Path

from runner.errors import ConfigError
from runner.training.state import save_checkpoint

CHECKPOINT_FILE = "checkpoint.npz"


def checkpoint_path(output_dir):
    """Where a run's checkpoint goes: known before the Checkpointer, for the tracker's tag."""
    return Path(output_dir).resolve() / CHECKPOINT_FILE


class Checkpointer:
    """Writes TrainingStates with the run's description (config, run id, output dir).

    describe() : returns the JSON-ready dict stored beside the state, read at write time so
        that it includes the MLflow run id once the tracking worker has created the run.
    """

    def __init__(self, output_dir, every_n_epochs, min_interval_s, describe):
        self.path = checkpoint_path(output_dir)
        self.every_n_epochs, self.min_interval_s = every_n_epochs, min_interval_s
        self.describe = describe
        self.latest = None
        self._last_write = -float("inf")

    def __call__(self, state):
        self.latest = state
        due = self.every_n_epochs and state.epoch % self.every_n_epochs == 0
        if due and time.monotonic() - self._last_write >= self.min_interval_s:
            self.write()

    def write(self):
        """Write the latest state now (at the end of a run and on an interrupt)."""
        if self.latest is not None:
            save_checkpoint(self.path, self.latest, self.describe())
            self._last_write = time.monotonic()
        return self.path


def find_checkpoint(resume, uri):
    """The checkpoint that ``resume=`` names: a file path, or an MLflow run id in ``uri``."""
    path = Path(resume).expanduser()
    if path.is_file() or path.suffix == ".npz" or "/" in resume:
        return path
    from runner.tracking.lookup import checkpoint_of_run

    found = checkpoint_of_run(uri, resume)
    if found is None:
        raise ConfigError(
            f"resume={resume} is neither a checkpoint file nor a run with a checkpoint in {uri}; "
            f"pass the run's id or its checkpoint.npz"
        )
    return Path(found)
