"""A sweep's parent run in the store, as the launching process's tracking worker keeps it.

The launching process sends the requests of ``runner.tracking.messages`` (``OpenSweep`` and
the others) instead of opening the store itself: its worker imports MLflow and opens the store
while the launching process composes the jobs' configs, on the other core, and the launching
process needs MLflow only at the sweep's end. Each request gets one ``Answer`` or ``Refused``.
"""

from mlflow.entities import Param

from runner.errors import one_line
from runner.tracking import messages, tags
from runner.tracking.lookup import child_attempts, finished_jobs, latest_sweep

LEFT_RUNNING = "left RUNNING by an earlier run of its sweep that was killed"


def answer(stores, request):
    """The Answer to a sweep request, or Refused with the reason it failed."""
    try:
        if isinstance(request, messages.OpenSweep):
            value = open_sweep(stores, request)
        else:
            client = stores.client(request.sweep.uri)
            value = ACTIONS[type(request)](client, request)
    except Exception as err:
        uri = request.uri if isinstance(request, messages.OpenSweep) else request.sweep.uri
        reason = f"the sweep's parent run in MLflow at {uri} failed: {one_line(err)}"
        return messages.Refused(request.request, reason)
    return messages.Answer(request.request, value)


def open_sweep(stores, request):
    """Reopen the newest parent run with the sweep's identity (if asked), else create one."""
    client = stores.client(request.uri)
    experiment_id = stores.experiment_id(request.uri, request.experiment, request.artifact_root)
    found = latest_sweep(client, experiment_id, request.identity) if request.resume else None
    if found is not None:
        reopen(client, found, experiment_id)
        return messages.OpenedSweep(found.info.run_id, experiment_id, found.info.run_name, True)
    run = client.create_run(experiment_id, run_name=request.run_name, tags=request.tags)
    params = [Param(key, value) for key, value in request.params.items()]
    client.log_batch(run.info.run_id, params=params)
    return messages.OpenedSweep(run.info.run_id, experiment_id, request.run_name, False)


def reopen(client, parent, experiment_id):
    """Make an earlier parent run the running sweep's again.

    Its children still RUNNING were left so by a sweep killed outright (nothing else is
    running this sweep): they are ended FAILED, and their jobs run again.
    """
    run_id = parent.info.run_id
    client.update_run(run_id, status="RUNNING")
    if "failure_reason" in parent.data.tags:
        client.delete_tag(run_id, "failure_reason")
    for child in child_attempts(client, experiment_id, run_id):
        if child.info.status == "RUNNING":
            client.set_tag(child.info.run_id, "failure_reason", LEFT_RUNNING)
            client.set_terminated(child.info.run_id, "FAILED")


def finished_identities(client, request: messages.FindFinishedJobs):
    sweep = request.sweep
    return frozenset(finished_jobs(client, sweep.experiment_id, sweep.run_id))


def supersede(client, request: messages.SupersedeJobs):
    sweep, wanted = request.sweep, set(request.identities)
    for run in child_attempts(client, sweep.experiment_id, sweep.run_id):
        data = run.data.tags
        if (
            run.info.status != "FINISHED"
            and data.get(tags.JOB_IDENTITY) in wanted
            and tags.SUPERSEDED not in data
        ):
            client.set_tag(run.info.run_id, tags.SUPERSEDED, "true")


def trials(client, request: messages.FindTrials):
    sweep = request.sweep
    return [
        messages.Trial(
            number=int(run.data.tags[tags.SWEEP_JOB]),
            status=run.info.status,
            superseded=tags.SUPERSEDED in run.data.tags,
            overrides=run.data.tags.get(tags.OVERRIDES, ""),
            metrics=dict(run.data.metrics),
        )
        for run in child_attempts(client, sweep.experiment_id, sweep.run_id)
        if tags.SWEEP_JOB in run.data.tags
    ]


ACTIONS = {
    messages.FindFinishedJobs: finished_identities,
    messages.SupersedeJobs: supersede,
    messages.FindTrials: trials,
}
