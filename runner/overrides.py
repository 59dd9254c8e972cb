"""Refuse command-line arguments that would let Hydra run code or read the environment, before
Hydra acts on them.

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
- a config-group choice (``model=``, ``hydra/launcher=``) that is a path, or a ``--config-name``
  path, loads a YAML file from anywhere, whose ``hydra.callbacks`` Hydra would instantiate;
- ``pkg://`` and ``structured://`` entries of ``hydra.searchpath`` import the module they name,
  and importing a module runs its code;
- ``--experimental-rerun`` unpickles a file, and unpickling runs code;
- a group choice Hydra reads as a number, boolean or null (``model=0``, ``dataset=null``) makes
  Hydra fail with a bare ValueError or TypeError traceback instead of listing the options;
- ``hydra.job.env_set`` sets variables such as ``LD_PRELOAD`` or ``PYTHONPATH`` for the job
  and the processes it starts (the MLflow worker, joblib's workers);
- ``class``, ``()`` and ``ext://`` under ``hydra.job_logging`` / ``hydra.hydra_logging`` make
  ``logging.config`` import and call a dotted name.

Config *folders* a user names are trusted like code: ``--config-dir DIR`` and
``hydra.searchpath=[file://DIR]`` add the user's own configs (``DIR/model/wide.yaml`` gives
``model=wide``), and what those files say is done, callbacks included. Their groups are checked
like the shipped ones. ``--config-path`` is refused: it replaces the runner's own configs rather
than adding to them.

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
from pathlib import Path

from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Glob, IntervalSweep, RangeSweep
from hydra.errors import HydraException

from runner.config import CONF_DIR, is_schema_key, unknown_key_error
from runner.errors import ConfigError

__all__ = ["check_overrides"]

# Keys that hydra.utils.instantiate reads: _target_ names the callable, the rest shape its call.
INSTANTIATE_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
REFUSED_FLAGS = {
    "config_path": "it replaces the runner's own configs (runner/conf/), so model=, dataset= "
    "and the rest lose their options; add a folder of your own configs with --config-dir DIR",
    "experimental_rerun": "it unpickles a file, and unpickling can run any code; rerun a job "
    "with the overrides in its .hydra/overrides.yaml instead",
}
LOGGING_KEYS = ("hydra.job_logging", "hydra.hydra_logging")
# In a logging config, `class`/`()` name a callable to import and call, ext:// an object to import.
LOGGING_CODE = re.compile(r"\bclass\b|\(\)|ext://|cfg://")
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
SWEEP_PARAMS = "hydra.sweeper.params."
SEARCHPATH = "hydra.searchpath"
# Hydra's config sources by scheme; only a folder is a source that imports nothing.
FOLDER_SCHEME = re.compile(r"^(file://)?(?!\w+://)")


def override_key(override: str) -> str:
    """The key or group an override sets, as Hydra reads it: '+model.layers=[4,16,3]' →
    'model.layers', '~early_stopping' → 'early_stopping', 'hydra/launcher=joblib' →
    'hydra/launcher'."""
    return OverridesParser.create().parse_override(override).key_or_group


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
            f"and a config file from anywhere could hold hydra.callbacks that Hydra would "
            f"instantiate; name a config file in a config folder (e.g. --config-name config), "
            f"and add your own folder with --config-dir DIR"
        )
    if command.package is not None:
        _refuse_interpolation(_written(args, command.package), command.package)
    parser = OverridesParser.create()
    parsed = []
    for arg in command.overrides:
        _refuse_interpolation(arg, arg)
        try:
            parsed.append((arg, parser.parse_override(arg)))
        except HydraException as err:
            reason = " ".join(str(err).split())
            raise ConfigError(
                f"override {arg!r} is not one Hydra can parse ({reason}); write key=value, "
                f"e.g. lr=0.1"
            ) from None
    folders = [CONF_DIR, *_user_config_folders(command.config_dir, parsed)]
    for arg, override in parsed:
        _check_override(arg, override.key_or_group, override, folders)
    _refuse_keys_inside_deleted_ones(parsed)


def _user_config_folders(config_dir, parsed):
    """The folders ``--config-dir`` and ``hydra.searchpath=[...]`` add, as Hydra reads them."""
    folders = [] if config_dir is None else [Path(config_dir)]
    for _, override in parsed:
        if override.key_or_group == SEARCHPATH and isinstance(override.value(), list):
            entries = [entry for entry in override.value() if isinstance(entry, str)]
            folders += [Path(entry.removeprefix("file://")) for entry in entries]
    return folders


def _groups(folders):
    """Config groups: the subfolders of every config folder (model, dataset, loss, ...)."""
    return {
        path.name
        for folder in folders
        if folder.is_dir()
        for path in folder.iterdir()
        if path.is_dir()
    }


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


def _check_override(arg, key, override, folders):
    """Check one parsed override of ``key``; ``arg`` is the argument it came from.

    folders : the config folders of this command line (runner/conf/ first), whose subfolders
        are the groups; any key with a slash (hydra/launcher) is a group too.
    """
    value = override.value()
    words = list(_words(value))
    for name in INSTANTIATE_KEYS:
        if name in key or name in _dict_keys(value):
            raise ConfigError(
                f"override {arg!r} is refused: {name} would make Hydra import and call code "
                f"named on the command line; choose components by name, e.g. "
                f"model.activation=tanh or optimizer=momentum"
            )
    if key in _groups(folders) or "/" in key:
        _check_group_choice(arg, key, override, value, folders)
        return
    modules = [w for w in words if isinstance(w, str) and not FOLDER_SCHEME.match(w)]
    if key.startswith(SEARCHPATH) and modules:
        raise ConfigError(
            f"override {arg!r} is refused: {modules[0]!r} names a Python module, and Hydra "
            f"imports it, which runs its code; give a folder of YAML files instead, e.g. "
            f"hydra.searchpath=[file://my_configs] or --config-dir my_configs"
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
        _check_override(arg, key.removeprefix(SWEEP_PARAMS), override, folders)


def _check_group_choice(arg, group, override, value, folders):
    """A group choice must name options (strings that are no paths); a dict sets keys only."""
    if override.value_type is None or isinstance(value, dict):  # ~model; model={...} sets keys
        return
    for word in _words(value):
        if isinstance(word, str) and _is_path(word):
            raise ConfigError(
                f"override {arg!r} is refused: the {group}= choice names an option of the config "
                f"group {group!r}, not a path, and a config from elsewhere could run code; "
                f"{_options_hint(group, folders)}"
            )
        if not isinstance(word, str):
            # As written when the whole value is that one word (1e3, not 1000.0).
            literal = override.input_line.partition("=")[2] if word is value else str(word)
            raise ConfigError(
                f"override {arg!r} is refused: the {group}= choice must name an option of the "
                f"config group {group!r}, and Hydra reads {literal!r} as a number, boolean or "
                f"null; {_options_hint(group, folders)}"
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


def _options_hint(group, folders):
    """'use the name of a file in runner/conf/model/, e.g. model=mlp_10_32_1', or a plugin hint."""
    for folder in folders:
        options = sorted(path.stem for path in (folder / group).glob("*.yaml"))
        if options and "/" not in group:
            shown = "runner/conf" if folder == CONF_DIR else folder
            return f"use the name of a file in {shown}/{group}/, e.g. {group}={options[0]}"
    return "name an installed option, e.g. hydra/launcher=joblib (python -m runner --help)"
