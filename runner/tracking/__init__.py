"""MLflow tracking: the training side (client) never imports MLflow; the worker does."""
