"""What a sweep's job knows of its sweep: the parent run, from the environment. No Hydra here.

The sweep's start (``runner.sweeps.callback``, a Hydra callback in the launching process) asks
its tracking worker to create or reopen the parent run; with the basic launcher it goes on, and
runner's sweepers compose the jobs' configs meanwhile. The first ``sweep_parent`` call in that
process waits for the answer and puts the parent run in ``PARENT_ENV``; jobs, in that process
or in the launcher's workers, read it back through ``sweep_parent`` without importing the
callback.
"""

import json
import logging
import os

from runner.errors import TrackingError
from runner.tracking.messages import SweepJob, SweepRun

PARENT_ENV = "RUNNER_SWEEP_PARENT"
log = logging.getLogger("runner")

_opening = None  # in the launching process, until its worker answers: (Asked, parent fields)


def open_later(asked, fields):
    """The parent run is on its way (``asked``); ``fields`` is the rest of what jobs read."""
    global _opening
    _opening = (asked, fields)


def sweep_tracked():
    """Whether this process runs a tracked sweep, without waiting for its parent run."""
    return _opening is not None or bool(os.environ.get(PARENT_ENV))


def sweep_parent():
    """The parent run a job belongs to: {"run_id", "uri", "experiment_id", ...}, or None.

    In the launching process the first call waits until the worker has opened it, and raises
    TrackingError if it could not.
    """
    global _opening
    if _opening is not None:
        asked, fields = _opening
        try:
            opened = asked.result()  # a Ctrl-C meanwhile leaves it to end_open_sweep to end
        except TrackingError:
            _opening = None
            raise
        _opening = None
        verb = "continues" if opened.continued else "tracked as"
        log.info(f"sweep {verb} MLflow parent run {opened.run_name} ({opened.run_id})")
        parent = {**fields, "run_id": opened.run_id, "experiment_id": opened.experiment_id}
        os.environ[PARENT_ENV] = json.dumps(parent)
    value = os.environ.get(PARENT_ENV)
    return json.loads(value) if value else None


def forget_parent():
    """The sweep is over: this process's later runs are no sweep's."""
    global _opening
    _opening = None
    os.environ.pop(PARENT_ENV, None)


def sweep_run(parent):
    """Where the parent run is, for the worker's requests."""
    return SweepRun(parent["uri"], parent["experiment_id"], parent["run_id"])


def sweep_job(parent, job):
    """What the tracking worker needs to know of a job's sweep."""
    return SweepJob(parent["run_id"], job, parent["launcher_pid"], tuple(parent["swept"]))
