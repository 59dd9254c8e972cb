"""Shared fixtures: hypothesis profiles and a strict-warnings guard for numerical code."""

import os
import warnings

import pytest
from hypothesis import settings

# CI runs more examples; a developer's default run stays quick.
settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def no_runtime_warnings():
    """Turn any RuntimeWarning (overflow, divide by zero, invalid value) into a failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield
