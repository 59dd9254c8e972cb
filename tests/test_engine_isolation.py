"""The engine, the data sets and the training side of tracking import without the frameworks.

Checked in a fresh process each, since a test process has long imported everything.
"""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "banned"),
    [
        ("runner.engine", ("hydra", "omegaconf", "mlflow")),
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
