"""Errors a user can act on.

Each one carries a message that names the offending key, file or layer and says what to change;
the command line prints it as one line and exits non-zero, without a traceback.
"""


class RunnerError(Exception):
    """Base of every error caused by the user's input rather than by a bug."""


class ConfigError(RunnerError, ValueError):
    """A config value, override or argument that cannot work."""


class DataError(RunnerError, ValueError):
    """A data set that cannot be read or does not fit the model."""


class WeightsError(RunnerError, ValueError):
    """A weights file that is missing, malformed or does not fit the network."""


class DivergenceError(RunnerError, ArithmeticError):
    """Training produced a non-finite or exploding loss."""


class TrackingError(RunnerError):
    """The MLflow store or server cannot be used (unreachable, refused, misconfigured)."""


def one_line(err):
    """An exception as one line: its type and the first line of its message."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"
