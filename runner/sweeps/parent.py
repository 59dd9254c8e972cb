"""What a sweep's job knows of its sweep: the parent run, from the environment. No Hydra here.

The sweep's start (``runner.sweeps.callback``, a Hydra callback in the launching process)
puts the parent run in ``PARENT_ENV``; jobs, in that process or in the launcher's workers,
read it back through ``sweep_parent`` without importing the callback.
"""

import json
import os

from runner.tracking.messages import SweepJob

PARENT_ENV = "RUNNER_SWEEP_PARENT"


def sweep_parent():
    """The parent run a job belongs to: {"run_id", "uri", "experiment_id", ...}, or None."""
    value = os.environ.get(PARENT_ENV)
    return json.loads(value) if value else None


def sweep_job(parent, job):
    """What the tracking worker needs to know of a job's sweep."""
    return SweepJob(parent["run_id"], job, parent["launcher_pid"], tuple(parent["swept"]))
