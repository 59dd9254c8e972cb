"""The messages between a training process and its tracking worker, one dataclass per kind.

A training process sends, for each run, ``Start`` once, ``Metrics`` any number of times, then
``Finish`` or ``End``; runs follow one another on the same pipe, each tagged with its number
(``run``). The worker answers per run ``Started`` once the run exists (its first one also
means the worker's start-up is over), and finally ``Done``, ``Unsent`` or ``Failed``.

The launching process of a sweep also asks its worker for the parent run's store work
(``OpenSweep``, ``FindFinishedJobs``, ``SupersedeJobs``, ``FindTrials``), so that it never
imports MLflow before its jobs start; each request has a number of its own, answered by one
``Answer`` or ``Refused``. Both sides import only this module (NumPy, the standard library
and ``runner.encoding``), so neither spells a key the other must match.
"""

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from runner.encoding import Encoding


@dataclass(frozen=True)
class Split:
    """One split as the worker needs it: features and targets (class ids, else the Y rows).

    X : ndarray of shape (n_samples, n_features). targets : ndarray of shape (n_samples,) for
    classes, (n_samples, n_outputs) for regression.
    """

    X: np.ndarray
    targets: np.ndarray


@dataclass(frozen=True)
class DataFacts:
    """What the worker needs of the data set, so that it never loads it again.

    The splits become the run's dataset inputs, the test split its confusion matrix, and the
    names, encoding and scales the pyfunc model's signature, encoding and standardisation.
    """

    name: str
    task: str  # "classification" or "regression"
    feature_names: tuple
    class_names: tuple | None
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    target_mean: np.ndarray | None
    target_scale: np.ndarray | None
    encoding: Encoding  # raw rows (text, missing cells) to X's columns
    train: Split
    val: Split
    test: Split

    @classmethod
    def of(cls, dataset):
        """From a loaded data set (anything with the fields of ``runner.datasets.Dataset``)."""
        parts = {"train": dataset.train, "val": dataset.val, "test": dataset.test}
        splits = {
            name: Split(part.X, part.y if part.y is not None else part.Y)
            for name, part in parts.items()
        }
        return cls(
            name=dataset.name,
            task=dataset.task,
            feature_names=tuple(dataset.feature_names),
            class_names=None if dataset.class_names is None else tuple(dataset.class_names),
            feature_mean=dataset.feature_mean,
            feature_scale=dataset.feature_scale,
            target_mean=dataset.target_mean,
            target_scale=dataset.target_scale,
            encoding=dataset.encoding,
            **splits,
        )


@dataclass(frozen=True)
class SweepJob:
    """A job of a sweep: its run is a child of the sweep's parent run."""

    parent_run_id: str
    job: int  # Hydra's job number
    launcher_pid: int  # the sweep's launching process, which ends the parent run
    swept: tuple = ()  # the keys the sweep varies, which lead its children's names


@dataclass(frozen=True)
class Start:
    """Everything the worker needs to create (or resume) a run and log it to the end."""

    run: int  # the run's number on this pipe
    uri: str
    experiment: str
    artifact_root: str | None  # where a new experiment keeps artifacts (None: the server's)
    run_name: str
    params: dict
    tags: dict
    config_yaml: str
    overrides: list
    summary: str  # the model summary table, as text
    layers: list  # one dict per layer: W_shape, b_shape, activation, params
    activations: list
    log_model: bool
    outage_wait_s: float
    output_dir: str  # where mlflow_unsent.json goes after a long outage
    data: DataFacts
    sweep: SweepJob | None = None
    resume_run_id: str | None = None
    history: list = field(default_factory=list)  # per-epoch metric dicts already trained


@dataclass(frozen=True)
class Metrics:
    run: int
    rows: list  # (key, value, step, timestamp in ms)


@dataclass(frozen=True)
class Finish:
    """The run trained to the end: its last metrics, where its weights and its figures are."""

    run: int
    weights_path: str
    rows: list
    figures: tuple = ()  # PNG files the training process drew, logged under their names


@dataclass(frozen=True)
class End:
    """The run stopped early: FAILED or KILLED, and why."""

    run: int
    status: str
    reason: str


@dataclass(frozen=True)
class RunLocation:
    """Where a run is stored (run_id None when the store was away when it started)."""

    run_id: str | None
    experiment_id: str | None
    uri: str
    run_name: str


@dataclass(frozen=True)
class Started:
    run: int
    info: RunLocation


@dataclass(frozen=True)
class Done:
    """Everything of the run is stored and it has its final status."""

    run: int
    info: RunLocation


@dataclass(frozen=True)
class Unsent:
    """The store stayed away: what it lacks of the run is saved in ``path`` for upload."""

    run: int
    info: RunLocation
    path: str
    reason: str


@dataclass(frozen=True)
class Failed:
    """Tracking this run failed for a reason that is not an outage."""

    run: int
    message: str


@dataclass(frozen=True)
class OpenSweep:
    """Create a sweep's parent run, or reopen the newest one with its identity."""

    request: int
    uri: str
    experiment: str
    artifact_root: str | None  # where a new experiment keeps artifacts (None: the server's)
    identity: str  # runner/sweeps/identity.py: what the sweep runs
    resume: bool  # continue the newest parent run with this identity, if there is one
    run_name: str
    tags: dict
    params: dict


@dataclass(frozen=True)
class OpenedSweep:
    """The value of OpenSweep's answer."""

    run_id: str
    experiment_id: str
    run_name: str
    continued: bool  # an earlier parent run, reopened


@dataclass(frozen=True)
class SweepRun:
    """Where a sweep's parent run is: what the requests below act on."""

    uri: str
    experiment_id: str
    run_id: str


@dataclass(frozen=True)
class FindFinishedJobs:
    """Answered with the frozenset of job identities that have a FINISHED child run."""

    request: int
    sweep: SweepRun


@dataclass(frozen=True)
class SupersedeJobs:
    """Tag the earlier attempts of these jobs that did not finish superseded (they run again)."""

    request: int
    sweep: SweepRun
    identities: tuple


@dataclass(frozen=True)
class FindTrials:
    """Answered with a Trial for each child run that has a job number, oldest first."""

    request: int
    sweep: SweepRun


@dataclass(frozen=True)
class Trial:
    """An Optuna sweep's child run, as the sweeper rebuilds its study from it."""

    number: int  # the job's number in the sweep: the trial's
    status: str  # the run's MLflow status
    superseded: bool  # a later attempt of the same job replaced it
    overrides: str  # the job's overrides as one line (its parameters)
    metrics: dict  # the run's latest value of each metric


@dataclass(frozen=True)
class Answer:
    request: int
    value: object


@dataclass(frozen=True)
class Refused:
    """The request failed; ``message`` says why, for the person who started the sweep."""

    request: int
    message: str


SWEEP_REQUESTS = (OpenSweep, FindFinishedJobs, SupersedeJobs, FindTrials)


def start_to_json(start):
    """A Start as JSON text, arrays as lists with their dtype (for mlflow_unsent.json)."""

    def encode(value):
        if isinstance(value, np.ndarray):
            return {"__array__": value.tolist(), "dtype": str(value.dtype)}
        raise TypeError(f"cannot store {type(value).__name__} in JSON")

    return json.dumps(asdict(start), default=encode)


def start_from_json(text):
    def decode(value):
        if isinstance(value, dict) and "__array__" in value:
            return np.asarray(value["__array__"], dtype=value["dtype"])
        return value

    fields = json.loads(text, object_hook=decode)
    data = fields["data"]
    for name in ("train", "val", "test"):
        data[name] = Split(**data[name])
    for name in ("feature_names", "class_names"):
        data[name] = None if data[name] is None else tuple(data[name])
    data["encoding"] = Encoding.from_dict(data["encoding"])
    sweep = fields["sweep"]
    sweep = sweep and SweepJob(**{**sweep, "swept": tuple(sweep.get("swept", ()))})
    return Start(**{**fields, "data": DataFacts(**data), "sweep": sweep})
