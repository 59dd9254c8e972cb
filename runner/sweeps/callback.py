"""One MLflow parent run per Hydra sweep, with a child run per job.

``SweepTracking`` is a Hydra callback (see ``hydra.callbacks`` in runner/conf/config.yaml). At the
start of a multirun, in the launching process and before any job starts, it has the process's
tracking worker create the store's tables, the experiment and the parent run (or reopen the
sweep's earlier one). With the basic launcher the worker does so on the other core while
runner's sweepers compose the jobs' configs, and they wait for the parent run only to launch
(``runner.sweeps.parent``); with any other launcher the callback waits for it. This process
imports MLflow only at the sweep's end. For the basic launcher and the Optuna sweeper, whose
jobs run in this process, the same worker logs the jobs' runs. Jobs learn the parent from an
environment variable, which the joblib launcher's worker processes inherit.

Jobs do not wait for their runs to be logged: each process's tracking worker logs a job's
artifacts and model while the next job trains; a job does return only once its run exists in
the store, and a process waits for its worker's runs before it exits. So at the end the
callback first waits until every child has left RUNNING, then logs the ranked results table
and the best child. A sweep that crashes or is interrupted never reaches ``on_multirun_end``;
the entry point then calls ``end_open_sweep``, which waits the same way and ends the parent
FAILED or KILLED, never RUNNING.
"""

import logging
import os
import time
from functools import partial
from pathlib import Path

from hydra.experimental.callback import Callback

from runner.sweeps import resume
from runner.sweeps.parent import forget_parent, open_later, sweep_parent
from runner.tracking import client as tracking
from runner.tracking import messages, tags
from runner.tracking.client import check_reachable, default_artifact_root, resolve_uri
from runner.tracking.repository import git_tags

POLL_S = 0.5
# How long the end of a sweep waits, beyond tracking.outage_wait_s, for a child that makes no
# progress (its worker killed outright: nothing can end it) before it ends the parent anyway.
STALL_MARGIN_S = 60.0
log = logging.getLogger("runner")


class SweepTracking(Callback):
    """Creates and ends a sweep's parent run; does nothing for single runs."""

    def on_multirun_start(self, config, **kwargs):
        if not config.tracking.enabled:
            tracking.stop_worker()  # the command line's, for a config that turns tracking off
            return
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        hydra_cfg = config.hydra  # HydraConfig.get() is set only inside jobs
        uri = resolve_uri(config.tracking.uri)
        check_reachable(uri)
        overrides = [o for o in hydra_cfg.overrides.task if not o.startswith("hydra.")]
        # The worker imports MLflow, opens the store and opens the parent run on the other
        # core; for the basic launcher and the Optuna sweeper it then logs the jobs' runs.
        asked = tracking.tracking_worker().ask(
            partial(open_sweep_request, config, uri, resume.sweep_identity_of(config))
        )
        fields = {
            "uri": uri,
            "sweep_dir": str(Path(hydra_cfg.sweep.dir).resolve()),
            "stall_s": config.tracking.outage_wait_s + STALL_MARGIN_S,
            "launcher_pid": os.getpid(),
            "swept": swept_keys(overrides, hydra_cfg.sweeper.get("params")),
        }
        open_later(asked, fields)
        launcher = hydra_cfg.runtime.choices.get("hydra/launcher", "basic")
        if launcher != "basic" or not resume.is_resumable(config):
            # Now, not at launch: other launchers may read it from the environment as Hydra
            # sets them up, next (ray_cluster's runtime_env), and other sweepers launch
            # without asking for it.
            sweep_parent()

    def on_multirun_end(self, config, **kwargs):
        parent = sweep_parent()
        if parent is not None:
            wait_for_children(parent)
            finish_sweep(parent)
            forget_parent()


def swept_keys(overrides, search_space):
    """The keys a sweep varies, in command-line order: its sweep overrides (``batch=16,32``,
    ``range()``, ``glob()``...) and the keys of its sweeper's ``params`` (Optuna's space)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    keys = [override.key_or_group for override in parsed if override.is_sweep_override()]
    return keys + [key for key in search_space or {} if key not in keys]


def open_sweep_request(config, uri, identity, number):
    """The OpenSweep request for this sweep: continue its newest parent run, unless
    ``sweep.restart=true`` or the sweeper does not leave out finished jobs (running them all
    again under it would repeat them); else a new one, named and tagged after its overrides."""
    hydra_cfg = config.hydra
    overrides = [o for o in hydra_cfg.overrides.task if not o.startswith("hydra.")]
    sweeper = hydra_cfg.runtime.choices.get("hydra/sweeper", "basic")
    launcher = hydra_cfg.runtime.choices.get("hydra/launcher", "basic")
    shown = [sweeper] if sweeper not in ("basic", "grid") else []
    return messages.OpenSweep(
        request=number,
        uri=uri,
        experiment=config.experiment,
        artifact_root=default_artifact_root(uri),
        identity=identity,
        resume=resume.is_resumable(config) and not config.sweep.restart,
        run_name="-".join(["sweep", *shown, *overrides])[:250],
        tags={
            tags.SWEEP: "true",
            tags.SWEEP_IDENTITY: identity,
            **tags.source(" ".join(["python -m runner -m", *overrides])),
            **git_tags(),
        },
        params={
            "sweep.overrides": " ".join(overrides)[:6000],
            "sweep.sweeper": sweeper,
            "sweep.launcher": launcher,
        },
    )


def wait_for_children(parent):
    """Wait until this process's runs are logged and no child of the sweep is RUNNING.

    The children of other processes (joblib, Ray workers) are logged by those processes'
    workers. Every job that returned has its run in the store; the markers tracked jobs leave
    in the sweep's folder also count a job stopped before its run was created (a crash or
    Ctrl-C of a sweep whose jobs share this machine's folder; a Ray cluster's other nodes do
    not). A child that makes no progress for ``stall_s`` (its worker killed outright) is left.
    """
    from runner.tracking.collector import imports_without_collection

    # This process's first MLflow import and store opening: done while the worker may still be
    # logging the last jobs, before waiting for it.
    with imports_without_collection():
        from runner.tracking.store import open_store

        client = open_store(parent["uri"])
    tracking.drain()
    sweep_dir = Path(parent["sweep_dir"])
    last, changed = None, time.monotonic()
    while True:
        expected = sum(1 for _ in sweep_dir.rglob(tracking.CHILD_MARKER))
        try:
            statuses = [run.info.status for run in _children(client, parent)]
        except Exception:  # the store is away for a moment: keep waiting
            statuses = None
        if statuses is not None and len(statuses) >= expected and "RUNNING" not in statuses:
            return
        state = (expected, statuses)
        if state != last:
            last, changed = state, time.monotonic()
        elif time.monotonic() - changed > parent["stall_s"]:
            log.warning(
                f"sweep: {statuses.count('RUNNING') if statuses else '?'} of {expected} child "
                f"runs still RUNNING after {parent['stall_s']:.0f} s without progress; ending "
                f"the sweep's parent run without them"
            )
            return
        time.sleep(POLL_S)


def _children(client, parent):
    """The sweep's children but the attempts superseded by a later one of the same job."""
    runs = client.search_runs(
        [parent["experiment_id"]],
        filter_string=f"tags.mlflow.parentRunId = '{parent['run_id']}'",
        max_results=50000,
    )
    return [run for run in runs if tags.SUPERSEDED not in run.data.tags]


def finish_sweep(parent):
    """Log the ranked table and the best child on the parent, print a summary, end it."""
    import mlflow
    from mlflow import MlflowClient

    from runner.sweeps.results import best_row, child_runs, log_summary, ranked_table

    mlflow.set_tracking_uri(parent["uri"])
    client = MlflowClient(parent["uri"])
    run_id = parent["run_id"]
    table = ranked_table(child_runs(run_id, parent["experiment_id"]))
    log_results_table(client, run_id, table)
    client.log_text(run_id, table.to_csv(index=False), "results.csv")
    log_summary(client, parent)  # seeds as repeats: results_by_config.csv; objective.png
    best = best_row(table)
    if best is not None:
        client.set_tag(run_id, "best_child_run_id", best["run_id"])
        client.set_tag(best["run_id"], "runner.best_in_sweep", "true")
        for key in ("val_loss", "val_accuracy", "val_rmse", "test_loss", "test_accuracy"):
            if key in best and best[key] == best[key]:  # present and not NaN
                client.log_metric(run_id, f"best_{key}", float(best[key]))
    failed = table[table["status"] != "FINISHED"]
    log.info(
        f"sweep: {len(table)} jobs, {len(table) - len(failed)} finished, {len(failed)} failed"
        + (
            f"; best {best['run_name']} val_loss {best.get('val_loss', float('nan')):.4f}"
            if best is not None
            else ""
        )
    )
    for _, row in failed.iterrows():
        log.info(f"  job {row.get('job')} {row['status']}: {row.get('failure_reason', '')}")
    client.set_terminated(run_id, "FINISHED")


def log_results_table(client, run_id, table):
    """``results.json`` as an MLflow table; replaced, not appended to, on a continued sweep."""
    import mlflow

    if "results.json" not in {a.path for a in client.list_artifacts(run_id)}:
        mlflow.log_table(table, "results.json", run_id=run_id)
        return
    text = table.to_json(orient="split", index=False, date_format="iso")
    client.log_text(run_id, text, "results.json")  # the file mlflow.log_table wrote, replaced


def end_open_sweep(status, reason):
    """End a parent run that the sweep left open because it crashed or was interrupted."""
    parent = sweep_parent()
    if parent is None:
        return
    from mlflow import MlflowClient

    wait_for_children(parent)
    client = MlflowClient(parent["uri"])
    client.set_tag(parent["run_id"], "failure_reason", reason[:5000])
    client.set_terminated(parent["run_id"], status)
    forget_parent()
