"""What tracking costs a sweep, and what a sweep job costs beyond its training.

Measured back to back in one run, in one temporary folder whose MLflow store is migrated
first, so no sweep pays the migration:

- the 16-job default sweep ``python -m runner -m seed=0,...,15`` with the basic launcher,
  tracked (tracking and model logging on, as a person runs it) and untracked
  (``tracking.enabled=false``). Targets: tracked ≤ 2× untracked; tracked ≤ 15 s (the aim).
- the same with ``hydra/launcher=joblib``. Target: tracked ≤ 2× untracked.
- the 30-trial Optuna preset, tracked (``hydra/sweeper=optuna_search
  hydra.sweeper.n_trials=30``). Recorded; 60 s is the aim.
- a job's overhead beyond its training in the untracked basic sweep, ``(wall − training −
  one Hydra start) / jobs``. Target ≤ 0.2 s. Here
    * training is the sum over the jobs of the runner's own ``trained N epochs in X s`` (the
      epochs alone), read from each job's ``runner.log`` in the sweep's folder;
    * one Hydra start is the median wall time of ``python -m runner --cfg job
      tracking.enabled=false``: starting Python, the runner's imports and composing the config
      once, which a sweep pays once whatever its number of jobs.
  What remains is paid per job: Hydra composing and launching it, its folder and log file,
  loading the data, building, evaluating and saving the net, and its summary lines.

Each repeat runs the tracked and untracked sweeps of both launchers in turn, so a slow spell
on the machine hits all of them; the best of the repeats is reported (on a shared machine the
best is the closest to the cost itself). Every sweep is checked: exit code 0, a ``trained``
line in every job's log, and, when tracked, every child run FINISHED in the store (a run is
FINISHED only once all of it is stored, so the time includes all the logging).

    python -m bench.sweep [--quick] [--repeats N] [--jobs N] [--json PATH]
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    TRAINED,
    argument_parser,
    blas_info,
    load_average,
    machine_info,
    package_versions,
    runner_command,
    runner_env,
    verdict,
)

MAX_TRACKED_RATIO = 2.0  # tracked sweep ÷ the same sweep untracked, per launcher
AIM_TRACKED_BASIC_S = 15.0  # the 16-job basic sweep, tracked
AIM_OPTUNA_S = 60.0  # the 30-trial Optuna preset, tracked
MAX_JOB_OVERHEAD_S = 0.2  # per job of an untracked sweep, beyond its training
LAUNCHERS = {"basic": (), "joblib": ("hydra/launcher=joblib",)}
OPTUNA = ("hydra/sweeper=optuna_search",)
UNTRACKED = ("tracking.enabled=false",)
HYDRA_STARTS = 3  # runs of `--cfg job`; the median is one Hydra start
SWEEP_PACKAGES = ("numpy", "hydra-core", "hydra-joblib-launcher", "hydra-optuna-sweeper", "mlflow")


def migrate_store(workdir):
    """Create outputs/mlflow.db once, so no timed sweep pays for the schema migration."""
    import logging

    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not the migration's INFO lines
    store = workdir / "outputs" / "mlflow.db"
    store.parent.mkdir(parents=True)
    MlflowClient(f"sqlite:///{store}").search_experiments()
    return store


def time_sweep(workdir, name, overrides, jobs=None):
    """Run one sweep into its own folder; return its wall time and its jobs' training times.

    jobs : the number of jobs that must each log a ``trained`` line (None: not checked, for
        searches whose trials may diverge).
    """
    sweep_dir = workdir / "sweeps" / name
    command = runner_command(
        "-m", *overrides, f"experiment=bench-{name}", f"hydra.sweep.dir={sweep_dir}"
    )
    started = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=runner_env())
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"sweep {name} exited with {result.returncode}:\n{result.stderr[-3000:]}")
    training = [
        float(match.group(2))
        for log in sorted(sweep_dir.glob("*/runner.log"))
        if (match := TRAINED.search(log.read_text()))
    ]
    if jobs is not None and len(training) != jobs:
        sys.exit(f"sweep {name}: {len(training)} of {jobs} jobs logged a 'trained' line")
    return {"seconds": seconds, "training": training}


def check_children(store, name, jobs, all_finished=True):
    """Every job of the tracked sweep ``name`` is a child run, none RUNNING (all FINISHED)."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name(f"bench-{name}")
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    statuses = sorted(run.info.status for run in children)
    wanted = {"FINISHED"} if all_finished else {"FINISHED", "FAILED"}
    if len(children) != jobs or not set(statuses) <= wanted:
        sys.exit(f"sweep {name}: {len(children)} child runs of {jobs}, statuses {statuses}")


def hydra_start_seconds(workdir):
    """Median wall time of ``python -m runner --cfg job``: one Python start and composition."""
    times = []
    for _ in range(HYDRA_STARTS):
        started = time.perf_counter()
        subprocess.run(
            runner_command("--cfg", "job", *UNTRACKED),
            cwd=workdir,
            capture_output=True,
            check=True,
            env=runner_env(),
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def seed_overrides(jobs):
    return (f"seed={','.join(str(seed) for seed in range(jobs))}",)


def main(argv=None):
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="sweeps of each kind (2)")
    parser.add_argument("--jobs", type=int, default=16, help="jobs per seed sweep (16)")
    parser.add_argument("--trials", type=int, default=30, help="Optuna trials (30)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 4 jobs, 4 trials, 1 repeat"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.trials, args.repeats = 4, 4, 1
    machine = machine_info(package_versions(SWEEP_PACKAGES), blas_info())
    print(f"CPU: {machine['cpu_model']}, {machine['cpu_count']} cores; {machine['platform']}")
    load = machine["load_average_1min"]
    if load is not None and load > 0.5:
        print(f"warning: load average {load:.2f} at start; other work will skew the timings")

    seeds = seed_overrides(args.jobs)
    sweeps = {
        f"{launcher}-{kind}": (*seeds, *extra, *(UNTRACKED if kind == "untracked" else ()))
        for launcher, extra in LAUNCHERS.items()
        for kind in ("tracked", "untracked")
    }
    runs = {name: [] for name in sweeps}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        workdir = Path(tmp)
        store = migrate_store(workdir)
        hydra_start = hydra_start_seconds(workdir)
        print(f"one Hydra start (python -m runner --cfg job): {hydra_start:.2f} s")
        for repeat in range(args.repeats):
            for name, overrides in sweeps.items():
                run = time_sweep(workdir, f"{name}-{repeat}", overrides, args.jobs)
                if name.endswith("-tracked"):
                    check_children(store, f"{name}-{repeat}", args.jobs)
                runs[name].append(run)
                print(f"  {name:17} sweep {repeat + 1}: {run['seconds']:6.1f} s")
        optuna = time_sweep(workdir, "optuna", (*OPTUNA, f"hydra.sweeper.n_trials={args.trials}"))
        check_children(store, "optuna", args.trials, all_finished=False)
        print(f"  {'optuna-tracked':17} {args.trials} trials: {optuna['seconds']:6.1f} s")

    best = {name: min(runs[name], key=lambda run: run["seconds"]) for name in sweeps}
    print(f"\n{args.jobs}-job default sweep, best of {args.repeats}:")
    print(f"  {'launcher':8} {'untracked':>10} {'tracked':>10} {'ratio':>7}")
    targets = []
    for launcher in LAUNCHERS:
        tracked = best[f"{launcher}-tracked"]["seconds"]
        untracked = best[f"{launcher}-untracked"]["seconds"]
        ratio = tracked / untracked
        print(f"  {launcher:8} {untracked:>8.1f} s {tracked:>8.1f} s {ratio:>6.2f}×")
        targets.append(
            (f"{launcher}: tracked ÷ untracked sweep ≤ {MAX_TRACKED_RATIO:g}×", ratio,
             MAX_TRACKED_RATIO, f"{ratio:.2f}×")
        )  # fmt: skip
        if launcher == "basic":
            targets.append(
                (f"basic: tracked sweep ≤ {AIM_TRACKED_BASIC_S:g} s (aim)", tracked,
                 AIM_TRACKED_BASIC_S, f"{tracked:.1f} s")
            )  # fmt: skip
    speedup = best["basic-tracked"]["seconds"] / best["joblib-tracked"]["seconds"]
    print(f"  tracked, joblib is {speedup:.2f}× faster than basic (information)")
    targets.append(
        (f"optuna {args.trials} trials ≤ {AIM_OPTUNA_S:g} s (aim)", optuna["seconds"],
         AIM_OPTUNA_S, f"{optuna['seconds']:.1f} s")
    )  # fmt: skip

    untracked = best["basic-untracked"]
    training = sum(untracked["training"])
    overhead = (untracked["seconds"] - training - hydra_start) / args.jobs
    print(
        f"\nuntracked basic sweep: {untracked['seconds']:.2f} s wall, {training:.2f} s training "
        f"in all, one Hydra start {hydra_start:.2f} s → {overhead:.3f} s per job beyond training"
    )
    targets.append(
        (f"untracked job overhead ≤ {MAX_JOB_OVERHEAD_S:g} s", overhead, MAX_JOB_OVERHEAD_S,
         f"{overhead:.3f} s")
    )  # fmt: skip

    print("\ntargets (a measurement: the exit code is 0 either way):")
    verdicts = []
    for label, value, limit, shown in targets:
        status = verdict(value, limit)
        verdicts.append({"target": label, "value": value, "limit": limit, "status": status})
        print(f"  {label:45} {shown:>9}  {status}")
    if args.json:
        report = {
            "jobs": args.jobs,
            "trials": args.trials,
            "repeats": args.repeats,
            "sweeps": runs,
            "optuna": optuna,
            "hydra_start_seconds": hydra_start,
            "job_overhead_seconds": overhead,
            "targets": verdicts,
            "machine": machine,
            "load_average_1min_after": load_average(),
        }
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
