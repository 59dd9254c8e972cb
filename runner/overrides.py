"""Refuse command-line arguments that would let Hydra run code, read the environment or load
configs from outside ``conf/``, before Hydra sees them.

The runner's own configs choose every component by name from in-code registries, but Hydra
itself can be told to do more from the command line:

- ``_target_`` (with ``_partial_``, ``_args_``, ``_recursive_``, ``_convert_``) in a key or in a
  ``{...}`` value makes ``hydra.utils.instantiate`` import and call any dotted name; Hydra
  instantiates ``hydra.callbacks``, ``hydra.launcher`` and ``hydra.sweeper`` this way, and the
  Optuna sweeper does the same with ``hydra.sweeper.custom_search_space``;
- ``${...}`` interpolations call resolvers: ``${oc.env:AWS_SECRET}`` reads the environment,
  ``${oc.decode:...}`` parses text into config;
- a config-group choice (``model=``, ``hydra/launcher=``) that is a path, and
  ``hydra.searchpath``, ``--config-dir``, ``--config-path`` and a ``--config-name`` path, load
  YAML from anywhere, whose ``hydra.callbacks`` are instantiated;
- ``--experimental-rerun`` unpickles a file, and unpickling runs code;
- a group choice Hydra reads as a number, boolean or null (``model=0``, ``dataset=null``) makes
  Hydra fail with a bare ValueError or TypeError traceback instead of listing the options;
- ``hydra.job.env_set`` sets variables such as ``LD_PRELOAD`` or ``PYTHONPATH`` for the job
  and the processes it starts (the MLflow worker, joblib's workers);
- ``class``, ``()`` and ``ext://`` under ``hydra.job_logging`` / ``hydra.hydra_logging`` make
  ``logging.config`` import and call a dotted name.

Everything else passes untouched: Hydra's flags (``-m``, ``--cfg job``, ``--help``, ``--info``),
sweep syntax (``batch=16,32``, ``lr=tag(log,interval(0.001,1))``), ``+key=value``, ``~key``
and path *values* of ordinary keys (``dataset.path=data/my.csv``). The check reads the text of
each argument only; it never imports Hydra, so a refused argument costs nothing.
"""

import re

from runner.config import CONF_DIR
from runner.errors import ConfigError

__all__ = ["check_overrides"]

# Keys that hydra.utils.instantiate reads: _target_ names the callable, the rest shape its call.
INSTANTIATE_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
# Config groups: the folders of conf/ (model, dataset, loss, optimizer, hydra); any key with a
# slash (hydra/launcher, hydra/sweeper) is a group too.
GROUPS = frozenset(path.name for path in CONF_DIR.iterdir() if path.is_dir())
# Hydra's long flags (hydra/_internal/utils.py), for argparse's unique-prefix abbreviations.
LONG_FLAGS = (
    "--help",
    "--hydra-help",
    "--version",
    "--cfg",
    "--resolve",
    "--package",
    "--run",
    "--multirun",
    "--shell-completion",
    "--config-path",
    "--config-name",
    "--config-dir",
    "--experimental-rerun",
    "--info",
)
SHORT_FLAGS = {
    "-h": "--help",
    "-c": "--cfg",
    "-p": "--package",
    "-r": "--run",
    "-m": "--multirun",
    "-sc": "--shell-completion",
    "-cp": "--config-path",
    "-cn": "--config-name",
    "-cd": "--config-dir",
    "-i": "--info",
}
# Flags that take the next argument as their value (unless it is written --flag=value).
VALUE_FLAGS = frozenset(
    {"--cfg", "--package", "--config-path", "--config-name", "--config-dir", "--info"}
    | {"--experimental-rerun"}
)
REFUSED_FLAGS = {
    "--config-dir": "it adds a config directory whose YAML files Hydra would load and whose "
    "hydra.callbacks it would instantiate; put your configs in conf/ instead",
    "--config-path": "it replaces conf/ with another config directory whose YAML files Hydra "
    "would load and whose hydra.callbacks it would instantiate; put your configs in conf/",
    "--experimental-rerun": "it unpickles a file, and unpickling can run any code; rerun a job "
    "with the overrides in its .hydra/overrides.yaml instead",
}
LOGGING_KEYS = ("hydra.job_logging", "hydra.hydra_logging")
# In a logging config, `class`/`()` name a callable to import and call, ext:// an object to import.
LOGGING_CODE = re.compile(r"\bclass\b|\(\)|ext://|cfg://")
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
# Unquoted words Hydra reads as numbers, booleans or null; as a group choice they make Hydra
# raise a bare ValueError or TypeError (a traceback) instead of naming the options.
NOT_A_NAME = re.compile(
    r"[+-]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(e[+-]?\d+)?|[+-]?(inf|nan)|true|false|null",
    re.IGNORECASE,
)


def check_overrides(args: list[str]) -> None:
    """Raise ConfigError for the first argument that could make Hydra run code (see module doc).

    args : the command line after the program name, as Hydra will read it (``sys.argv[1:]``):
        overrides and Hydra's flags in any order.

    The message is one line: the argument (quoted, so control characters show), why it is
    refused and what to write instead.
    """
    position = 0
    while position < len(args):
        arg = args[position]
        position += 1
        if arg.startswith("-") and not _is_negative_number(arg):
            flag, has_value, value = _resolve_flag(arg)
            if flag in VALUE_FLAGS and not has_value and position < len(args):
                if not args[position].startswith("-"):
                    value, has_value = args[position], True
                    position += 1
            _check_flag(arg, flag, value if has_value else None)
            if has_value and flag in ("--cfg", "--package", "--info"):
                _check_override(arg, value)  # argparse refuses these values; no need to trust it
        else:
            _check_override(arg, arg)


def _is_negative_number(arg):
    """'-1' is a value argparse leaves alone, not a flag (argparse does the same test)."""
    return re.fullmatch(r"-\d+(\.\d*)?", arg) is not None


def _resolve_flag(arg):
    """(full flag name, whether '=value' was attached, that value) for one dash argument."""
    name, has_value, value = arg.partition("=")
    if name in SHORT_FLAGS:
        return SHORT_FLAGS[name], bool(has_value), value
    for short in ("-cd", "-cp", "-cn"):  # argparse reads "-cdDIR" too; treat it as the flag.
        if name.startswith(short) and not name.startswith("--"):
            return SHORT_FLAGS[short], True, arg[len(short) :].removeprefix("=")
    candidates = [flag for flag in LONG_FLAGS if flag.startswith(name)] if len(name) > 2 else []
    if name in LONG_FLAGS:
        return name, bool(has_value), value
    if len(candidates) == 1:  # argparse accepts any unique prefix: --config-d is --config-dir.
        return candidates[0], bool(has_value), value
    return name, bool(has_value), value


def _check_flag(arg, flag, value):
    if flag in REFUSED_FLAGS:
        raise ConfigError(f"argument {arg!r} is refused: {REFUSED_FLAGS[flag]}")
    if flag == "--config-name" and value is not None and _is_path(value):
        raise ConfigError(
            f"argument {arg!r} is refused: --config-name {value!r} is a path, and a config from "
            f"outside conf/ could hold hydra.callbacks that Hydra would instantiate; name a "
            f"config file in conf/ (e.g. --config-name config)"
        )


def _check_override(arg, override):
    """Check one override; ``arg`` is the command-line argument it came from (for messages)."""
    if "${" in override:
        raise ConfigError(
            f"override {arg!r} is refused: ${{...}} interpolations can read environment "
            f"variables and other config values from the command line; write the value itself "
            f"(e.g. lr=0.1)"
        )
    key, has_value, value = override.lstrip("~+").partition("=")
    path = key.split("@")[0]  # model@pkg=... chooses an option of the group "model"
    for name in INSTANTIATE_KEYS:
        if name in path or (name in value and "{" in value):
            raise ConfigError(
                f"override {arg!r} is refused: {name} would make Hydra import and call code "
                f"named on the command line; choose components by name, e.g. "
                f"model.activation=tanh or optimizer=momentum"
            )
    if path in GROUPS or "/" in path:
        if _is_path(value):
            raise ConfigError(
                f"override {arg!r} is refused: the {path}= choice names an option of the config "
                f"group {path!r}, not a path, and a config from elsewhere could run code; "
                f"{_options_hint(path)}"
            )
        literal = next(
            (w for w in re.split(r"[\s,()\[\]]+", value) if NOT_A_NAME.fullmatch(w)), None
        )
        if has_value and literal is not None and not value.lstrip().startswith("{"):
            raise ConfigError(
                f"override {arg!r} is refused: the {path}= choice must name an option of the "
                f"config group {path!r}, and Hydra reads {literal!r} as a number, boolean or "
                f"null; {_options_hint(path)}"
            )
        return
    if path.startswith("hydra.searchpath") and has_value:
        raise ConfigError(
            f"override {arg!r} is refused: hydra.searchpath adds config sources whose YAML "
            f"Hydra would load and instantiate; put your configs in conf/ instead"
        )
    if path.startswith("hydra.job.env_set"):
        raise ConfigError(
            f"override {arg!r} is refused: hydra.job.env_set sets environment variables (such "
            f"as LD_PRELOAD or PYTHONPATH) for the job and the processes it starts; set them in "
            f"your shell instead"
        )
    if path.split(".")[-1] == "custom_search_space":
        raise ConfigError(
            f"override {arg!r} is refused: custom_search_space names a function that the "
            f"Optuna sweeper would import and call; list the search space under "
            f"hydra.sweeper.params instead"
        )
    if path.startswith(LOGGING_KEYS) and (LOGGING_CODE.search(path) or LOGGING_CODE.search(value)):
        raise ConfigError(
            f"override {arg!r} is refused: class, () and ext:// in a logging config make Python's "
            f"logging import and call code; set only levels and formats (e.g. "
            f"hydra.job_logging.root.level=DEBUG)"
        )
    sweep_params = "hydra.sweeper.params."
    if path.startswith(sweep_params) and has_value:
        # The sweeper parses each entry as an override of its own: model=choice(a,b).
        _check_override(arg, f"{path.removeprefix(sweep_params)}={value}")


def _is_path(value):
    """True for text that reads as a file path rather than a bare option name."""
    return (
        "/" in value
        or "\\" in value
        or ".." in value
        or value.startswith("~")
        or WINDOWS_DRIVE.match(value) is not None
    )


def _options_hint(group):
    """'use the name of a file in conf/model/, e.g. model=mlp_10_32_1', or a plugin hint."""
    options = sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))
    if options and "/" not in group:
        return f"use the name of a file in conf/{group}/, e.g. {group}={options[0]}"
    return "name an installed option, e.g. hydra/launcher=joblib (python -m runner --help)"
