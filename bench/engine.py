"""Training throughput of the runner engine against scikit-learn and PyTorch on the CPU.

All three train the same architecture (relu hidden layers, a softmax + cross-entropy output)
on the same data with the same plain minibatch SGD (no momentum, no L2, a fresh shuffle every
epoch, the last partial batch kept), so samples/second compares what one training step costs
in each. Every implementation is timed in this one process, on the same BLAS thread count,
with measurements interleaved so a slow spell on the machine hits all of them alike.

    python -m bench.engine [--json PATH] [--quick]

PyTorch is optional and never a project dependency: without it the torch rows are skipped.
"""

import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from bench.common import argument_parser, blas_info, blas_peak_gflops, machine_info
from runner.engine import MLP
from runner.training import SGD, EpochLoop

SEED = 0  # weights, shuffles and synthetic data; every implementation gets the same one
REPEATS = 3  # timed measurements per implementation, interleaved; the fastest is reported
SECONDS_PER_REPEAT = 1.5  # so each implementation trains ~4.5 s per case in all
QUICK_SECONDS_PER_REPEAT = 0.03  # --quick: a smoke test of the whole path, not a measurement
PEAK_REPEATS = 10  # 2048² float32 matmuls for the BLAS peak (each ~0.25 s on 2 cores)
WIDE_SAMPLES = 8192  # synthetic data for the wide case; --quick uses 1024
RUNNER = "runner"


def standardized(X):
    """Zero mean, unit variance per feature; constant features (digits' border pixels) stay 0."""
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def load_iris(quick):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return standardized(X), y


def load_digits(quick):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return standardized(X), y


def load_wide(quick):
    """Gaussian inputs labelled by a random linear teacher, so the labels are learnable."""
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((1024 if quick else WIDE_SAMPLES, 784))
    y = np.argmax(X @ rng.standard_normal((784, 10)), axis=1)
    return X, y


@dataclass(frozen=True)
class Case:
    """One benchmark: an architecture, its data, its hyperparameters and its targets."""

    name: str
    layer_sizes: tuple  # [n_features, *hidden, n_classes]; hidden layers are relu
    batch_size: int
    dtype: str  # float32 or float64, end to end in every implementation
    lr: float  # plain SGD step size, the same for all
    check_epochs: int  # epochs from a fresh net before the training losses are compared
    load: Callable  # load(quick) -> (X (n_samples, n_features), y (n_samples,) class ids)
    targets: tuple  # (peer, minimum): runner ÷ peer ≥ minimum, or "blas_peak" fraction


CASES = (
    Case(
        name="iris",
        layer_sizes=(4, 8, 8, 3),
        batch_size=32,
        dtype="float64",
        lr=0.1,
        check_epochs=100,
        load=load_iris,
        targets=(("torch", 4.0), ("sklearn", 2.5)),
    ),
    Case(
        name="digits",
        layer_sizes=(64, 128, 64, 10),
        batch_size=128,
        dtype="float64",
        lr=0.1,
        check_epochs=10,
        load=load_digits,
        targets=(("torch", 2.0),),
    ),
    Case(
        name="wide",
        layer_sizes=(784, 256, 128, 10),
        batch_size=128,
        dtype="float32",
        lr=0.05,
        check_epochs=2,
        load=load_wide,
        targets=(("torch", 1.2), ("blas_peak", 0.6)),
    ),
)


class RunnerTrainer:
    """This engine, driven through its own EpochLoop as the experiment runner drives it."""

    name = RUNNER

    def __init__(self, case, X, y):
        activations = ["relu"] * (len(case.layer_sizes) - 2) + ["softmax"]
        net = MLP(case.layer_sizes, activations, dtype=case.dtype, rng=np.random.default_rng(SEED))
        Y = np.eye(case.layer_sizes[-1], dtype=case.dtype)[y]
        self.loop = EpochLoop(
            net, SGD(net), "cross_entropy", X, Y, batch_size=case.batch_size,
            shuffle=True, rng=np.random.default_rng(SEED),
        )  # fmt: skip
        self.lr = case.lr

    def train(self, epochs):
        """Run ``epochs`` epochs; return the last one's mean training loss."""
        for _ in range(epochs):
            loss = self.loop.run(self.lr)
        return loss


class SklearnTrainer:
    """scikit-learn's MLPClassifier set up as plain SGD that never stops early.

    ``warm_start`` makes each ``fit(max_iter=epochs)`` continue from the last weights, as the
    other implementations do; the per-fit input validation is part of what sklearn costs.
    """

    name = "sklearn"

    def __init__(self, case, X, y):
        from sklearn.neural_network import MLPClassifier

        self.model = MLPClassifier(
            hidden_layer_sizes=case.layer_sizes[1:-1],
            activation="relu",
            solver="sgd",
            learning_rate="constant",
            learning_rate_init=case.lr,
            momentum=0.0,
            nesterovs_momentum=False,
            alpha=0.0,
            batch_size=case.batch_size,
            shuffle=True,
            tol=0.0,
            n_iter_no_change=np.inf,
            early_stopping=False,
            warm_start=True,
            random_state=SEED,
        )
        self.X, self.y = X, y

    def train(self, epochs):
        self.model.set_params(max_iter=epochs)
        with warnings.catch_warnings():
            # Reaching max_iter is the point here, not a failure to converge.
            warnings.filterwarnings("ignore", message="Stochastic Optimizer: Maximum iterations")
            self.model.fit(self.X, self.y)
        return float(self.model.loss_curve_[-1])


class TorchTrainer:
    """The idiomatic PyTorch CPU loop: nn.Sequential, CrossEntropyLoss, optim.SGD.

    Each epoch gathers the data in a torch.randperm order once and then takes contiguous
    slices, as the runner's EpochLoop does.
    """

    name = "torch"

    def __init__(self, case, X, y):
        import torch

        torch.manual_seed(SEED)
        layers = []
        for n_in, n_out in pairwise(case.layer_sizes):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
        self.model = torch.nn.Sequential(*layers[:-1]).to(getattr(torch, case.dtype))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=case.lr)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y).long()
        self.batch_size = case.batch_size
        self.generator = torch.Generator().manual_seed(SEED)
        self.randperm = torch.randperm

    def train(self, epochs):
        n, bs = len(self.X), self.batch_size
        for _ in range(epochs):
            order = self.randperm(n, generator=self.generator)
            X, y = self.X[order], self.y[order]
            total = 0.0
            for start in range(0, n, bs):
                self.optimizer.zero_grad()
                loss = self.loss_fn(self.model(X[start : start + bs]), y[start : start + bs])
                loss.backward()
                self.optimizer.step()
                total += loss.item() * min(bs, n - start)
        return total / n


def import_torch(threads):
    """torch with ``threads`` intra-op threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def timed(trainer, epochs):
    start = time.perf_counter()
    trainer.train(epochs)
    return time.perf_counter() - start


def calibrated_epochs(trainer, seconds):
    """Epochs that take about ``seconds``, judged like timeit's autorange, twice.

    Doubling until a run lasts a tenth of the target keeps the estimate from resting on one
    sub-millisecond epoch; taking the larger of two estimates keeps one stall (another job
    taking a core) from shrinking the timed runs to a few milliseconds.
    """
    estimates = []
    for _ in range(2):
        epochs = 1
        while (elapsed := timed(trainer, epochs)) < seconds / 10:
            epochs *= 2
        estimates.append(round(epochs * seconds / elapsed))
    return max(1, *estimates)


def bench_case(case, trainer_classes, seconds_per_repeat, quick):
    """Check, warm up, calibrate and time every implementation on one case.

    Returns one result dict per implementation, runner first.
    """
    X, y = case.load(quick)
    X = np.ascontiguousarray(X, dtype=case.dtype)
    n_samples = X.shape[0]
    trainers = [cls(case, X, y) for cls in trainer_classes]

    # Training a fresh net for a few epochs both warms every implementation up and shows
    # that they do comparable work: similar losses, all well below chance.
    check = {t.name: t.train(case.check_epochs) for t in trainers}
    print(
        f"\n{case.name}: {'-'.join(map(str, case.layer_sizes))}, {n_samples} samples, batch "
        f"{case.batch_size}, {case.dtype}, lr {case.lr}\n  mean training loss in epoch "
        f"{case.check_epochs} from a fresh net (chance: ln {case.layer_sizes[-1]} = "
        f"{math.log(case.layer_sizes[-1]):.3f}): "
        + ", ".join(f"{name} {loss:.4f}" for name, loss in check.items())
    )

    epochs = {t.name: calibrated_epochs(t, seconds_per_repeat) for t in trainers}
    seconds = {t.name: [] for t in trainers}
    for _ in range(REPEATS):
        for t in trainers:
            seconds[t.name].append(timed(t, epochs[t.name]))

    n_params = sum(a * b + b for a, b in pairwise(case.layer_sizes))
    results = []
    for t in trainers:
        best = min(seconds[t.name])
        samples_per_s = epochs[t.name] * n_samples / best
        # Forward, dX and dW each cost ~2 flops per parameter per sample.
        gflops = 6 * n_params * samples_per_s / 1e9
        results.append(
            {
                "case": case.name,
                "impl": t.name,
                "samples_per_s": samples_per_s,
                "best_s": best,
                "repeat_s": seconds[t.name],
                "epochs_per_repeat": epochs[t.name],
                "n_samples": n_samples,
                "n_params": n_params,
                "check_epochs": case.check_epochs,
                "check_loss": check[t.name],
                "train_gflops": gflops,
            }
        )
    runner_speed = results[0]["samples_per_s"]
    for row in results:
        row["runner_ratio"] = runner_speed / row["samples_per_s"]
    print_case_table(results)
    return results


def print_case_table(results):
    print(
        f"  {'impl':<8} {'epochs/rep':>10} {'best s':>7} {'samples/s':>12} {'runner÷impl':>12} "
        f"{'GFLOP/s':>8}"
    )
    for r in results:
        print(
            f"  {r['impl']:<8} {r['epochs_per_repeat']:>10} {r['best_s']:>7.3f} "
            f"{r['samples_per_s']:>12,.0f} {r['runner_ratio']:>11.2f}× {r['train_gflops']:>8.1f}"
        )


def evaluate_targets(results):
    """One PASS/MISS/SKIP verdict per case target, from the best-of-3 throughputs."""
    by_key = {(r["case"], r["impl"]): r for r in results}
    verdicts = []
    for case in CASES:
        runner = by_key[(case.name, RUNNER)]
        for peer, minimum in case.targets:
            if peer == "blas_peak":
                value, label = runner["fraction_of_blas_peak"], f"≥ {minimum:.0%} of BLAS peak"
                shown = f"{value:.0%} ({runner['train_gflops']:.0f} GFLOP/s)"
            elif (case.name, peer) in by_key:
                value, label = by_key[(case.name, peer)]["runner_ratio"], f"≥ {minimum}× {peer}"
                shown = f"{value:.2f}×"
            else:
                value, label, shown = None, f"≥ {minimum}× {peer}", f"{peer} not installed"
            status = "SKIP" if value is None else "PASS" if value >= minimum else "MISS"
            verdicts.append(
                {"case": case.name, "target": label, "peer": peer, "minimum": minimum,
                 "value": value, "status": status}
            )  # fmt: skip
            print(f"  {case.name:<7} runner {label:<24} {shown:>20}  {status}")
    return verdicts


def parse_args(argv):
    parser = argument_parser(
        "Samples/s of runner's engine vs scikit-learn and PyTorch (CPU) on iris, digits and a "
        "wide synthetic case, in one run."
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny epoch counts: a ~10 s smoke test, not numbers"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    blas = blas_info()
    torch = import_torch(blas["threads"])
    import sklearn

    versions = {
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "torch": torch.__version__ if torch else None,
    }
    machine = machine_info(versions, blas)
    print(f"CPU: {machine['cpu_model']}, {machine['cpu_count']} cores; {machine['platform']}")
    print(
        f"BLAS: {blas['library']} {blas['version']} ({blas['architecture']}), "
        f"{blas['threads']} threads [{blas['source']}]; torch threads set to the same"
    )
    print(f"OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: {machine['openblas_env'] or 'not set'}")
    print("versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in versions.items()))
    load = machine["load_average_1min"]
    if load is not None and load > 0.5:
        print(
            f"warning: load average {load:.2f} before starting: another job is using the CPUs, "
            "so these timings will be low and erratic; rerun on an idle machine"
        )
    if torch is None:
        print("note: torch is not installed, so its rows and targets are skipped")

    peak_repeats = 2 if args.quick else PEAK_REPEATS
    peak_before = blas_peak_gflops(repeats=peak_repeats)
    print(f"timing: best (min) of {REPEATS} measurements, interleaved between implementations")

    trainer_classes = [RunnerTrainer, SklearnTrainer] + ([TorchTrainer] if torch else [])
    seconds = QUICK_SECONDS_PER_REPEAT if args.quick else SECONDS_PER_REPEAT
    results = []
    for case in CASES:
        results += bench_case(case, trainer_classes, seconds, args.quick)

    # A shared host's throughput drifts by 2× within seconds, so the peak is the best of two
    # rounds of matmuls, one before the cases and one after, as the timings are best-of-3.
    peak = max(peak_before, blas_peak_gflops(repeats=peak_repeats))
    for row in results:
        row["fraction_of_blas_peak"] = row["train_gflops"] / peak
    print(
        f"\nBLAS peak: {peak:.1f} GFLOP/s (best 2048² float32 matmul of {2 * peak_repeats}, "
        f"half before the cases and half after; {peak_before:.1f} before)"
    )
    print("\ntargets (runner ÷ peer from best-of-3 samples/s; a measurement, exit code 0 anyway):")
    verdicts = evaluate_targets(results)
    if args.json:
        report = {
            "cases": results,
            "targets": verdicts,
            "blas_peak_gflops": peak,
            "timing": f"best (min) of {REPEATS} interleaved measurements",
            "quick": args.quick,
            "machine": machine,
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
