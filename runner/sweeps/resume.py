"""Running a sweep again: its parent run found and reopened, its finished jobs left out.

The sweep's start (``callback.SweepTracking``) looks for the newest parent run with the
sweep's identity (``sweep_identity_of``) and reopens it; the sweepers (``grid_sweeper``,
``optuna_sweeper``) then ask ``finished_jobs`` which jobs already have a FINISHED child there,
run the others, and mark the earlier failed or stopped attempts of the jobs they run again
superseded. Everything here runs in the launching process, before the jobs are launched, so
it works the same with every launcher.
"""

import logging

from omegaconf import OmegaConf

from runner.sweeps.identity import job_identity, sweep_identity
from runner.tracking import tags
from runner.tracking.lookup import (
    child_attempts,
    existing_experiment,
    finished_jobs,
    latest_sweep,
)

# The sweepers (hydra.sweeper._target_) that leave out finished jobs: only their sweeps
# continue a parent run; any other sweeper (hydra/sweeper=basic) starts a new one each time.
RESUMABLE_SWEEPERS = (
    "hydra_plugins.runner_sweepers.sweepers.GridSweeper",
    "hydra_plugins.runner_sweepers.sweepers.ResumableOptunaSweeper",
)
LEFT_RUNNING = "left RUNNING by an earlier run of its sweep that was killed"
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


def reopen(client, parent, experiment_id):
    """Make an earlier parent run the running sweep's again.

    Its children still RUNNING were left so by a sweep killed outright (nothing else is
    running this sweep): they are ended FAILED, and their jobs run again.
    """
    run_id = parent.info.run_id
    client.update_run(run_id, status="RUNNING")
    if "failure_reason" in parent.data.tags:
        client.delete_tag(run_id, "failure_reason")
    for child in child_attempts(client, experiment_id, run_id):
        if child.info.status == "RUNNING":
            client.set_tag(child.info.run_id, "failure_reason", LEFT_RUNNING)
            client.set_terminated(child.info.run_id, "FAILED")


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
    from mlflow import MlflowClient

    client = MlflowClient(parent["uri"])
    finished = finished_jobs(client, parent["experiment_id"], parent["run_id"])
    pending = [number for number, identity in enumerate(identities) if identity not in finished]
    done = len(identities) - len(pending)
    log.info(f"{len(identities)} jobs: {done} already finished, {len(pending)} to run")
    if not pending:
        log.info(f"nothing to train: every job has a FINISHED run in parent {parent['run_id']}")
    return pending


def supersede(parent, identities):
    """Tag the earlier attempts of these jobs that did not finish superseded: they run again."""
    from mlflow import MlflowClient

    client = MlflowClient(parent["uri"])
    wanted = set(identities)
    for run in child_attempts(client, parent["experiment_id"], parent["run_id"]):
        data = run.data.tags
        if (
            run.info.status != "FINISHED"
            and data.get(tags.JOB_IDENTITY) in wanted
            and tags.SUPERSEDED not in data
        ):
            client.set_tag(run.info.run_id, tags.SUPERSEDED, "true")


def child_trials(parent):
    """Every child run of the sweep's parent that has a job number (an Optuna sweep's trials)."""
    from mlflow import MlflowClient

    runs = child_attempts(MlflowClient(parent["uri"]), parent["experiment_id"], parent["run_id"])
    return [run for run in runs if tags.SWEEP_JOB in run.data.tags]


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
