"""The tracking worker: a process of its own that does every MLflow call of one run.

``python -m runner.tracking`` (which lowers its priority first) reads pickled messages on
stdin, in order:
``("start", {...})`` once, then any number of ``("metrics", [(key, value, step, ms), ...])``,
then ``("finish", {...})`` or ``("end", {"status": "FAILED" | "KILLED", "reason": ...})``. It
answers on stdout with ``("started" | "finished" | "ended", info)`` or ``("error", message)``.
End-of-file before finish or end means the training process died: the run is ended FAILED,
never left RUNNING. SIGINT is ignored; the training process decides how the run ends.
"""

import importlib.metadata
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

from runner.datasets import load_dataset
from runner.engine import MLP
from runner.tracking.model import PACKAGE, log_model
from runner.tracking.store import ensure_experiment

BATCH_METRICS, BATCH_PARAMS = 1000, 100  # MLflow's limits for one log_batch call
LIBRARIES = ("numpy", "pandas", "hydra-core", "omegaconf", "mlflow")


class RunSession:
    """One MLflow run, created from the ``start`` message."""

    def __init__(self, start):
        self.start = start
        mlflow.set_tracking_uri(start["uri"])
        self.client = MlflowClient(start["uri"])
        self.history = {}
        self.dataset = load_dataset(**start["dataset"])
        if start.get("resume_run_id"):
            self._resume_run(start["resume_run_id"], start["history"])
        else:
            self._create_run()
            self.log_metrics(_history_metrics(start.get("history", []), after=0))
        self.info = {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "uri": start["uri"],
            "run_name": self.run_name,
        }

    def _create_run(self):
        start = self.start
        self.experiment_id = ensure_experiment(
            self.client, start["experiment"], start["artifact_root"]
        )
        tags = {**start["tags"], **source_tags(), **version_tags()}
        run = self.client.create_run(self.experiment_id, run_name=start["run_name"], tags=tags)
        self.run_id, self.run_name = run.info.run_id, start["run_name"]
        params = [Param(key, str(value)) for key, value in start["params"].items()]
        for i in range(0, len(params), BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=params[i : i + BATCH_PARAMS])
        # Fluent calls (log_table, log_input, log_model) need this run active in this thread.
        mlflow.start_run(run_id=self.run_id)
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
        mlflow.start_run(run_id=run_id)
        if "failure_reason" in run.data.tags:
            self.client.delete_tag(run_id, "failure_reason")
        logged = self.client.get_metric_history(run_id, "train_loss")
        last = max((metric.step for metric in logged), default=0)
        # Every epoch so far, for the loss curve; only those after ``last`` are logged again.
        self.history = {
            key: {epoch: m[key] for epoch, m in enumerate(history, start=1) if key in m}
            for key in (history[0] if history else {})
        }
        self.log_metrics(_history_metrics(history, after=last))

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
        for key, value, step, _ in batch:
            self.history.setdefault(key, {})[step] = value
        metrics = [Metric(key, value, timestamp, step) for key, value, step, timestamp in batch]
        for i in range(0, len(metrics), BATCH_METRICS):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + BATCH_METRICS])

    def finish(self, result):
        # matplotlib costs a second to import; only the end of a run needs it.
        from runner.tracking.artifacts import (
            confusion_counts,
            confusion_figure,
            confusion_table,
            loss_curve,
        )

        self.log_metrics(result["metrics"])
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
        if reason:
            self.client.set_tag(self.run_id, "failure_reason", reason[:5000])
        mlflow.end_run(status)


def _history_metrics(history, after):
    """Metric rows for the epochs of ``history`` (1-based) after epoch ``after``."""
    timestamp = int(time.time() * 1000)
    return [
        (key, float(value), epoch, timestamp)
        for epoch, metrics in enumerate(history, start=1)
        if epoch > after
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
    for name in LIBRARIES:
        try:
            tags[f"version.{name}"] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return tags


def serve(messages, reply):
    """Handle messages until finish, end or end-of-file; reply with the outcome."""
    session = None
    try:
        for kind, payload in messages:
            if kind == "start":
                session = RunSession(payload)
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
            session.end("FAILED", "the training process ended without finishing the run")
        return 1
    except Exception as err:  # any store or server failure: report it, end the run
        reply(("error", f"MLflow tracking at {_uri(session, err)} failed: {one_line(err)}"))
        if session is not None:
            try:
                session.end("FAILED", f"tracking failed: {one_line(err)}")
            except Exception:
                pass
        return 1


def _uri(session, err):
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
