"""Adam and AdamW against torch.optim, their refusals, and how a config chooses them."""

import numpy as np
import pytest

from runner import pipeline
from runner.engine import MLP
from runner.errors import ConfigError
from runner.training import SGD, Adam, AdamW, load_checkpoint, save_checkpoint
from tests.helpers import compose_run_config

# (our class, torch's class name, weight decay, betas, eps)
RULES = [
    (Adam, "Adam", 0.0, (0.9, 0.999), 1e-8),
    (Adam, "Adam", 0.05, (0.8, 0.99), 1e-6),
    (AdamW, "AdamW", 0.01, (0.9, 0.999), 1e-8),
    (AdamW, "AdamW", 0.2, (0.5, 0.9), 1e-3),
]
# A rate that changes every step, as a schedule changes it every epoch.
LRS = [0.01, 0.03, 0.005, 0.02, 0.01, 0.001, 0.05, 0.01, 0.02, 0.015, 0.01, 0.03]


def assert_close(actual, expected):
    """Equal up to rounding: torch's CPU kernels and NumPy's do not round every operation
    alike, so the two differ in the last bits (a few units of the dtype's precision)."""
    assert actual.dtype == expected.dtype
    tolerance = 100 * np.finfo(actual.dtype).eps
    np.testing.assert_allclose(
        actual, expected, rtol=tolerance, atol=tolerance * np.abs(expected).max()
    )


def net_and_batches(dtype):
    net = MLP([5, 7, 4, 3], ["tanh", "relu", "softmax"], dtype=dtype, rng=np.random.default_rng(3))
    rng = np.random.default_rng(8)
    batches = [
        (rng.normal(size=(9, 5)).astype(dtype), np.eye(3, dtype=dtype)[rng.integers(0, 3, 9)])
        for _ in LRS
    ]
    return net, batches


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("rule", "torch_rule", "decay", "betas", "eps"), RULES)
def test_adam_follows_torch_optim_step_by_step(rule, torch_rule, decay, betas, eps, dtype):
    torch = pytest.importorskip("torch")
    net, batches = net_and_batches(dtype)
    params = {name: torch.tensor(value.copy()) for name, value in net.params.items()}
    # Our weight decay acts on the weights, not the biases: in torch, two parameter groups.
    groups = [
        {"params": [p for name, p in params.items() if name[0] == "W"], "weight_decay": decay},
        {"params": [p for name, p in params.items() if name[0] == "b"], "weight_decay": 0.0},
    ]
    reference = getattr(torch.optim, torch_rule)(
        groups, lr=LRS[0], betas=betas, eps=eps, foreach=False
    )
    ours = rule(net, betas=betas, eps=eps, weight_decay=decay)
    for lr, (X, Y) in zip(LRS, batches, strict=True):
        net.compute_gradients(X, Y, "cross_entropy")
        for name, p in params.items():  # the same gradients for both
            p.grad = torch.tensor(net.grads[name].copy())
        for group in reference.param_groups:
            group["lr"] = lr
        reference.step()
        ours.step(lr)
        for name, p in params.items():
            assert_close(net.params[name], p.numpy())
    # The moments too, which is what a checkpoint carries on.
    state = ours.state()
    for ours_key, torch_key in (("m", "exp_avg"), ("v", "exp_avg_sq")):
        theirs = [reference.state[p][torch_key].numpy().ravel() for p in params.values()]
        assert_close(state[ours_key], np.concatenate(theirs))
    assert int(state["steps"]) == len(LRS)


@pytest.mark.parametrize("rule", [Adam, AdamW])
def test_float32_stays_float32(rule):
    net, batches = net_and_batches("float32")
    optimizer = rule(net, weight_decay=0.1)
    for lr, (X, Y) in zip(LRS, batches, strict=True):
        net.compute_gradients(X, Y, "cross_entropy")
        optimizer.step(lr)
    state = optimizer.state()
    arrays = [net.flat_params, net.flat_grads, optimizer.m, optimizer.v, state["m"], state["v"]]
    assert {a.dtype.name for a in arrays} == {"float32"}


@pytest.mark.parametrize("rule", [Adam, AdamW])
def test_adam_refuses_bad_settings_in_its_own_words(rule):
    net = net_and_batches("float64")[0]
    with pytest.raises(
        ConfigError, match=r"^betas must be two numbers in \[0, 1\), got \[0.9, 1.0\]$"
    ):
        rule(net, betas=(0.9, 1.0))
    with pytest.raises(ConfigError, match=r"^betas must be two numbers in \[0, 1\), got \[0.9\]$"):
        rule(net, betas=(0.9,))
    with pytest.raises(ConfigError, match=r"^betas must be two numbers .* got \[-0.1, 0.999\]$"):
        rule(net, betas=(-0.1, 0.999))
    with pytest.raises(ConfigError, match=r"^eps must be > 0, got 0.0$"):
        rule(net, eps=0.0)
    with pytest.raises(ConfigError, match=r"^weight_decay must be >= 0, got -0.1$"):
        rule(net, weight_decay=-0.1)


@pytest.mark.parametrize(
    ("overrides", "rule", "settings"),
    [
        (["optimizer=adam"], Adam, {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}),
        (["optimizer.name=adam"], Adam, {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0}),
        (["optimizer=adamw"], AdamW, {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01}),
        (
            ["optimizer=adamw", "optimizer.betas=[0.8,0.9]", "optimizer.eps=1e-6"],
            AdamW,
            {"betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.01},
        ),
        (["optimizer=nesterov"], SGD, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.0}),
    ],
)
def test_the_config_chooses_the_rule_and_its_settings(overrides, rule, settings):
    cfg = compose_run_config("tracking.enabled=false", *overrides)
    optimizer = pipeline.prepare(cfg).optimizer
    assert type(optimizer) is rule
    assert {key: getattr(optimizer, key) for key in settings} == settings


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["optimizer.name=rmsprop"],
            r"^optimizer.name must be one of \['adam', 'adamw', 'momentum', 'nesterov', 'sgd'\], "
            r"got 'rmsprop'$",
        ),
        (
            ["optimizer=adam", "optimizer.momentum=0.9"],
            r"^optimizer.momentum does nothing for optimizer.name=adam, which reads betas, eps, "
            r"weight_decay; drop optimizer.momentum",
        ),
        (
            ["optimizer=momentum", "optimizer.betas=[0.5,0.9]"],
            r"^optimizer.betas does nothing for optimizer.name=momentum, which reads momentum, "
            r"nesterov, weight_decay",
        ),
    ],
)
def test_the_config_refuses_a_rule_nothing_knows_or_a_setting_it_ignores(overrides, message):
    with pytest.raises(ConfigError, match=message):
        compose_run_config("tracking.enabled=false", *overrides)


def test_engine_refusals_name_the_config_keys():
    cfg = compose_run_config("tracking.enabled=false", "optimizer=adam", "optimizer.eps=0")
    with pytest.raises(ConfigError, match=r"^optimizer.eps must be > 0, got 0.0$"):
        pipeline.prepare(cfg)
    cfg = compose_run_config("tracking.enabled=false", "optimizer=adam", "optimizer.betas=[1,0]")
    with pytest.raises(ConfigError, match=r"^optimizer.betas must be two numbers in \[0, 1\)"):
        pipeline.prepare(cfg)


def test_a_checkpoint_of_format_1_still_resumes_sgd_momentum(tmp_path):
    # Format 1 stored SGD's momentum buffer as "velocity"; format 2 as "optimizer.velocity".
    cfg = compose_run_config("tracking.enabled=false", "optimizer=momentum", "epochs=3")
    trainer = pipeline.build_trainer(cfg, pipeline.prepare(cfg))
    trainer.run()
    path = save_checkpoint(tmp_path / "checkpoint.npz", trainer.snapshot, {})
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["velocity"] = arrays.pop("optimizer.velocity")
    arrays["info"] = np.array(str(arrays["info"]).replace('"format": 2', '"format": 1'))
    np.savez(path, **arrays)
    state, _ = load_checkpoint(path)
    np.testing.assert_array_equal(state.optimizer["velocity"], trainer.optimizer.velocity)
