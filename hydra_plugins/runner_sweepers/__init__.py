"""Runner's sweepers, where Hydra looks for plugins (it instantiates only classes under
``hydra_plugins``). The work is in ``runner.sweeps``; see ``sweepers.py``."""
