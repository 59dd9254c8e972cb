"""What a sweep shows on the terminal: one line per job; the job's epoch lines go to its log.

Hydra gives every job a console handler and a file handler (``<job dir>/runner.log``). In a
sweep, ``quiet_job_console`` lets through the console only warnings, errors and the job's own
summary line, so a sweep of many jobs reads as a table; the file keeps everything. A single
run keeps its epoch lines on the console unless ``epoch_lines`` is false.
"""

import logging

from runner import progress

JOB_LINE = "runner_job_line"  # the attribute that marks a job's summary record
log = logging.getLogger("runner")


def _console_handlers():
    return [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
    ]


def _job_line_or_warning(record):
    return getattr(record, JOB_LINE, False) or record.levelno >= logging.WARNING


def _not_an_epoch_line(record):
    # Progress logs nothing else; its module is the mark until epoch lines get a logger.
    return record.pathname != progress.__file__


def quiet_job_console():
    """In a sweep's job: the console shows only the job line and warnings (this job only:
    Hydra sets up new handlers for the next one)."""
    for handler in _console_handlers():
        handler.addFilter(_job_line_or_warning)


def hide_epoch_lines():
    """A single run with ``epoch_lines=false``: the epoch lines go to runner.log only."""
    for handler in _console_handlers():
        handler.addFilter(_not_an_epoch_line)


def log_job_line(job, overrides, status, objective, seconds):
    """``#3 lr=0.1 seed=2  FINISHED  val_loss 0.0712  1.4 s`` on the console and in the log."""
    shown = " ".join(o for o in overrides if not o.startswith("hydra")) or "(defaults)"
    score = f"objective {objective:.4g}" if objective is not None else "no objective"
    log.info(f"#{job} {shown}  {status}  {score}  {seconds:.1f} s", extra={JOB_LINE: True})
