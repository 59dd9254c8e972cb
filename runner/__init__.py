"""runner: config-driven experiments with NumPy multilayer perceptrons.

The engine (``runner.engine``) imports only NumPy; Hydra and MLflow are used by the
entry point and the tracking module alone, so importing this package stays cheap.
"""

__version__ = "0.1.0"
