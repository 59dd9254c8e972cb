"""What MLflow tracking costs a run: training time, time to the first epoch, and wall time.

Each case runs ``python -m runner`` as a subprocess twice per round, untracked
(``tracking.enabled=false``) and tracked, in rounds that interleave the two so a slow spell on
the machine hits both alike. Training time is what the runner itself prints
(``trained N epochs in X s``: the epochs alone), so process start-up and the wait for the
tracking worker at the end do not blur the training ratio; those are reported separately, as
time to the first epoch line and as wall time. Targets (medians):

- the default run ``python -m runner``: wall time tracked ≤ 2× untracked, and the tracked run
  reaches its first epoch in < 3 s;
- tracked training time ≤ 1.05× untracked, for short runs (default-1000, digits-steps) and for
  a digits run of ≥ 60 s, logged live like every run. Its epochs are calibrated at the
  start, from an untracked run, so that its training lasts about 75 s on this machine (the
  margin absorbs the load changing between the calibration and the runs).

    python -m bench.tracking [--quick] [--repeats N] [--long-repeats N] [--json PATH]

All runs share one temporary working directory, so their ``outputs/`` and MLflow store land
there; the store is created by an untimed tracked run first, because migrating a fresh
SQLite store costs seconds that no later run pays.
"""

import dataclasses
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

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

REPEATS = 5  # interleaved untracked/tracked pairs per short case; medians and bests reported
LONG_REPEATS = 2  # pairs of the long digits case
MAX_TRAIN_RATIO = 1.05  # tracked ÷ untracked training time
MAX_WALL_RATIO = 2.0  # tracked ÷ untracked wall time of the default run
MAX_FIRST_EPOCH_S = 3.0  # start of the tracked default run → its first epoch line
LONG_TRAIN_S = 60.0  # the long case trains at least this long
CALIBRATION_MARGIN = 1.25  # its epochs aim this much above LONG_TRAIN_S
BUSY_LOAD = 1.0  # on 2 cores, a load of 1 means another job holds one of them
UNTRACKED = ("tracking.enabled=false",)
FINISHING = "logging the run to MLflow..."  # printed just before the wait for the worker
DIGITS = ("model=mlp_64_128_64_10", "dataset=digits", "batch=32")


@dataclass(frozen=True)
class Case:
    """One experiment, run untracked and tracked with the same overrides."""

    name: str
    overrides: tuple  # Hydra overrides for both runs
    about: str  # one line on why the case is here
    targets: tuple = ("train",)  # which of "train", "wall", "first_epoch" are targets here
    long: bool = False  # the ≥ LONG_TRAIN_S case: epochs calibrated, LONG_REPEATS pairs


CASES = (
    Case(
        "default",
        (),
        "the default experiment as users run it; ~0.05 s of training, so its training ratio "
        "is timer noise (information only)",
        targets=("wall", "first_epoch"),
    ),
    Case(
        "default-1000",
        ("epochs=1000",),
        "the default experiment trained 10× longer, so the short-run ratio rests on ≥0.5 s",
    ),
    Case(
        "digits-steps",
        (*DIGITS, "epochs=100", "tracking.log_every_n_steps=1"),
        "digits logging every step: 34 steps/epoch, ~3400 values",
    ),
    Case(
        "digits-long",
        DIGITS,
        "digits trained ≥ 60 s and logged live (epochs calibrated on this machine)",
        long=True,
    ),
)


def run_once(overrides, workdir):
    """Run ``python -m runner`` once; return its timings in seconds.

    first_epoch is from just before the process starts to reading its first ``epoch`` line;
    finish_wait from reading FINISHING (tracked runs only) to the process's exit; cpu is user
    + system time of the runner and, since it waits for it, its tracking worker.
    """
    cmd = runner_command(*overrides)
    with tempfile.TemporaryFile("w+") as stderr:
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=runner_env(), stdout=subprocess.PIPE, stderr=stderr, text=True
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
    if proc.returncode != 0 or match is None:
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


def calibrate_epochs(workdir, seconds, probe_epochs=100):
    """Epochs of the long digits case that train about ``seconds`` (+25 %), untracked."""
    probe = run_once([*DIGITS, f"epochs={probe_epochs}", *UNTRACKED], workdir)
    return math.ceil(probe_epochs * CALIBRATION_MARGIN * seconds / probe["train"])


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
    result["wall_ratio"] = t["wall"]["median"] / u["wall"]["median"]
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
        first = fmt(r["first_epoch"], 2) if "first_epoch" in r else f"{'-':>15}"
        print(
            f"  {kind:<10} {fmt(r['train'], 3)} {first} {fmt(r['wall'], 2)} "
            f"{r['cpu']['median']:>7.2f} {wait}"
        )
    print(
        f"  tracked ÷ untracked training time: {result['train_ratio']:.3f}× (medians), "
        f"{result['train_ratio_best']:.3f}× (bests); wall time {result['wall_ratio']:.2f}×: "
        f"tracking adds {result['extra_wall']:.2f} s of it and {result['extra_cpu']:.2f} s of CPU"
    )


def fmt(stat, digits):
    """'median (best)' in a 15-character column."""
    return f"{stat['median']:>7.{digits}f} ({stat['best']:.{digits}f})".rjust(15)


def evaluate_targets(results):
    """PASS/MISS for each case's targets; the other training ratios for information."""
    verdicts = []
    for case, result in zip(CASES, results, strict=True):
        checks = []
        if "train" in case.targets:
            ratio = result["train_ratio"]
            label = f"train time tracked ÷ untracked ≤ {MAX_TRAIN_RATIO}"
            checks.append((label, ratio, MAX_TRAIN_RATIO, f"{ratio:.3f}×"))
        else:
            label = "train time tracked ÷ untracked (information)"
            print(f"  {case.name:<13} {label:<45} {result['train_ratio']:>8.3f}×")
        if "wall" in case.targets:
            ratio = result["wall_ratio"]
            label = f"wall time tracked ÷ untracked ≤ {MAX_WALL_RATIO:g}"
            checks.append((label, ratio, MAX_WALL_RATIO, f"{ratio:.2f}×"))
        if "first_epoch" in case.targets:
            # inf when the run printed no epoch line: the target cannot be read, so it misses
            first = result["tracked"].get("first_epoch", {"median": math.inf})["median"]
            label = f"tracked first epoch < {MAX_FIRST_EPOCH_S:g} s"
            checks.append((label, first, MAX_FIRST_EPOCH_S, f"{first:.2f} s"))
        if case.long:
            trained = result["untracked"]["train"]["median"]
            label = f"untracked training ≥ {LONG_TRAIN_S:g} s (the case's premise)"
            held = "yes" if trained >= LONG_TRAIN_S else "NO"
            print(f"  {case.name:<13} {label:<45} {trained:>7.1f} s  {held}")
        for label, value, limit, shown in checks:
            status = verdict(value, limit)
            verdicts.append(
                {"case": case.name, "target": label, "value": value, "limit": limit,
                 "status": status}
            )  # fmt: skip
            print(f"  {case.name:<13} {label:<45} {shown:>9}  {status}")
    return verdicts


def parse_args(argv):
    parser = argument_parser(
        "Training time, time to first epoch and wall time of `python -m runner`, untracked vs "
        "tracked in MLflow: short runs, per-step logging and a ≥ 60 s run logged live."
    )
    parser.add_argument(
        "--long-repeats",
        type=int,
        default=LONG_REPEATS,
        help=f"pairs of the ≥ {LONG_TRAIN_S:g} s digits case (default {LONG_REPEATS})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 pair per case, the long case trains ~3 s; the numbers mean nothing",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help=f"untracked/tracked pairs per case (default {REPEATS}); medians and bests reported",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.long_repeats = 1, 1
    if min(args.repeats, args.long_repeats) < 1:
        parser.error("--repeats and --long-repeats must be at least 1")
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
        f"timing: {args.repeats} untracked/tracked pairs per case ({args.long_repeats} for the "
        "long one), interleaved; "
        "median (best) shown, ratios from medians"
    )

    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as workdir:
        started = time.perf_counter()
        run_once([], workdir)  # creates and migrates outputs/mlflow.db and the experiment
        run_once(UNTRACKED, workdir)  # warms the page cache for the untracked imports too
        print(f"store created and imports warmed in {time.perf_counter() - started:.1f} s")
        long_s = 3.0 if args.quick else LONG_TRAIN_S
        epochs = calibrate_epochs(workdir, long_s)
        aim = long_s * CALIBRATION_MARGIN
        print(f"long digits case: {epochs} epochs to train about {aim:.0f} s")
        results = [
            bench_case(
                dataclasses.replace(case, overrides=(*case.overrides, f"epochs={epochs}")),
                workdir,
                args.long_repeats,
            )
            if case.long
            else bench_case(case, workdir, args.repeats)
            for case in CASES
        ]

    print("\ntargets (a measurement: the exit code is 0 either way):")
    verdicts = evaluate_targets(results)
    if args.json:
        report = {
            "cases": results,
            "targets": verdicts,
            "repeats": args.repeats,
            "long_repeats": args.long_repeats,
            "quick": args.quick,
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
