"""The git commit of the runner checkout that trains, as run tags (MLflow's Version column).

Asked of git once per process, in a subprocess: a worker or a sweep's launcher pays a few
milliseconds, not GitPython's import. Outside a repository (an installed wheel) there are none.
"""

import functools
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent


@functools.cache
def git_tags():
    """``git_commit``, ``git_dirty`` (uncommitted changes) and MLflow's source commit, or {}."""

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
