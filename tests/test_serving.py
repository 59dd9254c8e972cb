"""`mlflow models serve` on a logged run answers the README's curl requests with what the
engine computes; the payload the README calls refused is refused."""

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from runner.datasets import load_dataset
from runner.engine import MLP
from tests.helpers import (
    REPO,
    answers_http,
    on_a_free_port,
    run_cli,
    start_process,
    stop_group,
    wait_until_ready,
)

# A run, then a server start: about a minute on a loaded 2-core machine.
pytestmark = pytest.mark.heavy


def readme_payloads():
    """The JSON bodies of the README's curl lines, and the body it says answers 400."""
    text = (REPO / "README.md").read_text()
    accepted = [json.loads(body) for body in re.findall(r"^curl .* -d '(.*)'$", text, re.M)]
    (refused,) = re.findall(r"Rows without names, `(\{.*?\})`, answer\s+400", text)
    return accepted, json.loads(refused)


def post(url, payload):
    """(HTTP status, decoded JSON answer) of a POST of ``payload`` as JSON."""
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def rows_of(payload):
    """The rows a payload sends, as a DataFrame by column name."""
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        return pd.DataFrame(split["data"], columns=split["columns"])
    return pd.DataFrame(payload["dataframe_records"])


def serve(project_dir, run_id, uri):
    """A `mlflow models serve` of the run's model on a free port; (process, base URL)."""
    log = project_dir / "serve.log"

    def start(port):
        with log.open("ab") as output:
            process = start_process(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "models",
                    "serve",
                    "-m",
                    f"runs:/{run_id}/model",
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                ],
                cwd=project_dir,
                env={"MLFLOW_TRACKING_URI": uri},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        if wait_until_ready(answers_http(f"{url}/ping"), process, "mlflow models serve", log=log):
            return process, url
        return None

    return on_a_free_port(start, "mlflow models serve")


def test_the_readme_curl_payloads_get_the_engine_predictions(project_dir):
    result = run_cli("epochs=5", cwd=project_dir)
    assert result.returncode == 0, result.stderr
    uri = f"sqlite:///{project_dir / 'outputs' / 'mlflow.db'}"
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("runner").experiment_id])
    weights = client.download_artifacts(run.info.run_id, "weights.npz", str(project_dir))
    net = MLP.load(weights, ["relu", "relu", "softmax"])
    scaled = load_dataset("iris", test_fraction=0.3)  # the default run's standardisation

    accepted, refused = readme_payloads()
    assert {next(iter(p)) for p in accepted} == {"dataframe_split", "dataframe_records"}
    process, url = serve(project_dir, run.info.run_id, uri)
    try:
        for payload in accepted:
            status, answer = post(f"{url}/invocations", payload)
            assert status == 200, answer
            rows = rows_of(payload)[list(scaled.feature_names)].to_numpy(dtype=float)
            expected = net.predict((rows - scaled.feature_mean) / scaled.feature_scale)
            served = [
                [row[f"p_{name}"] for name in scaled.class_names] for row in answer["predictions"]
            ]
            np.testing.assert_allclose(served, expected, rtol=1e-12)
        status, answer = post(f"{url}/invocations", refused)
        assert status == 400 and "Model is missing inputs" in answer["message"], answer
    finally:
        stop_group(process)
