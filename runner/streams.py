"""A run's random streams: one ``seed``, one independent stream per purpose.

Every random draw of a run comes from one of these streams, each a child of
``SeedSequence(seed)`` at a fixed index (its spawn key), which is what
``SeedSequence(seed).spawn(3)[index]`` gives. Children of one SeedSequence are independent, so
the data never shares draws with the initial weights: with a single stream, generated points
and the first weights would be the same numbers. A purpose's draws also never shift another's:
more rows, another initialiser or another batch size change only their own stream.

The indices are part of every recorded result: renumbering one changes the data, the weights
or the batch order of every seed.
"""

import numpy as np

DATA = 0  # generated rows, then the train/val/test split
INIT = 1  # the initial weights
BATCHES = 2  # the order of the minibatches, epoch after epoch


def generator(seed, purpose):
    """The Generator of ``purpose`` (DATA, INIT or BATCHES) in a run with this ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(purpose,)))
