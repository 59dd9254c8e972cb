"""``python -m runner.report``: kept as the short name of ``python -m runner.sweeps.report``."""

import sys

from runner.sweeps.report import main

if __name__ == "__main__":
    sys.exit(main())
