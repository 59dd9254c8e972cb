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
    axes = loss_curve({"train_loss": {2: 5.0, 1: 9.0}, "val_accuracy": {1: 0.4}}).axes[0]
    (line,) = axes.lines  # accuracy is not a loss
    assert line.get_label() == "train_loss"
    np.testing.assert_array_equal(line.get_xdata(), [1, 2])
    np.testing.assert_array_equal(line.get_ydata(), [9.0, 5.0])
    (left, right), (bottom, top) = axes.get_xlim(), axes.get_ylim()
    assert left <= 1 and right >= 2 and bottom <= 5.0 and top >= 9.0  # the axes show it all


def test_the_confusion_matrix_shows_each_count_in_its_cell_shaded_by_it():
    counts = np.array([[5, 0], [1, 2]])  # true classes down, predicted across
    axes = confusion_figure(counts, ["no", "yes"]).axes[0]
    image = axes.images[0]
    np.testing.assert_array_equal(image.get_array(), counts)
    assert image.get_clim() == (0, 5)  # the darkest shade is the largest count
    cells = [(text.get_position(), text.get_text(), text.get_color()) for text in axes.texts]
    assert cells == [  # (column, row): white on the dark cells, above half the largest count
        ((0, 0), "5", "white"),
        ((1, 0), "0", "black"),
        ((0, 1), "1", "black"),
        ((1, 1), "2", "black"),
    ]


def by_metric(history):
    return {
        key: {epoch: metrics[key] for epoch, metrics in enumerate(history, start=1)}
        for key in history[0]
    }


def assert_drawn_alone(history, parts, folder):
    """draw_figures after other runs' figures: the files a figure built for this run makes."""
    folder.mkdir()
    paths = draw_figures(history, parts.net, parts.dataset, folder)
    assert Path(paths[0]).read_bytes() == png_bytes(
        loss_curve(by_metric(history)), folder / "expected_loss.png"
    )
    test = parts.dataset.test
    names = list(parts.dataset.class_names)
    counts = confusion_counts(test.y, parts.net.predict_classes(test.X), len(names))
    expected = confusion_figure(counts, names)
    assert Path(paths[1]).read_bytes() == png_bytes(expected, folder / "expected_confusion.png")
    return counts


def test_the_next_run_draws_on_the_kept_figures_what_a_figure_of_its_own_would_show(tmp_path):
    first = assert_drawn_alone(HISTORY, pipeline.prepare(compose_run_config()), tmp_path / "a")
    # Another run of the same sweep: other weights, more epochs, losses on another scale.
    longer = [{"train_loss": 50.0 / e, "val_loss": 60.0 / e} for e in range(1, 41)]
    parts = pipeline.prepare(compose_run_config("seed=7"))
    second = assert_drawn_alone(longer, parts, tmp_path / "b")
    assert not np.array_equal(first, second)  # the second matrix has counts of its own


def test_other_class_names_or_curves_get_figures_built_for_them(tmp_path):
    assert_drawn_alone(HISTORY, pipeline.prepare(compose_run_config()), tmp_path / "a")
    wine = pipeline.prepare(compose_run_config("dataset=wine", "model=mlp_13_16_3"))
    no_validation = [{"train_loss": 1.0 / e} for e in range(1, 6)]
    assert_drawn_alone(no_validation, wine, tmp_path / "b")
