"""The sweep's objective against each key it varies: one picture for the parent run.

One subplot per swept key (the seed only when nothing else varies): every finished child is a
point, so the seeds of a config show their spread, and a black marker shows the mean at each
value (over the seeds and the other keys' values; joined by a line on a numeric axis). Numbers
sit on a numeric axis (logarithmic when they span two decades or more, as learning rates do),
anything else (model names) in the order of the jobs.

matplotlib's object API with the Agg canvas, as for the runs' own figures
(runner/tracking/figures.py): no pyplot, no display. Import this module lazily: matplotlib
costs a second to import.
"""

import pandas as pd
from matplotlib.figure import Figure

from runner.sweeps.results import SEED

LOG_SPAN = 100.0  # max / min at which a positive numeric axis becomes logarithmic


def objective_figure(children):
    """The figure for ``results.read_children(...)``, or None with no finished child to show."""
    name = children.objective
    keys = [k for k in children.swept if k != SEED] or [k for k in children.swept if k == SEED]
    if name is None or not keys:
        return None
    frame = children.frame
    finished = frame[(frame["status"] == "FINISHED") & frame[name].notna()].sort_values("job")
    if finished.empty:
        return None
    figure = Figure(figsize=(4.5 * len(keys), 3.8), dpi=100)
    for i, key in enumerate(keys, start=1):
        axes = figure.add_subplot(1, len(keys), i)
        _draw(axes, finished[key], finished[name].astype(float))
        axes.set_xlabel(key)
        axes.set_ylabel(name)
        axes.set_title(f"{name} by {key}")
        axes.grid(alpha=0.3)
    figure.axes[0].legend()
    figure.tight_layout()
    return figure


def _draw(axes, values, scores):
    numeric = pd.api.types.is_numeric_dtype(values)
    if numeric:
        x = values.astype(float)
        if x.min() > 0 and x.max() / x.min() >= LOG_SPAN:
            axes.set_xscale("log")
    else:
        labels = list(dict.fromkeys(values.astype(str)))
        x = values.astype(str).map({label: i for i, label in enumerate(labels)}).astype(float)
        axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axes.scatter(x, scores, alpha=0.6, label="each run")
    means = scores.groupby(x).mean()
    style = "o-" if numeric else "o"  # a line between two models would mean nothing
    axes.plot(means.index, means.to_numpy(), style, color="black", label="mean")
    if not numeric:
        axes.set_xlim(-0.5, len(labels) - 0.5)
