"""The sweepers that continue a sweep run again, registered as Hydra plugins.

Hydra imports this module at every start (its plugin scan), so it stays light: the Optuna
sweeper imports Optuna only when a sweep uses it. What they do is in ``runner.sweeps``
(``grid_sweeper``, ``optuna_sweeper``, ``resume``).
"""

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

from runner.sweeps import grid_sweeper


class GridSweeper(grid_sweeper.GridSweeper):
    """Every combination of the values listed; jobs FINISHED before are left out."""


class ResumableOptunaSweeper(OptunaSweeper):
    """Optuna's sweeper whose study continues toward its total ``n_trials``."""

    def __init__(self, **options):  # OptunaSweeper.__init__ would build Hydra's own study
        from runner.sweeps.optuna_sweeper import ResumableStudy

        self.sweeper = ResumableStudy(**options)
