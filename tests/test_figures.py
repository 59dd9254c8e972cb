"""A run's figures, drawn by the training process from what it trained (runner.tracking.figures)."""

from pathlib import Path

import numpy as np
from matplotlib.image import imread

from runner import pipeline
from runner.tracking.artifacts import confusion_counts
from runner.tracking.figures import confusion_figure, draw_figures, loss_curve
from tests.helpers import compose_run_config

HISTORY = [  # per epoch, as the trainer keeps it
    {"train_loss": 1.0, "val_loss": 1.2, "val_accuracy": 0.3},
    {"train_loss": 0.6, "val_loss": 0.9, "val_accuracy": 0.6},
    {"train_loss": 0.4, "val_loss": 0.7, "val_accuracy": 0.8},
]


def png_bytes(figure, path):
    figure.savefig(path)
    return Path(path).read_bytes()


def test_a_classifier_gets_its_loss_curve_and_the_confusion_matrix_of_its_test_split(tmp_path):
    parts = pipeline.prepare(compose_run_config())
    paths = draw_figures(HISTORY, parts.net, parts.dataset, tmp_path)

    assert [Path(p).name for p in paths] == ["loss_curve.png", "confusion_matrix.png"]
    assert all(Path(p).parent == tmp_path for p in paths)
    assert imread(paths[0]).shape[:2] == (400, 600)  # 6 × 4 inches at 100 dpi
    # Epoch numbers from 1, each metric its own line: the same picture as drawn from the
    # {metric: {epoch: value}} that the worker used to rebuild from the metrics it got.
    by_metric = {
        "train_loss": {1: 1.0, 2: 0.6, 3: 0.4},
        "val_loss": {1: 1.2, 2: 0.9, 3: 0.7},
    }
    assert Path(paths[0]).read_bytes() == png_bytes(loss_curve(by_metric), tmp_path / "a.png")
    test = parts.dataset.test
    counts = confusion_counts(test.y, parts.net.predict_classes(test.X), 3)
    assert counts.sum() == test.X.shape[0]
    expected = confusion_figure(counts, list(parts.dataset.class_names))
    assert Path(paths[1]).read_bytes() == png_bytes(expected, tmp_path / "b.png")


def test_a_regression_gets_its_loss_curve_only(tmp_path):
    parts = pipeline.prepare(compose_run_config("dataset=diabetes", "model=mlp_10_32_1"))
    paths = draw_figures(HISTORY, parts.net, parts.dataset, tmp_path)
    assert [Path(p).name for p in paths] == ["loss_curve.png"]


def test_the_loss_curve_draws_each_loss_against_its_epochs():
    axes = loss_curve({"train_loss": {2: 0.5, 1: 0.9}, "val_accuracy": {1: 0.4}}).axes[0]
    (line,) = axes.lines  # accuracy is not a loss
    assert line.get_label() == "train_loss"
    np.testing.assert_array_equal(line.get_xdata(), [1, 2])
    np.testing.assert_array_equal(line.get_ydata(), [0.9, 0.5])
