"""A job's identity and a sweep's: the hashes that say two of them would train the same thing.

Running a sweep again skips the jobs whose identity already has a finished run, and a plan
marks them; both need the same answer, so it is computed here once. The identity is a hash of
the composed config (the job's, without Hydra's own node) minus the keys that cannot change
what is trained: where and whether it is tracked, what the console shows, where checkpoints
go and how often, the labels of runs and models, ``resume`` and ``sweep.restart``.

A sweep's identity finds its parent run again: the same overrides (as typed, without those
keys), the same sweeper with the same search space, and the same base config.
"""

import hashlib
import json

from runner.overrides import override_key

# Dotted config keys left out of the identity, each because it cannot change the result.
NOT_PART_OF_THE_RESULT = (
    "tracking",  # where and how the run is logged
    "experiment",  # the MLflow experiment's name, a label
    "progress",  # the progress bar
    "epoch_lines",  # the console's epoch lines
    "checkpoint",  # how often checkpoints are written
    "resume",  # continuing a run reaches the same result
    "plan",  # printing the plan instead of training
    "sweep.restart",  # a fresh parent run for the sweep instead of continuing the last one
    "model.name",  # the model's label; its layers are in the identity
)


def job_identity(config: dict) -> str:
    """A 16-hex-digit hash of ``config`` (plain data, interpolations resolved) that two
    configs share exactly when they differ only in keys that cannot change the result."""
    kept = _without(config, NOT_PART_OF_THE_RESULT)
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# Keys of a sweeper's config that cannot change which jobs it runs: how many trials in all (a
# sweep run again with more continues), how many at a time, where its study is stored.
NOT_PART_OF_THE_SEARCH = ("n_trials", "n_jobs", "max_batch_size", "storage", "study_name")


def sweep_identity(overrides: list, sweeper: str, sweeper_config: dict, base_config: dict) -> str:
    """A 16-hex-digit hash of what a sweep trains and how it chooses its jobs.

    overrides : the task overrides as typed (``lr=0.01,0.1``), in order (it numbers the jobs);
        those of keys that cannot change the result are left out. sweeper : its name
        (``hydra/sweeper``). sweeper_config : the sweeper's node (its ``params`` are the search
        space; ``n_trials`` and the other keys of NOT_PART_OF_THE_SEARCH are left out).
        base_config : the sweep's composed config without Hydra's node, plain data.
    """
    kept = {
        "overrides": [o for o in overrides if not _excluded(override_key(o))],
        "sweeper": sweeper,
        "search": _without(sweeper_config, NOT_PART_OF_THE_SEARCH + ("_target_",)),
        "config": job_identity(base_config),
    }
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _excluded(key):
    return any(key == k or key.startswith(f"{k}.") for k in NOT_PART_OF_THE_RESULT)


def _without(config, dotted_keys):
    heads = {key.split(".", 1)[0] for key in dotted_keys}
    kept = {}
    for key, value in config.items():
        if key in dotted_keys:
            continue
        if key in heads and isinstance(value, dict):
            inner = [k.split(".", 1)[1] for k in dotted_keys if k.startswith(f"{key}.")]
            value = _without(value, inner)
        kept[key] = value
    return kept
