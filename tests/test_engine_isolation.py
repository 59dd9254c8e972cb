"""The engine must import without Hydra, OmegaConf or MLflow (checked in a fresh process)."""

import subprocess
import sys


def test_engine_import_pulls_in_no_framework():
    code = (
        "import sys, runner.engine, runner.errors\n"
        "loaded = sorted(m for m in ('hydra', 'omegaconf', 'mlflow') if m in sys.modules)\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
