"""One MLflow parent run per Hydra sweep, with a child run per job.

``SweepTracking`` is a Hydra callback (see ``hydra.callbacks`` in conf/config.yaml). At the
start of a multirun, in the launching process and before any job starts, it creates the
store's tables, the experiment and the parent run: done there once, they cannot race (16
jobs creating a fresh SQLite store at once lose runs to "table already exists", and
concurrent experiment creation files runs under "Default"). Jobs learn the parent from an
environment variable, which the joblib launcher's worker processes inherit. At the end it
logs the ranked results table and the best child. A sweep that crashes never reaches
``on_multirun_end``; the entry point then calls ``end_open_sweep``, so the parent ends FAILED
or KILLED, never RUNNING.
"""

import json
import logging
import os

from hydra.experimental.callback import Callback

from runner.tracking import tags
from runner.tracking.client import check_reachable, default_artifact_root, resolve_uri

PARENT_ENV = "RUNNER_SWEEP_PARENT"
log = logging.getLogger("runner")


def sweep_parent():
    """The parent run a job belongs to: {"run_id", "uri", "experiment_id"}, or None."""
    value = os.environ.get(PARENT_ENV)
    return json.loads(value) if value else None


class SweepTracking(Callback):
    """Creates and ends a sweep's parent run; does nothing for single runs."""

    def on_multirun_start(self, config, **kwargs):
        if not config.tracking.enabled:
            return
        from mlflow import MlflowClient
        from mlflow.entities import Param

        logging.getLogger("mlflow").setLevel(logging.WARNING)

        from runner.tracking.store import ensure_experiment

        uri = resolve_uri(config.tracking.uri)
        check_reachable(uri)
        client = MlflowClient(uri)
        experiment_id = ensure_experiment(client, config.experiment, default_artifact_root(uri))
        hydra_cfg = config.hydra  # HydraConfig.get() is set only inside jobs
        overrides = [o for o in hydra_cfg.overrides.task if not o.startswith("hydra.")]
        sweeper = hydra_cfg.runtime.choices.get("hydra/sweeper", "basic")
        launcher = hydra_cfg.runtime.choices.get("hydra/launcher", "basic")
        name = "-".join(["sweep", *([sweeper] if sweeper != "basic" else []), *overrides])
        run = client.create_run(
            experiment_id,
            run_name=name[:250],
            tags={tags.SWEEP: "true", "command": " ".join(["python -m runner -m", *overrides])},
        )
        client.log_batch(
            run.info.run_id,
            params=[
                Param("sweep.overrides", " ".join(overrides)[:6000]),
                Param("sweep.sweeper", sweeper),
                Param("sweep.launcher", launcher),
            ],
        )
        parent = {"run_id": run.info.run_id, "uri": uri, "experiment_id": experiment_id}
        os.environ[PARENT_ENV] = json.dumps(parent)
        log.info(f"sweep tracked as MLflow parent run {name} ({run.info.run_id})")

    def on_multirun_end(self, config, **kwargs):
        parent = sweep_parent()
        if parent is not None:
            finish_sweep(parent)
            del os.environ[PARENT_ENV]


def finish_sweep(parent):
    """Log the ranked table and the best child on the parent, print a summary, end it."""
    import mlflow
    from mlflow import MlflowClient

    from runner.tracking.results import best_row, child_runs, ranked_table

    mlflow.set_tracking_uri(parent["uri"])
    client = MlflowClient(parent["uri"])
    run_id = parent["run_id"]
    table = ranked_table(child_runs(run_id, parent["experiment_id"]))
    mlflow.log_table(table, "results.json", run_id=run_id)
    client.log_text(run_id, table.to_csv(index=False), "results.csv")
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


def end_open_sweep(status, reason):
    """End a parent run that the sweep left open because it crashed or was interrupted."""
    parent = sweep_parent()
    if parent is None:
        return
    from mlflow import MlflowClient

    client = MlflowClient(parent["uri"])
    client.set_tag(parent["run_id"], "failure_reason", reason[:5000])
    client.set_terminated(parent["run_id"], status)
    del os.environ[PARENT_ENV]
