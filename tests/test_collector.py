"""MLflow's imports without the garbage collector (runner.tracking.collector)."""

import gc

import pytest

from runner.tracking.collector import imports_without_collection


@pytest.fixture
def collector_restored():
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()  # the frozen objects back to the oldest generation, as before the test
    if was_enabled:
        gc.enable()


def test_the_block_runs_without_collection_and_what_it_left_is_set_aside(collector_restored):
    gc.enable()
    frozen_before = gc.get_freeze_count()
    with imports_without_collection():
        assert not gc.isenabled()
        kept = [[] for _ in range(1000)]  # objects that outlive the block
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(kept)


def test_a_collector_that_was_off_stays_off(collector_restored):
    gc.disable()
    with imports_without_collection():
        pass
    assert not gc.isenabled()


def test_the_collector_comes_back_after_an_error(collector_restored):
    gc.enable()
    with pytest.raises(ImportError), imports_without_collection():
        import runner.no_such_module  # noqa: F401
    assert gc.isenabled()
