"""The MLflow tag names runner writes and reads back (no MLflow import: both sides use them)."""

SWEEP = "runner.sweep"  # "true" on a sweep's parent run
SWEEP_JOB = "runner.sweep_job"  # on each child: the job's number in the sweep
OVERRIDES = "runner.overrides"  # on each child: its Hydra overrides
CHECKPOINT = "runner.checkpoint"  # the run's checkpoint.npz, for resume=<run id>
BLAS_THREADS = "runner.blas_threads"  # BLAS threads the training process used
RERUN_OF = "runner.rerun_of"  # on a run made by python -m runner.rerun: the run it reproduces
PARENT_RUN = "mlflow.parentRunId"  # MLflow's own: a sweep job's run names the sweep's run
JOB_IDENTITY = "runner.job_identity"  # a hash of what the run trains (runner/sweeps/identity.py)
SWEEP_IDENTITY = "runner.sweep_identity"  # on a sweep's parent: what the sweep runs (identity.py)
SUPERSEDED = "runner.superseded"  # on a child that failed or was stopped: its job ran again
COMMAND = "command"  # the command that trains the run again
# MLflow's own (mlflow.utils.mlflow_tags): the runs table's Source column shows the source
# name's last "/"-separated part; a LOCAL source is a command or file run on this machine.
SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
LOCAL_SOURCE = "LOCAL"  # mlflow.entities.SourceType.LOCAL as text
# MLflow 3's experiment tag for which kind of work an experiment holds: the UI opens an
# experiment without it on its GenAI overview, one of "custom_model_development" (the UI's
# "Machine learning") on its training runs.
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"


def source(command):
    """The tags that name ``command`` (``python -m runner ...``) as a run's source."""
    return {COMMAND: command, SOURCE_NAME: command, SOURCE_TYPE: LOCAL_SOURCE}
