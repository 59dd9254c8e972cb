"""The test infrastructure itself: no process outlives its test, an awaited line that never
comes fails the test, and the developer's shell cannot redirect the runs under test."""

import os
import subprocess
import sys
import time

import pytest
from hypothesis import settings

from tests.helpers import REPO, read_until, start_process

SLEEPER = [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(600)"]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def inner_pytest(pytester, monkeypatch):
    """Run a test file in a separate pytest that uses this project's conftest.py."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))

    def run(source):
        pytester.makepyfile(test_inner=source)
        return pytester.runpytest_subprocess("-p", "tests.conftest", "-p", "no:cacheprovider")

    return run


def test_a_failing_tests_process_group_is_killed(inner_pytest, tmp_path):
    pids = tmp_path / "pids"
    result = inner_pytest(
        f"""
import subprocess, sys
from tests.helpers import read_until, start_process

def test_fails_with_a_process_running():
    process = start_process({SLEEPER!r}, stdout=subprocess.PIPE, text=True)
    read_until(process, "ready")
    open({str(pids)!r}, "w").write(str(process.pid))
    assert False, "this test fails on purpose"
"""
    )
    result.assert_outcomes(failed=1)
    pid = int(pids.read_text())
    try:
        assert not alive(pid), "the failed test left its process running"
    finally:
        if alive(pid):
            os.kill(pid, 9)


def test_read_until_fails_when_the_process_ends_without_the_line():
    process = start_process(
        [sys.executable, "-c", "print('epoch 1/3')"], stdout=subprocess.PIPE, text=True
    )
    expected = r"(?s)no line matched 'epoch \+5/' before it exited \(code 0\).*epoch 1/3"
    with pytest.raises(pytest.fail.Exception, match=expected):
        read_until(process, r"epoch +5/", timeout=60)


def test_read_until_fails_and_kills_a_silent_process_at_its_timeout():
    silent = [sys.executable, "-c", "import time; time.sleep(600)"]
    process = start_process(silent, stdout=subprocess.PIPE, text=True)
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="within 1 s"):
        read_until(process, "never", timeout=1)
    assert time.monotonic() - started < 30
    assert process.poll() is not None


def test_mlflow_and_hydra_variables_of_the_shell_do_not_reach_tests(inner_pytest, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://team-server.invalid:5000")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    result = inner_pytest(
        """
import os

def test_environment_is_clean():
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "HYDRA_FULL_ERROR" not in os.environ
"""
    )
    result.assert_outcomes(passed=1)


def test_ci_runs_hypothesis_derandomized():
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.max_examples == 200
    assert not settings.get_profile("dev").derandomize  # developers fuzz at random
    assert "run pytest --hypothesis-profile=ci" in (REPO / ".ci" / "run").read_text()
