"""``python -m runner``: compose the config with Hydra, train, report.

A mistake in the config or the data prints one line naming the key or file and exits
non-zero, without a traceback (``HYDRA_FULL_ERROR=1`` shows the full one for bugs).
"""

import logging
import math
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from runner import experiment
from runner.config import register_configs, to_run_config
from runner.errors import RunnerError
from runner.progress import Progress, format_metrics

log = logging.getLogger("runner")

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run one experiment; return its final validation loss for sweepers to minimise."""
    hydra_cfg = HydraConfig.get()
    try:
        return train(cfg, Path(hydra_cfg.runtime.output_dir))
    except RunnerError as err:
        log.error(f"Error: {err}")
        if hydra_cfg.mode == RunMode.MULTIRUN:
            return math.inf  # the sweep goes on; this job scores worst
        sys.exit(1)


def train(cfg: DictConfig, output_dir: Path) -> float:
    run_cfg = to_run_config(cfg)
    dataset, net, optimizer, loss = prepared = experiment.prepare(run_cfg)
    log.info(net.summary(run_cfg.model.name))
    log.info(
        f"dataset {dataset.name}: {dataset.train.X.shape[0]} train, {dataset.val.X.shape[0]} "
        f"val, {dataset.test.X.shape[0]} test rows; loss {loss}; batch {run_cfg.batch}, "
        f"lr {run_cfg.lr:g}, {run_cfg.epochs} epochs, {run_cfg.dtype}"
    )
    steps = -(-dataset.train.X.shape[0] // run_cfg.batch)
    progress = Progress(run_cfg.epochs, steps, show_bar=run_cfg.progress)
    try:
        outcome = experiment.run(
            run_cfg,
            output_dir,
            on_epoch=progress.on_epoch,
            on_step=progress.on_step if progress.show_bar else None,
            prepared=prepared,
        )
    finally:
        progress.close()
    if outcome.fit.stopped_early:
        log.info(f"early stopping: best val_loss at epoch {outcome.fit.best_epoch}")
    log.info(f"test  {format_metrics(outcome.test_metrics)}")
    log.info(f"weights written to {outcome.weights_path}")
    return outcome.objective


if __name__ == "__main__":
    main()
