"""Running a sweep again: its parent run found and reopened, its finished jobs left out.

The sweep's start (``callback.SweepTracking``) has its tracking worker look for the newest
parent run with the sweep's identity (``sweep_identity_of``) and reopen it
(``runner.tracking.parent_runs``); the sweepers (``grid_sweeper``, ``optuna_sweeper``) then
ask which jobs already have a FINISHED child there (``pending_jobs``), run the others, and mark
the earlier failed or stopped attempts of the jobs they run again superseded. The store work is
the worker's, asked from the launching process before the jobs are launched, so it works the
same with every launcher and this process does not import MLflow.
"""

import logging
from functools import partial

from omegaconf import OmegaConf

from runner.sweeps.identity import job_identity, sweep_identity
from runner.sweeps.parent import sweep_run
from runner.tracking import messages
from runner.tracking.client import tracking_worker
from runner.tracking.lookup import existing_experiment, latest_sweep

# The sweepers (hydra.sweeper._target_) that leave out finished jobs: only their sweeps
# continue a parent run; any other sweeper (hydra/sweeper=basic) starts a new one each time.
RESUMABLE_SWEEPERS = (
    "hydra_plugins.runner_sweepers.sweepers.GridSweeper",
    "hydra_plugins.runner_sweepers.sweepers.ResumableOptunaSweeper",
)
log = logging.getLogger("runner")


def task_config(config):
    """A composed config without Hydra's node, as plain resolved data (what a job logs)."""
    kept = OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
    return OmegaConf.to_container(kept, resolve=True)


def sweep_identity_of(config):
    """The identity of the sweep a composed multirun config (with its ``hydra`` node) runs."""
    hydra_cfg = config.hydra
    return sweep_identity(
        overrides=list(hydra_cfg.overrides.task),
        sweeper=hydra_cfg.runtime.choices.get("hydra/sweeper", "basic"),
        sweeper_config=OmegaConf.to_container(hydra_cfg.sweeper, resolve=False),
        base_config=task_config(config),
    )


def is_resumable(config):
    return config.hydra.sweeper.get("_target_") in RESUMABLE_SWEEPERS


def job_identities(hydra_context, config, jobs):
    """The identity of each job (a list of overrides), from the config Hydra composes for it.

    The same composition Hydra's launchers make for the job, so it also checks that every job
    composes before any starts; the sweeper's loader (``compose_once.ComposedOnce``) keeps it
    for the launcher.
    """
    loader = hydra_context.config_loader
    return [job_identity(task_config(loader.compose(config, job))) for job in jobs]


def pending_jobs(parent, identities):
    """The numbers of the jobs still to run; prints how many finished before and how many run."""
    asked = tracking_worker().ask(partial(messages.FindFinishedJobs, sweep=sweep_run(parent)))
    finished = asked.result()
    pending = [number for number, identity in enumerate(identities) if identity not in finished]
    done = len(identities) - len(pending)
    log.info(f"{len(identities)} jobs: {done} already finished, {len(pending)} to run")
    if not pending:
        log.info(f"nothing to train: every job has a FINISHED run in parent {parent['run_id']}")
    return pending


def supersede(parent, identities):
    """Tag the earlier attempts of these jobs that did not finish superseded: they run again."""
    request = partial(messages.SupersedeJobs, sweep=sweep_run(parent), identities=tuple(identities))
    tracking_worker().ask(request).result()


def child_trials(parent):
    """A messages.Trial per child run of the sweep's parent that has a job number (an Optuna
    sweep's trials), oldest first."""
    return tracking_worker().ask(partial(messages.FindTrials, sweep=sweep_run(parent))).result()


def earlier_sweep(config):
    """(client, experiment id, parent run) of the sweep this multirun config would continue,
    or None: for a plan, so the store is only read (a SQLite file that does not exist is not
    opened, since MLflow would create it) and a store that cannot be read counts as none."""
    if not config.tracking.enabled or config.sweep.restart or not is_resumable(config):
        return None
    from runner.tracking.client import resolve_uri

    uri = resolve_uri(config.tracking.uri, create=False)
    try:
        found = existing_experiment(uri, config.experiment)
        parent = found and latest_sweep(*found, sweep_identity_of(config))
    except Exception as err:  # an unreachable server or unreadable store: nothing finished
        log.warning(f"plan: {uri} cannot be read ({err}); no job is counted as finished")
        return None
    return parent and (*found, parent)


def study_name(name, parent_run_id):
    """The study of one sweep: ``hydra.sweeper.study_name`` and its parent run's id (a sweep
    run again continues it; ``sweep.restart=true``, a new parent, starts a new one)."""
    return f"{name or 'runner'}-{parent_run_id}"
