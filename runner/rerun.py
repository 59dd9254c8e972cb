"""``python -m runner.rerun <run id> [--verify]``: train a logged run again, bit for bit.

The run is rebuilt from what the tracking store holds: its overrides (``overrides.yaml``; a sweep
child's include the sweep's values, a resumed run's are those it was started with) and its resolved
config (``config.yaml``). Any key whose value the overrides no longer give (a file in
``runner/conf/`` changed since) is pinned to the logged value on the command line. The new run is
an ordinary ``python -m runner`` in the same store and experiment, with the original's BLAS thread
count, tagged ``runner.rerun_of`` with the original's id. Its data set digests must equal the
logged ones: a changed CSV is named.

``--verify`` then compares the two: a SHA-256 over the final parameter arrays (each run's
``weights.npz``) and every metric history, step by step and exactly. Identical: exit 0.
Otherwise exit 1, naming the first epoch whose metrics differ and what differs around it.
"""

import argparse
import os
import re
import shlex
import subprocess
import sys

import yaml

from runner.errors import ConfigError, RunnerError, TrackingError
from runner.tracking import tags
from runner.tracking.runinfo import (
    array_digest,
    connect,
    flatten,
    load_run,
    same_value,
    weights_digest,
)

# Config keys the rerun sets itself: the store is passed as MLFLOW_TRACKING_URI, and a rerun
# starts from scratch even when the original was resumed.
NOT_PINNED = ("tracking.uri", "resume")
# The line `python -m runner` ends a tracked run with.
RUN_LINE = re.compile(r"MLflow run .* \(([0-9a-f]{32})\) in ")
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# Metrics logged per step of training rather than per epoch.
STEP_METRICS = ("train_step_loss",)


class Mismatch(RunnerError):
    """The rerun did not reproduce the original."""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m runner.rerun",
        description="Train a logged run again as a new run; --verify checks it is bit-identical.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="the MLflow run to reproduce")
    parser.add_argument(
        "--verify", action="store_true", help="compare weights and metric histories with it"
    )
    parser.add_argument(
        "--tracking-uri", help="tracking URI ($MLFLOW_TRACKING_URI, else outputs/mlflow.db)"
    )
    return parser.parse_args(argv)


def check_finished(original):
    """Only a finished run has final weights and whole histories to reproduce."""
    status = original.run.info.status
    if status != "FINISHED":
        hint = (
            f"resume it first: python -m runner resume={original.run_id}"
            if status in ("KILLED", "FAILED") and tags.CHECKPOINT in original.tags
            else "rerun a finished run"
        )
        raise TrackingError(f"run {original.run_id} is {status}, not FINISHED; {hint}")


def kept_overrides(original):
    """The original's overrides, without those the rerun sets itself."""
    return [o for o in original.overrides if not o.lstrip("+~").startswith(NOT_PINNED)]


def pins(original, composed):
    """``key=value`` for every logged config value the overrides no longer give.

    composed : the config the kept overrides compose to today (``python -m runner ... --cfg
    job``); it differs from the logged one when a file in ``runner/conf/`` changed since the run.
    """
    logged, today = original.flat_config, flatten(composed)
    return [
        f"{key}={override_value(value)}"
        for key, value in logged.items()
        if key not in NOT_PINNED and (key not in today or today[key] != value)
    ]


def override_value(value):
    """A logged value written in Hydra's override grammar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


def runner_command(*args):
    return [sys.executable, "-m", "runner", *args]


def compose(overrides, env):
    """The config ``python -m runner <overrides>`` would run today, without running it."""
    result = subprocess.run(
        runner_command(*overrides, "--cfg", "job", "--resolve"),
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        raise ConfigError(
            f"the logged overrides {overrides} no longer compose: "
            f"{(result.stderr.strip().splitlines() or ['(no message)'])[-1]}"
        )
    return yaml.safe_load(result.stdout) or {}


def environment_for(original):
    """The rerun's environment: the original's store and BLAS thread count."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": original.uri}
    env.pop("HYDRA_FULL_ERROR", None)
    threads = original.tags.get(tags.BLAS_THREADS, "0")
    if threads.isdigit() and int(threads) > 0:
        env.update(dict.fromkeys(BLAS_THREAD_VARIABLES, threads))
    return env


def train_again(args, env):
    """Run ``python -m runner args``, echoing its output; return the new run's id."""
    print(f"rerun: python -m runner {shlex.join(args)}", flush=True)
    process = subprocess.Popen(
        runner_command(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    run_id = None
    for line in process.stdout:
        sys.stdout.write(line)
        match = RUN_LINE.search(line)
        if match:
            run_id = match.group(1)
    code = process.wait()
    if code != 0 or run_id is None:
        raise Mismatch(f"the rerun failed (exit code {code}); its output above says why")
    return run_id


def check_data(original, rerun):
    """Raise Mismatch naming the first split whose logged data digest the rerun did not get."""
    for split, (name, digest) in original.data_digests.items():
        now = rerun.data_digests.get(split, (name, None))[1]
        if now != digest:
            source = original.data_file or f"data set {original.config['dataset']['name']}"
            raise Mismatch(
                f"the data set's digest differs: logged {digest}, now {now} ({split} split "
                f"{name}, file {source}); the data changed since run {original.run_id}"
            )


def first_difference(original, rerun):
    """Where the metric histories part: (epoch or None, [keys differing there], step notes)."""
    first_epoch, keys, notes = None, [], []
    histories_a, histories_b = original.histories, rerun.histories
    for key in sorted(histories_a.keys() | histories_b.keys()):
        a, b = dict(histories_a.get(key, [])), dict(histories_b.get(key, []))
        steps = sorted(
            s for s in a.keys() | b.keys() if s not in a or s not in b or not same_value(a[s], b[s])
        )
        if not steps:
            continue
        if key in STEP_METRICS:
            notes.append(f"{key} from step {steps[0]}: {a.get(steps[0])} vs {b.get(steps[0])}")
        elif first_epoch is None or steps[0] < first_epoch:
            first_epoch, keys = steps[0], [(key, a.get(steps[0]), b.get(steps[0]))]
        elif steps[0] == first_epoch:
            keys.append((key, a.get(steps[0]), b.get(steps[0])))
    return first_epoch, keys, notes


def surroundings(original, rerun):
    """What differs around two runs that should be alike: versions, BLAS, dtype, git, data."""
    env_a, env_b = original.environment, rerun.environment
    env_a["dtype"], env_b["dtype"] = original.config.get("dtype"), rerun.config.get("dtype")
    lines = [
        f"{key}: {env_a.get(key, 'none')} → {env_b.get(key, 'none')}"
        for key in sorted(env_a.keys() | env_b.keys())
        if env_a.get(key) != env_b.get(key)
    ]
    digests_a, digests_b = original.data_digests, rerun.data_digests
    lines += [
        f"data digest ({split}): {digests_a[split][1]} → {digests_b.get(split, (0, 'none'))[1]}"
        for split in sorted(digests_a)
        if digests_a[split] != digests_b.get(split)
    ]
    return lines


def verify(original, rerun):
    """Print that the runs are identical, or raise Mismatch saying where and how they part."""
    digest_a, digest_b = weights_digest(original.weights), weights_digest(rerun.weights)
    epoch, keys, notes = first_difference(original, rerun)
    points = sum(len(h) for h in original.histories.values())
    if digest_a == digest_b and epoch is None and not notes:
        print(
            f"identical: weights SHA-256 {digest_a} and {len(original.histories)} metric "
            f"histories ({points} points) match exactly (original {original.run_id}, "
            f"rerun {rerun.run_id})"
        )
        return
    lines = [f"not identical: original {original.run_id}, rerun {rerun.run_id}"]
    if digest_a != digest_b:
        arrays = sorted(original.weights.keys() | rerun.weights.keys())
        differing = [
            k
            for k in arrays
            if k not in original.weights
            or k not in rerun.weights
            or array_digest(k, original.weights[k]) != array_digest(k, rerun.weights[k])
        ]
        lines.append(
            f"weights SHA-256 {digest_a} → {digest_b}; arrays that differ: {', '.join(differing)}"
        )
    if epoch is not None:
        values = ", ".join(f"{key} {a} → {b}" for key, a, b in keys)
        lines.append(f"the metrics part at epoch {epoch}: {values}")
    lines += notes
    around = surroundings(original, rerun)
    lines.append(
        "around them: "
        + (
            "; ".join(around)
            if around
            else "package versions, BLAS "
            "library and threads, dtype, git commit and data digests are the same"
        )
    )
    raise Mismatch("\n".join(lines))


def main(argv=None):
    args = parse_args(argv)
    try:
        uri, client = connect(args.tracking_uri)
        original = load_run(client, uri, args.run_id)
        check_finished(original)
        env = environment_for(original)
        overrides = kept_overrides(original)
        overrides += pins(original, compose(overrides, env))
        rerun_id = train_again(overrides, env)
        client.set_tag(rerun_id, tags.RERUN_OF, original.run_id)
        print(f"rerun of {original.run_id}: run {rerun_id} in {uri}")
        rerun = load_run(client, uri, rerun_id)
        check_data(original, rerun)
        if args.verify:
            verify(original, rerun)
    except Mismatch as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except RunnerError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
