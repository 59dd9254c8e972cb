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
