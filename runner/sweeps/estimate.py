"""How long a planned job may take, judged from earlier runs of the same model and data.

The estimate of a job is the median wall time of the FINISHED runs in its MLflow experiment
that logged the same ``model.layers``, ``dataset.name`` and ``epochs``. A run's wall time is
MLflow's start to end time: it starts after the data set is loaded and ends once its artifacts
and model are logged (in a sweep, while the next job trains), so it is a rough guide, not a
promise. The store is only read: a SQLite file that does not exist is not opened (MLflow would
create it), and a store that cannot be read gives no estimate.
"""

import logging
import statistics
from dataclasses import dataclass
from functools import cache

BASIS = (
    "the median wall time of earlier FINISHED runs with the same model.layers, dataset and epochs"
)


@dataclass(frozen=True)
class Estimate:
    seconds: float  # the median wall time of the runs below
    runs: int  # how many earlier runs it is the median of
    store: str  # the tracking URI they are in


def estimate_job(tracking_uri, experiment, layers, dataset, epochs):
    """The Estimate for a job of this config, or None when the store has no such run.

    tracking_uri : the config's ``tracking.uri`` (None: $MLFLOW_TRACKING_URI or the default).
    """
    from runner.tracking.client import resolve_uri  # deferred: every run imports the plan

    uri = resolve_uri(tracking_uri, create=False)
    return _estimate(uri, experiment, str(list(layers)), dataset, str(epochs))


@cache
def _estimate(uri, experiment, layers, dataset, epochs):
    from runner.tracking.lookup import existing_experiment

    try:
        found = existing_experiment(uri, experiment)
        if found is None:
            return None
        client, experiment_id = found
        runs = client.search_runs(
            [experiment_id],
            filter_string=(
                f"attributes.status = 'FINISHED' and params.`model.layers` = '{layers}' and "
                f"params.`dataset.name` = '{dataset}' and params.epochs = '{epochs}'"
            ),
            max_results=1000,
        )
    except Exception as err:  # an unreachable server or unreadable store: no estimate
        logging.getLogger("runner").warning(f"no time estimate: {uri} cannot be read ({err})")
        return None
    seconds = [(r.info.end_time - r.info.start_time) / 1000 for r in runs if r.info.end_time]
    return Estimate(statistics.median(seconds), len(seconds), uri) if seconds else None
