"""``python -m runner``: compose the config with Hydra, train, track the run in MLflow.

A mistake in the config or the data prints one line naming the key or file and exits
non-zero, without a traceback (``HYDRA_FULL_ERROR=1`` shows the full one for bugs). Ctrl-C
and SIGTERM end the MLflow run as KILLED, any other failure as FAILED with its reason.
"""

import logging
import math
import signal
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from runner import experiment
from runner.checkpointing import Checkpointer, find_checkpoint
from runner.config import RunConfig, register_configs, to_run_config
from runner.engine.checkpoint import load_checkpoint
from runner.errors import ConfigError, RunnerError
from runner.overrides import check_overrides
from runner.progress import Progress, format_metrics
from runner.sweeps import console
from runner.sweeps.callback import end_open_sweep, sweep_job, sweep_parent
from runner.tracking import messages
from runner.tracking.client import (
    check_reachable,
    describe_run,
    resolve_uri,
    stop_worker,
    tracking_worker,
)

log = logging.getLogger("runner")

register_configs()


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup runs as for Ctrl-C."""


def _raise_terminated(signum, frame):
    raise Terminated


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run one experiment; return its final validation loss for sweepers to minimise."""
    hydra_cfg = HydraConfig.get()
    signal.signal(signal.SIGTERM, _raise_terminated)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    if not cfg.tracking.enabled:
        stop_worker()  # the one cli() started in case
    if in_sweep:
        console.quiet_job_console()
    elif not OmegaConf.select(cfg, "epoch_lines", default=True):
        console.hide_epoch_lines()
    started, overrides = time.monotonic(), list(hydra_cfg.overrides.task)
    status, objective = "FAILED", None
    try:
        objective = train(cfg, Path(hydra_cfg.runtime.output_dir), overrides)
        status = "FINISHED"
        return objective
    except RunnerError as err:
        log.error(f"Error: {err}")
        if in_sweep:
            return math.inf  # the sweep goes on; this job scores worst (inf, never NaN)
        sys.exit(1)
    except Exception as err:
        if not in_sweep:
            raise  # a bug: Hydra shows the traceback
        log.exception(f"job {hydra_cfg.job.num} failed: {type(err).__name__}: {err}")
        return math.inf
    except KeyboardInterrupt:
        status = "KILLED"
        sys.exit(130)  # train() has printed how to resume
    except Terminated:
        status = "KILLED"
        sys.exit(143)
    finally:
        if in_sweep:
            seconds = time.monotonic() - started
            console.log_job_line(hydra_cfg.job.num, overrides, status, objective, seconds)


def train(cfg: DictConfig, output_dir: Path, overrides: list) -> float:
    run_cfg = to_run_config(cfg)
    config = OmegaConf.to_container(cfg, resolve=True)
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    parent = sweep_parent() if in_sweep else None
    resume = None
    if run_cfg.resume:
        run_cfg, config, output_dir, overrides, resume = load_resume(run_cfg, overrides)
    elif run_cfg.tracking.enabled and not parent:
        # A sweep's start checked its server; a job meeting an outage keeps its metrics.
        check_reachable(resolve_uri(run_cfg.tracking.uri))
    dataset, net, optimizer, loss = prepared = experiment.prepare(run_cfg)
    log.info(net.summary(run_cfg.model.name))
    log.info(
        f"dataset {dataset.name}: {dataset.train.X.shape[0]} train, {dataset.val.X.shape[0]} "
        f"val, {dataset.test.X.shape[0]} test rows; loss {loss}; batch {run_cfg.batch}, "
        f"lr {run_cfg.lr:g}, {run_cfg.epochs} epochs, {run_cfg.dtype}"
    )
    tracker = None
    checkpointer = Checkpointer(
        output_dir,
        run_cfg.checkpoint.every_n_epochs,
        run_cfg.checkpoint.min_interval_s,
        lambda: {
            "config": config,
            "overrides": overrides,
            "output_dir": str(output_dir.resolve()),
            "run_id": tracker.run_id if tracker else None,
            "uri": tracker.uri if tracker else None,
        },
    )
    if run_cfg.tracking.enabled:
        uri = parent["uri"] if parent else resolve_uri(run_cfg.tracking.uri)
        start = describe_run(
            config=config,
            overrides=overrides,
            net=net,
            model_name=run_cfg.model.name,
            dataset=dataset,
            loss=loss,
            uri=(resume and resume["uri"]) or uri,
            experiment=run_cfg.experiment,
            log_model=run_cfg.tracking.log_model,
            outage_wait_s=run_cfg.tracking.outage_wait_s,
            output_dir=output_dir.resolve(),
            checkpoint_path=checkpointer.path,
            sweep=sweep_job(parent, HydraConfig.get().job.num) if parent else None,
            resume_run_id=resume and resume["run_id"],
            history=resume["state"].history if resume else (),
        )
        tracker = tracking_worker().start_run(start)
    steps = -(-dataset.train.X.shape[0] // run_cfg.batch)
    progress = Progress(run_cfg.epochs, steps, show_bar=run_cfg.progress)
    try:
        outcome = experiment.run(
            run_cfg,
            output_dir,
            prepared=prepared,
            resume=resume and resume["state"],
            on_epoch=_both(progress.on_epoch, tracker and tracker.log_epoch),
            on_step=_step_callback(progress, tracker, run_cfg.tracking.log_every_n_steps, steps),
            on_snapshot=checkpointer,
        )
    except BaseException as err:
        progress.close()
        killed = isinstance(err, KeyboardInterrupt | Terminated)
        if tracker is not None:
            reason = "interrupted" if killed else f"{type(err).__name__}: {err}"
            info = tracker.end("KILLED" if killed else "FAILED", reason, wait=not in_sweep)
            if isinstance(info, messages.Unsent):
                report_tracked(info)
        if killed:
            report_interrupt(err, checkpointer, tracker)
        raise
    progress.close()
    checkpointer.write()
    if outcome.fit.stopped_early:
        log.info(f"early stopping: best val_loss at epoch {outcome.fit.best_epoch}")
    epochs = len(outcome.fit.history) - (resume["state"].epoch if resume else 0)
    log.info(f"trained {epochs} epochs in {outcome.train_seconds:.3f} s")
    log.info(f"test  {format_metrics(outcome.test_metrics)}")
    log.info(f"weights written to {outcome.weights_path}")
    if tracker is not None:
        final = dict(outcome.test_metrics)
        if outcome.fit.best_epoch is not None:
            final["best_epoch"] = outcome.fit.best_epoch
        step = len(outcome.fit.history)
        if in_sweep:  # logged while the next job trains; the sweep's end waits for it
            tracker.finish(outcome.weights_path, final, step, wait=False)
            return outcome.objective
        log.info("logging the run to MLflow...")
        try:
            info = tracker.finish(outcome.weights_path, final, step)
        except (KeyboardInterrupt, Terminated):
            log.error("interrupted while logging: the tracking worker finishes the run by itself")
            raise
        report_tracked(info)
    return outcome.objective


def report_tracked(reply):
    """Where the run went, or, after an outage, where its unsent part waits for upload."""
    info = reply.info
    if not isinstance(reply, messages.Unsent):
        log.info(f"MLflow run {info.run_name} ({info.run_id}) in {info.uri}")
        return
    log.warning(
        f"MLflow at {info.uri} did not come back ({reply.reason}); what it lacks of run "
        f"{info.run_name} is saved in {reply.path}"
    )
    log.warning(f"Upload it later with: python -m runner.tracking.upload {reply.path}")


def load_resume(run_cfg, overrides):
    """The checkpoint that resume= names, and the run it continues, exactly as configured."""
    others = [o for o in overrides if not o.startswith(("resume=", "hydra"))]
    if others:
        raise ConfigError(
            f"resume= continues a run exactly as it was configured; drop the other overrides "
            f"{others}"
        )
    path = find_checkpoint(run_cfg.resume, resolve_uri(run_cfg.tracking.uri, create=False))
    state, extra = load_checkpoint(path)
    config = extra["config"]
    resumed_cfg = to_run_config(OmegaConf.merge(OmegaConf.structured(RunConfig), config))
    if resumed_cfg.tracking.enabled and extra.get("uri"):
        check_reachable(extra["uri"])
    output_dir = Path(extra["output_dir"])
    log.info(f"resuming {path} after epoch {state.epoch} of {resumed_cfg.epochs}")
    resume = {"state": state, "run_id": extra.get("run_id"), "uri": extra.get("uri")}
    return resumed_cfg, config, output_dir, extra["overrides"], resume


def report_interrupt(err, checkpointer, tracker):
    """Write the last completed epoch and end with the exact command that resumes it."""
    path = checkpointer.write()
    epoch = checkpointer.latest.epoch if checkpointer.latest else 0
    signal_name = "SIGTERM" if isinstance(err, Terminated) else "Ctrl-C"
    status = "; the MLflow run is marked KILLED" if tracker is not None else ""
    log.error(f"{signal_name}: stopped after epoch {epoch}; checkpoint {path}{status}")
    target = tracker.run_id if tracker is not None and tracker.run_id else path
    log.error(f"Resume with: python -m runner resume={target}")


def _both(first, second):
    if second is None:
        return first

    def call(*args):
        first(*args)
        second(*args)

    return call


def _step_callback(progress, tracker, every_n, steps_per_epoch):
    """Per-step hook: the bar on a terminal, the step loss every n steps; None when idle."""
    log_steps = tracker is not None and every_n > 0
    if not (progress.show_bar or log_steps):
        return None

    def on_step(epoch, step, loss):
        if progress.show_bar:
            progress.on_step(epoch, step, loss)
        global_step = (epoch - 1) * steps_per_epoch + step + 1
        if log_steps and global_step % every_n == 0:
            tracker.log_metrics(global_step, {"train_step_loss": loss})

    return on_step


def _may_be_tracked(args):
    """A single run that may be tracked (no -m, --help, ...): its worker starts at once."""
    return not any(a == "tracking.enabled=false" or a.startswith("-") for a in args)


def cli():
    """Refuse overrides that could run code, start the tracking worker before Hydra composes
    the config, run Hydra, and end a crashed or interrupted sweep's parent run."""
    try:
        check_overrides(sys.argv[1:])
    except ConfigError as err:
        print(f"Error: {err}", file=sys.stderr)
        sys.exit(1)
    if _may_be_tracked(sys.argv[1:]):
        tracking_worker()  # MLflow's start-up overlaps Hydra's and the data's
    try:
        main()
    except KeyboardInterrupt:
        end_open_sweep("KILLED", "the sweep was interrupted")
        raise
    except SystemExit as err:  # how Hydra ends a sweep that crashed, after printing why
        if err.code in (130, 143):  # a job's Ctrl-C or SIGTERM ends the sweep
            end_open_sweep("KILLED", "the sweep was interrupted")
        else:
            end_open_sweep("FAILED", f"the sweep stopped with exit code {err.code}; see its output")
        raise
    except BaseException as err:
        end_open_sweep("FAILED", f"the sweep crashed: {type(err).__name__}: {err}")
        raise


if __name__ == "__main__":
    cli()
