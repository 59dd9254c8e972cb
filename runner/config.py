"""The config schema: one dataclass per group, registered in Hydra's ConfigStore.

The schema holds every default, with a comment on each field; the YAML files in ``conf/``
extend it with only what differs (tests/test_config_defaults.py keeps it so), so a default is
written once. A wrong type is refused when Hydra composes the config, and the value checks in
``__post_init__`` run when ``OmegaConf.to_object`` builds the dataclasses. The ``dataset``
group's schema is the data layer's own ``DatasetOptions``. Activations, losses, initialisers,
optimizers and data sets are chosen by *name* from in-code registries (never ``_target_``),
so no command-line override can make the runner import or call arbitrary code.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from runner.datasets import DatasetOptions
from runner.engine import ACTIVATIONS, DTYPES, INIT_CHOICES, LOSSES
from runner.errors import ConfigError
from runner.training import SCHEDULES

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def _one_of(key, value, choices):
    if value not in choices:
        raise ConfigError(f"{key} must be one of {sorted(choices)}, got {value!r}")


def _positive(key, value, hint=""):
    if not value > 0:
        raise ConfigError(f"{key} must be > 0, got {value}{hint}")


@dataclass
class ModelConfig:
    name: str = MISSING  # the model file's name, e.g. mlp_4_8_8_3; used to name runs
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
    name: str = "sgd"  # the preset's name (sgd, momentum, nesterov); the keys below act
    momentum: float = 0.0  # μ in v ← μv + g
    nesterov: bool = False  # use the look-ahead gradient g + μv
    weight_decay: float = 0.0  # L2 penalty λ on the weights (not biases)
    schedule: str = "constant"  # constant, step, exponential or cosine
    step_size: int = 10  # step schedule: epochs between decays
    gamma: float = 0.5  # step/exponential schedules: decay factor
    min_lr: float = 0.0  # cosine schedule: the final learning rate

    def __post_init__(self):
        _one_of("optimizer.schedule", self.schedule, SCHEDULES)
        _positive("optimizer.step_size", self.step_size)
        _positive("optimizer.gamma", self.gamma)
        if self.min_lr < 0:
            raise ConfigError(f"optimizer.min_lr must be >= 0, got {self.min_lr}")


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
    """Put the schemas where the YAML files' defaults lists find them."""
    store = ConfigStore.instance()
    store.store(name="base_config", node=RunConfig)
    for group, schema in GROUP_SCHEMAS.items():
        store.store(group=group, name=f"base_{group}", node=schema)


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Validate a composed config and turn it into dataclasses.

    Keys that the schema does not know are refused first: ``+key=value`` overrides get past
    Hydra's schema check, and ``OmegaConf.to_object`` would silently drop them.
    """
    _reject_unknown_keys(cfg, RunConfig, "")
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            f"{missing[0]} is not set (???); set it on the command line, e.g. {missing[0]}=..."
        )
    return OmegaConf.to_object(cfg)


def run_config_from_dict(config: dict) -> RunConfig:
    """The RunConfig of a config saved as plain data (a checkpoint's), checked as on the CLI."""
    return to_run_config(OmegaConf.merge(OmegaConf.structured(RunConfig), config))


def _reject_unknown_keys(node, schema, prefix):
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key, value in node.items_ex(resolve=False):
        if key not in fields:
            raise ConfigError(
                f"unknown config key {prefix}{key}; valid keys here are {sorted(fields)}"
            )
        sub_schema = fields[key].type
        if OmegaConf.is_missing(node, key):  # e.g. ~model: reported by to_run_config as unset
            continue
        if dataclasses.is_dataclass(sub_schema) and isinstance(value, DictConfig):
            _reject_unknown_keys(value, sub_schema, f"{prefix}{key}.")


def model_names_with_inputs(n_features):
    """Model files in conf/model/ whose first layer takes n_features inputs (for hints)."""
    names = []
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        layers = OmegaConf.load(path).get("layers")
        if layers and layers[0] == n_features:
            names.append(path.stem)
    return names
