"""The per-layer table that Keras' ``model.summary()`` shows, for an MLP."""


def summary_rows(layer_sizes, activations, bias):
    """One dict per layer, the data behind the table (also logged as an MLflow table).

    Parameter count per layer is n_in·n_out + n_out (n_in·n_out without bias).
    """
    rows = []
    for i, (n_in, n_out) in enumerate(zip(layer_sizes, layer_sizes[1:], strict=False), start=1):
        rows.append(
            {
                "layer": f"dense_{i}",
                "input_shape": f"(None, {n_in})",
                "W_shape": f"({n_in}, {n_out})",
                "b_shape": f"({n_out},)" if bias else "-",
                "output_shape": f"(None, {n_out})",
                "activation": activations[i - 1],
                "params": n_in * n_out + (n_out if bias else 0),
            }
        )
    return rows


_COLUMNS = (
    ("layer", "Layer (type)"),
    ("input_shape", "Input shape"),
    ("W_shape", "W shape"),
    ("b_shape", "b shape"),
    ("output_shape", "Output shape"),
    ("activation", "Activation"),
    ("params", "Param #"),
)


def format_summary(rows, name):
    """Render rows as a fixed-width text table followed by the total parameter count."""
    cells = [[label for _, label in _COLUMNS]]
    for row in rows:
        cells.append(
            [str(row[key]) + (" (Dense)" if key == "layer" else "") for key, _ in _COLUMNS]
        )
    widths = [max(len(line[col]) for line in cells) for col in range(len(_COLUMNS))]

    def render(line):
        return "  ".join(
            cell.ljust(width) for cell, width in zip(line, widths, strict=True)
        ).rstrip()

    rule_width = sum(widths) + 2 * (len(widths) - 1)
    total = sum(row["params"] for row in rows)
    lines = [f'Model: "{name}"', "=" * rule_width, render(cells[0]), "-" * rule_width]
    lines += [render(line) for line in cells[1:]]
    lines += ["=" * rule_width, f"Total params: {total:,}", f"Trainable params: {total:,}"]
    return "\n".join(lines)
