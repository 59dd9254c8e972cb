"""``python -m runner.report``: a sweep's runs as a ranked table, best first.

Reads the sweep's child runs with ``mlflow.search_runs`` into a pandas DataFrame (the same
table the sweep logged on its parent run) and prints it; ``--csv PATH`` also writes it.

    python -m runner.report                      # the latest sweep in experiment "runner"
    python -m runner.report --sweep <run id> --csv results.csv
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

from runner.errors import RunnerError, TrackingError
from runner.tracking import tags
from runner.tracking.client import resolve_uri

COLUMNS_HIDDEN = ("run_id",)  # long; the CSV keeps it


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m runner.report", description="A sweep's runs as a ranked table, best first."
    )
    parser.add_argument("--experiment", default="runner", help="MLflow experiment (runner)")
    parser.add_argument("--sweep", metavar="RUN_ID", help="the sweep's parent run (latest)")
    parser.add_argument("--uri", help="tracking URI ($MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    parser.add_argument("--csv", metavar="PATH", help="also write the table as CSV")
    return parser.parse_args(argv)


def load_sweep(uri, experiment_name, sweep_id=None):
    """(parent run, ranked table) of the requested or latest sweep."""
    import mlflow
    from mlflow import MlflowClient

    from runner.sweeps.results import child_runs, ranked_table

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
    return parent, ranked_table(child_runs(parent.info.run_id, experiment.experiment_id))


def main(argv=None):
    args = parse_args(argv)
    try:
        parent, table = load_sweep(resolve_uri(args.uri, create=False), args.experiment, args.sweep)
    except RunnerError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    failed = int((table["status"] != "FINISHED").sum()) if len(table) else 0
    print(
        f"sweep {parent.info.run_name} ({parent.info.run_id}): {parent.info.status}, "
        f"{len(table)} runs, {failed} failed"
    )
    shown = table.drop(columns=[c for c in COLUMNS_HIDDEN if c in table])
    with pd.option_context(
        "display.width", 200, "display.max_columns", None, "display.max_colwidth", 60
    ):
        print(shown.to_string(index=False) if len(shown) else "(no runs)")
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
