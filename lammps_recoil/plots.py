"""Figures and their CSV tables (matplotlib, Agg backend: no screen needed)."""
from __future__ import annotations

import os

import numpy as np


def pyplot():
    """matplotlib.pyplot with the Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def write_csv(path: str, columns: dict, comment: str = "") -> None:
    """Columns (equal-length arrays) to a CSV file with a header (and # comment lines)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    names = list(columns)
    data = np.column_stack([np.asarray(columns[n], dtype=float) for n in names])
    header = "\n".join(f"# {line}" for line in comment.splitlines() if line)
    with open(path, "w") as fh:
        if header:
            fh.write(header + "\n")
        fh.write(",".join(names) + "\n")
        np.savetxt(fh, data, delimiter=",", fmt="%.10g")


def read_csv(path: str) -> dict:
    """Columns of a CSV written by :func:`write_csv` (comment lines skipped)."""
    with open(path) as fh:
        rows = [line.strip() for line in fh if line.strip() and not line.startswith("#")]
    names = rows[0].split(",")
    data = np.array([r.split(",") for r in rows[1:]], dtype=float).reshape(-1, len(names))
    return {n: data[:, c] for c, n in enumerate(names)}


def panels(path: str, x, series: list[dict], xlabel: str, title: str = "") -> None:
    """Stacked panels sharing x; each dict: ylabel and lines {label: y} (optional style)."""
    plt = pyplot()
    fig, axes = plt.subplots(len(series), 1, figsize=(6, 2.6 * len(series)), sharex=True,
                             squeeze=False)
    for ax, panel in zip(axes[:, 0], series):
        for label, y in panel["lines"].items():
            style = panel.get("styles", {}).get(label, "-")
            ax.plot(panel.get("x", {}).get(label, x), y, style, label=label, lw=1.4, ms=4)
        ax.set_ylabel(panel["ylabel"])
        if panel.get("zero"):
            ax.axhline(0.0, color="0.6", lw=0.8)
        if len(panel["lines"]) > 1:
            ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel(xlabel)
    if title:
        axes[0, 0].set_title(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
