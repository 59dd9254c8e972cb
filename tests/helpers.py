"""Helpers shared by the tests: composing configs in-process and running the CLI."""

import os
import subprocess
import sys
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
