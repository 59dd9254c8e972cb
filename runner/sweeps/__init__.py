"""Sweeps: the Hydra callback behind a sweep's parent run, its ranked results, the report."""
