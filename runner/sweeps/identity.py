"""A job's identity: the hash that says two jobs would train the same thing.

Running a sweep again skips the jobs whose identity already has a finished run, and a plan
marks them; both need the same answer, so it is computed here once. The identity is a hash of
the composed config (the job's, without Hydra's own node) minus the keys that cannot change
what is trained: where and whether it is tracked, what the console shows, where checkpoints
go and how often, the labels of runs and models, and ``resume``.
"""

import hashlib
import json

# Dotted config keys left out of the identity, each because it cannot change the result.
NOT_PART_OF_THE_RESULT = (
    "tracking",  # where and how the run is logged
    "experiment",  # the MLflow experiment's name, a label
    "progress",  # the progress bar
    "epoch_lines",  # the console's epoch lines
    "checkpoint",  # how often checkpoints are written
    "resume",  # continuing a run reaches the same result
    "plan",  # printing the plan instead of training
    "model.name",  # the model's label; its layers are in the identity
)


def job_identity(config: dict) -> str:
    """A 16-hex-digit hash of ``config`` (plain data, interpolations resolved) that two
    configs share exactly when they differ only in keys that cannot change the result."""
    kept = _without(config, NOT_PART_OF_THE_RESULT)
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
