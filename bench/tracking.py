"""What MLflow tracking costs a run: training time, time to the first epoch, and wall time.

Each case runs ``python -m runner`` as a subprocess twice per round, untracked
(``tracking.enabled=false``) and tracked, in rounds that interleave the two so a slow spell on
the machine hits both alike. Training time is what the runner itself prints
(``trained N epochs in X s``: the epochs alone), so process start-up and the wait for the
tracking worker at the end do not blur the ratio the target is about; those are reported
separately, as time to the first epoch line and as wall time.

    python -m bench.tracking [--json PATH] [--repeats N]

All runs share one temporary working directory, so their ``outputs/`` and MLflow store land
there; the store is created by an untimed tracked run first, because migrating a fresh
SQLite store costs seconds that no later run pays.
"""

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from bench.common import (
    argument_parser,
    blas_info,
    load_average,
    machine_info,
    package_versions,
)

REPEATS = 5  # interleaved untracked/tracked pairs per case; medians and bests are reported
MAX_TRAIN_RATIO = 1.1  # target: tracked ÷ untracked training time, from the medians
MAX_FIRST_EPOCH_S = 3.0  # target: start of the tracked default run → its first epoch line
BUSY_LOAD = 1.0  # on 2 cores, a load of 1 means another job holds one of them
UNTRACKED = ("tracking.enabled=false",)
TRAINED = re.compile(r"trained (\d+) epochs in ([0-9.]+) s")
FINISHING = "logging the run to MLflow..."  # printed just before the wait for the worker


@dataclass(frozen=True)
class Case:
    """One experiment, run untracked and tracked with the same overrides."""

    name: str
    overrides: tuple  # Hydra overrides for both runs
    about: str  # one line on why the case is here
    first_epoch_target: bool = False  # whether the < MAX_FIRST_EPOCH_S target applies
    ratio_target: bool = True  # False: the ratio is reported for information only


CASES = (
    Case(
        "default",
        (),
        "the default experiment as users run it; ~0.05 s of training, so timer noise shows",
        first_epoch_target=True,
    ),
    Case(
        "default-1000",
        ("epochs=1000",),
        "the default experiment trained 10× longer, so the ratio rests on ≥0.5 s",
    ),
    Case(
        "iris-steps",
        ("tracking.log_every_n_steps=1",),
        "the default experiment logging every step: 3 steps/epoch, 300 values",
    ),
    Case(
        "digits-steps",
        (
            "model=mlp_64_128_64_10",
            "dataset=digits",
            "epochs=100",
            "batch=32",
            "tracking.log_every_n_steps=1",
        ),
        "digits logging every step: 34 steps/epoch, ~3400 values",
    ),
    Case(
        "digits-live",
        (
            "model=mlp_64_128_64_10",
            "dataset=digits",
            "epochs=100",
            "batch=32",
            "tracking.log_every_n_steps=1",
            "tracking.live_after_s=0",
        ),
        "as digits-steps, but the worker starts with training (live logging from epoch 1): "
        "what tracking.live_after_s spares a short run",
        ratio_target=False,
    ),
)


def child_env():
    """The environment for each runner: unbuffered, and the default store in the cwd.

    PYTHONUNBUFFERED makes every log line reach the pipe when it is written, so the time
    the first epoch line is read is the time it was printed.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def run_once(overrides, workdir):
    """Run ``python -m runner`` once; return its timings in seconds.

    first_epoch is from just before the process starts to reading its first ``epoch`` line;
    finish_wait from reading FINISHING (tracked runs only) to the process's exit; cpu is user
    + system time of the runner and, since it waits for it, its tracking worker.
    """
    cmd = [sys.executable, "-m", "runner", *overrides]
    with tempfile.TemporaryFile("w+") as stderr:
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=child_env(), stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        first_epoch = finishing = None
        lines = []
        for line in proc.stdout:
            now = time.perf_counter()
            lines.append(line)
            if first_epoch is None and line.startswith("epoch"):
                first_epoch = now - started
            elif line.startswith(FINISHING):
                finishing = now
        proc.wait()
        ended = time.perf_counter()
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        stderr.seek(0)
        errors = stderr.read()
    output = "".join(lines)
    match = TRAINED.search(output)
    if proc.returncode != 0 or match is None or first_epoch is None:
        raise RuntimeError(
            f"{' '.join(cmd)} exited with {proc.returncode} without the expected lines:\n"
            f"{output[-2000:]}{errors[-2000:]}"
        )
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "train": float(match.group(2)),
        "first_epoch": first_epoch,
        "wall": ended - started,
        "finish_wait": None if finishing is None else ended - finishing,
        "cpu": cpu,
    }


def summarize(samples):
    """{metric: {"median", "best", "all"}} over a list of run_once results."""
    summary = {}
    for key in samples[0]:
        values = [s[key] for s in samples if s[key] is not None]
        if values:
            summary[key] = {
                "median": statistics.median(values),
                "best": min(values),
                "all": values,
            }
    return summary


def bench_case(case, workdir, repeats):
    """Interleave ``repeats`` untracked/tracked pairs of one case; return its result dict."""
    samples = {"untracked": [], "tracked": []}
    for _ in range(repeats):
        samples["untracked"].append(run_once([*case.overrides, *UNTRACKED], workdir))
        samples["tracked"].append(run_once(list(case.overrides), workdir))
    result = {
        "case": case.name,
        "overrides": list(case.overrides),
        "about": case.about,
        "untracked": summarize(samples["untracked"]),
        "tracked": summarize(samples["tracked"]),
    }
    u, t = result["untracked"], result["tracked"]
    result["train_ratio"] = t["train"]["median"] / u["train"]["median"]
    result["train_ratio_best"] = t["train"]["best"] / u["train"]["best"]
    result["extra_wall"] = t["wall"]["median"] - u["wall"]["median"]
    result["extra_cpu"] = t["cpu"]["median"] - u["cpu"]["median"]
    print_case(case, result)
    return result


def print_case(case, result):
    print(f"\n{case.name}: python -m runner {' '.join(case.overrides)}\n  ({case.about})")
    print(
        f"  {'run':<10} {'train s':>15} {'first epoch s':>15} {'wall s':>15} {'cpu s':>7} "
        f"{'end wait s':>10}"
    )
    for kind in ("untracked", "tracked"):
        r = result[kind]
        wait = f"{r['finish_wait']['median']:>10.2f}" if "finish_wait" in r else f"{'-':>10}"
        print(
            f"  {kind:<10} {fmt(r['train'], 3)} {fmt(r['first_epoch'], 2)} {fmt(r['wall'], 2)} "
            f"{r['cpu']['median']:>7.2f} {wait}"
        )
    print(
        f"  tracked ÷ untracked training time: {result['train_ratio']:.3f}× (medians), "
        f"{result['train_ratio_best']:.3f}× (bests); tracking adds "
        f"{result['extra_wall']:.2f} s of wall time and {result['extra_cpu']:.2f} s of CPU"
    )


def fmt(stat, digits):
    """'median (best)' in a 15-character column."""
    return f"{stat['median']:>7.{digits}f} ({stat['best']:.{digits}f})".rjust(15)


def evaluate_targets(results):
    """PASS/MISS for every case's training ratio and the tracked default's first epoch."""
    verdicts = []
    for case, result in zip(CASES, results, strict=True):
        if not case.ratio_target:
            print(
                f"  {case.name:<13} {'train time tracked ÷ untracked (information)':<40} "
                f"{result['train_ratio']:>8.3f}×"
            )
        checks = [
            (f"train time tracked ÷ untracked ≤ {MAX_TRAIN_RATIO}", result["train_ratio"],
             MAX_TRAIN_RATIO, f"{result['train_ratio']:.3f}×"),
        ] if case.ratio_target else []  # fmt: skip
        if case.first_epoch_target:
            first = result["tracked"]["first_epoch"]["median"]
            checks.append(
                (f"tracked first epoch < {MAX_FIRST_EPOCH_S:g} s", first, MAX_FIRST_EPOCH_S,
                 f"{first:.2f} s")
            )  # fmt: skip
        for label, value, limit, shown in checks:
            status = "PASS" if value <= limit else "MISS"
            verdicts.append(
                {"case": case.name, "target": label, "value": value, "limit": limit,
                 "status": status}
            )  # fmt: skip
            print(f"  {case.name:<13} {label:<40} {shown:>9}  {status}")
    return verdicts


def parse_args(argv):
    parser = argument_parser(
        "Training time, time to first epoch and wall time of `python -m runner`, untracked vs "
        "tracked in MLflow, on the default experiment and with per-step logging."
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help=f"untracked/tracked pairs per case (default {REPEATS}); medians and bests reported",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    return args


def main(argv=None):
    args = parse_args(argv)
    machine = machine_info(package_versions(("numpy", "mlflow", "hydra-core")), blas_info())
    blas = machine["blas"]
    print(f"CPU: {machine['cpu_model']}, {machine['cpu_count']} cores; {machine['platform']}")
    print(f"BLAS: {blas['library']} {blas['version']}, {blas['threads']} threads")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()))
    load = machine["load_average_1min"]
    if load is not None and load > BUSY_LOAD:
        print(
            f"warning: load average {load:.2f} before starting: another job is using the CPUs "
            "and competes with the runner and its tracking worker; rerun on an idle machine"
        )
    print(
        f"timing: {args.repeats} untracked/tracked pairs per case, interleaved; "
        "median (best) shown, ratios from medians"
    )

    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as workdir:
        started = time.perf_counter()
        run_once([], workdir)  # creates and migrates outputs/mlflow.db and the experiment
        run_once(UNTRACKED, workdir)  # warms the page cache for the untracked imports too
        print(f"store created and imports warmed in {time.perf_counter() - started:.1f} s")
        results = [bench_case(case, workdir, args.repeats) for case in CASES]

    print("\ntargets (a measurement: the exit code is 0 either way):")
    verdicts = evaluate_targets(results)
    if args.json:
        report = {
            "cases": results,
            "targets": verdicts,
            "repeats": args.repeats,
            "timing": "interleaved untracked/tracked pairs; ratios from medians",
            "load_average_1min_after": load_average(),
            "machine": machine,
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
