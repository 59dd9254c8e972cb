"""What a benchmark must report besides its timings (the machine, its BLAS, and the BLAS peak),
and how the runner benchmarks start ``python -m runner`` and read its training time.

A samples/s figure means little without the CPU, thread count and BLAS library behind it, and
a training GFLOP/s figure means little without the peak that same BLAS reaches on one large
matmul. These helpers read that from the running process, so the numbers describe what was
actually loaded rather than what was meant to be installed.
"""

import argparse
import importlib.metadata
import os
import platform
import re
import sys
import time

import numpy as np

# Set on some machines to work around OpenBLAS core detection; either can slow NumPy down.
OPENBLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def cpu_model():
    """The CPU's marketing name from /proc/cpuinfo, or platform.processor() elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_info():
    """NumPy's BLAS as loaded: library, version, threads, kernel architecture.

    threadpoolctl reports the library actually in the process and its live thread count;
    without it, fall back to NumPy's build record and assume one thread per CPU.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {
            "library": blas.get("name", "unknown"),
            "version": blas.get("version", "unknown"),
            "threads": os.cpu_count() or 1,
            "architecture": "unknown",
            "source": "numpy.show_config (threads assumed = os.cpu_count())",
        }
    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    if not pools:
        return {
            "library": "unknown",
            "version": "unknown",
            "threads": os.cpu_count() or 1,
            "architecture": "unknown",
            "source": "threadpoolctl found no BLAS (threads assumed = os.cpu_count())",
        }
    # SciPy (imported by scikit-learn) bundles an OpenBLAS of its own: prefer NumPy's.
    numpy_dir = os.path.dirname(np.__file__)
    pool = min(pools, key=lambda pool: not pool["filepath"].startswith(numpy_dir))
    return {
        "library": pool["internal_api"],
        "version": pool.get("version") or "unknown",
        "threads": pool["num_threads"],
        "architecture": pool.get("architecture") or "unknown",
        "filepath": pool["filepath"],
        "source": "threadpoolctl",
    }


def openblas_env():
    """The OpenBLAS tuning variables that are set, with their values (unset ones omitted)."""
    return {name: os.environ[name] for name in OPENBLAS_ENV_VARS if name in os.environ}


def blas_peak_gflops(n=2048, repeats=8, dtype=np.float32):
    """GFLOP/s of the fastest of ``repeats`` n×n @ n×n matmuls (2n³ flops each).

    The best, not the mean, because the first calls pay for thread start-up and page faults
    and later ones can be slowed by other processes; the best is what the BLAS can reach.
    """
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n)).astype(dtype)
    B = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(A, B, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def load_average():
    """The 1-minute load average: how many processes were competing for the CPUs.

    Anything near 1 on a small machine means the timings compete with another job: a BLAS
    thread that loses its core stalls every matmul it takes part in, so numbers can drop
    tenfold. None where the OS does not report it.
    """
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def machine_info(versions, blas):
    """A JSON-ready description of this machine.

    ``versions`` maps package name to version; ``blas`` is ``blas_info()`` taken before other
    libraries loaded BLASes of their own.
    """
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "blas": blas,
        "openblas_env": openblas_env(),
        "load_average_1min": load_average(),
    }


def package_versions(names):
    """Versions read from package metadata (None if not installed), so this process never
    imports MLflow or Hydra just to name them."""
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def argument_parser(description):
    """A benchmark's command line: its description and ``--json PATH`` for the results."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    return parser


# What the runner prints after its epochs: the wall time of the epochs alone.
TRAINED = re.compile(r"trained (\d+) epochs in ([0-9.]+) s")


def runner_env():
    """The environment for a benchmarked ``python -m runner``: unbuffered output, the default
    store in its working directory, and Hydra's short error messages."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def runner_command(*overrides):
    return [sys.executable, "-m", "runner", *overrides]


def verdict(value, limit):
    """PASS when ``value`` is at most ``limit``: every target here is an upper bound."""
    return "PASS" if value <= limit else "MISS"
