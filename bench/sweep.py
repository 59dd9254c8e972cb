"""Wall time of a 16-job sweep of the default experiment: basic launcher against joblib.

Both sweeps are what a person runs, tracking and model logging included:
``python -m runner -m seed=0,...,15`` one job after another, and the same with
``hydra/launcher=joblib``, which runs a job per core with one BLAS thread each. The target
is joblib ≥ 1.6× faster on 2 cores: worker start-up, per-job imports and each job's MLflow
worker all count, which is why a bare Hydra + joblib sweep of 0.5 s sleeps reached only 1.39×.

    python -m bench.sweep [--json PATH] [--repeats N] [--jobs N]
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import argument_parser, blas_info, machine_info, package_versions

TARGET = 1.6
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib"]}
SWEEP_PACKAGES = ("numpy", "hydra-core", "hydra-joblib-launcher", "mlflow")  # recorded with results


def migrated_store(workdir):
    """Create outputs/mlflow.db once, so neither launcher pays for the schema migration."""
    from mlflow import MlflowClient

    store = workdir / "outputs" / "mlflow.db"
    store.parent.mkdir(parents=True)
    MlflowClient(f"sqlite:///{store}").search_experiments()


def time_sweep(workdir, launcher, jobs, tag):
    seeds = ",".join(str(seed) for seed in range(jobs))
    command = [
        sys.executable,
        "-m",
        "runner",
        "-m",
        f"seed={seeds}",
        f"experiment=bench-{tag}",
        *LAUNCHERS[launcher],
    ]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if (
        result.returncode != 0
        or f"{jobs} jobs, {jobs} finished" not in result.stdout + result.stderr
    ):
        sys.exit(f"sweep with the {launcher} launcher failed:\n{result.stderr[-3000:]}")
    return seconds


def main():
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="sweeps per launcher (2)")
    parser.add_argument("--jobs", type=int, default=16, help="jobs per sweep (16)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} at start; other work will skew the timings")
    times = {launcher: [] for launcher in LAUNCHERS}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        migrated_store(workdir)
        for repeat in range(args.repeats):  # interleaved, so a slow spell hits both
            for launcher in LAUNCHERS:
                seconds = time_sweep(workdir, launcher, args.jobs, f"{launcher}-{repeat}")
                times[launcher].append(seconds)
                print(f"  {launcher:6}  sweep {repeat + 1}: {seconds:6.1f} s")
    best = {launcher: min(values) for launcher, values in times.items()}
    ratio = best["basic"] / best["joblib"]
    status = "PASS" if ratio >= TARGET else "MISS"
    print(f"{args.jobs} jobs of the default experiment, best of {args.repeats}:")
    for launcher, seconds in best.items():
        print(f"  {launcher:6}  {seconds:6.1f} s  {seconds / args.jobs:5.2f} s/job")
    print(f"joblib is {ratio:.2f}× faster than basic (target ≥ {TARGET}×)  {status}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "jobs": args.jobs,
                    "seconds": times,
                    "best_seconds": best,
                    "speedup": ratio,
                    "target": TARGET,
                    "status": status,
                    "machine": machine_info(package_versions(SWEEP_PACKAGES), blas_info()),
                    "load_average_1min": load,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
