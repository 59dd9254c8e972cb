"""``plan=true``: what a run or a sweep would do, printed before anything is trained or written.

``python -m runner plan=true`` composes the config as Hydra would, builds the run's parts with
``pipeline.prepare`` (the data set loaded and checked against the model by the run's own
checks) and prints the layer table. ``python -m runner -m ... plan=true`` lists the jobs the
basic sweeper would launch, each composed and prepared the same way, with an estimate of the
time from earlier runs (runner/sweeps/estimate.py); for Optuna, the search space and the
trials left. The plan composes the config itself with Hydra's compose API and never calls
Hydra's run or multirun: no output or sweep folder, MLflow run, parent run or tracking worker.
"""

import copy
import sys
from dataclasses import dataclass

from hydra import initialize_config_dir
from hydra._internal.utils import get_args_parser, run_and_report
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict, read_write

from runner import pipeline
from runner.config import CONF_DIR, to_run_config
from runner.errors import ConfigError, RunnerError
from runner.sweeps import jobs, resume
from runner.sweeps.estimate import BASIS, Estimate, estimate_job
from runner.sweeps.identity import job_identity
from runner.tracking import tags
from runner.tracking.lookup import child_attempts, finished_jobs

# Hydra's flags that show something and run nothing: with them, plan=true is left to Hydra.
SHOWING_FLAGS = ("help", "hydra_help", "cfg", "info", "shell_completion")
DONE = "plan=true: nothing was trained or written; the same command without plan=true runs it"


def run_if_asked(args):
    """Print the plan and exit when the command line sets plan=true; otherwise return.

    args : ``sys.argv[1:]``, already checked by ``runner.overrides``. Exits 0 after a plan, 1
    with the run's own one-line error when the run (or a job of the sweep) would fail at once.
    """
    command = get_args_parser().parse_args(args)
    if any(getattr(command, flag) for flag in SHOWING_FLAGS):
        return
    try:
        if _sets_plan(command.overrides) and _print_plan(command):
            sys.exit(0)
    except RunnerError as err:
        print(f"Error: {err}", file=sys.stderr)
        sys.exit(1)


def _sets_plan(overrides):
    """True when an override sets ``plan`` (its value is read from the composed config)."""
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.key_or_group != "plan" or override.is_delete():
            continue
        if override.is_sweep_override():
            raise ConfigError(
                f"override {override.input_line!r} sweeps plan; plan takes one value: plan=true"
            )
        return True
    return False


def _without_plan(arguments):
    """The sweep's arguments but plan=true: the jobs the same command without it would run."""
    parser = OverridesParser.create()
    return [arg for arg in arguments if parser.parse_override(arg).key_or_group != "plan"]


def _print_plan(command):
    """Compose as Hydra would and print the plan; False when the config says plan=false."""
    mode = RunMode.MULTIRUN if command.multirun else RunMode.RUN
    with initialize_config_dir(str(CONF_DIR), job_name="runner", version_base="1.3"):
        hydra = GlobalHydra.instance().hydra
        cfg = run_and_report(
            lambda: hydra.compose_config(command.config_name or "config", command.overrides, mode)
        )
        if not cfg.plan:
            return False
        if mode == RunMode.RUN:
            _print_run(cfg)
        elif cfg.hydra.sweeper._target_ in jobs.OPTUNA:
            _print_study(cfg)
        else:
            _print_sweep(cfg, hydra.config_loader)
    return True


def _job_config(cfg):
    """The config a job sees: Hydra's node moved into HydraConfig, as Hydra's run_job does."""
    HydraConfig.instance().set_config(cfg)
    job = copy.deepcopy(cfg)
    with read_write(job), open_dict(job):
        del job["hydra"]
    return job


def _print_run(cfg):
    job = _job_config(cfg)
    run_cfg = to_run_config(job)
    if run_cfg.resume:
        raise ConfigError(
            "plan=true plans a new run, and resume= continues one exactly as it was "
            "configured; drop plan=true"
        )
    parts = pipeline.prepare(run_cfg)
    print(parts.net.summary(run_cfg.model.name))
    print(pipeline.describe_setup(run_cfg, parts))
    print(f"job identity {job_identity(OmegaConf.to_container(job, resolve=True))}")
    print(DONE)


@dataclass
class PlannedJob:
    """One job of a planned sweep, as its line shows it."""

    number: int  # the job's number, as Hydra numbers it
    overrides: list  # the job's overrides, as Hydra prints them when it launches the job
    layers: list | None  # the model's layer sizes; None when the config is refused
    params: int | None  # the network's parameter count
    identity: str  # runner/sweeps/identity.py: the key finished runs are matched by
    estimate: Estimate | None  # from earlier runs in the store; None without any
    error: str | None = None  # why the job would fail at once, in the run's own words
    finished: bool = False  # a FINISHED run of it is under the sweep's parent: it is skipped


def plan_job(number, overrides, cfg):
    """The PlannedJob of a job's composed config (with its ``hydra`` node)."""
    job = _job_config(cfg)
    identity = job_identity(OmegaConf.to_container(job, resolve=True))
    try:
        run_cfg = to_run_config(job)
        parts = pipeline.prepare(run_cfg)  # the run's own checks: data against the model
    except RunnerError as err:
        return PlannedJob(number, list(overrides), None, None, identity, None, str(err))
    layers = list(run_cfg.model.layers)
    estimate = estimate_job(
        run_cfg.tracking.uri, run_cfg.experiment, layers, run_cfg.dataset.name, run_cfg.epochs
    )
    return PlannedJob(number, list(overrides), layers, parts.net.n_params, identity, estimate)


def _print_sweep(cfg, config_loader):
    if cfg.hydra.sweeper._target_ not in (jobs.BASIC, jobs.GRID):
        sweeper = cfg.hydra.runtime.choices.get("hydra/sweeper")
        raise ConfigError(
            f"plan=true lists the jobs of the basic and Optuna sweepers, not "
            f"hydra/sweeper={sweeper}; drop plan=true"
        )
    arguments = _without_plan(jobs.sweep_arguments(cfg))
    composed = run_and_report(lambda: jobs.basic_jobs(cfg, config_loader, arguments))
    planned = [plan_job(number, *job) for number, job in enumerate(composed)]
    earlier = resume.earlier_sweep(cfg)
    if earlier:
        finished = finished_jobs(*earlier[:2], earlier[2].info.run_id)
        for job in planned:
            job.finished = job.identity in finished
    to_run = [job for job in planned if not job.finished]
    print(f"Plan of a sweep of {len(planned)} jobs")
    print(_table(planned))
    if earlier:
        parent = earlier[2].info
        print(f"continues MLflow parent run {parent.run_name} ({parent.run_id})")
    print(
        f"{len(planned)} jobs: {len(planned) - len(to_run)} already finished, {len(to_run)} to run"
    )
    estimated = [job.estimate for job in to_run if job.estimate]
    if estimated:
        print(
            f"Estimated time: {sum(e.seconds for e in estimated):.1f} s for {len(estimated)} of "
            f"the {len(to_run)} jobs to run, one after another, from {BASIS} in "
            f"{estimated[0].store}"
        )
    else:
        print(f"No time estimate: the store has no earlier runs to judge by ({BASIS})")
    failing = [job for job in planned if job.error]
    for job in failing:
        print(f"job {job.number} would fail at once: {job.error}")
    if failing:
        raise ConfigError(
            f"{len(failing)} of {len(planned)} jobs of the sweep would fail at once (listed "
            f"above); change or leave out their overrides"
        )
    print(DONE)


def _table(planned):
    cells = [("#", "overrides", "layers", "params", "identity", "time (of runs)")]
    for job in planned:
        time = f"~{job.estimate.seconds:.1f} s (of {job.estimate.runs})" if job.estimate else "-"
        if job.finished:
            time = "finished: skipped"
        cells.append(
            (
                str(job.number),
                " ".join(job.overrides),
                str(job.layers) if job.layers else "fails (below)",
                f"{job.params:,}" if job.params is not None else "-",
                job.identity,
                time,
            )
        )
    widths = [max(len(line[col]) for line in cells) for col in range(len(cells[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def _print_study(cfg):
    sweeper = cfg.hydra.sweeper
    space, fixed = jobs.optuna_space(_without_plan(jobs.sweep_arguments(cfg)))
    earlier = resume.earlier_sweep(cfg)
    done = 0
    where = "(no earlier run of this sweep in the store)"
    if earlier:
        client, experiment_id, parent = earlier
        runs = child_attempts(client, experiment_id, parent.info.run_id)
        done = sum(
            run.info.status == "FINISHED" and tags.SWEEP_JOB in run.data.tags for run in runs
        )
        where = f"under MLflow parent run {parent.info.run_name} ({parent.info.run_id})"
    left = max(sweeper.n_trials - done, 0)
    print(f"Plan of an Optuna study {sweeper.study_name!r}, {sweeper.direction} the objective")
    print(f"Trials: n_trials={sweeper.n_trials}; {done} finished {where}; {left} left")
    print("Search space:")
    for key, distribution in space.items():
        print(f"  {key}: {distribution}")
    for key, value in fixed.items():
        print(f"  {key}={value} (fixed)")
    print(DONE)
