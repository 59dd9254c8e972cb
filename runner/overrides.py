"""Refuse command-line arguments that would let Hydra run code, read the environment or load
configs from outside ``conf/``, before Hydra acts on them.

Hydra reads the command line: its own argument parser splits flags from overrides, and its
``OverridesParser`` parses each override into a key, a package and a value (lists, dicts,
sweeps). This module only judges what they read. The runner's configs choose every component
by name from in-code registries, but Hydra itself can be told to do more from the command line:

- ``_target_`` (with ``_partial_``, ``_args_``, ``_recursive_``, ``_convert_``) in a key or a
  dict value makes ``hydra.utils.instantiate`` import and call any dotted name; Hydra
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
and path *values* of ordinary keys (``dataset.path=data/my.csv``). A command line Hydra cannot
parse is refused too, in one line, since nothing about it can be judged.

A key the config schema lacks (``bacth=32``, ``~bacth``) is refused with the schema's closest
keys (``did you mean batch?``) before Hydra advises adding it with ``+``; ``+bacth=32`` gets the
same line from the schema check once Hydra has composed the config.
"""

import contextlib
import io
import re

from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Glob, IntervalSweep, RangeSweep
from hydra.errors import HydraException

from runner.config import CONF_DIR, is_schema_key, unknown_key_error
from runner.errors import ConfigError

__all__ = ["check_overrides"]

# Keys that hydra.utils.instantiate reads: _target_ names the callable, the rest shape its call.
INSTANTIATE_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
# Config groups: the folders of conf/ (model, dataset, loss, optimizer, hydra); any key with a
# slash (hydra/launcher, hydra/sweeper) is a group too.
GROUPS = frozenset(path.name for path in CONF_DIR.iterdir() if path.is_dir())
REFUSED_FLAGS = {
    "config_dir": "it adds a config directory whose YAML files Hydra would load and whose "
    "hydra.callbacks it would instantiate; put your configs in conf/ instead",
    "config_path": "it replaces conf/ with another config directory whose YAML files Hydra "
    "would load and whose hydra.callbacks it would instantiate; put your configs in conf/",
    "experimental_rerun": "it unpickles a file, and unpickling can run any code; rerun a job "
    "with the overrides in its .hydra/overrides.yaml instead",
}
LOGGING_KEYS = ("hydra.job_logging", "hydra.hydra_logging")
# In a logging config, `class`/`()` name a callable to import and call, ext:// an object to import.
LOGGING_CODE = re.compile(r"\bclass\b|\(\)|ext://|cfg://")
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
SWEEP_PARAMS = "hydra.sweeper.params."


def check_overrides(args: list[str]) -> None:
    """Raise ConfigError for the first argument that could make Hydra run code (see module doc).

    args : the command line after the program name, as Hydra will read it (``sys.argv[1:]``):
        overrides and Hydra's flags in any order.

    The message is one line: the argument (quoted, so control characters show), why it is
    refused and what to write instead.
    """
    command = _read_command_line(args)
    if command is None:
        return  # --version: Hydra prints it and stops
    for flag, reason in REFUSED_FLAGS.items():
        value = getattr(command, flag)
        if value is not None:
            raise ConfigError(f"argument {_written(args, value)!r} is refused: {reason}")
    name = command.config_name
    if name is not None and _is_path(name):
        raise ConfigError(
            f"argument {_written(args, name)!r} is refused: --config-name {name!r} is a path, "
            f"and a config from outside conf/ could hold hydra.callbacks that Hydra would "
            f"instantiate; name a config file in conf/ (e.g. --config-name config)"
        )
    if command.package is not None:
        _refuse_interpolation(_written(args, command.package), command.package)
    parser = OverridesParser.create()
    parsed = []
    for arg in command.overrides:
        _refuse_interpolation(arg, arg)
        try:
            override = parser.parse_override(arg)
        except HydraException as err:
            reason = " ".join(str(err).split())
            raise ConfigError(
                f"override {arg!r} is not one Hydra can parse ({reason}); write key=value, "
                f"e.g. lr=0.1"
            ) from None
        _check_override(arg, override.key_or_group, override)
        parsed.append((arg, override))
    _refuse_keys_inside_deleted_ones(parsed)


def _refuse_keys_inside_deleted_ones(parsed):
    """``~dataset`` with ``~dataset.val_fraction`` or ``+dataset.x=1``: Hydra's composition
    crashes with a traceback on such a pair, in either order; say which two collide."""
    deleted = [(arg, o.key_or_group) for arg, o in parsed if o.is_delete()]
    for arg, override in parsed:
        for deleting, key in deleted:
            if override.key_or_group.startswith(f"{key}."):
                raise ConfigError(
                    f"override {arg!r} is refused: {deleting!r} deletes {key} as a whole, so "
                    f"nothing inside it can be set or deleted; drop one of the two"
                )


def _read_command_line(args):
    """Hydra's own reading of the command line; None when Hydra stops at it (--version)."""
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            return get_args_parser().parse_args(args)
    except SystemExit as exit:
        if exit.code == 0:
            return None
        lines = output.getvalue().strip().splitlines() or ["unreadable"]
        flags = " ".join(repr(arg) for arg in args if arg.startswith("-"))
        raise ConfigError(
            f"Hydra cannot read the arguments {flags}: {lines[-1]}; python -m runner --help "
            f"lists its flags"
        ) from None


def _written(args, value):
    """The argument that gave a flag ``value``: '--flag=value', '-fvalue' or '--flag value'."""
    for position, arg in enumerate(args):
        if arg.startswith("-") and arg.endswith(value) and arg != value:
            return arg
        if arg == value and position > 0:
            return args[position - 1]
    return value


def _refuse_interpolation(arg, text):
    if "${" in text:
        raise ConfigError(
            f"override {arg!r} is refused: ${{...}} interpolations can read environment "
            f"variables and other config values from the command line; write the value itself "
            f"(e.g. lr=0.1)"
        )


def _check_override(arg, key, override):
    """Check one parsed override of ``key``; ``arg`` is the argument it came from."""
    value = override.value()
    words = list(_words(value))
    for name in INSTANTIATE_KEYS:
        if name in key or name in _dict_keys(value):
            raise ConfigError(
                f"override {arg!r} is refused: {name} would make Hydra import and call code "
                f"named on the command line; choose components by name, e.g. "
                f"model.activation=tanh or optimizer=momentum"
            )
    if key in GROUPS or "/" in key:
        _check_group_choice(arg, key, override, value)
        return
    if key.startswith("hydra.searchpath") and override.value_type is not None:
        raise ConfigError(
            f"override {arg!r} is refused: hydra.searchpath adds config sources whose YAML "
            f"Hydra would load and instantiate; put your configs in conf/ instead"
        )
    if key.startswith("hydra.job.env_set"):
        raise ConfigError(
            f"override {arg!r} is refused: hydra.job.env_set sets environment variables (such "
            f"as LD_PRELOAD or PYTHONPATH) for the job and the processes it starts; set them in "
            f"your shell instead"
        )
    if key.split(".")[-1] == "custom_search_space":
        raise ConfigError(
            f"override {arg!r} is refused: custom_search_space names a function that the "
            f"Optuna sweeper would import and call; list the search space under "
            f"hydra.sweeper.params instead"
        )
    logging_code = [w for w in [key, *words] if isinstance(w, str) and LOGGING_CODE.search(w)]
    if key.startswith(LOGGING_KEYS) and logging_code:
        raise ConfigError(
            f"override {arg!r} is refused: class, () and ext:// in a logging config make Python's "
            f"logging import and call code; set only levels and formats (e.g. "
            f"hydra.job_logging.root.level=DEBUG)"
        )
    if key.split(".")[0] != "hydra" and not override.is_add() and not is_schema_key(key):
        # Hydra's advice would be +bacth=32; what + adds, the schema check refuses the same way.
        raise ConfigError(f"override {arg!r}: {unknown_key_error(key)}")
    if key.startswith(SWEEP_PARAMS) and override.value_type is not None:
        # The sweeper reads each entry as an override of its own: model=choice(a,b).
        _check_override(arg, key.removeprefix(SWEEP_PARAMS), override)


def _check_group_choice(arg, group, override, value):
    """A group choice must name options (strings that are no paths); a dict sets keys only."""
    if override.value_type is None or isinstance(value, dict):  # ~model; model={...} sets keys
        return
    for word in _words(value):
        if isinstance(word, str) and _is_path(word):
            raise ConfigError(
                f"override {arg!r} is refused: the {group}= choice names an option of the config "
                f"group {group!r}, not a path, and a config from elsewhere could run code; "
                f"{_options_hint(group)}"
            )
        if not isinstance(word, str):
            # As written when the whole value is that one word (1e3, not 1000.0).
            literal = override.input_line.partition("=")[2] if word is value else str(word)
            raise ConfigError(
                f"override {arg!r} is refused: the {group}= choice must name an option of the "
                f"config group {group!r}, and Hydra reads {literal!r} as a number, boolean or "
                f"null; {_options_hint(group)}"
            )


def _words(value):
    """The leaf values of a parsed override value: through lists, dicts, sweeps and globs."""
    if isinstance(value, list | tuple):
        for item in value:
            yield from _words(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _words(item)
    elif isinstance(value, ChoiceSweep):
        yield from _words(value.list)
    elif isinstance(value, Glob):
        yield from _words([*value.include, *value.exclude])
    elif isinstance(value, RangeSweep):
        yield from (value.start, value.stop)
    elif isinstance(value, IntervalSweep):
        yield from (value.start, value.end)
    else:
        yield value


def _dict_keys(value):
    """Every dict key anywhere in a parsed override value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _dict_keys(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _dict_keys(item)
    elif isinstance(value, ChoiceSweep):
        yield from _dict_keys(value.list)


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
