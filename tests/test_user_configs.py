"""A user's own configs, in a folder of their project, used without editing the installed
package: Hydra's ``--config-dir`` and ``hydra.searchpath`` (issue 10, item 9)."""

import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.slow

WIDE = """# One wide hidden layer for iris, in the user's own project.
defaults:
  - base_model
  - _self_
name: wide
layers: [4, 64, 3]
"""


@pytest.mark.parametrize(
    "adds_folder", [("--config-dir", "my_configs"), ("hydra.searchpath=[file://my_configs]",)]
)
def test_a_model_file_in_the_users_folder_trains(tmp_path, adds_folder):
    (tmp_path / "my_configs" / "model").mkdir(parents=True)
    (tmp_path / "my_configs" / "model" / "wide.yaml").write_text(WIDE)
    result = run_cli(*adds_folder, "model=wide", "epochs=2", "tracking.enabled=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'Model: "wide"' in result.stdout
    assert "(4, 64)" in result.stdout  # the first layer's W shape, from the user's file


def test_a_search_path_entry_that_imports_a_module_is_refused(tmp_path):
    # A module in the folder the run starts from is importable (python -m puts it on sys.path).
    (tmp_path / "payload.py").write_text("open('ran', 'w').close()\n")
    result = run_cli("hydra.searchpath=[pkg://payload]", "epochs=1", cwd=tmp_path)
    assert result.returncode == 1
    assert "'pkg://payload' names a Python module" in result.stderr
    assert not (tmp_path / "ran").exists()
