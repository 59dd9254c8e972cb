"""The float types a network computes in and a data set is loaded as: one list for both.

A module of its own because the engine and the data sets may not import each other.
"""

DTYPES = ("float32", "float64")
