"""A sweep's tables from its children: seeds as repeats, the interval, the printed report.

The children here are DataFrames shaped like ``mlflow.search_runs``'s (params as text, metrics
as floats, tags), so every case is exact; tests/test_seed_repeats.py reads real sweeps.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runner.sweeps.report import render
from runner.sweeps.results import grouped_table, parse_overrides, ranked_table, t_quantile

LAYERS = {
    "mlp_4_8_8_3": [("(4, 8)", "(8,)", "relu", "40"), ("(8, 8)", "(8,)", "relu", "72")]
    + [("(8, 3)", "(3,)", "softmax", "27")],
    "mlp_4_16_3": [("(4, 16)", "(16,)", "relu", "80"), ("(16, 3)", "(3,)", "softmax", "51")],
}
N_PARAMS = {"mlp_4_8_8_3": "139", "mlp_4_16_3": "131"}


def child(job, model, lr, seed, val_loss, status="FINISHED", reason=None):
    """One row of search_runs for a job of ``-m model=... lr=... seed=...``."""
    row = {
        "run_id": f"run{job}",
        "status": status,
        "tags.mlflow.runName": f"{model}-lr{lr}-seed{seed}",
        "tags.runner.sweep_job": str(job),
        "tags.runner.overrides": f"model={model} lr={lr} seed={seed} epochs=3",
        "tags.failure_reason": reason,
        "params.model.name": model,
        "params.model.layers": "[4, 8, 8, 3]" if model == "mlp_4_8_8_3" else "[4, 16, 3]",
        "params.lr": str(lr),
        "params.seed": str(seed),
        "params.epochs": "3",
        "params.n_params": N_PARAMS[model],
        "metrics.val_loss": val_loss,
        "metrics.val_accuracy": None if val_loss is None else 0.75,
        "metrics.best_epoch": None if val_loss is None else 3.0,
        "metrics.lr": lr,  # the schedule's last lr: a metric the param already shows
    }
    for i, (w, b, activation, count) in enumerate(LAYERS[model], start=1):
        row.update(
            {
                f"params.layer{i}.W_shape": w,
                f"params.layer{i}.b_shape": b,
                f"params.layer{i}.activation": activation,
                f"params.layer{i}.params": count,
            }
        )
    return row


def runs(*rows, seed=1):
    """search_runs's frame, its rows and columns in a random order as MLflow's may be."""
    frame = pd.DataFrame(list(rows))
    rng = np.random.default_rng(seed)
    return frame.iloc[rng.permutation(len(frame)), rng.permutation(frame.shape[1])]


# Two models, three seeds each; one seed of mlp_4_16_3 diverged.
SWEEP = [
    child(0, "mlp_4_8_8_3", 0.1, 0, 0.50),
    child(1, "mlp_4_8_8_3", 0.1, 1, 0.70),
    child(2, "mlp_4_8_8_3", 0.1, 2, 0.66),
    child(3, "mlp_4_16_3", 0.1, 0, 0.40),
    child(4, "mlp_4_16_3", 0.1, 1, None, "FAILED", "train loss became nan at epoch 2"),
    child(5, "mlp_4_16_3", 0.1, 2, 0.46),
]


def test_seeds_repeat_a_config_one_row_each_with_mean_interval_std_and_n():
    table = grouped_table(runs(*SWEEP))
    assert list(table["model"]) == ["mlp_4_16_3", "mlp_4_8_8_3"]  # best mean first
    assert list(table["n"]) == [2, 3] and list(table["failed"]) == [1, 0]
    for row, losses in zip(table.itertuples(), ([0.40, 0.46], [0.50, 0.70, 0.66]), strict=True):
        n = len(losses)
        mean = sum(losses) / n
        std = math.sqrt(sum((x - mean) ** 2 for x in losses) / (n - 1))
        # t quantiles in closed form: 1 dof is Cauchy's, 2 dof (2p-1)/sqrt(2p(1-p)).
        t = math.tan(math.pi * 0.475) if n == 2 else 0.95 / math.sqrt(2 * 0.975 * 0.025)
        assert row.val_loss_mean == pytest.approx(mean, rel=1e-12)
        assert row.val_loss_std == pytest.approx(std, rel=1e-12)
        assert row.val_loss_ci95_low == pytest.approx(mean - t * std / math.sqrt(n), rel=1e-12)
        assert row.val_loss_ci95_high == pytest.approx(mean + t * std / math.sqrt(n), rel=1e-12)


def test_one_finished_seed_has_no_spread_and_none_ranks_last():
    rows = [
        child(0, "mlp_4_8_8_3", 0.1, 0, 0.5),
        child(1, "mlp_4_8_8_3", 0.1, 1, None, "KILLED"),
        child(2, "mlp_4_16_3", 0.1, 0, None, "FAILED", "boom"),
        child(3, "mlp_4_16_3", 0.1, 1, None, "FAILED", "boom"),
    ]
    table = grouped_table(runs(*rows))
    assert list(table["model"]) == ["mlp_4_8_8_3", "mlp_4_16_3"]
    assert list(table["n"]) == [1, 0] and list(table["failed"]) == [1, 2]
    assert table["val_loss_mean"][0] == 0.5 and table["val_loss_mean"].isna()[1]
    assert table[["val_loss_std", "val_loss_ci95_low", "val_loss_ci95_high"]].isna().all().all()


def test_a_sweep_of_seeds_alone_is_one_config():
    table = grouped_table(runs(*(child(j, "mlp_4_8_8_3", 0.1, j, 0.1 * (j + 1)) for j in range(4))))
    assert len(table) == 1 and table["n"][0] == 4
    assert table["val_loss_mean"][0] == pytest.approx(0.25)


def test_t_quantiles_match_their_closed_forms():
    assert t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-12)
    assert t_quantile(0.975, 2) == pytest.approx(4.302652729911275, rel=1e-9)  # tables
    # 4 dof: t = 2 sqrt(cos(arccos(sqrt(a)) / 3) / sqrt(a) - 1), a = 4p(1-p)
    a = 4 * 0.975 * 0.025
    closed = 2 * math.sqrt(math.cos(math.acos(math.sqrt(a)) / 3) / math.sqrt(a) - 1)
    assert t_quantile(0.975, 4) == pytest.approx(closed, rel=1e-12)


def test_overrides_split_where_a_key_follows_and_lists_stay_whole():
    assert parse_overrides("model=mlp_4_16_3 +model.layers=[4, 16, 3] ~dataset lr=1e-3") == {
        "model": "mlp_4_16_3",
        "model.layers": "[4, 16, 3]",
        "dataset": "",
        "lr": "1e-3",
    }
    assert parse_overrides(None) == {} and parse_overrides("") == {}


# The report of a sweep whose model varies: the swept keys first, no per-layer params, integers
# as integers, and the same columns in the same order whatever order MLflow returns them in.
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("order", [1, 2, 3])
def test_the_printed_report_is_golden(order):
    children = runs(*SWEEP, seed=order)
    shown = {"runs": render(children, by_run=True)[0], "configs": render(children)[0]}
    for name, lines in shown.items():
        assert "\n".join(lines) + "\n" == (GOLDEN / f"report_{name}.txt").read_text(), name


def test_per_layer_params_only_when_asked():
    lines, table = render(runs(*SWEEP), by_run=True, layers=True)
    header = lines[1].splitlines()[0].split()
    assert header[:7] == [
        "rank",
        "job",
        "model",
        "seed",
        "model.layers",
        "n_params",
        "layer1.W_shape",
    ]
    assert "layer3.activation" in header and "layer1.W_shape" in table
    for table in (ranked_table(runs(*SWEEP)), grouped_table(runs(*SWEEP))):
        assert not [c for c in table.columns if c.startswith("layer")]


def test_overrides_that_spell_one_value_two_ways_are_one_config():
    rows = [child(0, "mlp_4_8_8_3", 0.1, 0, 0.5), child(1, "mlp_4_8_8_3", 0.1, 1, 0.7)]
    rows[0]["tags.runner.overrides"] = "model=mlp_4_8_8_3 lr=0.10 seed=0 epochs=3"  # lr 0.1
    table = grouped_table(runs(*rows))
    assert len(table) == 1 and table["n"][0] == 2 and "lr" not in table
