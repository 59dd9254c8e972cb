"""What a person sees while a run trains: one line per epoch, and a bar on a terminal."""

import logging
import sys
import time

EPOCH_LOGGER = "runner.epochs"  # its own logger, so a console can leave it out
log = logging.getLogger(EPOCH_LOGGER)


def format_metrics(metrics):
    """'train_loss 0.4123  val_loss 0.3982  val_accuracy 0.9333  lr 0.1'."""
    return "  ".join(
        f"{key} {value:g}" if key == "lr" else f"{key} {value:.4f}"
        for key, value in metrics.items()
    )


class Progress:
    """Logs a concise line per epoch; on a terminal also redraws a bar over all steps.

    The bar is redrawn at most ten times a second, so it costs nothing measurable per step,
    and is erased before each epoch line so the two never share a line.
    """

    def __init__(self, epochs, steps_per_epoch, show_bar=None, stream=None):
        self.stream = stream or sys.stderr
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.show_bar = self.stream.isatty() if show_bar is None else show_bar
        self.started = self._last_draw = time.perf_counter()
        self._width = len(str(epochs))

    def on_step(self, epoch, step, loss):
        if self.show_bar and time.perf_counter() - self._last_draw > 0.1:
            self._draw((epoch - 1) * self.steps_per_epoch + step + 1, loss)

    def on_epoch(self, epoch, metrics):
        self._erase()
        log.info(f"epoch {epoch:>{self._width}}/{self.epochs}  {format_metrics(metrics)}")

    def close(self):
        self._erase()

    def _draw(self, done, loss):
        total = max(self.epochs * self.steps_per_epoch, 1)
        filled = int(30 * done / total)
        elapsed = time.perf_counter() - self.started
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {100 * done / total:5.1f}%  "
            f"loss {loss:.4f}  {elapsed:.1f}s"
        )
        self.stream.flush()
        self._last_draw = time.perf_counter()

    def _erase(self):
        if self.show_bar:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()
