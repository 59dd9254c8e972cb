"""The default sweeper: Hydra's basic sweeper (every combination of the values listed) that
leaves out the jobs already FINISHED under the sweep's parent run
(runner/conf/hydra/sweeper/grid.yaml).

The jobs keep the numbers they have in the whole grid: the jobs still to run are launched in
runs of consecutive numbers (``initial_job_idx``), so job 4 is ``#4`` and its folder ``4/``
whichever jobs finished before. A parallel launcher (joblib) runs each such run of jobs in
parallel and the runs one after another. An untracked sweep has no parent: it runs every job.

Each job's config is composed once in this process (``compose_once``): for its identity, or
to check that it composes before any job starts, and the launcher takes that composition.
"""

from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from runner.sweeps import resume
from runner.sweeps.compose_once import composing_once
from runner.sweeps.parent import sweep_parent, sweep_tracked


class GridSweeper(BasicSweeper):
    def setup(self, *, hydra_context, task_function, config):
        super().setup(
            hydra_context=composing_once(hydra_context), task_function=task_function, config=config
        )

    def validate_batch_is_legal(self, batch):
        """Compose every job of the batch before any starts, as Hydra's sweeper does, and keep
        the compositions for the launcher."""
        loader = self.hydra_context.config_loader
        loader.forget()
        for overrides in batch:
            loader.compose(self.config, overrides)

    def sweep(self, arguments):
        try:
            return self._sweep(arguments)
        finally:
            self.hydra_context.config_loader.forget()

    def _sweep(self, arguments):
        if not sweep_tracked():
            return super().sweep(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        jobs = self.split_arguments(overrides, max_batch_size=None)[0]
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's sweeper does

        # Composed while the tracking worker opens the parent run, which launching waits for.
        identities = resume.job_identities(self.hydra_context, self.config, jobs)
        parent = sweep_parent()
        returns = []
        for first, numbers in consecutive_runs(
            resume.pending_jobs(parent, identities), self.max_batch_size
        ):
            resume.supersede(parent, [identities[n] for n in numbers])
            results = self.launcher.launch([jobs[n] for n in numbers], initial_job_idx=first)
            for result in results:
                _ = result.return_value  # raises as Hydra's sweeper does if a job failed
            returns.append(results)
        return returns


def consecutive_runs(numbers, max_size=None):
    """[(first, [first, first + 1, ...]), ...]: sorted job numbers cut where they skip one or
    where a run reaches ``max_size`` (``hydra.sweeper.max_batch_size``)."""
    limit = max_size if max_size and max_size > 0 else None  # Hydra's -1 or null: no limit
    runs = []
    for number in numbers:
        last = runs[-1][1] if runs else None
        if last and last[-1] == number - 1 and (limit is None or len(last) < limit):
            last.append(number)
        else:
            runs.append((number, [number]))
    return runs
