"""One finished run read back from the tracking store, for ``rerun`` and ``diff``.

Everything here comes from what a run logged: the resolved config (``config.yaml``), the
overrides it was started with (``overrides.yaml``), the per-layer params, the final metrics
and their histories, the data set digests (MLflow's "Datasets used"), the environment tags and
the final weights (``weights.npz``). Nothing is taken from the training code, so a run logged
by an older checkout reads back the same way.
"""

import hashlib
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from runner.errors import TrackingError, one_line
from runner.tracking import tags
from runner.tracking.client import HTTP_ENVIRONMENT, check_reachable, resolve_uri

# Config groups: each group's file sets ``<group>.name`` to its own name.
GROUPS = ("model", "dataset", "loss", "optimizer")
# Tags that describe where a run ran; a bit-identical rerun needs them alike.
ENVIRONMENT_TAGS = ("git_commit", "git_dirty", tags.BLAS_THREADS)
ENVIRONMENT_PREFIX = "version."
# Keys whose values decide the data set's splits: with these equal, a digest that differs
# means the data itself changed.
DATA_KEYS_PREFIX = "dataset."
DATA_KEYS = ("seed", "dtype")
RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def connect(uri_option):
    """(uri, MlflowClient) for ``--tracking-uri``, else $MLFLOW_TRACKING_URI, else the project's.

    Raises TrackingError, in one line, for a missing SQLite file or a server that is down.
    """
    for key, value in HTTP_ENVIRONMENT.items():  # a look-up fails within seconds, quietly
        os.environ.setdefault(key, value)
    uri = resolve_uri(uri_option, create=False)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise TrackingError(
            f"no MLflow store at {uri}; run from the project's folder, or pass --tracking-uri"
        )
    check_reachable(uri)
    from mlflow import MlflowClient

    return uri, MlflowClient(uri)


@dataclass
class RunInfo:
    """A run as the store holds it; weights and histories are fetched when first asked for."""

    client: object
    uri: str
    run: object  # mlflow.entities.Run
    _workdir: tempfile.TemporaryDirectory = field(default=None, repr=False)

    @cached_property
    def config(self):
        """The resolved config the run trained with, as a nested dict (``config.yaml``)."""
        return yaml.safe_load(self._read_text("config.yaml")) or {}

    @cached_property
    def overrides(self):
        """The overrides it was started with (``overrides.yaml``), e.g. ['epochs=5']."""
        return yaml.safe_load(self._read_text("overrides.yaml")) or []

    @property
    def run_id(self):
        return self.run.info.run_id

    @property
    def name(self):
        return self.run.info.run_name

    @property
    def params(self):
        return self.run.data.params

    @property
    def tags(self):
        return self.run.data.tags

    @property
    def final_metrics(self):
        """{key: value} at each metric's last step."""
        return dict(self.run.data.metrics)

    @property
    def flat_config(self):
        return flatten(self.config)

    @property
    def groups(self):
        """The config group choices, e.g. {'model': 'mlp_4_8_8_3', 'dataset': 'iris', ...}."""
        return {group: self.config.get(group, {}).get("name") for group in GROUPS}

    @property
    def layers(self):
        """Per layer (1-based) {'W_shape', 'b_shape', 'activation', 'params'} from the params."""
        found = {}
        for key, value in self.params.items():
            match = re.fullmatch(r"layer(\d+)\.(\w+)", key)
            if match:
                found.setdefault(int(match.group(1)), {})[match.group(2)] = value
        return found

    @property
    def environment(self):
        """Where the run ran: library versions, BLAS library and threads, git commit."""
        env = {k: v for k, v in self.tags.items() if k.startswith(ENVIRONMENT_PREFIX)}
        env.update({k: self.tags[k] for k in ENVIRONMENT_TAGS if k in self.tags})
        return env

    @cached_property
    def data_digests(self):
        """{'train' | 'validation' | 'test': (dataset name, digest)} as MLflow logged them."""
        digests = {}
        for item in self.run.inputs.dataset_inputs if self.run.inputs else ():
            context = next((t.value for t in item.tags if t.key == "mlflow.data.context"), None)
            digests[context or item.dataset.name] = (item.dataset.name, item.dataset.digest)
        return digests

    @property
    def data_file(self):
        """The CSV the data set was read from, or None for a built-in or generated one."""
        return self.config.get("dataset", {}).get("path")

    @cached_property
    def histories(self):
        """{metric: [(step, value), ...]} in step order, for every metric the run logged."""
        return {
            key: sorted((m.step, m.value) for m in self.client.get_metric_history(self.run_id, key))
            for key in sorted(self.run.data.metrics)
        }

    @cached_property
    def weights(self):
        """{array name: ndarray} of the final weights.npz."""
        path = self._download("weights.npz", "only a finished run logs its final weights")
        with np.load(path) as data:
            return {key: data[key] for key in data.files}

    def _read_text(self, artifact):
        hint = "every run of python -m runner logs one; a sweep's parent run has none"
        return Path(self._download(artifact, hint)).read_text()

    def _download(self, artifact, hint):
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="runner-runinfo-")
        try:
            return self.client.download_artifacts(self.run_id, artifact, self._workdir.name)
        except Exception as err:  # MLflow raises several types for a missing artifact
            raise TrackingError(
                f"run {self.run_id} has no {artifact} artifact in {self.uri} "
                f"({type(err).__name__}); {hint}"
            ) from None


def load_run(client, uri, run_id):
    """The run ``run_id`` with its config and overrides, or a TrackingError naming the store."""
    from mlflow.exceptions import MlflowException

    if not RUN_ID.match(run_id):
        raise TrackingError(
            f"{run_id!r} is not an MLflow run id (32 hex digits); copy one from the run's "
            f"last line or the MLflow UI"
        )
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise TrackingError(
                f"no run {run_id} in {uri}; pass --tracking-uri (or set MLFLOW_TRACKING_URI) "
                f"to the store that holds it"
            ) from None
        raise TrackingError(f"cannot read run {run_id} from {uri}: {one_line(err)}") from None
    info = RunInfo(client, uri, run)
    info.config  # noqa: B018  read now: a run without one is refused before any work
    return info


def flatten(config, prefix=""):
    """Nested dicts → {'model.layers': [4, 8, 8, 3], ...} with the values kept as they are."""
    items = {}
    for key, value in config.items():
        if isinstance(value, dict):
            items.update(flatten(value, f"{prefix}{key}."))
        else:
            items[f"{prefix}{key}"] = value
    return items


def weights_digest(weights):
    """SHA-256 over every parameter array: its name, dtype, shape and bytes, in name order."""
    sha = hashlib.sha256()
    for key in sorted(weights):
        sha.update(array_digest(key, weights[key]).encode())
    return sha.hexdigest()


def array_digest(key, array):
    array = np.ascontiguousarray(array)
    sha = hashlib.sha256(f"{key}|{array.dtype.str}|{array.shape}|".encode())
    sha.update(array.tobytes())
    return sha.hexdigest()


def same_value(a, b):
    """Exact equality of two metric values, NaN equal to NaN."""
    return a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    )


def data_config(info):
    """The config keys that decide the data set's splits and their digests."""
    flat = info.flat_config
    return {k: v for k, v in flat.items() if k.startswith(DATA_KEYS_PREFIX) or k in DATA_KEYS}
