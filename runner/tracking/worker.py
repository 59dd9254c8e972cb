"""The tracking worker: a process of its own that does every MLflow call of one run.

``python -m runner.tracking`` (which lowers its priority first) reads pickled messages on
stdin, in order: ``("start", {...})`` once, then any number of
``("metrics", [(key, value, step, ms), ...])``, then ``("finish", {...})`` or
``("end", {"status": "FAILED" | "KILLED", "reason": ...})``. It answers on stdout with
``("started" | "finished" | "ended", info)``, ``("unsent", info)`` or ``("error", message)``.

End-of-file before finish or end means the training process died: the run is ended FAILED,
never left RUNNING. SIGINT is ignored; the training process decides how the run ends.

A store that stops answering (a server restarting, a locked SQLite file) does not stop
training: metrics are kept and sent when it answers again. The end of the run waits for it up
to ``tracking.outage_wait_s``; if it is still away, everything it lacks is saved to
``mlflow_unsent.json`` in the run's folder, which ``python -m runner.tracking.upload`` sends
later. No metric is dropped.
"""

import importlib.metadata
import json
import logging
import os
import pickle
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from threadpoolctl import threadpool_info

from runner.datasets import load_dataset
from runner.engine import MLP
from runner.tracking.model import PACKAGE, log_model
from runner.tracking.store import ensure_experiment

BATCH_METRICS, BATCH_PARAMS = 1000, 100  # MLflow's limits for one log_batch call
LIBRARIES = ("numpy", "pandas", "hydra-core", "omegaconf", "mlflow")
OUTAGE_WAIT_S = 120.0  # how long the end of a run waits for a store that stopped answering
RETRY_INTERVAL_S = 3.0  # between attempts while it does not answer
UNSENT_FILE = "mlflow_unsent.json"
TRANSIENT_MARKERS = ("API request to", "database is locked", "Connection refused", "timed out")


class Unsent(Exception):
    """The store did not come back within the wait; what it lacks is saved to a file."""


class RunSession:
    """One MLflow run, created (or resumed) from the ``start`` message."""

    def __init__(self, start):
        self.start = start
        self.wait_s = start.get("outage_wait_s", OUTAGE_WAIT_S)
        mlflow.set_tracking_uri(start["uri"])
        self.client = MlflowClient(start["uri"])
        self.history = {}  # {metric: {step: value}}, for the loss curve
        self.pending = []  # metric rows the store has not received yet
        # {metric: {step}} the store has, or will get from ``pending``: a row for a step seen
        # before is dropped, so a resumed run or a batch sent twice never repeats a point.
        self.seen = {}
        self.run_id = self.experiment_id = None
        self.run_name = start["run_name"]
        self._retry_at = 0.0
        self._outage_reported = False
        self.opened = False
        self.dataset = load_dataset(**start["dataset"])

    def open(self):
        """Create the run (or resume it), waiting through an outage like every other call.

        If the store stays away, metrics are still kept, and the end of the run tries again.
        """
        start = self.start
        if start.get("resume_run_id"):
            self._retrying(lambda: self._resume_run(start["resume_run_id"], start["history"]))
        else:
            self._retrying(self._create_run)
            self.log_metrics(_history_metrics(start.get("history", [])))
        self.opened = True

    def _ensure_open(self):
        if not self.opened:
            self.open()

    @property
    def info(self):
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "uri": self.start["uri"],
            "run_name": self.run_name,
        }

    def _create_run(self):
        """Create the run once; the rest may repeat after an outage (same values again)."""
        start = self.start
        if self.run_id is None:
            self.experiment_id = ensure_experiment(
                self.client, start["experiment"], start["artifact_root"]
            )
            tags = {**start["tags"], **source_tags(), **version_tags()}
            run = self.client.create_run(self.experiment_id, run_name=start["run_name"], tags=tags)
            self.run_id = run.info.run_id
        params = [Param(key, str(value)) for key, value in start["params"].items()]
        for i in range(0, len(params), BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=params[i : i + BATCH_PARAMS])
        self._activate()
        mlflow.log_text(start["summary"], "model_summary.txt")
        mlflow.log_table(
            {key: [row[key] for row in start["layers"]] for key in start["layers"][0]},
            "layers.json",
        )
        mlflow.log_text(start["config_yaml"], "config.yaml")
        mlflow.log_text("".join(f"- {o}\n" for o in start["overrides"]) or "[]\n", "overrides.yaml")
        self._log_inputs()

    def _resume_run(self, run_id, history):
        """Continue a KILLED or FAILED run: RUNNING again, and the epochs it never logged."""
        run = self.client.get_run(run_id)
        self.run_id, self.run_name = run_id, run.info.run_name
        self.experiment_id = run.info.experiment_id
        self._activate()
        if "failure_reason" in run.data.tags:
            self.client.delete_tag(run_id, "failure_reason")
        # What the interrupted process logged, key by key: a signal can land between one
        # epoch's metrics, and its last steps of per-step loss come again after the resume.
        stored = {
            key: {metric.step for metric in self.client.get_metric_history(run_id, key)}
            for key in run.data.metrics
        }
        self.pending = [row for row in self.pending if row[2] not in stored.get(row[0], ())]
        for key, steps in stored.items():
            self.seen.setdefault(key, set()).update(steps)
        # Every epoch so far, for the loss curve; only what the store lacks is sent.
        self.log_metrics(_history_metrics(history))

    def _activate(self):
        """Make the run active in this thread, for the fluent calls (log_table, log_model)."""
        if mlflow.active_run() is None:
            mlflow.start_run(run_id=self.run_id)

    def _log_inputs(self):
        for split, context in (("train", "training"), ("val", "validation"), ("test", "test")):
            data = getattr(self.dataset, split)
            if data.X.shape[0]:
                targets = data.y if data.y is not None else data.Y
                source = mlflow.data.from_numpy(
                    data.X, targets=targets, name=f"{self.dataset.name}-{split}"
                )
                mlflow.log_input(source, context=context)

    def log_metrics(self, batch):
        """Keep the new rows and send what is pending, unless the store failed moments ago."""
        for row in batch:
            key, value, step, _ = row
            self.history.setdefault(key, {})[step] = value
            steps = self.seen.setdefault(key, set())
            if step not in steps:
                steps.add(step)
                self.pending.append(row)
        if self.run_id is None or time.monotonic() < self._retry_at:
            return
        try:
            self._send_pending()
        except Exception as err:
            if not is_transient(err):
                raise
            self._report_outage(err)
            self._retry_at = time.monotonic() + RETRY_INTERVAL_S

    def _send_pending(self):
        while self.pending:
            rows = self.pending[:BATCH_METRICS]
            metrics = [Metric(key, value, timestamp, step) for key, value, step, timestamp in rows]
            self.client.log_batch(self.run_id, metrics=metrics)
            del self.pending[: len(rows)]
        if self._outage_reported:
            self._outage_reported = False
            print(f"MLflow at {self.start['uri']} is back; kept metrics sent", file=sys.stderr)

    def _retrying(self, action):
        """Run ``action``, retrying through a store outage for up to ``wait_s`` seconds.

        Raises Unsent when the store has not come back by then; any other error at once.
        """
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                return action()
            except Exception as err:
                if not is_transient(err):
                    raise
                self._report_outage(err)
                if time.monotonic() + RETRY_INTERVAL_S > deadline:
                    raise Unsent(outage_cause(err)) from None
                time.sleep(RETRY_INTERVAL_S)

    def _report_outage(self, err):
        if not self._outage_reported:
            self._outage_reported = True
            print(
                f"MLflow at {self.start['uri']} is not answering ({outage_cause(err)}); training "
                f"goes on, metrics are kept and sent when it is back",
                file=sys.stderr,
            )

    def finish(self, result):
        self.log_metrics(result["metrics"])
        self._ensure_open()
        self._retrying(self._send_pending)
        self._retrying(lambda: self._log_results(result))

    def _log_results(self, result):
        # matplotlib costs a second to import; only the end of a run needs it.
        from runner.tracking.artifacts import (
            confusion_counts,
            confusion_figure,
            confusion_table,
            loss_curve,
        )

        weights = Path(result["weights_path"])
        mlflow.log_artifact(str(weights))
        mlflow.log_figure(loss_curve(self.history), "loss_curve.png")
        net = MLP.load(weights, self.start["model"]["activations"])
        if self.dataset.task == "classification" and self.dataset.test.X.shape[0]:
            predicted = net.predict_classes(self.dataset.test.X)
            names = list(self.dataset.class_names)
            counts = confusion_counts(self.dataset.test.y, predicted, len(names))
            mlflow.log_table(confusion_table(counts, names), "confusion_matrix.json")
            mlflow.log_figure(confusion_figure(counts, names), "confusion_matrix.png")
        if self.start["log_model"]:
            with tempfile.TemporaryDirectory() as workdir:
                log_model(net, self.dataset, weights, workdir)
        mlflow.end_run("FINISHED")

    def end(self, status, reason):
        self._ensure_open()
        self._retrying(self._send_pending)

        def terminate():
            if reason:
                self.client.set_tag(self.run_id, "failure_reason", reason[:5000])
            mlflow.end_run(status)

        self._retrying(terminate)

    def save_unsent(self, last_message):
        """Keep what the store never received in the run's folder, for ``upload`` later."""
        path = Path(self.start["output_dir"]) / UNSENT_FILE
        history = [
            [key, value, step]
            for key, steps in self.history.items()
            for step, value in steps.items()
        ]
        contents = {
            "start": self.start,
            "run_id": self.run_id,
            "pending": self.pending,
            "history": history,
            "last": last_message,
        }
        path.write_text(json.dumps(contents))
        return path


def outage_cause(err):
    """A few words for a person: MLflow's own message repeats the whole request."""
    text = str(err)
    for marker in ("Connection refused", "timed out", "database is locked"):
        if marker in text:
            return marker.lower()
    status = err.get_http_status_code() if isinstance(err, MlflowException) else None
    return f"HTTP {status}" if status else one_line(err)[:200]


def is_transient(err):
    """An outage to wait out: no connection, a timeout, a 5xx answer, a locked SQLite file."""
    if isinstance(err, MlflowException):
        status = err.get_http_status_code()
        if status is not None and status >= 500 and "API request to" in str(err):
            return True
    return any(marker in str(err) for marker in TRANSIENT_MARKERS)


def _history_metrics(history):
    """Metric rows for the epochs of ``history``, a list of per-epoch dicts (1-based steps)."""
    timestamp = int(time.time() * 1000)
    return [
        (key, float(value), epoch, timestamp)
        for epoch, metrics in enumerate(history, start=1)
        for key, value in metrics.items()
    ]


def source_tags():
    """The git commit of the runner checkout and whether it had uncommitted changes."""

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(PACKAGE), *args], capture_output=True, text=True, timeout=10
        )

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {}
        dirty = bool(git("status", "--porcelain").stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {
        "git_commit": head.stdout.strip(),
        "git_dirty": str(dirty).lower(),
        "mlflow.source.git.commit": head.stdout.strip(),
    }


def version_tags():
    tags = {"version.python": platform.python_version()}
    # The BLAS NumPy calls and the CPU kernels it chose: its floating-point results depend on both.
    tags.update(
        {
            f"version.blas.{p['internal_api']}": f"{p['version']} {p.get('architecture')}"
            for p in threadpool_info()
            if p["user_api"] == "blas"
        }
    )
    for name in LIBRARIES:
        try:
            tags[f"version.{name}"] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return tags


def serve(messages, reply):
    """Handle messages until finish, end or end-of-file; reply with the outcome."""
    session = None
    kind = None
    try:
        for kind, payload in messages:
            if kind == "start":
                session = RunSession(payload)
                try:
                    session.open()
                except Unsent:
                    pass  # keep the metrics coming; finish or end tries again
                reply(("started", session.info))
            elif kind == "metrics":
                session.log_metrics(payload)
            elif kind == "finish":
                session.finish(payload)
                reply(("finished", session.info))
                return 0
            elif kind == "end":
                session.end(payload["status"], payload["reason"])
                reply(("ended", session.info))
                return 0
        if session is not None:
            kind, payload = (
                "end",
                {"status": "FAILED", "reason": "the training process ended without finishing"},
            )
            session.end(payload["status"], payload["reason"])
        return 1
    except Unsent as outage:
        path = session.save_unsent([kind, payload])
        reply(("unsent", {**session.info, "path": str(path), "reason": str(outage)}))
        return 0
    except Exception as err:  # a store or server failure that is not an outage
        reply(("error", f"MLflow tracking at {_uri(session)} failed: {one_line(err)}"))
        if session is not None and session.run_id is not None:
            try:
                session.end("FAILED", f"tracking failed: {one_line(err)}")
            except Exception:
                pass
        return 1


def _uri(session):
    return session.start["uri"] if session is not None else mlflow.get_tracking_uri()


def one_line(err):
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def read_messages(stream):
    """Messages until the training process closes the pipe (or dies mid-message)."""
    while True:
        try:
            yield pickle.load(stream)
        except (EOFError, pickle.UnpicklingError):
            return


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # Replies go to the real stdout; anything a library prints goes to stderr instead.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def reply(message):
        try:
            pickle.dump(message, replies, protocol=pickle.HIGHEST_PROTOCOL)
            replies.flush()
        except OSError:  # the training process is gone; the run is ended all the same
            pass

    return serve(read_messages(sys.stdin.buffer), reply)
