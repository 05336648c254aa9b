"""Analysis of recoil MD outputs: LAMMPS dumps and the recoil time series."""
from __future__ import annotations

import sys
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
    """Read a LAMMPS text ``dump custom`` file (all frames, columns as floats/ints). An
    incomplete last frame (a run killed while writing it) is dropped with a note on
    stderr; a file with no complete frame is refused."""
    frames = []
    with open(path) as fh:
        lines = fh.read().splitlines()
    i, time = 0, None
    while i < len(lines):
        if lines[i].startswith("ITEM: TIME") and not lines[i].startswith("ITEM: TIMESTEP"):
            time = float(lines[i + 1]) if i + 1 < len(lines) else None
            i += 2
            continue
        if not lines[i].startswith("ITEM: TIMESTEP"):
            i += 1
            continue
        try:
            frame, i = _dump_frame(lines, i, time)
        except (IndexError, ValueError):
            sys.stderr.write(f"lammps-recoil: note: {path}: the frame at line {i + 1} is "
                             "incomplete (a run stopped while writing it); read the "
                             f"{len(frames)} frames before it\n")
            break
        frames.append(frame)
        time = None
    if not frames:
        raise ValueError(f"{path} holds no complete dump frame (a run stopped before its "
                         "first dump, or not a LAMMPS dump custom file)")
    return frames


def _dump_frame(lines: list, i: int, time):
    """The frame whose ITEM: TIMESTEP is line i, and the line after it; IndexError or
    ValueError if it is cut short."""
    step = int(lines[i + 1])
    j = i + 2
    while not lines[j].startswith("ITEM: NUMBER OF ATOMS"):
        j += 1
    n = int(lines[j + 1])
    box = np.array([[float(v) for v in lines[j + 3 + d].split()[:2]] for d in range(3)])
    names = lines[j + 6].split()[2:]
    rows = lines[j + 7:j + 7 + n]
    if len(rows) < n or any(len(row.split()) != len(names) for row in rows):
        raise ValueError("cut short")
    data = np.array([row.split() for row in rows], dtype=float).reshape(n, len(names))
    cols = {name: (data[:, c].astype(np.int64) if name in ("id", "type") else data[:, c])
            for c, name in enumerate(names)}
    return Frame(step, box, cols, time), j + 7 + n


def read_series(path: str) -> dict:
    """Read the recoil time series ``<out>.recoil.csv`` into arrays by column name (the
    ``# name = value`` header lines: :func:`read_run_header`). A last row cut short (a run
    killed while writing it) is dropped with a note on stderr; a series without rows, or
    with a short row before its last, is refused naming the file."""
    header, rows = None, []
    with open(path) as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            if header is None:
                header = line.strip().split(",")
            else:
                rows.append(line.strip().split(","))
    if header is None or not rows:
        raise ValueError(f"{path} holds no rows of a time series (a run stopped before its "
                         "first NEGF update, or not a .recoil.csv file)")
    short = [k for k, row in enumerate(rows) if len(row) != len(header)]
    if short == [len(rows) - 1] and len(rows) > 1:
        sys.stderr.write(f"lammps-recoil: note: {path}: its last row is cut short (a run "
                         f"stopped while writing it); read the {len(rows) - 1} rows before "
                         "it\n")
        rows = rows[:-1]
    elif short:
        raise ValueError(f"{path}: row {short[0] + 1} has {len(rows[short[0]])} values for "
                         f"{len(header)} columns")
    try:
        data = np.array(rows, dtype=float)
    except ValueError as err:
        raise ValueError(f"{path}: not a number in the time series ({err})") from None
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
        if header["protocol"] == "pulse" and header.get("polarity") == "alternate":
            bias = f"pulse {header['V_min']} to +-{header['V_max']} V (alternate)"
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


def check_criterion(threshold: float, window: float) -> None:
    """Refuse a switching criterion whose threshold (G0) or window (ps) is not positive."""
    if not (np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"the switching threshold must be > 0 G0, got {threshold}")
    if not (np.isfinite(window) and window > 0):
        raise ValueError(f"the switching window must be > 0 ps, got {window}")


def _criterion_samples(t, window: float, reference: float):
    """Samples of the criterion's window and of its reference for update times ``t``."""
    dt = np.median(np.diff(t))
    return max(1, int(round(window / dt))), max(1, int(round(reference / dt)))


def classifiable(t, window: float = SWITCH_WINDOW, reference: float = SWITCH_REFERENCE) -> bool:
    """Whether a series of update times ``t`` (ps) is long enough for
    :func:`switching_time`: a reference and a window of samples (6 ps by default)."""
    t = np.asarray(t, dtype=float)
    if len(t) < 2:
        return False
    n, n_ref = _criterion_samples(t, window, reference)
    return len(t) >= n_ref + n


def switching_time(t: np.ndarray, G: np.ndarray, threshold: float = SWITCH_THRESHOLD,
                   window: float = SWITCH_WINDOW, reference: float = SWITCH_REFERENCE):
    """First time at which the conductance has switched, or None.

    Reference: the median of G over the first ``reference`` ps. Switched at the first time
    t_s from which the median over the next ``window`` ps differs from the reference by
    more than ``threshold`` (G0): a sustained jump, not a thermal spike. t_s is the start
    of the first window in which the new level holds most of the time: a clean step at
    t_0 gives t_s about t_0 - window / 2 (0 for a step within the first window / 2). None
    also for a series too short to tell (:func:`classifiable`).
    """
    check_criterion(threshold, window)
    t, G = np.asarray(t), np.asarray(G)
    if not classifiable(t, window, reference):
        return None
    n, n_ref = _criterion_samples(t, window, reference)
    ref = np.median(G[:n_ref])
    med = running_median(G, n)[:len(G) - n + 1]
    hit = np.flatnonzero(np.abs(med - ref) > threshold)
    return float(t[hit[0]]) if hit.size else None


def layer_counts(z: np.ndarray, spacing: float, origin: float = 0.0):
    """Atoms per atomic layer along z: layer centres and counts."""
    k = np.rint((np.asarray(z) - origin) / spacing).astype(int)
    layers = np.arange(k.min(), k.max() + 1)
    return origin + layers * spacing, np.array([(k == n).sum() for n in layers])
