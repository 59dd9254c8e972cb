"""``python -m runner.diff <run A> <run B>``: what differs between two runs, most telling first.

The group choices (``model: mlp_4_8_8_3 → mlp_4_16_3``), the other config keys, the
architecture layer by layer (shapes and the parameter delta), the final metrics, then the
environment (library versions, BLAS, git commit, and the data digests when the data set's
config is the same, so that a digest that differs means the data changed). Only what differs
is shown. The final metrics are what the differences above produced: two runs that differ only
in their seed list only ``seed`` above them. ``--json`` prints the same as data.

    python -m runner.diff 065af20afb114057a3fb071346a89400 9c1f...   # outputs/mlflow.db
    python -m runner.diff <A> <B> --json --tracking-uri http://127.0.0.1:5000
"""

import argparse
import json
import sys

from runner.errors import RunnerError
from runner.tracking.runinfo import GROUPS, connect, data_config, load_run, same_value


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m runner.diff",
        description="What differs between two runs, most telling first.",
    )
    parser.add_argument("run_a", metavar="RUN_A", help="MLflow run id")
    parser.add_argument("run_b", metavar="RUN_B", help="MLflow run id")
    parser.add_argument("--json", action="store_true", help="print the differences as JSON")
    parser.add_argument(
        "--tracking-uri", help="tracking URI ($MLFLOW_TRACKING_URI, else outputs/mlflow.db)"
    )
    return parser.parse_args(argv)


def compare(a, b):
    """The differences between RunInfos ``a`` and ``b``, section by section, as plain data."""
    groups = [
        {"group": g, "a": a.groups[g], "b": b.groups[g]}
        for g in GROUPS
        if a.groups[g] != b.groups[g]
    ]
    return {
        "a": {"run_id": a.run_id, "run_name": a.name},
        "b": {"run_id": b.run_id, "run_name": b.name},
        "groups": groups,
        "config": changed(a.flat_config, b.flat_config, skip={f"{g}.name" for g in GROUPS}),
        "architecture": architecture(a, b),
        "metrics": metrics(a.final_metrics, b.final_metrics),
        "environment": environment(a, b),
    }


def changed(first, second, skip=()):
    """[{'key', 'a', 'b'}] for every key whose value differs (None where a side lacks it)."""
    return [
        {"key": key, "a": first.get(key), "b": second.get(key)}
        for key in sorted(first.keys() | second.keys())
        if key not in skip and (key not in first or key not in second or first[key] != second[key])
    ]


def architecture(a, b):
    """Changed layers with their shapes and parameter delta, and the total parameter count."""
    layers_a, layers_b = a.layers, b.layers
    rows = []
    for number in sorted(layers_a.keys() | layers_b.keys()):
        la, lb = layers_a.get(number), layers_b.get(number)
        if la != lb:
            params_a = int(la["params"]) if la else 0
            params_b = int(lb["params"]) if lb else 0
            rows.append({"layer": number, "a": la, "b": lb, "params_delta": params_b - params_a})
    n_a, n_b = int(a.params.get("n_params", 0)), int(b.params.get("n_params", 0))
    return {"layers": rows, "n_params": {"a": n_a, "b": n_b, "delta": n_b - n_a}}


def metrics(first, second):
    rows = []
    for key in sorted(first.keys() | second.keys()):
        va, vb = first.get(key), second.get(key)
        if va is None or vb is None or not same_value(va, vb):
            delta = vb - va if va is not None and vb is not None else None
            rows.append({"key": key, "a": va, "b": vb, "delta": delta})
    return rows


def environment(a, b):
    """Environment tags that differ; the data digests too when the data's config is alike."""
    rows = changed(a.environment, b.environment)
    if data_config(a) == data_config(b):
        digests_a, digests_b = a.data_digests, b.data_digests
        for split in sorted(digests_a.keys() | digests_b.keys()):
            da, db = digests_a.get(split), digests_b.get(split)
            if da != db:
                rows.append(
                    {
                        "key": f"data digest ({split})",
                        "a": da and da[1],
                        "b": db and db[1],
                        "file": a.data_file,
                    }
                )
    return rows


def show(value):
    """A config value as one would write it on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def render(diff):
    """The differences as text lines."""
    a, b = diff["a"], diff["b"]
    lines = [f"A: {a['run_id']} {a['run_name']}", f"B: {b['run_id']} {b['run_name']}"]
    arch = diff["architecture"]
    if (
        not any(diff[k] for k in ("groups", "config", "metrics", "environment"))
        and not arch["layers"]
    ):
        return [*lines, "no differences: config, architecture, final metrics and environment match"]
    if diff["groups"]:
        lines.append("groups:")
        lines += [f"  {g['group']}: {g['a']} → {g['b']}" for g in diff["groups"]]
    if diff["config"]:
        lines.append("config:")
        lines += [f"  {c['key']}: {show(c['a'])} → {show(c['b'])}" for c in diff["config"]]
    if arch["layers"]:
        n = arch["n_params"]
        lines.append(f"architecture: {n['a']} → {n['b']} parameters ({n['delta']:+d})")
        lines += [f"  {render_layer(row)}" for row in arch["layers"]]
    if diff["metrics"]:
        lines.append("final metrics (what the differences above produced):")
        lines += [f"  {render_metric(m)}" for m in diff["metrics"]]
    if diff["environment"]:
        lines.append("environment:")
        for e in diff["environment"]:
            where = f" (file {e['file']})" if e.get("file") else ""
            lines.append(f"  {e['key']}: {show(e['a'])} → {show(e['b'])}{where}")
    return lines


def render_layer(row):
    la, lb = row["a"] or {}, row["b"] or {}
    parts = []
    for key, label in (("W_shape", "W"), ("b_shape", "b"), ("activation", "activation")):
        if la.get(key) != lb.get(key):
            parts.append(f"{label} {la.get(key, 'none')} → {lb.get(key, 'none')}")
    parts.append(f"params {la.get('params', 0)} → {lb.get('params', 0)} ({row['params_delta']:+d})")
    return f"layer{row['layer']}: " + ", ".join(parts)


def render_metric(m):
    va = "none" if m["a"] is None else f"{m['a']:.6g}"
    vb = "none" if m["b"] is None else f"{m['b']:.6g}"
    delta = "" if m["delta"] is None else f" ({m['delta']:+.3g})"
    return f"{m['key']}: {va} → {vb}{delta}"


def main(argv=None):
    args = parse_args(argv)
    try:
        uri, client = connect(args.tracking_uri)
        diff = compare(load_run(client, uri, args.run_a), load_run(client, uri, args.run_b))
    except RunnerError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(diff, indent=2))
    else:
        print("\n".join(render(diff)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
