"""Each sweep job's config composed once in the launching process, not twice.

Hydra's sweepers compose every job's config before launching any (the basic sweeper to check
that each composes, runner's sweepers to compute each job's identity for resume), then the
launcher composes it again to run it. A composition of the runner's config takes 0.1–0.2 s
on a quiet machine, as long as a short job's training: twice per job was most of what a sweep
job cost beyond its training. The sweepers hand Hydra's config loader, wrapped in
``ComposedOnce``, to their launcher; what the sweeper composed the launcher then takes instead
of composing again.

A composed config takes about 0.4 MB in memory: a grid of thousands of jobs keeps only the
first ``KEEP_AT_MOST`` of a launch; the launcher composes the others again.

A launcher that runs its jobs in other processes (joblib, Ray, submitit) pickles the loader
with every job: it arrives there without the kept configs and composes the job there, as Hydra
does.
"""

from hydra.types import HydraContext

KEEP_AT_MOST = 256  # job configs kept for the launcher: about 100 MB


class ComposedOnce:
    """Hydra's config loader that keeps the job configs a sweeper composed (``compose``) and
    hands each to the launcher's ``load_sweep_config`` once, instead of composing it again."""

    def __init__(self, loader, keep_at_most=KEEP_AT_MOST):
        self.loader = loader
        self.keep_at_most = keep_at_most
        self.kept = {}

    def compose(self, master_config, overrides):
        """The config of the job with these overrides, as the launcher would compose it; kept
        for the launcher (up to ``keep_at_most``). ``forget`` drops what no launcher took."""
        config = self.loader.load_sweep_config(master_config, list(overrides))
        if len(self.kept) < self.keep_at_most:
            self.kept[_key(master_config, overrides)] = config
        return config

    def load_sweep_config(self, master_config, sweep_overrides):
        """The launcher's call: the job's config kept by ``compose``, or a new composition.
        A kept config is handed out once: the launcher writes the job's number into it."""
        kept = self.kept.pop(_key(master_config, sweep_overrides), None)
        if kept is not None:
            return kept
        return self.loader.load_sweep_config(master_config, sweep_overrides)

    def forget(self):
        """Drop the kept configs (the jobs left out or run in other processes): a sweep holds
        at most one launch's configs."""
        self.kept.clear()

    def __getattr__(self, name):  # the rest of the loader's interface is Hydra's own
        if name == "loader":  # not yet set (while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __getstate__(self):
        return {**self.__dict__, "kept": {}}  # not every job's config with every job


def composing_once(hydra_context):
    """``hydra_context`` whose config loader is a ``ComposedOnce`` (for a sweeper's setup)."""
    loader = ComposedOnce(hydra_context.config_loader)
    return HydraContext(config_loader=loader, callbacks=hydra_context.callbacks)


def _key(master_config, overrides):
    return id(master_config), tuple(overrides)
