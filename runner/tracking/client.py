"""The training process's side of tracking: it never imports MLflow.

MLflow runs in a worker process (``runner.tracking.worker``) fed through a pipe. ``import
mlflow`` (about 1.5 s) and every store write then happen on the other core, concurrently
with training, and cannot slow a training step through the GIL. The training loop only
appends to a list; a writer thread ships batches to the worker, so a full pipe never blocks
a step. If this process dies, even by SIGKILL, the worker reads end-of-file and marks the
run FAILED: a run is never left RUNNING.
"""

import os
import pickle
import queue
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from runner.errors import TrackingError
from runner.tracking import tags

DEFAULT_STORE = Path("outputs") / "mlflow.db"
REACHABILITY_TIMEOUT_S = 5.0
SEND_INTERVAL_S = 0.5
# The worker's environment. Bounded retries for its HTTP calls: MLflow's defaults retry for
# minutes, and the worker waits out outages itself.
HTTP_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # The run's own line names it; MLflow's "View run at" lines would repeat it.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
# Keys always in a run's name, in this order; other overrides follow as key=value.
NAME_KEYS = ("batch", "lr", "seed")


def resolve_uri(configured, create=True):
    """The tracking URI: the config's, else $MLFLOW_TRACKING_URI, else the project's SQLite.

    The default store is resolved to an absolute path once, here, so a run from any working
    directory and every job of a sweep write to the same file. ``create`` makes its folder.
    """
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    path = DEFAULT_STORE.resolve()
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def default_artifact_root(uri):
    """Where a new experiment keeps its artifacts: beside a SQLite store, else the server's."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    return None


def check_reachable(uri):
    """Fail within seconds, naming the URI, when an HTTP tracking server does not answer.

    MLflow's own retries would take about 4 minutes for a closed port and 20 for a server
    that accepts and never answers; this asks its /health endpoint once with a short timeout.
    """
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=REACHABILITY_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # it answered: a server is there, whatever it thinks of /health
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise TrackingError(
            f"MLflow tracking server {uri} is not reachable ({reason}); start it, or point "
            f"tracking.uri / MLFLOW_TRACKING_URI at a running server"
        ) from None


def run_name(model_name, values, overrides):
    """A readable, never random run name from the model and the overrides.

    e.g. ``mlp_4_8_8_3-batch32-lr0.1-seed0`` plus ``-key=value`` for each other override.
    """
    parts = [model_name] + [
        f"{key}{values[key]:g}" if key == "lr" else f"{key}{values[key]}" for key in NAME_KEYS
    ]
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key not in NAME_KEYS and key != "model" and not key.startswith(("hydra", "tracking")):
            parts.append(override.lstrip("+~"))
    return "-".join(parts)


def flatten(config, prefix=""):
    """Nested dicts → dotted keys, lists as text: {'model.layers': '[4, 8, 8, 3]', ...}."""
    items = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items.update(flatten(value, f"{name}."))
        else:
            items[name] = str(value) if isinstance(value, list) else value
    return items


class Tracker:
    """Streams one run to the tracking worker and waits for it at the end.

    start : the run's description, sent once (see ``runner.tracking.worker``).
    live_after_s : the worker starts once training has run this long, or when the run ends,
        whichever comes first. Its start-up (``import mlflow``, the store) costs seconds of
        CPU; on 2 cores that stalls a training whose BLAS runs 2 threads, however low the
        worker's priority. A short run is therefore logged whole at its end, and a long one
        live, the start-up then a small share of its time. 0 starts the worker at once.
    """

    def __init__(self, start, live_after_s=0.0):
        self._outbox = queue.Queue()
        self._outbox.put(("start", start))
        self._metrics = []
        self.uri = start["uri"]
        self.run_id = start.get("resume_run_id")  # set when the worker reports the new run
        self.failure = None  # the worker's error message, once it has failed
        self._replies = queue.Queue()
        self._ended = False
        self.process = None
        self._created = self._last_send = time.monotonic()
        self.live_after_s = live_after_s
        if live_after_s <= 0:
            self._spawn()

    def _spawn(self):
        """Start the worker; messages queued so far go out first, in order."""
        if self.process is not None:
            return
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runner.tracking"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **HTTP_ENVIRONMENT},
            # Its own session: Ctrl-C in a terminal reaches only this process, which then
            # tells the worker to end the run as KILLED.
            start_new_session=True,
        )
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._writer.start()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def log_metrics(self, step, metrics):
        """Buffer metrics for ``step``; they are sent at the next epoch boundary."""
        timestamp = int(time.time() * 1000)
        rows = [(key, float(value), step, timestamp) for key, value in metrics.items()]
        self._metrics.extend(rows)  # one C call: a Ctrl-C never leaves half an epoch buffered

    def log_epoch(self, epoch, metrics):
        """Buffer an epoch's metrics; ship the buffer at most every SEND_INTERVAL_S.

        Few large batches keep the worker's store writes cheap (one log_batch of 1000 values
        costs about what 20 single log_metric calls do). A worker that already failed stops
        training here, at the epoch boundary, rather than after the last epoch.
        """
        self.log_metrics(epoch, metrics)
        now = time.monotonic()
        if self.process is None and now - self._created >= self.live_after_s:
            self._spawn()
        if self.process is not None and now - self._last_send >= SEND_INTERVAL_S:
            self.flush()
        if self.failure:
            raise TrackingError(self.failure)

    def flush(self):
        self._last_send = time.monotonic()
        if self._metrics:
            # Queued before it is cleared: an interrupt in between sends it twice, which the
            # worker drops, rather than never.
            self._outbox.put(("metrics", self._metrics))
            self._metrics = []

    def finish(self, result):
        """Send the run's results and wait until the worker has logged them and ended the run.

        Returns the worker's reply: {"run_id": ..., "experiment_id": ..., "uri": ...}.
        """
        self.flush()
        self._outbox.put(("finish", result))
        return self._close()

    def end(self, status, reason):
        """End the run as FAILED or KILLED with a reason; wait for the worker."""
        if self._ended:
            return None
        self.flush()
        self._outbox.put(("end", {"status": status, "reason": reason}))
        return self._close()

    def _close(self):
        self._ended = True
        self._spawn()
        self._outbox.put(None)
        self._drain_outbox()
        self.process.wait()
        self._reader.join()
        reply = None
        while not self._replies.empty():
            kind, payload = self._replies.get()
            if kind == "error":
                raise TrackingError(payload)
            reply = payload
        if reply is None:
            raise TrackingError(
                f"the MLflow tracking worker exited with code {self.process.returncode} "
                f"without logging the run; see the messages above"
            )
        return reply

    def _drain_outbox(self):
        """Wait until every message is written whole, holding back an interrupt meanwhile.

        A message cut off by an exiting process would cost the run its results; writing the
        rest takes milliseconds. After that the worker, in its own session, finishes the run
        even if this process is interrupted while waiting for it.
        """
        interrupted = None
        while self._writer.is_alive():
            try:
                self._writer.join()
            except BaseException as err:  # Ctrl-C or SIGTERM: raise it once the pipe is done
                interrupted = err
        if interrupted is not None:
            raise interrupted

    def _write(self):
        pipe = self.process.stdin
        try:
            while (message := self._outbox.get()) is not None:
                pickle.dump(message, pipe, protocol=pickle.HIGHEST_PROTOCOL)
                pipe.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker died; _close reports it
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    def _read(self):
        try:
            while True:
                kind, payload = reply = pickle.load(self.process.stdout)
                if kind == "started":
                    self.run_id = payload["run_id"]
                elif kind == "error":
                    self.failure = payload
                self._replies.put(reply)
        except (EOFError, OSError, pickle.UnpicklingError):
            pass


def start_message(run_cfg, config, overrides, net, dataset, loss, sweep=None):
    """Everything the worker needs to create the run and rebuild data and model.

    config : the resolved config as a plain dict; overrides : Hydra's task overrides.
    sweep : for a job of a sweep, {"parent": {"run_id", "uri", ...}, "job": number}; its
        run becomes a child of the sweep's parent run, in the parent's store.
    """
    uri = sweep["parent"]["uri"] if sweep else resolve_uri(run_cfg.tracking.uri)
    run_tags = {
        "command": " ".join(["python -m runner", *map(shlex.quote, overrides)]),
        tags.BLAS_THREADS: str(blas_threads()),
    }
    if sweep:
        run_tags.update(
            {
                "mlflow.parentRunId": sweep["parent"]["run_id"],
                tags.SWEEP_JOB: str(sweep["job"]),
                tags.OVERRIDES: " ".join(overrides),
            }
        )
    d = run_cfg.dataset
    params = flatten(config)
    params["n_params"] = net.n_params
    params["loss.resolved"] = loss
    for i, row in enumerate(net.summary_rows(), start=1):
        params[f"layer{i}.W_shape"] = row["W_shape"]
        params[f"layer{i}.b_shape"] = row["b_shape"]
        params[f"layer{i}.activation"] = row["activation"]
        params[f"layer{i}.params"] = row["params"]
    return {
        "uri": uri,
        "experiment": run_cfg.experiment,
        "artifact_root": default_artifact_root(uri),
        "run_name": run_name(run_cfg.model.name, config, overrides),
        "params": params,
        "tags": run_tags,
        "config_yaml": yaml.safe_dump(config, sort_keys=False),
        "overrides": list(overrides),
        "summary": net.summary(run_cfg.model.name),
        "layers": net.summary_rows(),
        "model": {"activations": list(net.activations)},
        "log_model": run_cfg.tracking.log_model,
        "outage_wait_s": run_cfg.tracking.outage_wait_s,
        "dataset": {
            "name": d.name,
            "seed": run_cfg.seed,
            "val_fraction": d.val_fraction,
            "test_fraction": d.test_fraction,
            "standardize": d.standardize,
            "n_outputs": run_cfg.model.layers[-1],
            "dtype": run_cfg.dtype,
            "path": d.path,
            "target": d.target,
            "task": d.task,
            "n_samples": d.n_samples,
            "noise": d.noise,
            "n_classes": d.n_classes,
            "n_features": d.n_features,
        },
    }


def finish_message(outcome):
    """The final metrics (at the last epoch's step) and where the weights are."""
    step = len(outcome.fit.history)
    timestamp = int(time.time() * 1000)
    final = {**outcome.test_metrics}
    if outcome.fit.best_epoch is not None:
        final["best_epoch"] = outcome.fit.best_epoch
    return {
        "weights_path": str(outcome.weights_path),
        "metrics": [(key, float(value), step, timestamp) for key, value in final.items()],
    }


def blas_threads():
    """Threads of the BLAS library NumPy calls (parallel sweep jobs should each have few)."""
    from threadpoolctl import threadpool_info

    return max(
        (pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=0
    )
