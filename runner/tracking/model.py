"""The trained net as an MLflow pyfunc model that needs only NumPy, pandas and the engine.

It takes raw feature rows (a DataFrame with the data set's column names, text values and
missing cells as the CSV had them) and applies the data set's encoding (``runner.encoding``:
one-hot columns, missing cells filled when trained with dataset.missing=mean) and the training
split's standardisation itself, so ``mlflow models predict`` and ``mlflow models serve`` work
on data as it comes. Classifiers return one probability column per class; regressors return
the target in its own units.
"""

import functools
import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

from runner.encoding import Encoding

PACKAGE = Path(__file__).resolve().parent.parent
# What the model's code needs: the engine, the errors it raises, the encoding, this module.
STAGED = (
    "__init__.py",
    "errors.py",
    "encoding.py",
    "engine",
    "tracking/__init__.py",
    "tracking/model.py",
)
ENTRY = Path(__file__).resolve().parent / "pyfunc_entry.py"


class MLPModel(mlflow.pyfunc.PythonModel):
    """Loads ``weights.npz`` and ``spec.json`` from the model's artifacts."""

    def load_context(self, context):
        from runner.engine import MLP

        spec = json.loads(Path(context.artifacts["spec"]).read_text())
        self.net = MLP.load(context.artifacts["weights"], spec["activations"])
        self.encoding = Encoding.from_dict(spec["encoding"])
        self.output_names = spec["output_names"]
        self.feature_mean = np.asarray(spec["feature_mean"])
        self.feature_scale = np.asarray(spec["feature_scale"])
        self.target_mean = np.asarray(spec["target_mean"])
        self.target_scale = np.asarray(spec["target_scale"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Probabilities or targets for raw rows: a DataFrame by column names, or rows in
        feature order; a row the encoding cannot read is an MLflow bad-request error."""
        try:
            X = self.encoding.transform(self.encoding.rows(model_input))
        except ValueError as err:
            raise MlflowException.invalid_parameter_value(str(err)) from None
        X = (X - self.feature_mean) / self.feature_scale
        outputs = self.net.predict(X) * self.target_scale + self.target_mean
        return pd.DataFrame(outputs, columns=self.output_names)


def model_spec(net, dataset):
    """What MLPModel needs besides the weights, as JSON-ready values."""
    regression = dataset.task == "regression"
    if regression:
        output_names = ["prediction"] * net.layer_sizes[-1]
    elif net.layer_sizes[-1] == 1:
        output_names = [f"p_{dataset.class_names[1]}"]
    else:
        output_names = [f"p_{name}" for name in dataset.class_names]
    return {
        "activations": list(net.activations),
        "encoding": dataset.encoding.to_dict(),
        "output_names": output_names,
        "feature_mean": dataset.feature_mean.tolist(),
        "feature_scale": dataset.feature_scale.tolist(),
        "target_mean": dataset.target_mean.tolist() if regression else 0.0,
        "target_scale": dataset.target_scale.tolist() if regression else 1.0,
    }


def log_model(net, dataset, weights_path, workdir):
    """Log the pyfunc model under ``model`` in the active run, with signature and example."""
    workdir = Path(workdir)
    code = workdir / "code" / "runner"
    for item in STAGED:
        source, target = PACKAGE / item, code / item
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    spec_path = workdir / "spec.json"
    spec_path.write_text(json.dumps(model_spec(net, dataset), indent=2))

    encoded = dataset.test.X[:5] * dataset.feature_scale + dataset.feature_mean
    example = dataset.encoding.decode(encoded)
    artifacts = {"weights": str(weights_path), "spec": str(spec_path)}
    model = MLPModel()
    model.load_context(mlflow.pyfunc.PythonModelContext(artifacts=artifacts, model_config={}))
    signature = mlflow.models.infer_signature(example, model.predict(None, example))
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(ENTRY),  # models from code: loading unpickles nothing
        artifacts=artifacts,
        code_paths=[str(code)],
        signature=signature,
        input_example=example,
        pip_requirements=pip_requirements(),
    )


@functools.cache
def pip_requirements():
    """What the model needs, pinned to this process's versions; the check is paid once here.

    Stated, not inferred: inference imports the model in a subprocess, seconds per run. MLflow
    still checks stated requirements against the installed packages, and its first check in
    a process scans every installed distribution (``packages_distributions``, about 1.3 s),
    then keeps the map for the process. Cached, so a worker that logs many models (a sweep's)
    pays the check at its first model only.
    """
    requirements = [f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"]
    warn_dependency_requirement_mismatches(requirements)
    return tuple(requirements)
