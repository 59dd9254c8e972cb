"""One run, top to bottom: config → dataset → model → trainer → tracker → run → test → weights.

``train(job)`` is the whole run as the command line starts it; read it first. ``prepare`` and
``run`` are its two halves without the tracker, the checkpoints or the progress bar, so tests
and notebooks can train a config directly. Hydra's composition and callbacks stay in ``__main__``:
a ``Job`` arrives here as plain data (importing this module still loads hydra and omegaconf,
through the structured configs of ``runner.config``). Every call into ``runner.tracking`` is
in the marked section at the end.
"""

import contextlib
import logging
import re
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from runner import streams
from runner.checkpointing import Checkpointer, checkpoint_path, find_checkpoint
from runner.config import RunConfig, model_names_with_inputs, run_config_from_dict
from runner.datasets import Dataset, load_dataset
from runner.engine import MLP, default_loss_for
from runner.engine.losses import check_pairing, get_loss
from runner.errors import ConfigError, DivergenceError, WeightsError
from runner.overrides import override_key
from runner.progress import Progress, format_metrics
from runner.training import (
    OPTIMIZERS,
    FitResult,
    Schedule,
    Trainer,
    TrainingState,
    evaluate,
    load_checkpoint,
    optimizer_settings,
)

log = logging.getLogger("runner")

WEIGHTS_FILE = "weights.npz"

# Words in the engine's messages → the config keys that set them, so that an error on the
# command line names what to write there (the engine speaks only of its own arguments).
CONFIG_KEYS = {
    "momentum": "optimizer.momentum",
    "nesterov": "optimizer.nesterov",
    "weight_decay": "optimizer.weight_decay",
    "betas": "optimizer.betas",
    "eps": "optimizer.eps",
    "schedule": "optimizer.schedule",
    "divergence factor": "divergence_factor",
    "standardised inputs": "standardised inputs (dataset.standardize=true)",
}
_ENGINE_WORDS = re.compile(r"\b(" + "|".join(map(re.escape, CONFIG_KEYS)) + r")\b")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup runs as for Ctrl-C."""


@dataclass
class Job:
    """A run as the entry point hands it over: the config and where Hydra put the run."""

    cfg: RunConfig
    config: dict  # the same config as plain data, resolved: logged and checkpointed
    overrides: list  # the command line's overrides (Hydra's task overrides)
    output_dir: Path
    sweep_job: int | None = None  # the job's number in a sweep; None for a single run


@dataclass
class Parts:
    """Everything a run trains, built and checked before the first step."""

    dataset: Dataset
    net: MLP
    optimizer: object  # one of runner.training.OPTIMIZERS' classes
    loss: str  # the resolved loss name (never "auto")


@dataclass
class Resumed:
    """A checkpoint to continue and the tracked run it belongs to."""

    state: TrainingState
    run_id: str | None
    uri: str | None


@dataclass
class Outcome:
    """What a finished run produced."""

    net: MLP
    dataset: Dataset
    fit: FitResult
    train_seconds: float  # wall time of the epochs alone, without set-up, test or saving
    val_metrics: dict  # of the final weights
    test_metrics: dict
    weights_path: Path
    objective: float  # what sweeps minimise: see final_objective


def train(job: Job) -> float:
    """Run one experiment as the command line asks; return its objective for sweepers."""
    parent = parent_run() if job.sweep_job is not None else None
    resumed = None
    if job.cfg.resume:
        job, resumed = load_resume(job)
    elif job.cfg.tracking.enabled and not parent:  # a sweep's start checked its store
        check_tracking_reachable(job.cfg)
    cfg = job.cfg
    if not cfg.tracking.enabled:
        release_tracking_worker()
    parts = prepare(cfg)
    log.info(parts.net.summary(cfg.model.name))
    for line in describe_setup(cfg, parts).splitlines():
        log.info(line)
    job.output_dir.mkdir(parents=True, exist_ok=True)  # Hydra makes it; a caller may not have
    tracker = start_tracker(job, parts, resumed, parent) if cfg.tracking.enabled else None
    checkpointer = Checkpointer(
        job.output_dir,
        cfg.checkpoint.every_n_epochs,
        cfg.checkpoint.min_interval_s,
        describe=partial(checkpoint_extra, job, tracker),
    )
    steps = -(-parts.dataset.train.X.shape[0] // cfg.batch)
    progress = Progress(cfg.epochs, steps, show_bar=cfg.progress)
    on_epoch, on_step = progress_callbacks(progress, tracker, cfg.tracking.log_every_n_steps, steps)
    try:
        outcome = run(
            cfg,
            job.output_dir,
            parts=parts,
            resume=resumed and resumed.state,
            on_epoch=on_epoch,
            on_step=on_step,
            on_snapshot=checkpointer,
        )
    except BaseException as err:
        progress.close()
        killed = isinstance(err, KeyboardInterrupt | Terminated)
        if tracker is not None:
            end_tracker(tracker, err, killed, wait=job.sweep_job is None)
        if killed:
            report_interrupt(err, checkpointer, tracker)
        raise
    progress.close()
    checkpointer.write()
    if outcome.fit.stopped_early:
        log.info(f"early stopping: best val_loss at epoch {outcome.fit.best_epoch}")
    epochs = len(outcome.fit.history) - (resumed.state.epoch if resumed else 0)
    log.info(f"trained {epochs} epochs in {outcome.train_seconds:.3f} s")
    log.info(f"test  {format_metrics(outcome.test_metrics)}")
    log.info(f"weights written to {outcome.weights_path}")
    if tracker is not None:
        finish_tracker(tracker, outcome, wait=job.sweep_job is None)
    return outcome.objective


def prepare(cfg: RunConfig) -> Parts:
    """The data set, the network, its optimizer and the loss, checked before the first step."""
    loss = resolve_loss(cfg)
    dataset = load_dataset(
        cfg.dataset.spec(seed=cfg.seed, n_outputs=cfg.model.layers[-1], dtype=cfg.dtype)
    )
    check_model_fits_data(cfg, dataset)  # load_dataset already refused a set without train rows
    net = build_model(cfg, streams.generator(cfg.seed, streams.INIT))
    return Parts(dataset, net, build_optimizer(cfg, net), loss)


def run(
    cfg: RunConfig,
    output_dir,
    *,
    parts=None,
    resume=None,
    on_epoch=None,
    on_step=None,
    on_snapshot=None,
) -> Outcome:
    """Train and test the model the config describes; write its weights to ``output_dir``.

    parts : what ``prepare(cfg)`` built (built here when None).
    resume : a TrainingState (from a checkpoint) to continue from instead of epoch 0.
    on_epoch, on_step, on_snapshot : passed to ``Trainer.run``.
    """
    parts = parts or prepare(cfg)
    trainer = build_trainer(cfg, parts)
    if resume is not None:
        trainer.restore(resume)
    started = time.perf_counter()
    with config_keys_in_errors():
        fit = trainer.run(on_epoch=on_epoch, on_step=on_step, on_snapshot=on_snapshot)
    train_seconds = time.perf_counter() - started
    net, dataset, loss = parts.net, parts.dataset, parts.loss
    scale = dataset.target_scale
    val_metrics = evaluate(net, dataset.val, loss, task=dataset.task, target_scale=scale)
    test_metrics = evaluate(
        net, dataset.test, loss, task=dataset.task, target_scale=scale, prefix="test"
    )
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    weights_path = net.save(output_dir / WEIGHTS_FILE)
    objective = final_objective(parts, fit, val_metrics)
    return Outcome(
        net, dataset, fit, train_seconds, val_metrics, test_metrics, weights_path, objective
    )


def final_objective(parts: Parts, fit: FitResult, val_metrics):
    """The final weights' validation loss; without a val split the last epoch's train loss,
    or, when no epoch ran (epochs=0 only evaluates), the train loss of the weights as they are."""
    if "val_loss" in val_metrics:
        return val_metrics["val_loss"]
    if fit.history:
        return fit.history[-1]["train_loss"]
    dataset = parts.dataset
    metrics = evaluate(parts.net, dataset.train, parts.loss, task=dataset.task, prefix="train")
    return metrics["train_loss"]


def resolve_loss(cfg: RunConfig):
    """The loss name: ``auto`` becomes the one that fits the output activation."""
    activations = cfg.model.layer_activations()
    name = default_loss_for(activations[-1]) if cfg.loss.name == "auto" else cfg.loss.name
    check_pairing(get_loss(name), activations[-1], cfg.model.layers[-1])
    return name


def check_model_fits_data(cfg: RunConfig, dataset):
    """Refuse a model whose first or last layer does not match the data set."""
    layers, name = list(cfg.model.layers), cfg.model.name
    if layers[0] != dataset.n_features:
        fitting = model_names_with_inputs(dataset.n_features)
        sizes = [dataset.n_features, *layers[1:-1], dataset.n_outputs]
        resized = f"model.layers=[{', '.join(map(str, sizes))}]"
        hint = f"model={fitting[0]}" if fitting else resized
        encoded = dataset.encoding.describe()
        encoded = f" after one-hot encoding ({encoded})" if encoded else ""
        raise ConfigError(
            f"model {name} takes {layers[0]} input features but dataset '{dataset.name}' has "
            f"{dataset.n_features}{encoded}; pick a model whose first layer is "
            f"{dataset.n_features} (e.g. {hint})"
        )
    if layers[-1] != dataset.n_outputs:
        what = (
            f"{dataset.n_classes} classes"
            if dataset.task == "classification"
            else f"{dataset.n_outputs} regression target(s)"
        )
        raise ConfigError(
            f"model {name} has {layers[-1]} outputs but dataset '{dataset.name}' has {what}; "
            f"set model.layers=[{', '.join(map(str, layers[:-1]))}, {dataset.n_outputs}] "
            f"or pick another model"
        )


def build_model(cfg: RunConfig, rng):
    """The network the model config describes, from ``init_from``'s weights when set."""
    m = cfg.model
    try:
        net = MLP(
            list(m.layers),
            m.layer_activations(),
            bias=m.bias,
            init=m.init,
            init_std=m.init_std,
            dtype=cfg.dtype,
            rng=rng,
        )
    except MemoryError as err:
        raise ConfigError(
            f"model.layers={list(m.layers)} is too large for this machine ({err}); "
            f"use smaller layers"
        ) from None
    if cfg.init_from:
        try:
            net.load_weights(cfg.init_from)
        except WeightsError as err:
            raise WeightsError(f"init_from={cfg.init_from}: {err}") from None
    return net


def build_optimizer(cfg: RunConfig, net):
    """The update rule that optimizer.name names, given the settings it reads."""
    o = cfg.optimizer
    rule = OPTIMIZERS[o.name]
    with config_keys_in_errors():
        return rule(net, **{key: getattr(o, key) for key in optimizer_settings(o.name)})


def build_trainer(cfg: RunConfig, parts: Parts):
    """The Trainer for a config and what ``prepare`` built for it; batch order from the seed."""
    o, stopping = cfg.optimizer, cfg.early_stopping
    return Trainer(
        parts.net,
        parts.optimizer,
        parts.loss,
        parts.dataset,
        epochs=cfg.epochs,
        batch_size=cfg.batch,
        schedule=Schedule(cfg.lr, o.schedule, o.step_size, o.gamma, o.min_lr),
        rng=streams.generator(cfg.seed, streams.BATCHES),
        shuffle=cfg.shuffle,
        patience=stopping.patience,
        min_delta=stopping.min_delta,
        restore_best=stopping.restore_best,
        divergence_factor=cfg.divergence_factor,
    )


@contextlib.contextmanager
def config_keys_in_errors():
    """Re-raise the engine's ConfigError or DivergenceError with config keys for its words."""
    try:
        yield
    except (ConfigError, DivergenceError) as err:
        message = _ENGINE_WORDS.sub(lambda match: CONFIG_KEYS[match[0]], str(err))
        raise type(err)(message) from None


def describe_setup(cfg: RunConfig, parts: Parts):
    """The data set's rows and the training settings, then what was encoded, dropped or filled,
    a line each: a run logs it, a plan prints it."""
    dataset = parts.dataset
    settings = (
        f"dataset {dataset.name}: {dataset.train.X.shape[0]} train, {dataset.val.X.shape[0]} "
        f"val, {dataset.test.X.shape[0]} test rows; loss {parts.loss}; batch {cfg.batch}, "
        f"lr {cfg.lr:g}, {cfg.epochs} epochs, {cfg.dtype}"
    )
    return "\n".join([settings, *dataset.notes])


def load_resume(job: Job):
    """The checkpoint that resume= names, and the job it continues, exactly as configured.

    The command line may repeat the run's own overrides (up-arrow, then resume=...); one that
    would change its config is refused, naming it and the run's value.
    """
    path = find_checkpoint(job.cfg.resume, store_uri(job.cfg))
    try:
        state, extra = load_checkpoint(path)
    except WeightsError as err:
        raise WeightsError(f"resume={job.cfg.resume}: {err}") from None
    changes = overrides_changing(job.overrides, job.config, extra["config"])
    if changes:
        raise ConfigError(
            f"resume={job.cfg.resume} continues a run as it was configured, and "
            f"{'; '.join(changes)}; drop what differs, or train a new run without resume="
        )
    cfg = run_config_from_dict(extra["config"])
    if cfg.tracking.enabled and extra.get("uri"):
        check_tracking_reachable(cfg, extra["uri"])
    log.info(f"resuming {path} after epoch {state.epoch} of {cfg.epochs}")
    resumed_job = replace(
        job,
        cfg=cfg,
        config=extra["config"],
        overrides=extra["overrides"],
        output_dir=Path(extra["output_dir"]),
    )
    return resumed_job, Resumed(state, extra.get("run_id"), extra.get("uri"))


def overrides_changing(overrides, config, run_config):
    """Of the command line's overrides, those whose key has another value in ``config`` (the
    config they composed) than in ``run_config`` (the resumed run's), each as
    "lr=0.5 differs from the run's lr=0.1"; ``resume=`` and Hydra's own are left out."""
    by_key = {override_key(override): override for override in overrides}  # the last counts
    changes = []
    for key, override in by_key.items():
        if key == "resume" or key.split(".")[0].split("/")[0] == "hydra":
            continue
        ours, theirs = _value_at(config, key), _value_at(run_config, key)
        if ours != theirs:
            shown = theirs.get("name", theirs) if isinstance(theirs, dict) else theirs
            changes.append(f"{override} differs from the run's {key}={shown}")
    return changes


def _value_at(config, dotted_key):
    """The value of a dotted key in nested dicts; None where there is none."""
    for part in dotted_key.split("."):
        if not isinstance(config, dict):
            return None
        config = config.get(part)
    return config


# ---------------------------------------------------------------------------------------------
# Tracking: every call into runner.tracking, and every use of its TrackedRun (the tracker), is
# below; train() above only passes the tracker along. Nothing else in the pipeline imports
# runner.tracking.


def parent_run():
    """The sweep's parent run this job belongs to ({"run_id", "uri", ...}), or None."""
    from runner.sweeps.parent import sweep_parent

    return sweep_parent()


def end_open_sweep(status, reason):
    """End a sweep's parent run that a crash or Ctrl-C left open (for ``__main__``)."""
    from runner.sweeps import callback

    callback.end_open_sweep(status, reason)


def start_tracking_worker():
    """Start this process's tracking worker now, so MLflow's start-up overlaps Hydra's."""
    from runner.tracking.client import tracking_worker

    tracking_worker()


def release_tracking_worker():
    """An untracked run lets go of the worker ``start_tracking_worker`` may have started."""
    from runner.tracking.client import stop_worker

    stop_worker()


def store_uri(cfg: RunConfig):
    """The MLflow store a run id in ``resume=`` is looked up in (never created by it)."""
    from runner.tracking.client import resolve_uri

    return resolve_uri(cfg.tracking.uri, create=False)


def check_tracking_reachable(cfg: RunConfig, uri=None):
    """Fail before training when the store the run logs to (``uri``, else the config's) is away."""
    from runner.tracking.client import check_reachable, resolve_uri

    check_reachable(uri or resolve_uri(cfg.tracking.uri))


def start_tracker(job: Job, parts: Parts, resumed, parent):
    """The run on this process's tracking worker (one worker serves every run of a process),
    tagged with the job's identity (what a sweep run again looks for)."""
    from runner.sweeps.identity import job_identity
    from runner.sweeps.parent import sweep_job
    from runner.tracking import tags
    from runner.tracking.client import resolve_uri, start_message, tracking_worker

    cfg = job.cfg
    uri = parent["uri"] if parent else resolve_uri(cfg.tracking.uri)
    start = start_message(
        config=job.config,
        overrides=job.overrides,
        net=parts.net,
        model_name=cfg.model.name,
        dataset=parts.dataset,
        loss=parts.loss,
        uri=(resumed and resumed.uri) or uri,
        experiment=cfg.experiment,
        log_model=cfg.tracking.log_model,
        outage_wait_s=cfg.tracking.outage_wait_s,
        output_dir=job.output_dir.resolve(),
        checkpoint_path=checkpoint_path(job.output_dir),
        sweep=sweep_job(parent, job.sweep_job) if parent else None,
        resume_run_id=resumed and resumed.run_id,
        history=resumed.state.history if resumed else (),
    )
    start = replace(start, tags={**start.tags, tags.JOB_IDENTITY: job_identity(job.config)})
    return tracking_worker().start_run(start)


def end_tracker(tracker, err, killed, wait):
    """End the tracked run as KILLED (Ctrl-C, SIGTERM) or FAILED with the error as reason.

    wait : a single run waits for its worker; a sweep's job goes on (the sweep's end waits).
    """
    from runner.tracking import messages

    reason = "interrupted" if killed else f"{type(err).__name__}: {err}"
    reply = tracker.end("KILLED" if killed else "FAILED", reason, wait=wait)
    if isinstance(reply, messages.Unsent):
        report_tracked(reply)


def finish_tracker(tracker, outcome: Outcome, wait):
    """Draw the run's figures beside its weights, then send the final metrics and the paths;
    the worker logs the artifacts and the model.

    The figures are drawn here, not in the worker: this process would only wait, while the
    worker is busy with MLflow (see runner.tracking.figures).

    wait : a single run waits until its run is stored and says where it went; a sweep's job
        returns once its run exists and is logged while the next job trains (the sweep's end
        waits, and so does the process before it exits).
    """
    final = dict(outcome.test_metrics)
    if outcome.fit.best_epoch is not None:
        final["best_epoch"] = outcome.fit.best_epoch
    step = len(outcome.fit.history)
    if wait:
        log.info("logging the run to MLflow...")
    try:
        figures = ()
        try:
            from runner.tracking.figures import draw_figures  # matplotlib: a tracked run's end

            figures = draw_figures(
                outcome.fit.history, outcome.net, outcome.dataset, outcome.weights_path.parent
            )
        finally:  # also when drawing was interrupted: the run trained to its end
            tracker.finish(outcome.weights_path, final, step, figures, wait=False)
        if not wait:
            return
        reply = tracker.wait()
    except (KeyboardInterrupt, Terminated):
        log.error("interrupted while logging: the tracking worker finishes the run by itself")
        raise
    report_tracked(reply)


def report_tracked(reply):
    """Where the run went, or, after an outage, where its unsent part waits for upload."""
    from runner.tracking import messages

    info = reply.info
    if not isinstance(reply, messages.Unsent):
        log.info(f"MLflow run {info.run_name} ({info.run_id}) in {info.uri}")
        return
    log.warning(
        f"MLflow at {info.uri} did not come back ({reply.reason}); what it lacks of run "
        f"{info.run_name} is saved in {reply.path}"
    )
    log.warning(f"Upload it later with: python -m runner.tracking.upload {reply.path}")


def checkpoint_extra(job: Job, tracker):
    """What a checkpoint stores beside the state; read at write time, once the run has an id."""
    return {
        "config": job.config,
        "overrides": job.overrides,
        "output_dir": str(job.output_dir.resolve()),
        "run_id": tracker.run_id if tracker else None,
        "uri": tracker.uri if tracker else None,
    }


def report_interrupt(err, checkpointer, tracker):
    """Write the last completed epoch and end with the exact command that resumes it."""
    path = checkpointer.write()
    epoch = checkpointer.latest.epoch if checkpointer.latest else 0
    signal_name = "SIGTERM" if isinstance(err, Terminated) else "Ctrl-C"
    status = "; the MLflow run is marked KILLED" if tracker is not None else ""
    log.error(f"{signal_name}: stopped after epoch {epoch}; checkpoint {path}{status}")
    target = tracker.run_id if tracker is not None and tracker.run_id else path
    log.error(f"Resume with: python -m runner resume={target}")


def progress_callbacks(progress, tracker, every_n, steps_per_epoch):
    """(on_epoch, on_step) for the Trainer: the epoch lines and the bar, and the tracker's metrics.

    on_step is None when nothing listens per step (no bar, no step losses logged), so the
    loop skips the call.
    """
    log_steps = tracker is not None and every_n > 0

    def on_epoch(epoch, metrics):
        progress.on_epoch(epoch, metrics)
        if tracker is not None:
            tracker.log_epoch(epoch, metrics)

    def on_step(epoch, step, loss):
        if progress.show_bar:
            progress.on_step(epoch, step, loss)
        global_step = (epoch - 1) * steps_per_epoch + step + 1
        if log_steps and global_step % every_n == 0:
            tracker.log_metrics(global_step, {"train_step_loss": loss})

    return on_epoch, (on_step if progress.show_bar or log_steps else None)
