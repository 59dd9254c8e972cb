"""Helpers shared by the tests: composing configs in-process and running the CLI."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from hydra import compose, initialize_config_dir

from runner.config import CONF_DIR, register_configs, to_run_config

REPO = Path(__file__).resolve().parent.parent

register_configs()


def compose_run_config(*overrides):
    """The validated RunConfig that ``python -m runner <overrides>`` would train."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_run_config(compose("config", overrides=list(overrides)))


def run_cli(*args, cwd, timeout=120, env=None):
    """Run ``python -m runner`` in a subprocess; returns the CompletedProcess (text)."""
    environment = {**os.environ, **(env or {})}
    environment.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


def start_cli_until(*args, cwd, pattern, timeout=120):
    """Start ``python -m runner``; return (process, lines read) once a line matches ``pattern``.

    The rest of the output stays unread in ``process.stdout``.
    """
    import re

    process = subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline, lines = time.monotonic() + timeout, []
    for line in process.stdout:
        lines.append(line)
        if re.match(pattern, line) or time.monotonic() > deadline:
            break
    return process, lines


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 over one SQLite file, which can stop and restart."""

    def __init__(self, workdir, store):
        import socket

        self.db, self.artifacts = workdir / "server.db", workdir / "server-artifacts"
        shutil.copy(store, self.db)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self, timeout=120):
        self.process = subprocess.Popen(
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
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.uri}/health", timeout=2).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"mlflow server did not start within {timeout} s") from None
                time.sleep(0.5)

    def stop(self):
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None
