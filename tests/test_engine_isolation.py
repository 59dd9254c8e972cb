"""The engine, training, the data sets and tracking's training side import no framework.

Checked in a fresh process each, since a test process has long imported everything.
"""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "banned"),
    [
        ("runner.engine", ("hydra", "omegaconf", "mlflow", "runner.config", "runner.training")),
        ("runner.training", ("hydra", "omegaconf", "mlflow", "runner.config", "runner.tracking")),
        ("runner.datasets", ("hydra", "omegaconf", "mlflow", "pandas")),
        ("runner.tracking.client", ("mlflow",)),
    ],
)
def test_import_pulls_in_no_framework(module, banned):
    code = f"import sys, {module}\nprint(sorted(m for m in {banned!r} if m in sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
