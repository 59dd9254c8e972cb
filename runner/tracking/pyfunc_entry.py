"""The model's code, as MLflow's models-from-code loads it: no pickled Python objects."""

from mlflow.models import set_model

from runner.tracking.model import MLPModel

set_model(MLPModel())
