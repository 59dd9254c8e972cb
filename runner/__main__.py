"""``python -m runner``: compose the config with Hydra, run the pipeline, map errors to exit codes.

A config or data mistake prints one line on stderr naming the key or file and exits 1, with no
traceback (``HYDRA_FULL_ERROR=1`` shows it for bugs); Ctrl-C exits 130, SIGTERM 143, the run
KILLED. A failed sweep job scores inf and the sweep goes on. The run: ``runner/pipeline.py``.
"""

import logging
import math
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from runner import pipeline, plan
from runner.config import register_configs, to_run_config
from runner.errors import ConfigError, RunnerError
from runner.overrides import check_overrides
from runner.sweeps import console

log = logging.getLogger("runner")

EXIT_USER_ERROR = 1  # a config, data or weights mistake, named in one line
EXIT_CTRL_C = 130  # 128 + SIGINT, as a shell reports it
EXIT_SIGTERM = 143  # 128 + SIGTERM
SWEEP_FLAGS = ("-m", "--multirun")  # Hydra's flags for a sweep

register_configs()


def _raise_terminated(signum, frame):
    raise pipeline.Terminated


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run one experiment; return its final validation loss for sweepers to minimise."""
    hydra_cfg = HydraConfig.get()
    signal.signal(signal.SIGTERM, _raise_terminated)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    overrides = list(hydra_cfg.overrides.task)
    line = console.set_up(hydra_cfg.job.num if in_sweep else None, overrides, cfg.epoch_lines)
    try:
        job = pipeline.Job(
            cfg=to_run_config(cfg),
            config=OmegaConf.to_container(cfg, resolve=True),
            overrides=overrides,
            output_dir=Path(hydra_cfg.runtime.output_dir),
            sweep_job=hydra_cfg.job.num if in_sweep else None,
        )
        line.objective, line.status = pipeline.train(job), "FINISHED"
        return line.objective
    except RunnerError as err:
        log.error(f"Error: {err}")
        if in_sweep:
            return math.inf  # the sweep goes on; this job scores worst (inf, never NaN)
        sys.exit(EXIT_USER_ERROR)
    except Exception as err:
        if not in_sweep:
            raise  # a bug: Hydra shows the traceback
        log.exception(f"job {hydra_cfg.job.num} failed: {type(err).__name__}: {err}")
        return math.inf
    except (KeyboardInterrupt, pipeline.Terminated) as err:
        line.status = "KILLED"  # the pipeline has printed how to resume
        sys.exit(EXIT_CTRL_C if isinstance(err, KeyboardInterrupt) else EXIT_SIGTERM)
    finally:
        line.log()


def trains_tracked(args):
    """Whether the command line asks for a tracked run or sweep (a sweep's worker opens its
    parent run first), as far as it tells: not for ``tracking.enabled=false`` nor for Hydra's
    other flags (``--help``, ``--cfg``); a config that turns tracking off lets the worker go
    at the sweep's start or the run's."""
    return not any(
        arg == "tracking.enabled=false" or (arg.startswith("-") and arg not in SWEEP_FLAGS)
        for arg in args
    )


def cli():
    """Refuse overrides that could run code, run Hydra, and end a crashed sweep's parent run."""
    try:
        check_overrides(sys.argv[1:])
    except ConfigError as err:
        print(f"Error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    plan.run_if_asked(sys.argv[1:])  # plan=true: print the plan and exit, before Hydra runs
    if trains_tracked(sys.argv[1:]):
        pipeline.start_tracking_worker()  # MLflow starts beside Hydra
    try:
        main()
    except KeyboardInterrupt:
        pipeline.end_open_sweep("KILLED", "the sweep was interrupted")
        raise
    except SystemExit as err:  # how Hydra ends a sweep that crashed, after printing why
        if err.code in (EXIT_CTRL_C, EXIT_SIGTERM):  # a job's Ctrl-C or SIGTERM, as main() exits
            pipeline.end_open_sweep("KILLED", "the sweep was interrupted")
        else:
            pipeline.end_open_sweep("FAILED", f"the sweep stopped with exit code {err.code}")
        raise
    except BaseException as err:
        pipeline.end_open_sweep("FAILED", f"the sweep crashed: {type(err).__name__}: {err}")
        raise


if __name__ == "__main__":
    cli()
