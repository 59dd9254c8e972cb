"""The training process's side of tracking: it never imports MLflow.

MLflow runs in one worker process per training process (``runner.tracking.worker``), fed
through a pipe and alive across every run (sweep job) of that process: ``import mlflow`` and
opening the store are paid once, on the other core, and cannot slow a training step through
the GIL (a run's figures are drawn here, once it has trained: ``runner.tracking.figures``).
The training loop only appends to a list; a writer thread ships batches to the worker, which
reads them as they come, so a full pipe never blocks a step. If this process dies, even by
SIGKILL, the worker reads end-of-file and ends every run it got no end for as FAILED: a run
is never left RUNNING.
"""

import atexit
import dataclasses
import itertools
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
from runner.tracking import messages, tags

DEFAULT_STORE = Path("outputs") / "mlflow.db"
REACHABILITY_TIMEOUT_S = 5.0
SEND_INTERVAL_S = 0.5
# Beyond tracking.outage_wait_s (the worker's own bound on every store call), how long a
# sweep's job waits for its run to exist, and an exiting process for its runs to be logged,
# before it leaves them to a worker that makes no progress.
WORKER_MARGIN_S = 60.0
# The worker's environment. Bounded retries for its HTTP calls: MLflow's defaults retry for
# minutes, and the worker waits out outages itself.
HTTP_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # The run's own line names it; MLflow's "View run at" lines would repeat it, and its
    # download bars (logging a model reads artifacts back) would break a sweep's job lines.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
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


def sweep_run_name(model_name, overrides, swept):
    """A sweep child's name: what the sweep varies, then the model.

    e.g. ``batch16-lr0.05 · mlp_4_8_8_3`` for ``-m batch=16,32 lr=0.05,0.1``. MLflow's runs
    table cuts names short, and a sweep's children differ only in the swept keys, so these
    come first. swept : the keys the sweep varies, in order; ``model`` is left out, since the
    model's name ends the name anyway.
    """
    values = dict(override.lstrip("+~").split("=", 1) for override in overrides if "=" in override)
    parts = [
        f"{key}{_short(values[key])}" if key in NAME_KEYS else f"{key}={_short(values[key])}"
        for key in swept
        if key in values and key != "model"
    ]
    return " · ".join(["-".join(parts), model_name]) if parts else model_name


def _short(value):
    """A float as ``:g`` prints it (an Optuna trial's lr=0.01234567891 as 0.0123457)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:g}" if any(c in value for c in ".eE") else value


def flatten_params(config, prefix=""):
    """Nested dicts → dotted keys, lists as text (MLflow params): {'model.layers': '[4, 8, 8, 3]'}.

    ``runinfo.flatten`` keeps the lists, to compare a logged run's config with today's.
    """
    items = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items.update(flatten_params(value, f"{name}."))
        else:
            items[name] = str(value) if isinstance(value, list) else value
    return items


CHILD_MARKER = "mlflow_child_run"  # in a sweep job's folder: the sweep's end waits for its run


class TrackingWorker:
    """The process's tracking worker: one subprocess that logs every run of this process.

    Messages go out in order through a writer thread; a reader thread routes the replies to
    their runs. The worker runs detached, in its own session (``runner.tracking.__main__``):
    Ctrl-C in a terminal reaches only this process, which tells the worker how its run ended,
    and the worker finishes logging the runs it has even after this process has exited or
    was killed, also by a pool that kills its workers' process trees.
    """

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runner.tracking"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **HTTP_ENVIRONMENT},
            start_new_session=True,
        )
        self.pid = os.getpid()  # the process that owns it (a forked child needs its own)
        self.warm = threading.Event()  # set once the worker has created a run (or died)
        self.runs = {}  # run number → TrackedRun, while the run awaits its last reply
        self.requests = {}  # request number → Asked, until its answer comes
        self._numbers = itertools.count()
        self._outbox = queue.Queue()
        self._closed = False
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._writer.start()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def alive(self):
        return not self._closed and self.answering

    @property
    def answering(self):
        """False once the worker's replies have ended: it exited or died."""
        return self._reader.is_alive()

    def start_run(self, start: messages.Start):
        """Send a run's Start; the TrackedRun takes its metrics and its end."""
        run = TrackedRun(self, next(self._numbers), start)
        self.runs[run.number] = run
        self.send(dataclasses.replace(start, run=run.number))
        return run

    def send(self, message):
        self._outbox.put(message)

    def ask(self, make_request):
        """Send a sweep's request, ``make_request(number)``; the Asked takes its answer."""
        asked = Asked(self)
        number = next(self._numbers)
        self.requests[number] = asked
        self.send(make_request(number))
        return asked

    def written(self):
        """Wait until every message is written whole, holding back an interrupt meanwhile.

        A message cut off by an exiting process would cost a run its results; writing the
        rest takes milliseconds, since the worker reads its pipe as messages come.
        """
        interrupted = None
        while True:
            try:
                self._outbox.join()
                break
            except BaseException as err:  # Ctrl-C or SIGTERM: raise it once the pipe is done
                interrupted = err
        if interrupted is not None:
            raise interrupted

    def drain(self, bounded=False):
        """Wait until every run sent so far is stored and ended (or the worker has died).

        bounded : give up once the worker has made no progress for its outage wait and
            WORKER_MARGIN_S (at exit: a process must not hang on a stuck worker).
        """
        self.written()
        for run in list(self.runs.values()):
            run.wait_done(run.bound_s if bounded else None)

    def close(self):
        """No more runs: the worker exits once it has logged those it has."""
        if not self._closed:
            self._closed = True
            self._outbox.put(None)

    def _write(self):
        pipe, broken = self.process.stdin, False
        while True:
            message = self._outbox.get()
            try:
                if message is None:
                    break
                if not broken:
                    pickle.dump(message, pipe, protocol=pickle.HIGHEST_PROTOCOL)
                    pipe.flush()
            except OSError:  # the worker died (BrokenPipeError); its runs report it
                broken = True
            finally:
                self._outbox.task_done()
        try:
            pipe.close()
        except OSError:
            pass

    def _read(self):
        self.process.wait()  # the launcher, which exits once it has forked the worker
        try:
            while True:
                reply = pickle.load(self.process.stdout)
                if isinstance(reply, messages.Answer | messages.Refused):
                    self.requests.pop(reply.request).receive(reply)
                elif (run := self.runs.get(reply.run)) is not None:
                    run.receive(reply)
                    if run.done.is_set():
                        del self.runs[reply.run]
                self.warm.set()
        except (EOFError, OSError, pickle.UnpicklingError):
            pass
        self.warm.set()
        for run in list(self.runs.values()):  # the worker died: nobody will answer them
            run.receive(None)
        self.runs.clear()


class Asked:
    """A request to the worker (a sweep's parent run), until its answer comes."""

    def __init__(self, worker):
        self.worker = worker
        self.answered = threading.Event()
        self.reply = None  # Answer or Refused; None if the worker died first

    def receive(self, reply):
        self.reply = reply
        self.answered.set()

    def result(self):
        """The answer's value; TrackingError if the request failed or the worker died."""
        while not self.answered.wait(0.5):
            if not self.worker.answering:
                self.receive(None)
        if isinstance(self.reply, messages.Refused):
            raise TrackingError(self.reply.message)
        if self.reply is None:
            raise TrackingError("the MLflow tracking worker stopped; see the messages above")
        return self.reply.value


class TrackedRun:
    """One run on the process's worker: buffers metrics, sends them, ends the run.

    While the worker is still starting (importing MLflow, opening the store), training runs
    with one BLAS thread, so that on two cores the worker's start-up does not stall a
    two-thread matrix product; the usual threads come back at the first epoch after.
    """

    def __init__(self, worker, number, start):
        self.worker, self.number = worker, number
        self.uri = start.uri
        self.run_id = start.resume_run_id  # set when the worker reports the new run
        self.started = threading.Event()  # the worker has opened the run (or given up on it)
        self.bound_s = start.outage_wait_s + WORKER_MARGIN_S
        self._sweep = start.sweep is not None
        self.failure = None  # the worker's error message, once tracking this run failed
        self.reply = None  # the last reply: Done, Unsent or Failed; None if the worker died
        self.done = threading.Event()
        self._metrics = []
        self._last_send = time.monotonic()
        self._ended = False
        self._blas_limit = None
        if not worker.warm.is_set():
            from threadpoolctl import threadpool_limits

            self._blas_limit = threadpool_limits(limits=1, user_api="blas")
        if start.sweep is not None:
            Path(start.output_dir, CHILD_MARKER).write_text(start.run_name)

    def receive(self, reply):
        """A reply from the worker (reader thread); None when the worker died."""
        self.started.set()
        if isinstance(reply, messages.Started):
            self.run_id = reply.info.run_id
            return
        if isinstance(reply, messages.Failed):
            self.failure = reply.message
        self.reply = reply
        self.done.set()

    def log_metrics(self, step, metrics):
        """Buffer metrics for ``step``; they are sent at the next epoch boundary."""
        timestamp = int(time.time() * 1000)
        rows = [(key, float(value), step, timestamp) for key, value in metrics.items()]
        self._metrics.extend(rows)  # one C call: a Ctrl-C never leaves half an epoch buffered

    def log_epoch(self, epoch, metrics):
        """Buffer an epoch's metrics; ship the buffer at most every SEND_INTERVAL_S.

        Few large batches keep the worker's store writes cheap (one log_batch of 1000 values
        costs about what 20 single log_metric calls do). A run whose tracking already failed
        stops training here, at the epoch boundary, rather than after the last epoch.
        """
        self.log_metrics(epoch, metrics)
        if self._blas_limit is not None and self.worker.warm.is_set():
            self._restore_blas()
        if time.monotonic() - self._last_send >= SEND_INTERVAL_S:
            self.flush()
        if self.failure:
            raise TrackingError(self.failure)

    def flush(self):
        self._last_send = time.monotonic()
        if self._metrics:
            # Queued before it is cleared: an interrupt in between sends it twice, which the
            # worker drops, rather than never.
            self.worker.send(messages.Metrics(self.number, self._metrics))
            self._metrics = []

    def finish(self, weights_path, metrics, step, figures=(), wait=True):
        """Send the final metrics (at ``step``), the weights and the figures' paths; the
        worker logs the rest.

        wait : wait until the run is stored and FINISHED, and return the worker's reply
            (``Done`` or, after a long outage, ``Unsent``). Without it, return once the
            messages are written: a sweep's next job trains while this one is logged.
        """
        timestamp = int(time.time() * 1000)
        rows = [(key, float(value), step, timestamp) for key, value in metrics.items()]
        self.flush()
        finish = messages.Finish(self.number, str(weights_path), rows, tuple(figures))
        return self._close(finish, wait)

    def end(self, status, reason, wait=True):
        """End the run as FAILED or KILLED with a reason (once; later calls return None)."""
        if self._ended:
            return None
        self.flush()
        return self._close(messages.End(self.number, status, reason), wait)

    def _close(self, message, wait):
        self._ended = True
        self._restore_blas()
        self.worker.send(message)
        self.worker.written()
        if wait:
            return self.wait()
        if self._sweep:
            # The sweep's end counts the children in the store, which every node shares (a
            # Ray cluster's nodes share no folder): a job returns once its run is there.
            self._wait_for(self.started, self.bound_s)
        return None

    def wait_done(self, timeout_s=None):
        """Until the last reply comes, the worker's replies end (it died), or ``timeout_s``."""
        self._wait_for(self.done, timeout_s)

    def _wait_for(self, event, timeout_s):
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not event.wait(0.5):
            if not self.worker.answering:
                self.receive(None)
            elif deadline is not None and time.monotonic() > deadline:
                return

    def wait(self):
        """The run's last reply, once the worker has stored (or saved) everything of it."""
        self.wait_done()
        if isinstance(self.reply, messages.Failed):
            raise TrackingError(self.reply.message)
        if self.reply is None:
            raise TrackingError(
                "the MLflow tracking worker stopped without logging the run; see the messages above"
            )
        return self.reply

    def _restore_blas(self):
        if self._blas_limit is not None:
            self._blas_limit.restore_original_limits()
            self._blas_limit = None


_worker = None


def tracking_worker():
    """The process's tracking worker, started on first use (and again in a forked child)."""
    global _worker
    if _worker is None or _worker.pid != os.getpid() or not _worker.alive:
        _worker = TrackingWorker()
        atexit.unregister(drain_at_exit)  # registered once, however many workers it took
        atexit.register(drain_at_exit)
    return _worker


def drain():
    """Wait until every run this process tracked is stored and ended (nothing if none)."""
    if _worker is not None and _worker.pid == os.getpid():
        _worker.drain()


def drain_at_exit():
    """At exit, wait for the runs this process left to its worker (a sweep job's last ones).

    The worker is detached so that it can finish them after this process is gone, but a
    batch system that tracks a job's processes (SLURM's cgroups) kills it with the job; so a
    process waits for its runs, bounded per run by the outage wait and WORKER_MARGIN_S. A
    second Ctrl-C or a SIGTERM meanwhile leaves the rest to the worker at once.
    """
    if _worker is None or _worker.pid != os.getpid():
        return
    try:
        _worker.drain(bounded=True)
    except BaseException:  # interrupted while waiting: exit now, as asked
        pass


def stop_worker():
    """Let the worker go without waiting: an untracked run does not need the one it started."""
    global _worker
    if _worker is not None and _worker.pid == os.getpid():
        _worker.close()
    _worker = None


def start_message(
    *,
    config,
    overrides,
    net,
    model_name,
    dataset,
    loss,
    uri,
    experiment,
    log_model,
    outage_wait_s,
    output_dir,
    checkpoint_path,
    sweep=None,
    resume_run_id=None,
    history=(),
):
    """The Start message of a run: its name, params, tags, tables and the data it needs.

    config : the resolved config as a plain dict (logged as params and config.yaml);
    overrides : Hydra's task overrides; net : the MLP; dataset : the loaded data set (its
    splits go to the worker, which then never loads it); loss : the resolved loss name.
    sweep : a SweepJob for a job of a sweep; the run becomes a child of the sweep's parent
    run. resume_run_id, history : continue that run after these epochs.
    """
    run_tags = {
        **tags.source(" ".join(["python -m runner", *map(shlex.quote, overrides)])),
        tags.BLAS_THREADS: str(blas_threads()),
        tags.CHECKPOINT: str(checkpoint_path),
    }
    if sweep:
        run_tags.update(
            {
                tags.PARENT_RUN: sweep.parent_run_id,
                tags.SWEEP_JOB: str(sweep.job),
                tags.OVERRIDES: " ".join(overrides),
            }
        )
    params = flatten_params(config)
    params["n_params"] = net.n_params
    params["loss.resolved"] = loss
    layers = net.summary_rows()
    for i, row in enumerate(layers, start=1):
        for key in ("W_shape", "b_shape", "activation", "params"):
            params[f"layer{i}.{key}"] = row[key]
    return messages.Start(
        run=-1,  # numbered by the worker that sends it
        uri=uri,
        experiment=experiment,
        artifact_root=default_artifact_root(uri),
        run_name=(
            sweep_run_name(model_name, overrides, sweep.swept)
            if sweep and sweep.swept
            else run_name(model_name, config, overrides)
        ),
        params=params,
        tags=run_tags,
        config_yaml=yaml.safe_dump(config, sort_keys=False),
        overrides=list(overrides),
        summary=net.summary(model_name),
        layers=layers,
        activations=list(net.activations),
        log_model=log_model,
        outage_wait_s=outage_wait_s,
        output_dir=str(output_dir),
        data=messages.DataFacts.of(dataset),
        sweep=sweep,
        resume_run_id=resume_run_id,
        history=list(history),
    )


def blas_threads():
    """Threads of the BLAS library NumPy calls (parallel sweep jobs should each have few)."""
    from threadpoolctl import threadpool_info

    return max(
        (pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=0
    )
