"""Beyond one machine: sweeps into a PostgreSQL-backed `mlflow server`, on Ray and on SLURM.

Each test starts what it needs (a throwaway PostgreSQL cluster and an `mlflow server` on
127.0.0.1, a token-protected Ray head, a one-node SLURM cluster) and stops it afterwards, pass
or fail. Where a tool is missing (PostgreSQL, a psycopg driver, Ray and its Hydra launcher,
submitit's launcher, SLURM's daemons) a test skips, saying why, except in CI (CI=true), where
that is a failure: .ci/run installs all of them (.ci/install-scaleout.sh) and runs the Ray
tests, marked `ray`, in a virtualenv of their own. See docs/scale-out.md.
"""

import functools
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
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.helpers import (
    answers_http,
    free_port,
    on_a_free_port,
    run_cli,
    start_process,
    stop_group,
    wait_until_ready,
)

pytestmark = pytest.mark.slow

FAST = ("epochs=2", "tracking.log_model=false")
# The sweep each launcher runs: four jobs, every epoch's metrics checked in the store.
SEEDS, EPOCHS = (0, 1, 2, 3), 3
SWEEP = (f"seed={','.join(map(str, SEEDS))}", f"epochs={EPOCHS}", "tracking.log_model=false")
# A whole sweep through Ray or SLURM, PostgreSQL's start included, on 2 loaded cores.
SWEEP_TIMEOUT = 540


def require(available, reason):
    """Skip the test when a tool is missing; in CI (CI=true) fail instead: it must run there."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run this test (.ci/run installs what it needs)")
    pytest.skip(reason)


def installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


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


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 with a database `mlflow`; yields its URI.

    PostgreSQL refuses to run as root, so under root the cluster belongs to the `postgres`
    user, in a folder under /tmp it can reach (pytest's tmp_path is private to root).
    """
    bindir = postgres_bin()
    require(bindir, "PostgreSQL is not installed (no initdb/pg_ctl); run .ci/install-scaleout.sh")
    driver = postgres_driver()
    require(driver, "no PostgreSQL driver for MLflow: pip install 'psycopg[binary]'")
    as_user = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        require(owner, "running as root and there is no `postgres` user to run PostgreSQL as")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="runner-pg-"))
    password = secrets.token_hex(16)
    (root / "password").write_text(password + "\n")
    if as_user:
        for path in (root, root / "password"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    data, log = root / "data", root / "postgres.log"
    pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60"]

    def start(port):
        """The port once PostgreSQL listens on it; None if it could not (the port taken)."""
        # TCP on 127.0.0.1 only, no Unix socket: nothing outside this test can reach it.
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories=''"
        started = subprocess.run(
            [*pg_ctl, "-l", str(log), "-o", options, "start"], capture_output=True, timeout=120
        )
        return port if started.returncode == 0 else None

    try:
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "runner", "--no-locale"]
            + ["-E", "UTF8", f"--pwfile={root / 'password'}", "--auth=scram-sha-256"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        port = on_a_free_port(start, "PostgreSQL")
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
    artifacts, log = folder / "artifacts", folder / "server.log"
    processes = []

    def start(port):
        """The server's URI once it answers; None if it exited first (the port taken)."""
        with log.open("a") as output:
            process = start_process(
                [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
                + ["--port", str(port), "--backend-store-uri", postgres]
                + ["--artifacts-destination", str(artifacts), "--workers", "1"],
                stdout=output,
                stderr=subprocess.STDOUT,
                kill_at_test_end=False,  # it serves every test of the module
            )
        processes.append(process)
        uri = f"http://127.0.0.1:{port}"
        # The first start migrates the empty database: slower than SQLite's.
        ready = answers_http(f"{uri}/health")
        return uri if wait_until_ready(ready, process, "mlflow server", 120, log) else None

    try:
        yield on_a_free_port(start, "mlflow server on PostgreSQL")
    finally:
        for process in processes:
            stop_group(process)


def sweep_runs(uri, experiment):
    """(parent, children) of the one sweep in the experiment."""
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("runner.sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1, "runs outside the sweep (parentless children?)"
    return client, parent, children


def assert_sweep_complete(uri, experiment, launcher, param, values, epochs):
    """One FINISHED parent whose children are FINISHED, one per value, each with every epoch."""
    client, parent, children = sweep_runs(uri, experiment)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sweep.launcher"] == launcher
    reasons = [c.data.tags.get("failure_reason") for c in children]
    assert [c.info.status for c in children] == ["FINISHED"] * len(values), reasons
    assert sorted(c.data.params[param] for c in children) == sorted(map(str, values))
    for child in children:
        for key in ("train_loss", "val_loss", "val_accuracy"):
            history = client.get_metric_history(child.info.run_id, key)
            assert sorted(m.step for m in history) == list(range(1, epochs + 1)), key
        assert "test_accuracy" in child.data.metrics
    assert parent.data.tags["best_child_run_id"] in {c.info.run_id for c in children}
    assert "results.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def run_sweep(tmp_path, team_server, launcher, experiment, *overrides, env=None):
    """Run the four-job sweep with hydra/launcher=<launcher> into the team server."""
    result = run_cli(
        "-m",
        f"hydra/launcher={launcher}",
        *overrides,
        *SWEEP,
        f"experiment={experiment}",
        # In the config, which travels with each job: remote workers see neither this
        # shell's MLFLOW_TRACKING_URI nor its working directory.
        f"tracking.uri={team_server}",
        cwd=tmp_path,
        timeout=SWEEP_TIMEOUT,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert_sweep_complete(team_server, experiment, launcher, "seed", SEEDS, EPOCHS)


@pytest.mark.heavy  # a PostgreSQL server and a tracking server: over a minute
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
    assert_sweep_complete(team_server, "team", "basic", "batch", (16, 32), 2)


@pytest.fixture(scope="module")
def ray_launcher():
    """Module-scoped so it is checked before the team server starts: no PostgreSQL for a skip."""
    require(
        installed("ray") and installed("hydra_plugins.hydra_ray_launcher"),
        "Ray or Hydra's Ray launcher is not installed: pip install -e '.[ray,test]' in a "
        "virtualenv of its own (docs/scale-out.md)",
    )


@pytest.fixture
def ray_head(ray_launcher):
    """A Ray head on this machine with token auth, stopped after the test; yields its env.

    Started with --block in its own session so that teardown stops this head and nothing
    else (`ray stop` would stop every Ray node on the machine). Ray cannot be bound to one
    interface: --node-ip-address only sets the address it advertises, and its GCS listens on
    all of them, so the head demands a random token (Ray's default since 2.5x).
    """
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    # Short: Ray puts Unix sockets under it, and their paths must stay under 108 bytes.
    temp_dir = tempfile.mkdtemp(prefix="ray-")
    log = Path(temp_dir) / "head.log"
    env = {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    heads = []

    def start(port):
        """The head's address once its port accepts; None if it exited first (port taken)."""
        with log.open("a") as output:
            head = start_process(
                [ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1"]
                + [f"--port={port}", "--num-cpus=2", "--include-dashboard=false"]
                + ["--disable-usage-stats", f"--temp-dir={temp_dir}"],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
            )
        heads.append(head)
        ready = functools.partial(accepts, port)
        return f"127.0.0.1:{port}" if wait_until_ready(ready, head, "ray head", 120, log) else None

    try:
        yield {"address": on_a_free_port(start, "ray head"), "env": env}
    finally:
        for head in heads:  # SIGTERM keeps it waiting 20 s for the SIGKILL
            stop_group(head, signal.SIGINT)
        shutil.rmtree(temp_dir, ignore_errors=True)


def accepts(port):
    """True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.ray
@pytest.mark.timeout(SWEEP_TIMEOUT + 60)
def test_sweep_on_a_private_ray_into_the_team_server(tmp_path, ray_launcher, team_server):
    # Hydra's local mode: the launcher's ray.init() starts Ray inside the command and stops
    # it at the end.
    run_sweep(tmp_path, team_server, "ray", "team-ray-local", env={"RAY_USAGE_STATS_ENABLED": "0"})


@pytest.mark.ray
@pytest.mark.timeout(SWEEP_TIMEOUT + 60)
def test_sweep_on_a_ray_cluster_into_the_team_server(tmp_path, ray_head, team_server):
    run_sweep(
        tmp_path,
        team_server,
        # The preset joins a running cluster and hands jobs the sweep's parent run.
        "ray_cluster",
        "team-ray-cluster",
        f"hydra.launcher.ray.init.address={ray_head['address']}",
        env=ray_head["env"],
    )


@pytest.fixture(scope="module")
def submitit_launcher():
    require(
        installed("hydra_plugins.hydra_submitit_launcher"),
        "Hydra's submitit launcher is not installed: pip install -e '.[slurm]'",
    )


@pytest.mark.heavy
@pytest.mark.timeout(SWEEP_TIMEOUT + 60)
def test_sweep_through_submitit_locally_into_the_team_server(
    tmp_path, submitit_launcher, team_server
):
    # Each job is a separate Python process started by submitit, as on a SLURM node.
    run_sweep(tmp_path, team_server, "submitit_local", "team-submitit")


SLURM_TOOLS = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scancel")


def slurm_conf(folder, ports, munge_socket):
    """A slurm.conf for one node, this machine, every daemon bound to 127.0.0.1.

    No accounting database (sacct then fails, and submitit reads results from its folder
    instead); no cgroups (containers rarely allow them): processes are tracked by parentage.
    """
    cpus = len(os.sched_getaffinity(0))
    return "\n".join(
        [
            "ClusterName=runnerci",
            f"SlurmctldHost={socket.gethostname().split('.')[0]}(127.0.0.1)",  # short name
            f"SlurmctldPort={ports[0]}",
            f"SlurmdPort={ports[1]}",
            # Listen on the configured 127.0.0.1, not on every interface.
            "CommunicationParameters=NoInAddrAny,NoCtldInAddrAny",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={munge_socket}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={folder / 'state'}",
            f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
            f"SlurmdPidFile={folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={folder / 'slurmctld.log'}",
            f"SlurmdLogFile={folder / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "MpiDefault=none",
            "ReturnToService=2",
            f"NodeName=runnerci NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
            "PartitionName=debug Nodes=runnerci Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


@pytest.fixture
def slurm_cluster(submitit_launcher):
    """A one-node SLURM cluster (munged, slurmctld, slurmd) on 127.0.0.1; yields its env.

    Everything lives in a private folder with its own munge key and socket, so it neither
    needs nor touches a SLURM or munge set up on the machine. slurmd must be root to start
    jobs. Jobs left over are cancelled before the daemons stop.
    """
    missing = [tool for tool in SLURM_TOOLS if shutil.which(tool) is None]
    require(
        not missing,
        f"SLURM is not installed (no {', '.join(missing)}); run .ci/install-scaleout.sh",
    )
    require(os.geteuid() == 0, "a SLURM cluster's slurmd must run as root")
    # Short: the munge socket's path must stay under 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="slurm-"))
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    key, munge_socket = folder / "munge.key", folder / "munge.socket"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    conf = folder / "slurm.conf"
    env = {"SLURM_CONF": str(conf)}
    daemons = []

    def daemon(name, *command):
        with (folder / f"{name}.out").open("a") as output:
            started = start_process(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        daemons.append(started)
        return started

    def node_state():
        return subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()

    def start(port):
        """True once the node is idle; None if a daemon exited first (a port taken), after
        stopping the other one."""
        conf.write_text(slurm_conf(folder, (port, free_port()), munge_socket))
        pair = [daemon("slurmctld", "slurmctld", "-D", "-f", str(conf))]
        pair.append(daemon("slurmd", "slurmd", "-D", "-N", "runnerci", "-f", str(conf)))
        deadline = time.monotonic() + 120
        while node_state() != "idle":
            if any(d.poll() is not None for d in pair):
                for d in pair:
                    stop_group(d)
                return None
            if time.monotonic() > deadline:
                logs = [folder / f"{n}.log" for n in ("slurmctld", "slurmd")]
                tails = [p.read_text(errors="replace")[-1500:] for p in logs if p.exists()]
                pytest.fail(
                    f"SLURM did not come up (node {node_state()!r}); logs end:\n" + "\n".join(tails)
                )
            time.sleep(0.5)
        return True

    try:
        daemon(
            "munged",
            "munged",
            "--foreground",
            "--force",  # as root, and a socket folder under /tmp
            f"--key-file={key}",
            f"--socket={munge_socket}",
            f"--pid-file={folder / 'munged.pid'}",
            f"--seed-file={folder / 'munged.seed'}",
        )
        on_a_free_port(start, "SLURM")
        yield env
    finally:
        slurm = {**os.environ, **env}
        subprocess.run(
            ["scancel", "--full", f"--user={os.geteuid()}"],
            env=slurm,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline
            and subprocess.run(
                ["squeue", "-h"], env=slurm, capture_output=True, text=True, timeout=30
            ).stdout.strip()
        ):
            time.sleep(0.5)
        for started in reversed(daemons):
            stop_group(started)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.heavy
@pytest.mark.timeout(SWEEP_TIMEOUT + 60)
def test_sweep_on_a_slurm_cluster_into_the_team_server(tmp_path, slurm_cluster, team_server):
    # The preset runs the sweep as one job array on the cluster's default partition.
    run_sweep(tmp_path, team_server, "slurm_cluster", "team-slurm", env=slurm_cluster)
