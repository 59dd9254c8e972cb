"""Beyond one machine: sweeps into a PostgreSQL-backed `mlflow server`, and through Ray.

Each test starts what it needs (a throwaway PostgreSQL cluster and an `mlflow server` on
127.0.0.1, a token-protected Ray head) and stops it afterwards, pass or fail. A test skips,
saying why, when PostgreSQL's binaries, a psycopg driver, Ray or Hydra's Ray launcher are not
installed; .ci/install-scaleout.sh installs the PostgreSQL side. See docs/scale-out.md.
"""

import glob
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.helpers import run_cli

pytestmark = pytest.mark.slow

FAST = ("epochs=2", "tracking.log_model=false")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def skip_unless_ci(reason):
    """Skip on a developer's machine; fail under CI, where the README promises this test runs."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL test, but {reason}")
    pytest.skip(reason)


def postgres_bin():
    """The folder holding initdb and pg_ctl (on PATH, else Debian's newest), or None."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_major_version)
    return Path(found[-1]).parent if found else None


def _major_version(path):
    return int(Path(path).parent.parent.name) if Path(path).parent.parent.name.isdigit() else 0


def postgres_driver():
    """The SQLAlchemy driver name for PostgreSQL that is installed, or None.

    Named explicitly in the URI: a bare postgresql:// means psycopg (3) to SQLAlchemy 2.1 but
    psycopg2 to 1.4 and 2.0.
    """
    for module in ("psycopg", "psycopg2"):
        try:
            __import__(module)
            return module
        except ImportError:
            continue
    return None


def wait_for_http(url, process, what, log, seconds=90):
    """Poll url until it answers; fail with the log's tail if process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_group(process)
                tail = log.read_text(errors="replace")[-3000:]
                pytest.fail(f"{what} did not start within {seconds} s; its log ends:\n{tail}")
            time.sleep(0.5)


def stop_group(process, sig=signal.SIGTERM):
    """Signal the process group started with start_new_session=True; SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 with a database `mlflow`; yields its URI.

    PostgreSQL refuses to run as root, so under root the cluster belongs to the `postgres`
    user, in a folder under /tmp it can reach (pytest's tmp_path is private to root).
    """
    bindir = postgres_bin()
    if bindir is None:
        skip_unless_ci("PostgreSQL is not installed (no initdb/pg_ctl; .ci/install-scaleout.sh)")
    driver = postgres_driver()
    if driver is None:
        skip_unless_ci("no PostgreSQL driver for MLflow: pip install 'psycopg[binary]'")
    as_user = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            skip_unless_ci("running as root and there is no `postgres` user to run PostgreSQL as")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="runner-pg-"))
    password = secrets.token_hex(16)
    (root / "password").write_text(password + "\n")
    if as_user:
        for path in (root, root / "password"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    data, log, port = root / "data", root / "postgres.log", free_port()
    pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60"]
    try:
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "runner", "--no-locale"]
            + ["-E", "UTF8", f"--pwfile={root / 'password'}", "--auth=scram-sha-256"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        # TCP on 127.0.0.1 only, no Unix socket: nothing outside this test can reach it.
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories=''"
        subprocess.run(
            [*pg_ctl, "-l", str(log), "-o", options, "start"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "runner"]
            + ["mlflow"],
            check=True,
            capture_output=True,
            timeout=60,
            env={**os.environ, "PGPASSWORD": password},
        )
        yield f"postgresql+{driver}://runner:{password}@127.0.0.1:{port}/mlflow"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def team_server(postgres, tmp_path_factory):
    """A team `mlflow server` on 127.0.0.1 backed by the PostgreSQL cluster; yields its URI."""
    folder = tmp_path_factory.mktemp("team-server")
    artifacts, log, port = folder / "artifacts", folder / "server.log", free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
        + ["--backend-store-uri", postgres, "--artifacts-destination", str(artifacts)]
        + ["--workers", "1"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        # The first start migrates the empty database: slower than SQLite's.
        wait_for_http(f"{uri}/health", process, "mlflow server on PostgreSQL", log, 120)
        yield uri
    finally:
        stop_group(process)


def sweep_runs(uri, experiment):
    """(parent, children) of the one sweep in the experiment."""
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("runner.sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1, "runs outside the sweep (parentless children?)"
    return client, parent, children


def assert_two_finished_children(uri, experiment, launcher):
    client, parent, children = sweep_runs(uri, experiment)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sweep.launcher"] == launcher
    reasons = [c.data.tags.get("failure_reason") for c in children]
    assert sorted(c.info.status for c in children) == ["FINISHED", "FINISHED"], reasons
    assert sorted(c.data.params["batch"] for c in children) == ["16", "32"]
    for child in children:
        history = client.get_metric_history(child.info.run_id, "val_loss")
        assert sorted(m.step for m in history) == [1, 2]
        assert "test_accuracy" in child.data.metrics
    assert parent.data.tags["best_child_run_id"] in {c.info.run_id for c in children}
    assert "results.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_sweep_into_a_postgres_backed_team_server(tmp_path, team_server):
    result = run_cli(
        "-m",
        "batch=16,32",
        *FAST,
        "experiment=team",
        cwd=tmp_path,
        timeout=300,
        env={"MLFLOW_TRACKING_URI": team_server},
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "outputs" / "mlflow.db").exists()  # nothing went to a local store
    assert_two_finished_children(team_server, "team", "basic")


@pytest.fixture
def ray_head():
    """A Ray head on this machine with token auth, stopped after the test; yields its env.

    Started with --block in its own session so that teardown stops this head and nothing
    else (`ray stop` would stop every Ray node on the machine). Ray cannot be bound to one
    interface: --node-ip-address only sets the address it advertises, and its GCS listens on
    all of them, so the head demands a random token (Ray's default since 2.5x).
    """
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'ray[default]'")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install hydra-ray-launcher")
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    # Short: Ray puts Unix sockets under it, and their paths must stay under 108 bytes.
    temp_dir = tempfile.mkdtemp(prefix="ray-")
    port = free_port()
    env = {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    process = subprocess.Popen(
        [ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}"]
        + ["--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"]
        + [f"--temp-dir={temp_dir}"],
        stdout=(Path(temp_dir) / "head.log").open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"ray head did not start; see {temp_dir}/head.log")
                time.sleep(0.5)
        yield {"address": f"127.0.0.1:{port}", "env": env}
    finally:
        stop_group(process, signal.SIGINT)  # SIGTERM keeps it waiting 20 s for the SIGKILL
        shutil.rmtree(temp_dir, ignore_errors=True)


# Checked before any fixture runs, so that no PostgreSQL starts for a test that would skip.
@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None
    or importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None,
    reason="Ray or Hydra's Ray launcher is not installed; see docs/scale-out.md",
)
def test_sweep_on_a_ray_head_into_the_team_server(tmp_path, ray_head, team_server):
    result = run_cli(
        "-m",
        # The preset joins a running cluster and hands jobs the sweep's parent run.
        "hydra/launcher=ray_cluster",
        f"hydra.launcher.ray.init.address={ray_head['address']}",
        "batch=16,32",
        *FAST,
        "experiment=team-ray",
        f"tracking.uri={team_server}",
        cwd=tmp_path,
        timeout=300,
        env=ray_head["env"],
    )
    assert result.returncode == 0, result.stderr
    assert_two_finished_children(team_server, "team-ray", "ray_cluster")
