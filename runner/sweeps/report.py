"""``python -m runner.report``: a sweep's results as a ranked table, best first.

Reads the sweep's child runs with ``mlflow.search_runs`` into a pandas DataFrame and prints the
tables the sweep logged on its parent run (runner/sweeps/results.py): when the sweep varies
``seed``, one row per config with the mean objective, its 95% interval, std and n
(``results_by_config.csv``); otherwise, or with ``--runs``, one row per child (``results.csv``).
``--csv PATH`` also writes the table shown.

    python -m runner.report                      # the latest sweep in experiment "runner"
    python -m runner.report --sweep <run id> --csv results.csv
    python -m runner.report --runs --layers      # every child, with its per-layer params
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

from runner.errors import RunnerError, TrackingError
from runner.tracking import tags
from runner.tracking.client import resolve_uri

WIDTH = 160  # a failed run's line is cut here; the whole reason is in the run and --runs --csv


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m runner.report",
        description="A sweep's results, best first: one row per config when seeds repeat it.",
    )
    parser.add_argument("--experiment", default="runner", help="MLflow experiment (runner)")
    parser.add_argument("--sweep", metavar="RUN_ID", help="the sweep's parent run (latest)")
    parser.add_argument("--uri", help="tracking URI ($MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    parser.add_argument("--csv", metavar="PATH", help="also write the table as CSV")
    parser.add_argument(
        "--runs", action="store_true", help="one row per child even when seeds repeat a config"
    )
    parser.add_argument(
        "--layers",
        action="store_true",
        help="also the per-layer params derived from the model (layer1.W_shape, ...)",
    )
    return parser.parse_args(argv)


def load_sweep(uri, experiment_name, sweep_id=None):
    """(parent run, its children as ``child_runs`` gives them) of the requested or latest sweep."""
    import mlflow
    from mlflow import MlflowClient

    from runner.sweeps.results import child_runs

    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise TrackingError(f"no MLflow store at {uri}; run a sweep first, or pass --uri")
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise TrackingError(f"no experiment {experiment_name!r} in {uri}; pass --experiment")
    if sweep_id:
        parent = client.get_run(sweep_id)
    else:
        latest = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`{tags.SWEEP}` = 'true'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not latest:
            raise TrackingError(
                f"no sweep in experiment {experiment_name!r} of {uri}; run one with "
                f"python -m runner -m ..."
            )
        parent = latest[0]
    return parent, child_runs(parent.info.run_id, experiment.experiment_id)


def render(runs, by_run=False, layers=False):
    """(lines to print, the table they show) for a sweep's ``child_runs``."""
    from runner.sweeps.results import grouped_table, ranked_table, read_children

    children = read_children(runs)
    n_failed = int((runs["status"] != "FINISHED").sum()) if len(runs) else 0
    counts = f"{len(runs)} runs, {n_failed} failed"
    if children is None or by_run or not children.varies_seed:
        table = ranked_table(runs, layers=layers)
        shown = table.drop(columns=["run_id"], errors="ignore")
        if "failure_reason" in shown:
            shown["failure_reason"] = shown["failure_reason"].fillna("")
        return [counts, format_table(shown)], table
    table = grouped_table(runs, layers=layers)
    lines = [
        f"{counts}; {len(table)} configs × seeds: the {children.objective} of each config's "
        f"finished runs (--runs: each run)",
        format_table(table),
    ]
    failed = children.frame[children.frame["status"] != "FINISHED"].sort_values("job")
    if len(failed):
        lines.append(f"not in the statistics ({len(failed)}):")
    for _, row in failed.iterrows():
        config = " ".join(f"{key}={row[key]}" for key in children.swept)
        reason = row["failure_reason"] if isinstance(row["failure_reason"], str) else ""
        lines.append(f"  job {row['job']} {config} {row['status']}: {reason}"[:WIDTH].rstrip())
    return lines, table


def format_table(table):
    """The table as text, without its index or trailing blanks; text cut at 60 characters."""
    if table.empty:
        return "(no runs)"
    with pd.option_context("display.max_colwidth", 60):
        return "\n".join(line.rstrip() for line in table.to_string(index=False).splitlines())


def main(argv=None):
    args = parse_args(argv)
    try:
        parent, runs = load_sweep(resolve_uri(args.uri, create=False), args.experiment, args.sweep)
    except RunnerError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    lines, table = render(runs, by_run=args.runs, layers=args.layers)
    print(f"sweep {parent.info.run_name} ({parent.info.run_id}): {parent.info.status}, {lines[0]}")
    print("\n".join(lines[1:]))
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
