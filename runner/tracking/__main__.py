"""``python -m runner.tracking``: the tracking worker, at the lowest CPU priority.

It runs beside training and must never slow it: at nice 19 the scheduler gives training the
cores whenever both want them, and the worker catches up when training waits or ends. The
priority is set before importing MLflow, which is most of the worker's work.
"""

import os
import sys

os.nice(19)

from runner.tracking.worker import main  # noqa: E402  (after the priority change, on purpose)

sys.exit(main())
