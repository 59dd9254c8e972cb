"""What a sweep would run, read with the sweepers' own code and launching nothing (for a plan).

The basic sweeper's jobs are the product of its sweep overrides, as ``BasicSweeper.sweep``
makes them (``split_arguments``), and each job's config is composed as the launchers compose
it (``load_sweep_config``). An Optuna study picks each trial from the results of earlier ones,
so beforehand only its search space (the Optuna plugin's ``create_params_from_overrides``) and
the number of trials left are known.
"""

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
GRID = "hydra_plugins.runner_sweepers.sweepers.GridSweeper"  # the default: BASIC, resumable
OPTUNA = (  # the plugin's own sweeper and runner's resumable one (optuna_search)
    "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
    "hydra_plugins.runner_sweepers.sweepers.ResumableOptunaSweeper",
)


def sweep_arguments(sweep_cfg):
    """The sweeper's ``params`` then the command line's overrides, as both sweepers join them."""
    params = sweep_cfg.hydra.sweeper.get("params") or {}
    return [f"{key}={value}" for key, value in params.items()] + list(
        sweep_cfg.hydra.overrides.task
    )


def basic_jobs(sweep_cfg, config_loader, arguments):
    """[(overrides, config)] of every job of a basic sweep, numbered as Hydra numbers them.

    sweep_cfg : the config Hydra composes for the multirun (``RunMode.MULTIRUN``).
    arguments : its ``sweep_arguments``, or some of them.
    config : the job's config with its ``hydra`` node, as the launcher hands it to the job.
    """
    parser = OverridesParser.create(config_loader=config_loader)
    overrides = parser.parse_overrides(arguments)
    [batch] = BasicSweeper.split_arguments(overrides, max_batch_size=None)
    return [(job, config_loader.load_sweep_config(sweep_cfg, list(job))) for job in batch]


def optuna_space(arguments):
    """(distributions, fixed) of an Optuna sweep's ``sweep_arguments`` (or some of them):
    {key: Optuna distribution}, {key: value}."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    space, fixed = create_params_from_overrides(arguments)
    return {key: value for key, value in space.items() if key not in fixed}, fixed
