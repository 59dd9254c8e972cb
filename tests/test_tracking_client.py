"""The training side of tracking: URIs, reachability, run names, params. No MLflow import."""

import http.server
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

from runner.datasets import load_dataset
from runner.errors import TrackingError
from runner.tracking import messages
from runner.tracking.client import (
    check_reachable,
    flatten_params,
    resolve_uri,
    run_name,
    sweep_run_name,
)


def test_default_store_is_an_absolute_sqlite_path_under_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_uri(None) == f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    assert (tmp_path / "outputs").is_dir()


def test_config_beats_environment_beats_default(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_uri(None) == "http://127.0.0.1:5000"
    assert resolve_uri("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_run_name_comes_from_the_model_and_the_overrides():
    values = {"batch": 32, "lr": 0.1, "seed": 0}
    assert run_name("mlp_4_8_8_3", values, ["batch=32"]) == "mlp_4_8_8_3-batch32-lr0.1-seed0"
    assert (
        run_name("mlp_4_8_8_3", values, ["model=mlp_4_8_8_3", "dtype=float32", "hydra.run.dir=x"])
        == "mlp_4_8_8_3-batch32-lr0.1-seed0-dtype=float32"
    )


def test_a_sweep_childs_name_leads_with_the_swept_values_then_the_model():
    overrides = ["batch=16", "lr=0.05", "epochs=3", "+optimizer.momentum=0.9"]
    swept = ["batch", "lr", "optimizer.momentum"]
    assert sweep_run_name("mlp_4_8_8_3", overrides, swept) == (
        "batch16-lr0.05-optimizer.momentum=0.9 · mlp_4_8_8_3"
    )
    # An Optuna trial's float is cut as :g prints it; the model's name already ends the name.
    trial = ["lr=0.012345678901", "model=mlp_4_16_16_3", "batch=8"]
    swept = ["lr", "batch", "model"]
    assert sweep_run_name("mlp_4_16_16_3", trial, swept) == "lr0.0123457-batch8 · mlp_4_16_16_3"
    assert sweep_run_name("mlp_4_16_16_3", ["model=mlp_4_16_16_3"], ["model"]) == "mlp_4_16_16_3"


def test_flatten_params_gives_dotted_keys_and_lists_as_text():
    config = {"batch": 32, "model": {"layers": [4, 8, 3], "bias": True}, "loss": {"name": "auto"}}
    assert flatten_params(config) == {
        "batch": 32,
        "model.layers": "[4, 8, 3]",
        "model.bias": True,
        "loss.name": "auto",
    }


def test_a_closed_port_is_reported_at_once_naming_the_uri():
    # A port bound but not listening refuses connections, and no other process can take it.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{closed.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(TrackingError, match=f"{uri} is not reachable"):
            check_reachable(uri)
        assert time.monotonic() - started < 15


def test_a_server_that_never_answers_is_reported_within_15_seconds():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        accepted = []
        thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
        thread.start()
        uri = f"http://127.0.0.1:{server.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(TrackingError, match="not reachable"):
            check_reachable(uri)
        assert time.monotonic() - started < 15
        for connection, _ in accepted:
            connection.close()


@pytest.mark.parametrize("status", [200, 404])
def test_a_server_that_answers_is_reachable_whatever_it_answers(status):
    asked = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Health) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            check_reachable(f"http://127.0.0.1:{server.server_address[1]}/")
        finally:
            server.shutdown()
    assert asked == ["/health"]


def test_local_stores_need_no_network_check(monkeypatch):
    def no_network(*args, **kwargs):
        pytest.fail(f"check_reachable asked the network: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    check_reachable("sqlite:////nonexistent/store.db")
    check_reachable("file:///nonexistent/mlruns")


@pytest.mark.slow
def test_the_worker_loads_neither_the_config_nor_the_data_sets():
    # It gets the data from the training process and the config as plain values (issue 13):
    # neither the pipeline that trains, nor the config and data set modules, nor Hydra.
    code = (
        "import sys, runner.tracking.worker, runner.tracking.artifacts, runner.tracking.upload\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('hydra', 'omegaconf') "
        "or m.startswith(('runner.config', 'runner.datasets', 'runner.pipeline'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_start_message_survives_the_unsent_file():
    # mlflow_unsent.json keeps the run's Start (data splits included) for the later upload.
    dataset = load_dataset("iris", test_fraction=0.3)
    start = messages.Start(
        run=3,
        uri="sqlite:///x.db",
        experiment="runner",
        artifact_root=None,
        run_name="name",
        params={"lr": 0.1},
        tags={},
        config_yaml="lr: 0.1\n",
        overrides=["lr=0.1"],
        summary="table",
        layers=[{"W_shape": "(4, 8)"}],
        activations=["relu", "softmax"],
        log_model=True,
        outage_wait_s=1.0,
        output_dir="/tmp",
        data=messages.DataFacts.of(dataset),
        sweep=messages.SweepJob("parent", 2, 123),
    )
    back = messages.start_from_json(messages.start_to_json(start))
    assert back.sweep == start.sweep and back.params == start.params and back.run == 3
    assert back.data.class_names == dataset.class_names
    np.testing.assert_array_equal(back.data.test.X, dataset.test.X)
    np.testing.assert_array_equal(back.data.test.targets, dataset.test.y)
    assert back.data.test.X.dtype == dataset.test.X.dtype
