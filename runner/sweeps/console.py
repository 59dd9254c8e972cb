"""What a sweep shows on the terminal: one line per job; the job's epoch lines go to its log.

Hydra gives every job a console handler (on stdout) and a file handler (``<job dir>/runner.log``).
Warnings and errors leave the console for stderr, as every command-line tool's do, so that
``2>errors.txt`` or a script reading stdout keeps them apart from the run's lines. In a
sweep, ``quiet_job_console`` lets through the console only warnings, errors and the job's own
summary line, so a sweep of many jobs reads as a table; the file keeps everything. A single
run keeps its epoch lines on the console unless ``epoch_lines`` is false.
"""

import logging
import sys
import time
from dataclasses import dataclass, field

from runner.progress import EPOCH_LOGGER

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
    return record.name != EPOCH_LOGGER


def _below_warning(record):
    return record.levelno < logging.WARNING


def errors_to_stderr():
    """Warnings and errors go to stderr, in the console's format; the rest stays on stdout."""
    for handler in _console_handlers():
        handler.addFilter(_below_warning)
        errors = logging.StreamHandler(sys.stderr)
        errors.setLevel(logging.WARNING)
        errors.setFormatter(handler.formatter)
        logging.getLogger().addHandler(errors)


def quiet_job_console():
    """In a sweep's job: the console shows only the job line and warnings (this job only:
    Hydra sets up new handlers for the next one)."""
    for handler in _console_handlers():
        handler.addFilter(_job_line_or_warning)


def hide_epoch_lines():
    """A single run with ``epoch_lines=false``: the epoch lines go to runner.log only."""
    for handler in _console_handlers():
        handler.addFilter(_not_an_epoch_line)


def set_up(job, overrides, epoch_lines):
    """The console of one run: a job of a sweep (``job`` its number) or a single run (None).

    Returns the JobLine that the caller fills in; it prints itself only for a sweep's job.
    """
    errors_to_stderr()
    if job is not None:
        quiet_job_console()
    elif not epoch_lines:
        hide_epoch_lines()
    return JobLine(job, [o for o in overrides if not o.startswith("hydra")])


@dataclass
class JobLine:
    """``#3 lr=0.1 seed=2  FINISHED  objective 0.0712  1.4 s`` on the console and in the log."""

    job: int | None  # None for a single run, which prints no job line
    overrides: list
    status: str = "FAILED"  # until the job says otherwise
    objective: float | None = None
    started: float = field(default_factory=time.monotonic)

    def log(self):
        if self.job is None:
            return
        shown = " ".join(self.overrides) or "(defaults)"
        score = f"objective {self.objective:.4g}" if self.objective is not None else "no objective"
        seconds = time.monotonic() - self.started
        log.info(
            f"#{self.job} {shown}  {self.status}  {score}  {seconds:.1f} s", extra={JOB_LINE: True}
        )
