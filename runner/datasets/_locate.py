"""Where a relative ``dataset.path`` is found: the folder a run starts from, then ``datasets/``.

``datasets/`` is the home of a user's own tables: the one in the folder the run starts from,
and, when the runner is used from a source checkout (an editable install, or the checkout on
``sys.path``), the checkout's own ``datasets/`` at its root, beside ``pyproject.toml``. An
installed wheel has no checkout, so only the first two places are looked in.
"""

from pathlib import Path

from runner.errors import DataError

# The checkout's root when this file sits in one (runner/datasets/_locate.py); in a wheel it is
# site-packages, which holds no pyproject.toml (and whose datasets/ is Hugging Face's package).
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def find_data_file(path):
    """The file a ``dataset.path`` names: an absolute path as it is; a relative one looked up
    in the current folder, then ``datasets/`` there, then the source checkout's ``datasets/``.

    Returns the first candidate that exists, as a Path (relative for the first two, so
    messages about the file read as the user wrote it). A missing file is a DataError that
    names every place looked.
    """
    path = Path(path)
    if path.is_absolute():
        return path
    candidates = [path, Path("datasets") / path]
    if (SOURCE_ROOT / "pyproject.toml").is_file():
        candidates.append(SOURCE_ROOT / "datasets" / path)
    seen = []
    for candidate in candidates:
        where = candidate.resolve()
        if where not in seen:  # run from the checkout's root, its datasets/ is the same folder
            seen.append(where)
            if candidate.exists():
                return candidate
    places = ", ".join(str(where) for where in seen)
    raise DataError(
        f"data file {path} for dataset.path was not found; looked in {places}; put the file in "
        f"a datasets/ folder, or set dataset.path to its full path"
    )
