"""MLflow's imports without Python's cyclic garbage collector.

Importing MLflow and opening its store leave some 160,000 objects (modules, classes,
SQLAlchemy's mappers) that live as long as the process. Each full collection walks them all,
about 0.08 s here, and the imports alone set off several: half a second of the worker's
start-up, and as much of a tracked sweep's before its parent run exists.
"""

import contextlib
import gc


@contextlib.contextmanager
def imports_without_collection():
    """Run the block (imports, a store's opening) with the collector off, then freeze what it
    left: ``gc.freeze`` sets every object alive now aside, never to be walked again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
