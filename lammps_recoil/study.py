"""The paper's Cu filament study: figures of one run, and ensembles over seeds and biases.

``analyze(prefix)`` turns the outputs of one run of ``inputs/in.filament`` (``<prefix>.
recoil.csv`` and ``.dump``) into the paper's Fig. 2 panels and tables:
conductance vs time (Fig. 2b lower), recoil and recoil + EAM force on the filament vs time
(Fig. 2b upper), the initial geometry with per-atom recoil force arrows (Fig. 2a), the
initial and final states, atoms per layer along z (where atoms migrated from and to) and a
conductance histogram.

``ensemble(...)`` runs the deck for K seeds and a list of biases as independent LAMMPS
processes, ``jobs`` at a time, and reports per bias the fraction of runs that switched and
their switching times (:func:`~lammps_recoil.analysis.switching_time`).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from .analysis import (conductance_histogram, layer_counts, read_dump, read_run_header,
                       read_series, run_label, switching_time)
from .geometry import A0_CU
from .plots import panels, pyplot, read_csv, write_csv

TYPE_COLORS = {1: "tab:orange", 2: "tab:blue", 3: "0.55", 4: "0.55"}
#: Legend labels of the atom types (types 3 and 4 share one entry).
TYPE_LABELS = {1: "filament", 2: "mobile electrode", 3: "frozen electrode"}


def projection(ax, x, z, types, forces=None, scale=2.0):
    """Atoms projected on the z-x plane, coloured by type with a legend; optional force
    arrows drawn ``scale`` Å long per eV/Å, with a 0.5 eV/Å key."""
    for t, c in TYPE_COLORS.items():
        m = types == t
        ax.scatter(z[m], x[m], s=30 if t == 1 else 14, c=c, edgecolors="k", linewidths=0.3,
                   label=TYPE_LABELS.get(t))
    ax.legend(loc="lower left", fontsize=7, ncol=3, framealpha=0.8)
    if forces is not None:
        m = np.linalg.norm(forces, axis=1) > 0
        q = ax.quiver(z[m], x[m], forces[m, 2], forces[m, 0], angles="xy", scale_units="xy",
                      scale=1.0 / scale, color="crimson", width=0.004, zorder=3)
        ax.quiverkey(q, 0.86, 1.05, 0.5, "0.5 eV/Å", labelpos="E", color="crimson")
    ax.set_xlabel("z (Å)")
    ax.set_ylabel("x (Å)")
    ax.set_aspect("equal")


def geometry_figure(path, x, z, types, forces, title, scale=8.0):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.2))
    projection(ax, x, z, types, forces, scale)
    ax.set_title(title, fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _time(frame) -> float:
    """A frame's time (ps): the dump's ITEM: TIME, else step * 1 fs (the deck's step)."""
    return frame.time if frame.time is not None else frame.step * 0.001


def histogram_figure(path, counts, edges, title):
    """Bars of ``counts`` over the bins ``edges`` (G0), with gridlines at integer G0."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="tab:blue",
           edgecolor="k", linewidth=0.4)
    ax.set_xticks(np.arange(0, np.ceil(edges[-1]) + 1))
    ax.grid(axis="x", color="0.5", lw=0.8)
    ax.set_axisbelow(True)
    ax.set_xlabel("G / G0")
    ax.set_ylabel("updates")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def analyze(prefix: str, outdir: str | None = None, control: str | None = None,
            spacing: float = A0_CU / 2) -> dict:
    """Figures and tables of one run (and of a control run at V = 0, if given)."""
    outdir = outdir or prefix + "_figures"
    os.makedirs(outdir, exist_ok=True)
    series = read_series(prefix + ".recoil.csv")
    label = run_label(read_run_header(prefix + ".recoil.csv")) or os.path.basename(prefix)
    t = series["time_ps"]
    frames = read_dump(prefix + ".dump")
    first, last = frames[0], frames[-1]

    G_lines = {"G(E_F)": series["G_EF"], "Landauer G(V)": series["G_V"]}
    x_lines = {}
    if control:
        ctrl = read_series(control + ".recoil.csv")
        G_lines["control V = 0"] = ctrl["G_EF"]
        x_lines["control V = 0"] = ctrl["time_ps"]
    panels(f"{outdir}/conductance.png", t, [
        {"ylabel": "G / G0", "lines": G_lines, "x": x_lines}], "time (ps)",
        f"conductance (Fig. 2b, lower); {label}")
    panels(f"{outdir}/forces.png", t, [
        {"ylabel": "force on filament, z (eV/Å)", "zero": True,
         "lines": {"recoil": series["Frec_z"],
                   "recoil + EAM": series["Frec_z"] + series["Feam_z"]}},
        {"ylabel": "force on filament, x, y (eV/Å)", "zero": True,
         "lines": {"recoil x": series["Frec_x"], "recoil y": series["Frec_y"]}}],
        "time (ps)", f"forces on the filament (Fig. 2b, upper); {label}")

    geometry_figure(f"{outdir}/geometry_initial.png", first["x"], first["z"], first["type"],
                    first.recoil, f"{label}; t = {_time(first):g} ps (step {first.step}): "
                    "recoil forces")
    plt = pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for ax, fr, which in ((axes[0], first, "initial"), (axes[1], last, "final")):
        projection(ax, fr["x"], fr["z"], fr["type"])
        ax.set_title(f"{label}; {which}: t = {_time(fr):g} ps (step {fr.step})", fontsize=10)
    fig.tight_layout()
    fig.savefig(f"{outdir}/states.png", dpi=130)
    plt.close(fig)

    mobile = lambda fr: np.isin(fr["type"], (1, 2))
    z0 = first["z"][first["type"] == 3].max()          # a frozen layer fixes the origin
    zc, n0 = layer_counts(first["z"][mobile(first)], spacing, z0)
    zc1, n1 = layer_counts(last["z"][mobile(last)], spacing, z0)
    grid = np.union1d(np.round(zc, 3), np.round(zc1, 3))
    count = lambda zs, ns: np.array([ns[np.isclose(zs, g, atol=1e-3)].sum() for g in grid])
    layers = {"z": grid, "initial": count(np.round(zc, 3), n0),
              "final": count(np.round(zc1, 3), n1)}
    write_csv(f"{outdir}/layers.csv", layers, f"mobile atoms per layer along z, {prefix}")
    panels(f"{outdir}/layers.png", grid, [
        {"ylabel": "mobile atoms per layer", "lines": {"initial": layers["initial"],
                                                       "final": layers["final"]},
         "styles": {"initial": "o-", "final": "s--"}}], "layer z (Å)",
        f"where atoms migrated from and to; {label}")

    hist, edges = conductance_histogram(series["G_EF"])
    write_csv(f"{outdir}/histogram.csv", {"G_low": edges[:-1], "G_high": edges[1:],
                                          "count": hist}, f"G(E_F) histogram, {prefix}")
    histogram_figure(f"{outdir}/histogram.png", hist, edges,
                     f"G(E_F) histogram over the run; {label}")

    switched = switching_time(t, series["G_EF"])
    summary = {
        "run": label,
        "duration_ps": float(t[-1] - t[0]), "updates": len(t),
        "G_initial": float(series["G_EF"][0]),
        "G_mean": float(series["G_EF"].mean()), "G_std": float(series["G_EF"].std()),
        "G_final": float(np.median(series["G_EF"][-max(1, len(t) // 20):])),
        "Frec_z_mean": float(series["Frec_z"].mean()),
        "Frec_z_initial": float(series["Frec_z"][0]),
        "Frec_max_mean": float(series["Frec_max"].mean()),
        "work_eV": float(series["work"][-1]),
        "negf_s_mean": float(series["negf_s"].mean()),
        "switching_time_ps": switched,
        "moved_layers": {float(z): int(b - a) for z, a, b in
                         zip(grid, layers["initial"], layers["final"]) if a != b},
    }
    with open(f"{outdir}/summary.txt", "w") as fh:
        for k, v in summary.items():
            fh.write(f"{k}: {v}\n")
    return summary


def present_runs(outdir: str) -> list:
    """(bias, seed) of every ensemble run whose time series is in ``outdir``, sorted."""
    found = []
    for name in os.listdir(outdir) if os.path.isdir(outdir) else ():
        m = re.fullmatch(r"V(.+)_seed(\d+)\.recoil\.csv", name)
        if m:
            try:
                found.append((float(m.group(1)), int(m.group(2))))
            except ValueError:
                continue
    return sorted(found)


class EnsembleRun(NamedTuple):
    """One run of an ensemble: bias (V), seed, output name, exit code and wall time (s)."""

    V: float
    seed: int
    name: str
    returncode: int
    wall_s: float


def ensemble(deck: str, seeds, biases, jobs: int = 2, variables=(), outdir: str = "runs/ens",
             threshold: float = 1.0, window: float = 5.0, rerun: bool = True) -> dict:
    """Run the deck for every (bias, seed), ``jobs`` processes at a time; summarize.

    ``rerun=False`` only summarizes the outputs already in ``outdir``: every run found
    there (:func:`present_runs`), whatever ``seeds`` and ``biases`` say.
    """
    os.makedirs(outdir, exist_ok=True)
    runs = [(V, s) for V in biases for s in seeds]

    def one(run):
        V, seed = run
        name = f"V{V:g}_seed{seed}"
        cmd = [sys.executable, "-m", "lammps_recoil.cli", "run", deck, "-var", "V", str(V),
               "-var", "seed", str(seed), "-var", "outdir", outdir, "-var", "name", name]
        for k, v in variables:
            cmd += ["-var", k, str(v)]
        with open(f"{outdir}/{name}.stdout", "w") as fh:
            t0 = time.time()
            rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
        return EnsembleRun(V, seed, name, rc, time.time() - t0)

    if rerun:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(one, runs))
    else:                          # summarize earlier runs, keeping their wall times
        old = f"{outdir}/ensemble.csv"
        wall = {}
        if os.path.exists(old):
            prev = read_csv(old)
            wall = {(v, s): w for v, s, w in zip(prev["V"], prev["seed"], prev["wall_s"])}
        runs = present_runs(outdir)
        if not runs:
            raise ValueError(f"nothing to summarize: no V<bias>_seed<seed>.recoil.csv in "
                             f"{outdir}")
        biases = sorted({V for V, _ in runs})
        results = [EnsembleRun(V, seed, f"V{V:g}_seed{seed}", 0, wall.get((V, seed), np.nan))
                   for V, seed in runs]
    table = {"V": [], "seed": [], "switched": [], "switching_time_ps": [], "direction": [],
             "G_initial": [], "G_final": [], "wall_s": []}
    for V, seed, name, rc, wall in results:
        if rc != 0:
            raise RuntimeError(f"run {name} failed (exit {rc}); see {outdir}/{name}.stdout")
        s = read_series(f"{outdir}/{name}.recoil.csv")
        G = s["G_EF"]
        ts = switching_time(s["time_ps"], G, threshold, window)
        final = np.median(G[-max(1, len(G) // 20):])
        for k, v in zip(table, (V, seed, ts is not None, np.nan if ts is None else ts,
                                0 if ts is None else np.sign(final - G[0]), G[0], final,
                                wall)):
            table[k].append(v)
    write_csv(f"{outdir}/ensemble.csv", table, f"deck {deck}, switching: median G over "
              f"{window} ps moved by more than {threshold} G0 from the first ps; direction "
              "+1: G rose, -1: G fell")
    summary = {}
    for V in biases:
        rows = [i for i, v in enumerate(table["V"]) if v == V]
        times = [table["switching_time_ps"][i] for i in rows if table["switched"][i]]
        up = sum(1 for i in rows if table["switched"][i] and table["direction"][i] > 0)
        summary[V] = {"runs": len(rows), "switched": len(times), "times_ps": times,
                      "up": up}
    return summary
