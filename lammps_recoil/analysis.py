"""Analysis of recoil MD outputs: LAMMPS dumps and the recoil time series."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """One dump snapshot: timestep, box bounds (3 x 2), per-atom columns by name and the
    simulation time (ps; ``dump_modify time yes``, else None)."""

    step: int
    box: np.ndarray
    columns: dict
    time: float | None = None

    def __getitem__(self, name):
        return self.columns[name]

    @property
    def recoil(self) -> np.ndarray:
        """Per-atom recoil force (N, 3) from the d2_frec columns (eV/A)."""
        return np.column_stack([self.columns[f"d2_frec[{i}]"] for i in (1, 2, 3)])


def read_dump(path: str) -> list[Frame]:
    """Read a LAMMPS text ``dump custom`` file (all frames, columns as floats/ints)."""
    frames = []
    with open(path) as fh:
        lines = fh.read().splitlines()
    i, time = 0, None
    while i < len(lines):
        if lines[i].startswith("ITEM: TIME") and not lines[i].startswith("ITEM: TIMESTEP"):
            time = float(lines[i + 1])
            i += 2
            continue
        if not lines[i].startswith("ITEM: TIMESTEP"):
            i += 1
            continue
        step = int(lines[i + 1])
        j = i + 2
        while not lines[j].startswith("ITEM: NUMBER OF ATOMS"):
            j += 1
        n = int(lines[j + 1])
        box = np.array([[float(v) for v in lines[j + 3 + d].split()[:2]] for d in range(3)])
        names = lines[j + 6].split()[2:]
        data = np.array([row.split() for row in lines[j + 7:j + 7 + n]], dtype=float)
        data = data.reshape(n, len(names))
        cols = {name: (data[:, c].astype(np.int64) if name in ("id", "type") else data[:, c])
                for c, name in enumerate(names)}
        frames.append(Frame(step, box, cols, time))
        i, time = j + 7 + n, None
    return frames


def read_series(path: str) -> dict:
    """Read the recoil time series ``<out>.recoil.csv`` into arrays by column name (the
    ``# name = value`` header lines: :func:`read_run_header`)."""
    with open(path) as fh:
        skip = 0
        for line in fh:
            skip += 1
            if not line.startswith("#"):
                header = line.strip().split(",")
                break
    data = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2, comments="#")
    return {name: data[:, c] for c, name in enumerate(header)}


def read_run_header(path: str) -> dict:
    """The run's parameters and versions from the ``# name = value`` lines that start the
    time series (or a log file): V, beta, tol, model, T, seed, device, every, data, ...,
    lammps, lammps_recoil, start, name (all as text)."""
    from .params import header_params
    lines = []
    with open(path) as fh:
        for line in fh:
            if line.startswith("#"):
                lines.append(line.strip())
            elif lines and not line.startswith(("print", "echo")):
                break
    return header_params(lines)


def read_thermo(path: str) -> dict:
    """Thermo columns of a LAMMPS log file (all runs concatenated, by column name)."""
    blocks, header, rows = [], None, []
    with open(path) as fh:
        for line in fh:
            words = line.split()
            if words[:1] == ["Step"]:
                header, rows = words, []
            elif header and words[:2] == ["Loop", "time"]:
                blocks.append((header, rows))
                header = None
            elif header:
                try:
                    rows.append([float(w) for w in words])
                except ValueError:
                    continue
    if header:
        blocks.append((header, rows))
    out: dict = {}
    for head, rows in blocks:
        for c, name in enumerate(head):
            out.setdefault(name, []).extend(r[c] for r in rows if len(r) == len(head))
    return {k: np.array(v) for k, v in out.items()}


def conductance_histogram(G, width: float = 0.05):
    """Counts of G (G0) in bins of ``width`` from 0 to past max(G): (counts, edges)."""
    G = np.asarray(G, dtype=float)
    edges = width * np.arange(int(np.floor(max(G.max(), 0.0) / width)) + 2)
    return np.histogram(G, bins=edges)


def run_label(header: dict) -> str:
    """"name: V = ... V, T = ... K" from a run header (:func:`read_run_header`); under a
    bias protocol its kind and range instead of V, and the compliance if there was one."""
    if not header:
        return ""
    bias = f"V = {header.get('V', '?')} V"
    if header.get("protocol", "constant") not in ("constant", "file"):
        bias = f"{header['protocol']} {header['V_min']} to {header['V_max']} V"
    elif header.get("protocol") == "file":
        bias = f"V(t) from {header['vfile']}"
    if float(header.get("compliance", 0)):
        bias += f" under {header['compliance']} uA"
    return f"{header.get('name', '?')}: {bias}, T = {header.get('T', '?')} K"


def running_median(y: np.ndarray, n: int) -> np.ndarray:
    """Median of y over the n samples starting at each index (shorter at the end)."""
    return np.array([np.median(y[i:i + n]) for i in range(len(y))])


#: The switching-time criterion of :func:`switching_time` by default: a change of G (G0)
#: from its median over the first SWITCH_REFERENCE ps, sustained by the median over the
#: next SWITCH_WINDOW ps.
SWITCH_THRESHOLD, SWITCH_WINDOW, SWITCH_REFERENCE = 1.0, 5.0, 1.0


def switching_time(t: np.ndarray, G: np.ndarray, threshold: float = SWITCH_THRESHOLD,
                   window: float = SWITCH_WINDOW, reference: float = SWITCH_REFERENCE):
    """First time at which the conductance has switched, or None.

    Reference: the median of G over the first ``reference`` ps. Switched at the first time
    t_s from which the median over the next ``window`` ps differs from the reference by
    more than ``threshold`` (G0): a sustained jump, not a thermal spike. t_s is the start
    of the first window in which the new level holds most of the time: a clean step at
    t_0 gives t_s about t_0 - window / 2. None for a series shorter than reference + window.
    """
    t, G = np.asarray(t), np.asarray(G)
    if len(t) < 2:
        return None
    dt = np.median(np.diff(t))
    n = max(1, int(round(window / dt)))
    n_ref = max(1, int(round(reference / dt)))
    if len(G) < n_ref + n:
        return None
    ref = np.median(G[:n_ref])
    med = running_median(G, n)[:len(G) - n + 1]
    hit = np.flatnonzero(np.abs(med - ref) > threshold)
    return float(t[hit[0]]) if hit.size else None


def layer_counts(z: np.ndarray, spacing: float, origin: float = 0.0):
    """Atoms per atomic layer along z: layer centres and counts."""
    k = np.rint((np.asarray(z) - origin) / spacing).astype(int)
    layers = np.arange(k.min(), k.max() + 1)
    return origin + layers * spacing, np.array([(k == n).sum() for n in layers])
