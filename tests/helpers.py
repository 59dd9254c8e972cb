"""Helpers shared by the tests: composing configs in-process and running the CLI.

Every process a test starts goes through ``start_process``: it gets its own session (so a
signal the test sends reaches it alone, and its whole group can be killed), and the autouse
fixture ``kill_started_processes`` in conftest.py kills that group when the test ends, passed
or failed: a failing test never leaves a run training or a server listening.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from runner.config import CONF_DIR, register_configs, to_run_config

REPO = Path(__file__).resolve().parent.parent

register_configs()

# Processes started by the running test, killed (with their groups) when it ends.
STARTED = []


def compose_config(*overrides):
    """The DictConfig Hydra composes for ``python -m runner <overrides>``, not yet validated."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def compose_run_config(*overrides):
    """The validated RunConfig that ``python -m runner <overrides>`` would train."""
    return to_run_config(compose_config(*overrides))


def start_process(command, *, env=None, kill_at_test_end=True, **popen):
    """Popen ``command`` in its own session, to be killed with its group at the test's end.

    A module-scoped fixture's server outlives the test that started it: it passes
    ``kill_at_test_end=False`` and stops the group itself (``stop_group`` in its finally).
    """
    environment = {**os.environ, **(env or {})}
    process = subprocess.Popen(command, env=environment, start_new_session=True, **popen)
    if kill_at_test_end:
        STARTED.append(process)
    return process


def kill_group(process):
    """SIGKILL the process's whole group (its session), then reap the process."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


def stop_group(process, sig=signal.SIGTERM, grace=20):
    """Send ``sig`` to the process's group, give it ``grace`` seconds, then SIGKILL whatever
    of the group is left (a server's workers outlive their parent otherwise)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    kill_group(process)


def answers_http(url):
    """A check for wait_until_ready: True once ``url`` answers (any HTTP status)."""

    def ready():
        try:
            urllib.request.urlopen(url, timeout=2).close()
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    return ready


def wait_until_ready(ready, process, what, timeout=120, log=None):
    """Poll ``ready()`` until it is true: True. False if ``process`` exits first (a server
    whose port another process took: the caller tries another port). At ``timeout`` the
    group is killed and the test fails with the end of ``log``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if ready():
            return True
        time.sleep(0.3)
    kill_group(process)
    tail = Path(log).read_text(errors="replace")[-3000:] if log else ""
    pytest.fail(f"{what} did not start within {timeout} s; its log ends:\n{tail}")


def on_a_free_port(start, what, attempts=5):
    """``start(port)`` on a port free now, again on another one while it gives None.

    A free port is free only until someone binds it: a server that loses the race exits,
    ``start`` says so with None, and the next attempt takes a new port.
    """
    for _ in range(attempts):
        started = start(free_port())
        if started is not None:
            return started
    pytest.fail(f"{what} did not start on 127.0.0.1 in {attempts} attempts, each on a new port")


def kill_started():
    """Kill every process the test started, with its group; called by conftest at teardown."""
    while STARTED:
        kill_group(STARTED.pop())


def run_command(command, *, cwd, timeout=120, env=None):
    """Run ``command`` to the end; returns the CompletedProcess (text). A timeout kills its
    whole group and fails the test, showing the output so far."""
    process = start_process(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        stdout, stderr = process.communicate()
        pytest.fail(f"{command} did not end within {timeout} s:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def run_cli(*args, cwd, timeout=120, env=None):
    """Run ``python -m runner`` in a subprocess; returns the CompletedProcess (text)."""
    return run_command([sys.executable, "-m", "runner", *args], cwd=cwd, timeout=timeout, env=env)


def start_cli_until(*args, cwd, pattern, timeout=120, env=None):
    """Start ``python -m runner``; return (process, lines read) once a line matches ``pattern``.

    The rest of the output stays unread in ``process.stdout``. If the process ends, or
    ``timeout`` seconds pass, without such a line, the process group is killed and the test
    fails with the output: a test never goes on as if the awaited moment had come.
    """
    process = start_process(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, read_until(process, pattern, timeout)


def read_until(process, pattern, timeout=120):
    """Read ``process.stdout`` up to the first line matching ``pattern``; the lines read.

    Kills the process group and fails the test when the output ends or ``timeout`` passes
    first (a timer kills the group: a silent process cannot block the read forever).
    """
    fired = threading.Event()

    def kill_at_timeout():
        fired.set()
        kill_group(process)

    timer = threading.Timer(timeout, kill_at_timeout)
    timer.start()
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if re.match(pattern, line):
                return lines
    finally:
        timer.cancel()
    kill_group(process)
    code = process.returncode
    why = f"within {timeout} s" if fired.is_set() else f"before it exited (code {code})"
    pytest.fail(f"no line matched {pattern!r} {why}; output:\n{''.join(lines)}")


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 over one SQLite file, which can stop and restart.

    Its port is one the system handed out free; should another process take it before the
    server binds it, the first start tries another port (a restart keeps its port: the runs
    under test know the URI).
    """

    ATTEMPTS = 5

    def __init__(self, workdir, store):
        self.db, self.artifacts = workdir / "server.db", workdir / "server-artifacts"
        self.log = workdir / "server.log"
        shutil.copy(store, self.db)
        self.port = None
        self.process = None

    @property
    def uri(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=120):
        first = self.port is None
        for _ in range(self.ATTEMPTS):
            if first:
                self.port = free_port()
            if self._start_once(timeout):
                return self
        raise RuntimeError(
            f"mlflow server did not start on 127.0.0.1 in {self.ATTEMPTS} attempts; "
            f"its log:\n{self.log.read_text()}"
        )

    def _start_once(self, timeout):
        """True once the server answers /health; False if it exited first (port taken)."""
        with self.log.open("ab") as log:
            self.process = start_process(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--backend-store-uri",
                    f"sqlite:///{self.db}",
                    "--artifacts-destination",
                    str(self.artifacts),
                    "--workers",
                    "1",
                ],
                stdout=log,
                stderr=log,
            )
        ready = answers_http(f"{self.uri}/health")
        if wait_until_ready(ready, self.process, "mlflow server", timeout, self.log):
            return True
        self.process = None
        return False

    def stop(self):
        if self.process is not None:
            stop_group(self.process)
            self.process = None


def free_port():
    """A port nothing listens on now (the system's choice for a bind to port 0)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _RunsCode:
    """Unpickling this creates a folder: the proof that a file's pickle was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def pickle_bomb(folder):
    """(an object array whose unpickling creates a folder, that folder's path)."""
    import numpy as np

    marker = Path(folder) / "the-pickle-ran"
    return np.array([_RunsCode(marker)], dtype=object), marker
