"""A sweep's results as pandas tables: one row per child run, or one row per config.

Used by the sweep callback (the parent run's ``results`` artifacts) and by
``python -m runner.report``, so both always show the same tables.

Columns keep one order whatever order MLflow returns the params in: the keys the sweep varies,
as typed on the command line; then other params that differ between children, by name; then
the final metrics, the objective first. The per-layer params derived from the model
(``layer1.W_shape``, …) are left out unless asked for: they follow from ``model.layers``, and
with them a model sweep's lines were 340 characters wide.

A sweep that varies ``seed`` repeats each config; ``grouped_table`` gives one row per config
(every column but the seed) with the mean objective, its 95% confidence interval, the standard
deviation and n, the number of finished children. Failed children count in ``failed``, never in
the statistics.
"""

import math
import re
from dataclasses import dataclass

import mlflow
import pandas as pd

from runner.tracking import tags

OBJECTIVE = "val_loss"
FALLBACK_OBJECTIVE = "train_loss"  # a data set without a validation split (Outcome.objective)
SEED = "seed"
CONFIDENCE = 0.95
_METRIC_GROUPS = {"val": 0, "test": 1}  # then the rest (train_loss, best_epoch), by name
LAYER_PARAM = re.compile(r"layer(\d+)\.(.+)")
# The tag joins a job's overrides with spaces: a new override starts only where a key and "="
# (or a "~key" deletion) follow the space, so a value such as "[4, 16, 3]" stays whole.
OVERRIDE_START = re.compile(r" (?=~[\w.@/-]+(?: |$)|\+{0,2}[A-Za-z_][\w.@/-]*=)")


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


@dataclass
class Children:
    """A sweep's children, read once: one row per child and what each column holds."""

    frame: pd.DataFrame  # run_id, run_name, job, status, the columns below, failure_reason
    swept: list  # keys whose override differs between children, in the order typed
    params: list  # other params that differ between children, by name
    layers: list  # per-layer params derived from the model, by layer, then name
    metrics: list  # final metrics, the objective first
    objective: str | None  # OBJECTIVE, FALLBACK_OBJECTIVE, or None when no child has either

    @property
    def config(self):
        """The columns that say what a child trained."""
        return [*self.swept, *self.params]

    @property
    def varies_seed(self):
        return SEED in self.config


def read_children(runs):
    """``Children`` of a ``child_runs`` DataFrame, or None when the sweep has no child."""
    if runs.empty:
        return None
    params = {c.removeprefix("params."): runs[c] for c in runs.columns if c.startswith("params.")}
    varying = {key: column for key, column in params.items() if column.nunique(dropna=False) > 1}
    overrides = [parse_overrides(text) for text in _column(runs, f"tags.{tags.OVERRIDES}")]
    swept = {}
    for key in dict.fromkeys(key for job in overrides for key in job):  # first-seen order
        if key in params:  # the param's canonical text: lr=0.10 and lr=0.1 are one value
            if key in varying:
                swept[key] = varying.pop(key)
        elif len({job.get(key) for job in overrides}) > 1:  # a config group: model=...
            swept[key] = pd.Series([job.get(key) for job in overrides], index=runs.index)
    for key, column in list(varying.items()):  # model.name beside model: the same column
        if any(column.equals(other) for other in swept.values()):
            del varying[key]
    layers = sorted((k for k in varying if LAYER_PARAM.fullmatch(k)), key=_layer_order)
    others = sorted(k for k in varying if k not in layers)
    names = {*swept, *params}
    # The objective first; a metric that shares a param's name (lr) is left to the param.
    metrics = [
        c.removeprefix("metrics.")
        for c in runs.columns
        if c.startswith("metrics.") and c.removeprefix("metrics.") not in names
    ]
    objective = next((m for m in (OBJECTIVE, FALLBACK_OBJECTIVE) if m in metrics), None)
    metrics.sort(key=lambda m: (m != objective, _METRIC_GROUPS.get(m.split("_")[0], 2), m))
    frame = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": _column(runs, "tags.mlflow.runName"),
            "job": pd.to_numeric(_column(runs, f"tags.{tags.SWEEP_JOB}"), errors="coerce"),
            "status": runs["status"],
            **{key: _typed(column) for key, column in {**swept, **varying}.items()},
            **{m: _typed(runs[f"metrics.{m}"]) for m in metrics},
            "failure_reason": _column(runs, "tags.failure_reason"),
        }
    )
    return Children(frame, list(swept), others, layers, metrics, objective)


def parse_overrides(text):
    """A child's overrides tag as a dict: "lr=0.1 +x=[1, 2]" → {"lr": "0.1", "x": "[1, 2]"}."""
    if not isinstance(text, str) or not text.strip():
        return {}
    items = (item.partition("=") for item in OVERRIDE_START.split(text.strip()))
    return {key.lstrip("+~"): value for key, _, value in items}


def ranked_table(runs, layers=False):
    """One row per child: params that vary, final metrics and status; best objective first.

    runs : DataFrame from ``child_runs``. Failed or unfinished children rank last, with their
    ``failure_reason``. layers : also the per-layer params derived from the model.
    """
    children = read_children(runs)
    if children is None:
        return pd.DataFrame(columns=["rank", "run_id", "status"])
    frame = children.frame
    finished = frame["status"] == "FINISHED"
    objective = [frame[children.objective]] if children.objective else []
    order = _order([~finished, *objective, frame["job"]])
    columns = [
        *("run_id", "job"),
        *children.config,
        *(children.layers if layers else []),
        *children.metrics,
        *("status", "run_name", "failure_reason"),
    ]
    table = frame.loc[order, columns]
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.dropna(axis=1, how="all").reset_index(drop=True)


def grouped_table(runs, layers=False):
    """One row per config (every varying key but the seed), best mean objective first.

    Columns: the config, ``<objective>_mean``, ``_ci95_low``, ``_ci95_high`` (Student t with
    n − 1 degrees of freedom), ``_std`` (n − 1 in the denominator), ``n`` (finished children with
    an objective: only they count) and ``failed`` (children that did not finish). With n = 1
    the std and the interval are NaN; with n = 0 the mean is too, and the config ranks last.
    """
    children = read_children(runs)
    if children is None:
        return pd.DataFrame(columns=["rank", "n", "failed"])
    frame, name = children.frame, children.objective or FALLBACK_OBJECTIVE
    keys = [c for c in children.config if c != SEED]
    shown = [*keys, *(children.layers if layers else [])]
    config = (
        frame.groupby(keys, dropna=False, sort=False).ngroup()
        if keys
        else pd.Series(0, index=frame.index)
    )
    finished = frame["status"] == "FINISHED"
    scores = frame[name] if name in frame else pd.Series(math.nan, index=frame.index)
    rows = []
    for _, members in frame.groupby(config, sort=False).groups.items():
        values = scores[members][finished[members]].dropna()
        n, mean, std = len(values), values.mean(), values.std(ddof=1)
        half = t_quantile((1 + CONFIDENCE) / 2, n - 1) * std / math.sqrt(n) if n > 1 else math.nan
        rows.append(
            {
                f"{name}_mean": mean,
                f"{name}_ci95_low": mean - half,
                f"{name}_ci95_high": mean + half,
                f"{name}_std": std,
                "n": n,
                "failed": int((~finished[members]).sum()),
                "first_job": frame.loc[members, "job"].min(),
                "first": members[0],
            }
        )
    stats = pd.DataFrame(rows)
    table = pd.concat(
        [frame.loc[stats["first"], shown].reset_index(drop=True), stats.drop(columns="first")],
        axis=1,
    )
    table = table.loc[_order([table[f"{name}_mean"], table["first_job"]])]
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.drop(columns="first_job").reset_index(drop=True)


def t_quantile(p, dof):
    """The p-quantile of Student's t with ``dof`` degrees of freedom.

    SciPy comes with MLflow (mlflow 3 requires scipy): ``scipy.special.stdtrit`` is the
    function ``scipy.stats.t.ppf`` calls, without the second that importing scipy.stats costs.
    """
    from scipy.special import stdtrit

    return float(stdtrit(dof, p))


def best_row(table):
    """The best finished child's row of a ``ranked_table``, or None when no child finished."""
    finished = table[table["status"] == "FINISHED"]
    return None if finished.empty else finished.iloc[0]


def _column(runs, name):
    return runs[name] if name in runs else pd.Series(None, index=runs.index, dtype=object)


def _typed(column):
    """Numbers as numbers, integers as integers (16, never 16.0); any text keeps the column text."""
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().sum() != column.notna().sum():
        return column
    if (numbers.dropna() % 1 == 0).all():
        return numbers.astype("Int64")
    return numbers.astype(float)


def _layer_order(key):
    layer, name = LAYER_PARAM.fullmatch(key).groups()
    return int(layer), name


def _order(keys):
    """The index of rows sorted by these columns in turn, NaN last."""
    frame = pd.DataFrame({f"k{i}": key for i, key in enumerate(keys)})
    return frame.sort_values(list(frame), na_position="last", kind="stable").index


def log_summary(client, parent):
    """What the parent run gets beside results.csv: when seeds repeat, the table by config
    (``results_by_config.csv`` and ``.json``: {"columns": [...], "data": [rows]}); and
    ``objective.png``, the objective against each swept key.

    parent : the sweep's parent dict (runner.sweeps.parent). Written with log_text, which
    replaces a file, not log_table, which appends to it: a sweep run again ends again here.
    """
    runs = child_runs(parent["run_id"], parent["experiment_id"])
    children = read_children(runs)
    if children is None:
        return
    if children.varies_seed:
        table = grouped_table(runs)
        client.log_text(
            parent["run_id"], table.to_json(orient="split", index=False), "results_by_config.json"
        )
        client.log_text(parent["run_id"], table.to_csv(index=False), "results_by_config.csv")
    from runner.sweeps.plot import objective_figure

    figure = objective_figure(children)
    if figure is not None:
        client.log_figure(parent["run_id"], figure, "objective.png")
