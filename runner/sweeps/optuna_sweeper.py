"""Hydra's Optuna sweeper, continued when the same sweep runs again
(runner/conf/hydra/sweeper/optuna_search.yaml).

Hydra's sweeper asks for ``n_trials`` *more* trials each time and numbers its jobs from 0.
This one keeps the study where the sweep already is: in the tracking store. Each trial is a
child run of the sweep's parent, whose job number is the trial's number, whose
``runner.overrides`` tag holds the trial's parameters and whose final ``val_loss`` is its
value; the study is rebuilt from them (in memory) when the sweep starts, so the same command
runs only the trials it lacks toward ``n_trials`` finished, numbered on from the last, its
sampler seeded anew (``seed`` plus the trials so far) so as not to draw the first ones again.
A trial that failed or was stopped is asked again with the same parameters (as Optuna's
RetryFailedTrialCallback does): its job runs again, and the earlier run is marked superseded.

Why not Optuna's own storage (``hydra.sweeper.storage``): Optuna 2.10, the newest that
hydra-optuna-sweeper 1.3 accepts, cannot open an RDB storage under SQLAlchemy 2 (which MLflow
brings): "database is locked". And the tracking store holds the trials anyway, a server too.
An untracked sweep has no parent: Hydra's sweeper as it is, in memory. A trial's config is
composed once in this process (``compose_once``): for its identity, then taken by the launcher.
"""

import logging
import math
import warnings

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import (
    OptunaSweeperImpl,
    create_params_from_overrides,
)
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from runner.errors import ConfigError
from runner.sweeps import resume
from runner.sweeps.compose_once import composing_once
from runner.sweeps.parent import sweep_parent

log = logging.getLogger("runner")


class ResumableStudy(OptunaSweeperImpl):
    def setup(self, *, hydra_context, task_function, config):
        super().setup(
            hydra_context=composing_once(hydra_context), task_function=task_function, config=config
        )

    def sweep(self, arguments):
        self.parent = sweep_parent()
        if self.parent is None:
            return super().sweep(arguments)
        if self.storage is not None:
            raise ConfigError(
                f"hydra.sweeper.storage={self.storage}: runner keeps the Optuna study in the "
                f"tracking store (Optuna 2.10 cannot open its own storage beside MLflow's "
                f"SQLAlchemy 2); drop the override"
            )
        self.study_name = resume.study_name(self.study_name, self.parent["run_id"])
        space, _ = create_params_from_overrides([*self._parse_sweeper_params_config(), *arguments])
        self.storage = optuna.storages.InMemoryStorage()  # super().sweep() loads the study
        study = optuna.create_study(
            study_name=self.study_name, storage=self.storage, directions=self._get_directions()
        )
        rebuild(study, resume.child_trials(self.parent), space)
        self.sampler = self.reseeded_sampler(len(study.trials))
        finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        total, self.n_trials = self.n_trials, max(self.n_trials - finished, 0)
        log.info(f"{total} trials: {finished} already finished, {self.n_trials} to run")
        if not self.n_trials:
            log.info(f"nothing to train: the sweep has its {total} trials")
        return super().sweep(arguments)

    def reseeded_sampler(self, n_before):
        """The sampler, seeded ``seed + n_before`` once trials exist: a fresh sampler of the
        same seed would draw the first trials again."""
        sampler = self.config.hydra.sweeper.sampler
        if not n_before or sampler.get("seed") is None:
            return self.sampler
        return instantiate(sampler, seed=sampler.seed + n_before)

    def _configure_trials(self, trials, search_space_distributions, fixed_params):
        """The trials' overrides; the batch's jobs take their trials' numbers (consecutive:
        one process asks for them together), and earlier attempts of them are superseded."""
        overrides = super()._configure_trials(trials, search_space_distributions, fixed_params)
        if self.parent is not None:
            self.job_idx = trials[0].number
            self.hydra_context.config_loader.forget()  # the last batch's, not launched
            identities = resume.job_identities(self.hydra_context, self.config, overrides)
            resume.supersede(self.parent, identities)
        return overrides


def rebuild(study, trials, space):
    """Add a trial per job number of the sweep's children (``messages.Trial``), in order, so
    numbers match.

    A FINISHED child is a COMPLETE trial valued by its final val_loss (train_loss without a
    validation split); any other a FAIL trial, asked again with its parameters (enqueued after
    the others, so it takes the next number) unless a later attempt superseded it; a number
    without a child (stopped before its run existed) a FAIL trial.
    """
    by_number = {trial.number: trial for trial in trials}
    again = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="add_trial is experimental")
        for number in range(max(by_number, default=-1) + 1):
            child = by_number.get(number)
            study.add_trial(past_trial(child, space))
            if child and child.status != "FINISHED" and not child.superseded:
                again.append(trial_params(child.overrides, space))
        for params in again:
            study.enqueue_trial(params)


def past_trial(child, space):
    """The FrozenTrial of a child run's Trial (None: a FAIL trial without parameters)."""
    if child is None:
        return create_trial(state=TrialState.FAIL)
    params = trial_params(child.overrides, space)
    distributions = {name: space[name] for name in params}
    if child.status != "FINISHED":
        return create_trial(state=TrialState.FAIL, params=params, distributions=distributions)
    value = child.metrics.get("val_loss", child.metrics.get("train_loss", math.inf))
    return create_trial(value=value, params=params, distributions=distributions)


def trial_params(overrides, space):
    """The search-space values of a trial's overrides (``lr=0.012 batch=16 epochs=3``)."""
    parsed = OverridesParser.create().parse_overrides(overrides.split())
    params = {}
    for override in parsed:
        name, value = override.get_key_element(), override.value()
        distribution = space.get(name)
        if isinstance(distribution, CategoricalDistribution):
            params.update((name, c) for c in distribution.choices if c == value)
        elif distribution is not None:
            params[name] = type(distribution.low)(value)
    return params
