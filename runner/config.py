"""The config schema: one dataclass per group, registered in Hydra's ConfigStore.

The schema holds every default, with a comment on each field; the YAML files in ``runner/conf/``
extend it with only what differs (tests/test_config_defaults.py keeps it so), so a default is
written once. A wrong type is refused when Hydra composes the config, and the value checks in
``__post_init__`` run when ``OmegaConf.to_object`` builds the dataclasses. The ``dataset``
group's schema is the data layer's own ``DatasetOptions``. Activations, losses, initialisers,
optimizers and data sets are chosen by *name* from in-code registries (never ``_target_``),
so no command-line override can make the runner import or call arbitrary code.
"""

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from runner.datasets import DatasetOptions
from runner.engine import ACTIVATIONS, DTYPES, INIT_CHOICES, LOSSES
from runner.errors import ConfigError
from runner.training import OPTIMIZERS, SCHEDULES, optimizer_settings

# Inside the package, so a wheel carries it; __main__ names it relative to itself.
CONF_DIR = Path(__file__).resolve().parent / "conf"


# A model named by its layer sizes, like the shipped files: mlp_4_8_8_3 is [4, 8, 8, 3]. With
# model.layers overridden, such a name would describe a net that is not trained, so it follows
# the layers; any other name (a user's wide.yaml) is the user's label and stays.
SIZES_NAME = re.compile(r"mlp(_\d+)+")


def _one_of(key, value, choices):
    if value not in choices:
        raise ConfigError(f"{key} must be one of {sorted(choices)}, got {value!r}")


def _default(schema, key):
    """The schema's default for one of its fields."""
    spec = schema.__dataclass_fields__[key]
    return spec.default if spec.default_factory is dataclasses.MISSING else spec.default_factory()


def _positive(key, value, hint=""):
    if not value > 0:
        raise ConfigError(f"{key} must be > 0, got {value}{hint}")


@dataclass
class ModelConfig:
    name: str = MISSING  # names runs and summaries; a name of sizes (mlp_4_8_8_3) follows layers
    layers: list[int] = MISSING  # [n_features, *hidden, n_outputs]
    activation: str = "relu"  # every hidden layer's activation
    output_activation: str = "softmax"  # the last layer's activation; fixes the natural loss
    activations: list[str] | None = None  # one per layer; overrides the two keys above
    bias: bool = True  # false gives the tutorials' bias-free nets
    init: str = "auto"  # auto = He for relu/leaky_relu, Glorot otherwise
    init_std: float = 0.01  # standard deviation for init=normal

    def __post_init__(self):
        if len(self.layers) < 2 or any(size <= 0 for size in self.layers):
            raise ConfigError(
                f"model.layers must be at least two positive sizes [n_features, ..., n_outputs], "
                f"got {list(self.layers)}"
            )
        _one_of("model.activation", self.activation, ACTIVATIONS)
        _one_of("model.output_activation", self.output_activation, ACTIVATIONS)
        if self.activations is not None:
            if len(self.activations) != len(self.layers) - 1:
                raise ConfigError(
                    f"model.activations must list {len(self.layers) - 1} names, one per layer "
                    f"of {list(self.layers)}, got {list(self.activations)}"
                )
            for name in self.activations:
                _one_of("model.activations", name, ACTIVATIONS)
        _one_of("model.init", self.init, INIT_CHOICES)
        _positive("model.init_std", self.init_std)
        if SIZES_NAME.fullmatch(self.name):  # named by its sizes: by the sizes it trains
            self.name = "mlp_" + "_".join(str(size) for size in self.layers)

    def layer_activations(self):
        """The activation of every layer, hidden ones first."""
        if self.activations is not None:
            return list(self.activations)
        return [self.activation] * (len(self.layers) - 2) + [self.output_activation]


@dataclass
class LossConfig:
    name: str = "auto"  # auto picks the loss that fits the model's output activation

    def __post_init__(self):
        _one_of("loss", self.name, ("auto", *LOSSES))


@dataclass
class OptimizerConfig:
    name: str = "sgd"  # the update rule: sgd, momentum, nesterov (all SGD), adam or adamw
    momentum: float = 0.0  # SGD: μ in v ← μv + g
    nesterov: bool = False  # SGD: use the look-ahead gradient g + μv
    weight_decay: float = 0.0  # λ on the weights (not biases): L2 (sgd, adam) or decoupled (adamw)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # Adam: m's and v's decay
    eps: float = 1e-8  # Adam: added to √v (bias-corrected) so that a step stays finite
    schedule: str = "constant"  # constant, step, exponential or cosine
    step_size: int = 10  # step schedule: epochs between decays
    gamma: float = 0.5  # step/exponential schedules: decay factor
    min_lr: float = 0.0  # cosine schedule: the final learning rate

    def __post_init__(self):
        _one_of("optimizer.name", self.name, OPTIMIZERS)
        self._refuse_settings_the_rule_ignores()
        _one_of("optimizer.schedule", self.schedule, SCHEDULES)
        _positive("optimizer.step_size", self.step_size)
        _positive("optimizer.gamma", self.gamma)
        if self.min_lr < 0:
            raise ConfigError(f"optimizer.min_lr must be >= 0, got {self.min_lr}")

    def _refuse_settings_the_rule_ignores(self):
        """A setting changed from its default that the chosen rule never reads would do
        nothing (optimizer=adam optimizer.momentum=0.9): refuse it rather than ignore it."""
        takes = optimizer_settings(self.name)
        for key in sorted({key for name in OPTIMIZERS for key in optimizer_settings(name)}):
            if key not in takes and getattr(self, key) != _default(OptimizerConfig, key):
                raise ConfigError(
                    f"optimizer.{key} does nothing for optimizer.name={self.name}, which reads "
                    f"{', '.join(takes)}; drop optimizer.{key} or pick an optimizer that reads it"
                )


@dataclass
class EarlyStoppingConfig:
    patience: int | None = None  # epochs without val_loss improvement before stopping; null: off
    min_delta: float = 0.0  # an improvement must beat the best val_loss by more than this
    restore_best: bool = True  # end with the weights of the best epoch

    def __post_init__(self):
        if self.patience is not None:
            _positive("early_stopping.patience", self.patience)
        if self.min_delta < 0:
            raise ConfigError(f"early_stopping.min_delta must be >= 0, got {self.min_delta}")


@dataclass
class TrackingConfig:
    enabled: bool = True  # log the run to MLflow
    uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/outputs/mlflow.db
    log_every_n_steps: int = 0  # also log the training loss every n steps; 0: per epoch only
    log_model: bool = True  # log an MLflow pyfunc model (takes a few seconds at the end)
    outage_wait_s: float = 120.0  # how long the end of a run waits for a store that went away

    def __post_init__(self):
        if self.outage_wait_s < 0:
            raise ConfigError(f"tracking.outage_wait_s must be >= 0, got {self.outage_wait_s}")
        if self.log_every_n_steps < 0:
            raise ConfigError(
                f"tracking.log_every_n_steps must be >= 0, got {self.log_every_n_steps}"
            )


@dataclass
class CheckpointConfig:
    every_n_epochs: int = 1  # write a checkpoint every n epochs; 0: only at the end and on Ctrl-C
    min_interval_s: float = 1.0  # but not more often than this (a write costs 1-2 ms); 0: always

    def __post_init__(self):
        if self.every_n_epochs < 0:
            raise ConfigError(f"checkpoint.every_n_epochs must be >= 0, got {self.every_n_epochs}")
        if self.min_interval_s < 0:
            raise ConfigError(f"checkpoint.min_interval_s must be >= 0, got {self.min_interval_s}")


@dataclass
class SweepConfig:
    restart: bool = False  # -m: a new parent run, instead of continuing the same sweep's last one


@dataclass
class RunConfig:
    model: ModelConfig = MISSING
    dataset: DatasetOptions = MISSING  # its keys and checks: runner/datasets/spec.py
    loss: LossConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    batch: int = 32  # minibatch size; the last partial batch is kept
    lr: float = 0.1  # base learning rate
    epochs: int = 100  # passes over the training data; 0 only evaluates
    seed: int = 0  # one seed for the split, the initial weights and the batch order
    dtype: str = "float64"  # float32 or float64, end to end
    shuffle: bool = True  # a new batch order every epoch; false keeps the data's order
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    divergence_factor: float = 10.0  # stop when a step's loss exceeds this × the first epoch's
    init_from: str | None = None  # start from weights in this .npz (W1, b1, ...)
    progress: bool | None = None  # progress bar; null: only when attached to a terminal
    epoch_lines: bool = True  # a line per epoch on the console (always in runner.log; sweeps: off)
    experiment: str = "runner"  # the MLflow experiment the run goes into
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    resume: str | None = None  # continue a run: its MLflow run id or its checkpoint.npz
    plan: bool = False  # print what the run or sweep would do (layers, data, jobs); train nothing
    sweep: SweepConfig = field(default_factory=SweepConfig)  # how a sweep (-m) runs again

    def __post_init__(self):
        _positive("batch", self.batch, "; use e.g. batch=32")
        _positive("lr", self.lr, "; use e.g. lr=0.1")
        if self.epochs < 0:
            raise ConfigError(f"epochs must be >= 0, got {self.epochs}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        _one_of("dtype", self.dtype, DTYPES)
        if not self.experiment.strip():
            raise ConfigError("experiment must name an MLflow experiment, e.g. experiment=runner")
        if not self.divergence_factor > 1:
            raise ConfigError(f"divergence_factor must be > 1, got {self.divergence_factor}")


GROUP_SCHEMAS = {
    "model": ModelConfig,
    "dataset": DatasetOptions,
    "loss": LossConfig,
    "optimizer": OptimizerConfig,
}


def register_configs():
    """Put the schemas where the YAML files' defaults lists find them, and give ``--help``
    (runner/conf/config.yaml's ``hydra.help.template``) the groups' options without them."""
    store = ConfigStore.instance()
    store.store(name="base_config", node=RunConfig)
    for group, schema in GROUP_SCHEMAS.items():
        store.store(group=group, name=f"base_{group}", node=schema)
    OmegaConf.register_new_resolver("runner_config_groups", _config_groups, replace=True)


def _config_groups():
    """Hydra's ``$APP_CONFIG_GROUPS`` without the schemas: ``base_model`` is what a model file
    extends (its defaults list names it), never a model to pick. Read from Hydra's config
    loader, so a user's own config folder shows too."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.object_type import ObjectType

    loader = GlobalHydra.instance().config_loader()
    lines, parents = [], [""]
    while parents:
        parent = parents.pop()
        for name in loader.list_groups(parent):
            group = f"{parent}/{name}" if parent else name
            if group == "hydra":
                continue
            options = loader.get_group_options(group, ObjectType.CONFIG)
            options = sorted(o for o in options if o != f"base_{group}")
            if options:
                lines.append(f"{group}: {', '.join(options)}")
            parents.append(group)
    return "\n".join(sorted(lines))


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Validate a composed config and turn it into dataclasses.

    Keys that the schema does not know are refused first: ``+key=value`` overrides get past
    Hydra's schema check, and ``OmegaConf.to_object`` would silently drop them. The checks
    may rename the model (``ModelConfig``: a name of sizes follows the layers); ``cfg`` takes
    the new name too, so the config logged beside the run says the same.
    """
    _reject_unknown_keys(cfg, RunConfig, "")
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            f"{missing[0]} is not set (???); set it on the command line, e.g. {missing[0]}=..."
        )
    run_config = OmegaConf.to_object(cfg)
    cfg.model.name = run_config.model.name
    return run_config


def run_config_from_dict(config: dict) -> RunConfig:
    """The RunConfig of a config saved as plain data (a checkpoint's), checked as on the CLI."""
    return to_run_config(OmegaConf.merge(OmegaConf.structured(RunConfig), config))


def _reject_unknown_keys(node, schema, prefix):
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key, value in node.items_ex(resolve=False):
        if key not in fields:
            raise unknown_key_error(f"{prefix}{key}")
        sub_schema = fields[key].type
        if OmegaConf.is_missing(node, key):  # e.g. ~model: reported by to_run_config as unset
            continue
        if dataclasses.is_dataclass(sub_schema) and isinstance(value, DictConfig):
            _reject_unknown_keys(value, sub_schema, f"{prefix}{key}.")


def is_schema_key(key: str) -> bool:
    """True for a dotted key the schema has (``optimizer.momentum``), or one inside a list or
    dict value it has (``model.layers.0``)."""
    schema = RunConfig
    for part in key.split("."):
        if not dataclasses.is_dataclass(schema):
            return True
        types = {f.name: f.type for f in dataclasses.fields(schema)}
        if part not in types:
            return False
        schema = types[part]
    return True


def unknown_key_error(key: str) -> ConfigError:
    """'unknown key bacth; did you mean batch?': the schema's closest keys, nested ones too
    (``optimizer.momentun`` and ``momentun`` find ``optimizer.momentum``), else the keys valid
    where ``key`` was written."""
    close = _closest_keys(key) or _keys_ending_like(key)
    if close:
        return ConfigError(f"unknown key {key}; did you mean {' or '.join(close)}?")
    schema, parts = RunConfig, key.split(".")
    for part in parts[:-1]:
        types = {f.name: f.type for f in dataclasses.fields(schema)}
        if not dataclasses.is_dataclass(types.get(part)):
            break
        schema = types[part]
    valid = sorted(f.name for f in dataclasses.fields(schema))
    return ConfigError(f"unknown key {key}; valid keys here are {valid}")


def _closest_keys(key):
    """The key with each part that the schema lacks replaced by its closest name there; the
    last part may have up to three. [] when some part has none."""
    schema, prefix, *parents, last = RunConfig, "", *key.split(".")
    for part in parents:
        types = {f.name: f.type for f in dataclasses.fields(schema)}
        names = [part] if part in types else difflib.get_close_matches(part, types, n=1)
        if not names or not dataclasses.is_dataclass(types[names[0]]):
            return []
        prefix, schema = f"{prefix}{names[0]}.", types[names[0]]
    names = difflib.get_close_matches(last, [f.name for f in dataclasses.fields(schema)], n=3)
    return [prefix + name for name in names]


def _keys_ending_like(key):
    """Keys of the schema whose last part is close to the key's: a name at the wrong depth."""
    keys = _schema_keys(RunConfig)
    last_parts = {k.rsplit(".", 1)[-1] for k in keys}
    close = set(difflib.get_close_matches(key.rsplit(".", 1)[-1], last_parts, n=3))
    return [k for k in keys if k.rsplit(".", 1)[-1] in close][:3]


def _schema_keys(schema, prefix=""):
    """Every dotted key of a dataclass schema, groups and their keys alike."""
    keys = []
    for f in dataclasses.fields(schema):
        keys.append(prefix + f.name)
        if dataclasses.is_dataclass(f.type):
            keys += _schema_keys(f.type, f"{prefix}{f.name}.")
    return keys


def model_names_with_inputs(n_features):
    """Model files in runner/conf/model/ whose first layer takes n_features inputs (for hints)."""
    names = []
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        layers = OmegaConf.load(path).get("layers")
        if layers and layers[0] == n_features:
            names.append(path.stem)
    return names
