"""Defaults live in one place: the dataclass schema. A YAML file holds only what differs.

Hydra's style (a structured-config schema with defaults, YAML options that extend it): the
schema keeps each default next to its comment and its check, and is what library code and
``--cfg job`` see. A YAML key that repeats a schema default could later drift from it (as
``epochs`` once did: 50 in the schema, 100 in runner/conf/config.yaml), so none may.
"""

import pytest
from omegaconf import OmegaConf

from runner.config import CONF_DIR, GROUP_SCHEMAS, RunConfig

FILES = [(CONF_DIR / "config.yaml", RunConfig)] + [
    (path, schema)
    for group, schema in GROUP_SCHEMAS.items()
    for path in sorted((CONF_DIR / group).glob("*.yaml"))
]


def repeated_defaults(values, defaults, prefix=""):
    """Keys of ``values`` whose value equals the schema default (an option's name excepted)."""
    repeated = []
    for key, value in values.items():
        if key in ("defaults", "hydra", "name") or key not in defaults:
            continue
        default = defaults[key]
        if isinstance(value, dict) and isinstance(default, dict):
            repeated += repeated_defaults(value, default, f"{prefix}{key}.")
        elif value == default:
            repeated.append(f"{prefix}{key}={value}")
    return repeated


@pytest.mark.parametrize(
    ("path", "schema"), FILES, ids=[str(p.relative_to(CONF_DIR)) for p, _ in FILES]
)
def test_yaml_repeats_no_schema_default(path, schema):
    values = OmegaConf.to_container(OmegaConf.load(path))
    defaults = OmegaConf.to_container(OmegaConf.structured(schema))
    assert repeated_defaults(values, defaults) == [], (
        f"{path.name} repeats defaults of {schema.__name__}; keep them only in the schema"
    )


def test_the_check_sees_a_repeated_default():
    defaults = OmegaConf.to_container(OmegaConf.structured(RunConfig))
    assert repeated_defaults({"epochs": defaults["epochs"], "lr": 0.5}, defaults) == [
        f"epochs={defaults['epochs']}"
    ]
    assert repeated_defaults({"tracking": {"enabled": True}}, defaults) == ["tracking.enabled=True"]
