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


def start_process(command, *, env=None, **popen):
    """Popen ``command`` in its own session, to be killed with its group at the test's end."""
    environment = {**os.environ, **(env or {})}
    process = subprocess.Popen(command, env=environment, start_new_session=True, **popen)
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            try:
                urllib.request.urlopen(f"{self.uri}/health", timeout=2).close()
                return True
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer within {timeout} s")

    def stop(self):
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill_group(self.process)
        except ProcessLookupError:
            pass
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
