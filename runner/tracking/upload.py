"""``python -m runner.tracking.upload <run dir>/mlflow_unsent.json``: finish a run's logging.

When the tracking store stayed away longer than ``tracking.outage_wait_s``, the worker saved
what the store lacks (metrics, and the end of the run: artifacts, model, status) to that file.
This sends it, continuing the same run (or creating it, if the store never saw it), and then
renames the file to ``mlflow_unsent.uploaded.json``.
"""

import dataclasses
import json
import sys
from pathlib import Path

from runner.errors import one_line
from runner.tracking import messages
from runner.tracking.worker import RunSession


def upload(path):
    path = Path(path)
    saved = json.loads(path.read_text())
    start = messages.start_from_json(saved["start"])
    if saved["run_id"]:
        start = dataclasses.replace(start, resume_run_id=saved["run_id"], history=[])
    session = RunSession(start)
    session.open()
    for key, value, step in saved["history"]:
        session.history.setdefault(key, {})[step] = value
    session.log_metrics([tuple(row) for row in saved["pending"]])
    kind, fields = saved["last"]
    if kind == "finish":
        figures = tuple(fields.get("figures", ()))  # none in files of earlier versions
        session.finish(messages.Finish(start.run, fields["weights_path"], fields["rows"], figures))
    else:
        session.end(fields["status"], fields["reason"])
    path.rename(path.with_name("mlflow_unsent.uploaded.json"))
    return session.info


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(
            "usage: python -m runner.tracking.upload <run dir>/mlflow_unsent.json", file=sys.stderr
        )
        return 2
    try:
        info = upload(args[0])
    except Exception as err:
        print(f"Error: could not upload {args[0]}: {one_line(err)}", file=sys.stderr)
        return 1
    print(f"uploaded to MLflow run {info.run_name} ({info.run_id}) in {info.uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
