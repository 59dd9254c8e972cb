"""runner: config-driven experiments with NumPy multilayer perceptrons.

The engine, training and data sets (``runner.engine``, ``runner.training``,
``runner.datasets``) import neither Hydra nor MLflow; Hydra is used by the entry point, the
config schema, the override checks and the sweep callback, MLflow by ``runner.tracking`` (in
its worker process) and the sweeps' reports. Importing this package stays cheap.
"""

__version__ = "0.1.0"
