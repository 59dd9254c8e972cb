"""A sweep's results as a ranked pandas table: one row per child run, best first.

Used by the sweep callback (the parent run's ``results`` artifacts) and by
``python -m runner.report``, so both always show the same table.
"""

import mlflow
import pandas as pd

from runner.tracking import tags

OBJECTIVE = "val_loss"


def child_runs(parent_run_id, experiment_id):
    """Every child of a sweep as MLflow's search_runs DataFrame (one row per run), but the
    attempts superseded by a later run of the same job (a sweep continued)."""
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        max_results=50000,
    )
    superseded = f"tags.{tags.SUPERSEDED}"
    if superseded in runs:
        runs = runs[runs[superseded] != "true"].reset_index(drop=True)
    return runs


def ranked_table(runs):
    """Params that vary, final metrics and status per child; lowest val_loss first.

    runs : DataFrame from ``child_runs``. Failed or unfinished children rank last, with
    their ``failure_reason``.
    """
    if runs.empty:
        return pd.DataFrame(columns=["rank", "run_id", "status"])
    params = [c for c in runs.columns if c.startswith("params.")]
    varying = [c for c in params if runs[c].nunique(dropna=False) > 1]
    names = {c.removeprefix("params.") for c in params}
    # The objective first; a metric that shares a param's name (lr) is left to the param.
    metric_columns = [c for c in runs.columns if c.startswith("metrics.")]
    metrics = sorted(
        (c for c in metric_columns if c.removeprefix("metrics.") not in names),
        key=lambda c: (not c.startswith(("metrics.val_", "metrics.test_")), c),
    )
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": runs.get("tags.mlflow.runName"),
            "job": pd.to_numeric(runs.get(f"tags.{tags.SWEEP_JOB}"), errors="coerce"),
            "status": runs["status"],
            **{c.removeprefix("params."): runs[c] for c in varying},
            **{c.removeprefix("metrics."): runs[c] for c in metrics},
            "failure_reason": runs.get("tags.failure_reason"),
        }
    )
    objective = OBJECTIVE if OBJECTIVE in table else None
    finished = table["status"] == "FINISHED"
    order = [~finished] + ([table[objective]] if objective else []) + [table["job"]]
    sort_keys = pd.DataFrame({f"k{i}": key for i, key in enumerate(order)})
    table = table.loc[sort_keys.sort_values(list(sort_keys), na_position="last").index]
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.dropna(axis=1, how="all").reset_index(drop=True)


def best_row(table):
    """The best finished child's row, or None when no child finished."""
    finished = table[table["status"] == "FINISHED"]
    return None if finished.empty else finished.iloc[0]
