"""The tracking worker: a process of its own that does every MLflow call of a process's runs.

``python -m runner.tracking`` (which lowers its priority first) serves one training process
for as long as it lives: a single run, or every job a sweep gives that process. MLflow is
imported and the store opened once, not once per run. It reads the messages of
``runner.tracking.messages`` on stdin (a thread reads them as they come, so the training side
never waits on a full pipe) and answers on stdout.

Runs are served in order: ``Start``, ``Metrics``..., then ``Finish`` or ``End``. One thread
creates each run and sends its metrics as they come; a second logs the slow part of each run
in turn (its tables, then at its end its weights, the figures the training process drew, and
its model), so a job's artifacts and model are logged while the next job already trains, and
that job's run exists at once.
End-of-file after a run's ``Finish`` or ``End`` is the normal end; a run that got neither
(its training process was killed, even by SIGKILL) is ended FAILED, never left RUNNING. A
run whose tracking fails is ended FAILED with the reason and the worker goes on with the next
one. SIGINT is ignored; the training process decides how a run ends.

A store that stops answering (a server restarting, a locked SQLite file) does not stop
training: metrics are kept and sent when it answers again. The end of a run waits for it up
to ``tracking.outage_wait_s``; if it is still away, everything it lacks is saved to
``mlflow_unsent.json`` in the run's folder, which ``python -m runner.tracking.upload`` sends
later. No metric is dropped.
"""

import functools
import importlib.metadata
import json
import logging
import os
import platform
import queue
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from threadpoolctl import threadpool_info

from runner.engine import MLP
from runner.errors import one_line
from runner.tracking import messages, parent_runs
from runner.tracking.artifacts import confusion_counts, confusion_table
from runner.tracking.collector import imports_without_collection
from runner.tracking.model import log_model, pip_requirements
from runner.tracking.repository import git_tags
from runner.tracking.store import ensure_experiment, open_store

BATCH_METRICS, BATCH_PARAMS = 1000, 100  # MLflow's limits for one log_batch call
LIBRARIES = ("numpy", "pandas", "hydra-core", "omegaconf", "mlflow")
RETRY_INTERVAL_S = 3.0  # between attempts while the store does not answer
UNSENT_FILE = "mlflow_unsent.json"
TRANSIENT_MARKERS = ("API request to", "database is locked", "Connection refused", "timed out")
NOT_FINISHED = "the training process ended without finishing"


class OutageOutlasted(Exception):
    """The store did not come back within the wait; what it lacks is saved to a file."""


class Stores:
    """One MlflowClient and one experiment id per store and name, for every run of the worker."""

    def __init__(self):
        self.clients, self.experiments = {}, {}

    def client(self, uri):
        if uri not in self.clients:
            with imports_without_collection():  # a SQLite store imports SQLAlchemy's store
                self.clients[uri] = open_store(uri)
        return self.clients[uri]

    def experiment_id(self, uri, name, artifact_root):
        key = (uri, name)
        if key not in self.experiments:
            self.experiments[key] = ensure_experiment(self.client(uri), name, artifact_root)
        return self.experiments[key]


class RunSession:
    """One MLflow run, created (or resumed) from its ``Start`` message."""

    def __init__(self, start: messages.Start, stores=None):
        self.start = start
        self.stores = stores or Stores()
        self.wait_s = start.outage_wait_s
        self.client = self.stores.client(start.uri)
        self.history = {}  # {metric: {step: value}}, for the loss curve
        self.pending = []  # metric rows the store has not received yet
        # {metric: {step}} the store has, or will get from ``pending``: a row for a step seen
        # before is dropped, so a resumed run or a batch sent twice never repeats a point.
        self.seen = {}
        self.run_id = self.experiment_id = None
        self.run_name = start.run_name
        self._retry_at = 0.0
        self._outage_reported = False
        self.opened = self.described = False
        self.closed = False  # its Finish or End came
        # Metrics come on serve's thread; after an outage at the start the run is created,
        # and what was kept sent, on the logging thread: one sender at a time.
        self._metrics_lock = threading.RLock()
        self.over = False  # ended, saved or failed: nothing more is done for it

    def open(self):
        """Create the run (or resume it) with its params: what a job waits for, so kept short.

        Waits through an outage like every other call. If the store stays away, metrics are
        still kept, and the end of the run tries again.
        """
        start = self.start
        if start.resume_run_id:
            self._retrying(lambda: self._resume_run(start.resume_run_id, start.history))
            self.described = True  # a resumed run has its tables and texts from its first part
        else:
            self._retrying(self._create_run)
            self.log_metrics(_history_metrics(start.history))
        self.opened = True

    def describe(self):
        """Log the run's summary, layer table, config, overrides and data set inputs.

        Done when the worker has nothing more urgent: a sweep's next job waits for its own run
        to exist, not for these.
        """
        self._ensure_open()
        if not self.described:
            self._retrying(self._describe)
            self.described = True

    def _ensure_open(self):
        if not self.opened:
            self.open()

    @property
    def info(self):
        return messages.RunLocation(self.run_id, self.experiment_id, self.start.uri, self.run_name)

    def _create_run(self):
        """Create the run once; the params may repeat after an outage (same values again)."""
        start = self.start
        if self.run_id is None:
            self.experiment_id = self.stores.experiment_id(
                start.uri, start.experiment, start.artifact_root
            )
            tags = {**start.tags, **git_tags(), **version_tags()}
            run = self.client.create_run(self.experiment_id, run_name=start.run_name, tags=tags)
            self.run_id = run.info.run_id
        params = [Param(key, str(value)) for key, value in start.params.items()]
        for i in range(0, len(params), BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=params[i : i + BATCH_PARAMS])

    def _describe(self):
        start = self.start
        self._activate()
        mlflow.log_text(start.summary, "model_summary.txt")
        mlflow.log_table(
            {key: [row[key] for row in start.layers] for key in start.layers[0]},
            "layers.json",
        )
        mlflow.log_text(start.config_yaml, "config.yaml")
        mlflow.log_text("".join(f"- {o}\n" for o in start.overrides) or "[]\n", "overrides.yaml")
        self._log_inputs()

    def _resume_run(self, run_id, history):
        """Continue a KILLED or FAILED run: RUNNING again, and the epochs it never logged."""
        run = self.client.get_run(run_id)
        self.run_id, self.run_name = run_id, run.info.run_name
        self.experiment_id = run.info.experiment_id
        self.client.update_run(run_id, status="RUNNING")
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
        """Make this run the active one, for the fluent calls (log_table, log_model)."""
        active = mlflow.active_run()
        if active is not None and active.info.run_id == self.run_id:
            return
        mlflow.set_tracking_uri(self.start.uri)
        # Nested above a run that an outage left active: ending that one here would mark it
        # FINISHED before its upload.
        mlflow.start_run(run_id=self.run_id, nested=active is not None)

    def _log_inputs(self):
        data = self.start.data
        for split, context in (("train", "training"), ("val", "validation"), ("test", "test")):
            part = getattr(data, split)
            if part.X.shape[0]:
                source = mlflow.data.from_numpy(
                    part.X, targets=part.targets, name=f"{data.name}-{split}"
                )
                mlflow.log_input(source, context=context)

    def log_metrics(self, batch):
        """Keep the new rows and send what is pending, unless the store failed moments ago."""
        with self._metrics_lock:
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
        with self._metrics_lock:
            while self.pending:
                rows = self.pending[:BATCH_METRICS]
                metrics = [Metric(k, value, timestamp, step) for k, value, step, timestamp in rows]
                self.client.log_batch(self.run_id, metrics=metrics)
                del self.pending[: len(rows)]
        if self._outage_reported:
            self._outage_reported = False
            print(f"MLflow at {self.start.uri} is back; kept metrics sent", file=sys.stderr)

    def _retrying(self, action):
        """Run ``action``, retrying through a store outage for up to ``wait_s`` seconds.

        Raises OutageOutlasted when the store has not come back by then; any other error at once.
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
                    raise OutageOutlasted(outage_cause(err)) from None
                time.sleep(RETRY_INTERVAL_S)

    def _report_outage(self, err):
        if not self._outage_reported:
            self._outage_reported = True
            print(
                f"MLflow at {self.start.uri} is not answering ({outage_cause(err)}); training "
                f"goes on, metrics are kept and sent when it is back",
                file=sys.stderr,
            )

    def finish(self, result: messages.Finish):
        self.log_metrics(result.rows)
        self.describe()
        self._retrying(self._send_pending)
        self._retrying(lambda: self._log_results(result))

    def _log_results(self, result):
        self._activate()
        data = self.start.data
        weights = Path(result.weights_path)
        mlflow.log_artifact(str(weights))
        for figure in result.figures:
            mlflow.log_artifact(figure)
        net = MLP.load(weights, self.start.activations)
        if data.task == "classification" and data.test.X.shape[0]:
            predicted = net.predict_classes(data.test.X)
            names = list(data.class_names)
            counts = confusion_counts(data.test.targets, predicted, len(names))
            mlflow.log_table(confusion_table(counts, names), "confusion_matrix.json")
        if self.start.log_model:
            with tempfile.TemporaryDirectory() as workdir:
                log_model(net, data, weights, workdir)
        mlflow.end_run("FINISHED")

    def end(self, status, reason):
        self.describe()
        self._retrying(self._send_pending)

        def terminate():
            if reason:
                self.client.set_tag(self.run_id, "failure_reason", reason[:5000])
            self.client.set_terminated(self.run_id, status)
            active = mlflow.active_run()
            if active is not None and active.info.run_id == self.run_id:
                mlflow.end_run(status)

        self._retrying(terminate)

    def save_unsent(self, last_message):
        """Keep what the store never received in the run's folder, for ``upload`` later.

        last_message : the run's Finish or End, which the upload replays.
        """
        path = Path(self.start.output_dir) / UNSENT_FILE
        history = [
            [key, value, step]
            for key, steps in self.history.items()
            for step, value in steps.items()
        ]
        last = (
            [
                "finish",
                {
                    "weights_path": last_message.weights_path,
                    "rows": last_message.rows,
                    "figures": list(last_message.figures),
                },
            ]
            if isinstance(last_message, messages.Finish)
            else ["end", {"status": last_message.status, "reason": last_message.reason}]
        )
        contents = {
            "start": messages.start_to_json(self.start),
            "run_id": self.run_id,
            "pending": self.pending,
            "history": history,
            "last": last,
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


def describe_and_prepare(session):
    """Describe a new run, then pay while it trains what logging a model costs only once.

    That is the check of the model's requirements (about a second: MLflow scans every
    installed distribution once per process).
    """
    try:
        session.describe()
    except OutageOutlasted:
        return  # the run's end tries again, and saves what the store lacks if it must
    if session.start.log_model:
        pip_requirements()


@functools.cache
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


def serve(inbox, reply):
    """Serve runs until end-of-file; end FAILED any run that got no Finish or End.

    inbox : a queue.Queue of the messages in order, then None at end-of-file; a sweep's
        requests among them are answered at once, in this thread (``parent_runs``).
    reply(message) : sends one reply to the training process.

    This thread creates the runs and sends their metrics as they come; the slower part of
    each run (its tables and texts, and at its end the artifacts and the model) goes to a
    second thread, in order. So a sweep's next job, which waits until its run exists, is not
    held up by the logging of the job before it, and every run is still logged whole before
    it is ended.
    """
    lock = threading.Lock()

    def answer(message):
        with lock:
            reply(message)

    stores = Stores()
    sessions = {}  # run number → RunSession
    later = queue.Queue()  # (session, Start, Finish or End): the slow part, in order
    logger = threading.Thread(target=log_later, args=(later, answer))
    logger.start()
    while (message := inbox.get()) is not None:
        if isinstance(message, messages.SWEEP_REQUESTS):  # from a sweep's launching process
            answer(parent_runs.answer(stores, message))
            continue
        session = sessions.get(message.run)
        if isinstance(message, messages.Start):
            session = sessions[message.run] = RunSession(message, stores)
        elif session is None or session.over:
            continue  # a run whose tracking failed: the rest of it has nowhere to go
        if isinstance(message, messages.Finish | messages.End):
            session.closed = True
        elif not _handle_now(session, message, answer):
            session.over = True
            continue
        if not isinstance(message, messages.Metrics):
            later.put((session, message))
    unfinished = [session for session in sessions.values() if not session.closed]
    for session in unfinished:
        later.put((session, messages.End(session.start.run, "FAILED", NOT_FINISHED)))
    later.put(None)
    logger.join()
    for session in unfinished:
        if session.start.sweep is not None:
            end_orphaned_sweep(session)
    return 0


def log_later(later, reply):
    """The second thread of ``serve``: each run's slow part, in the order it came."""
    while (item := later.get()) is not None:
        session, message = item
        if not session.over and not _handle_later(session, message, reply):
            session.over = True


def end_orphaned_sweep(session):
    """End the sweep's parent run FAILED if the process that launched the sweep is gone.

    It ends the parent itself, also after a crash or Ctrl-C; only a kill (SIGKILL of a
    basic-launcher sweep, whose jobs train in it) leaves it RUNNING, and then this worker,
    which saw the job die, is the last one who can end it.
    """
    sweep = session.start.sweep
    try:
        os.kill(sweep.launcher_pid, 0)
        return  # alive: the launching process ends the parent run
    except ProcessLookupError:
        pass
    except PermissionError:
        return  # another user's process took the number: the sweep's is gone, yet be safe
    try:
        parent = session.client.get_run(sweep.parent_run_id)
        if parent.info.status == "RUNNING":
            session.client.set_tag(
                sweep.parent_run_id, "failure_reason", "the sweep's process was killed"
            )
            session.client.set_terminated(sweep.parent_run_id, "FAILED")
    except Exception as err:
        print(f"could not end the sweep's parent run: {one_line(err)}", file=sys.stderr)


def _handle_now(session, message, reply):
    """A run's creation or its metrics, done at once; False if the run's tracking failed."""
    if isinstance(message, messages.Metrics):
        action = functools.partial(session.log_metrics, message.rows)
    else:
        action = functools.partial(_open, session, reply)
    return _handled(session, message, reply, action)


def _open(session, reply):
    try:
        session.open()
    except OutageOutlasted:
        pass  # keep the metrics coming; describe, finish or end tries again
    reply(messages.Started(session.start.run, session.info))


def _handle_later(session, message, reply):
    """The slow part of a run: its description, or its end; False once the run is over."""
    if isinstance(message, messages.Start):
        return _handled(session, message, reply, functools.partial(describe_and_prepare, session))
    if isinstance(message, messages.Finish):
        action = functools.partial(session.finish, message)
    else:
        action = functools.partial(session.end, message.status, message.reason)

    def end_and_reply():
        action()
        reply(messages.Done(message.run, session.info))
        return False

    return _handled(session, message, reply, end_and_reply)


def _handled(session, message, reply, action):
    """Do ``action`` for ``message``; False once the run is over (done, saved or failed).

    A store that stayed away saves what the run lacks for ``upload``; any other failure ends
    the run FAILED and tells the training process why.
    """
    try:
        return action() is not False
    except OutageOutlasted as outage:
        last = message if isinstance(message, messages.Finish | messages.End) else None
        last = last or messages.End(message.run, "FAILED", NOT_FINISHED)
        path = session.save_unsent(last)
        reply(messages.Unsent(message.run, session.info, str(path), str(outage)))
        return False
    except Exception as err:  # a store or server failure that is not an outage
        reason = f"MLflow tracking at {session.start.uri} failed: {one_line(err)}"
        reply(messages.Failed(message.run, reason))
        if session.run_id is not None:
            try:
                session.end("FAILED", f"tracking failed: {one_line(err)}")
            except Exception:
                pass
        return False


def main(inbox, reply):
    """Entered by ``python -m runner.tracking`` once it reads stdin; MLflow is imported here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    return serve(inbox, reply)
