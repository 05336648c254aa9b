"""The paper's Cu filament study: figures of one run, and ensembles over seeds and biases.

``analyze(prefix)`` turns the outputs of one run of ``inputs/in.filament`` (``<prefix>.
recoil.csv`` and ``.dump``) into the paper's Fig. 2 panels and tables:
conductance vs time (Fig. 2b lower), recoil and recoil + EAM force on the filament vs time
(Fig. 2b upper), the initial geometry with per-atom recoil force arrows (Fig. 2a), the
initial and final states, atoms per layer along z (where atoms migrated from and to) and a
conductance histogram.

A run under a bias protocol (``-var protocol``) adds the device's view: the I-V loop
(linear and log |I|, coloured by cycle or time), V(t) with G(t), and its SET and RESET
events (:mod:`~lammps_recoil.switching`) per cycle.

``ensemble(...)`` runs the deck for K seeds and a list of biases as independent LAMMPS
processes, ``jobs`` at a time, and reports per bias the fraction of runs that switched and
their switching times (:func:`~lammps_recoil.analysis.switching_time`; at V = 0 the
retention time of the initial state), and under a protocol the distributions of the SET
and RESET voltages.
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

from .analysis import (SWITCH_REFERENCE, SWITCH_THRESHOLD, SWITCH_WINDOW, check_criterion,
                       classifiable, conductance_histogram, layer_counts, read_dump,
                       read_run_header, read_series, run_label, switching_time)
from .geometry import _layers
from .plots import panels, pyplot, read_csv, write_csv
from .protocols import make_protocol
from .switching import (CYCLE_COLUMNS, G_RESET, G_SET, WINDOW, check_thresholds, cycle_index,
                        per_cycle, switching_events)

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


class ProtocolCycles(NamedTuple):
    """What the analysis needs of a run's bias protocol: its ``kind``, the ``length`` of
    one cycle (ps; None if not periodic) and the number of ``cycles`` (None: unbounded or
    not periodic)."""

    kind: str
    length: float | None
    cycles: int | None


def header_protocol(header: dict) -> ProtocolCycles | None:
    """The bias protocol of a run from its header (:func:`~lammps_recoil.analysis.
    read_run_header`), or None for a constant bias or a header without one. A file
    protocol is not read again (it has no cycles; the series holds its voltages)."""
    kind = header.get("protocol", "constant")
    if kind == "constant":
        return None
    if kind == "file":
        return ProtocolCycles(kind, None, None)
    p = make_protocol(kind, header["V"], header["V_min"], header["V_max"], header["rate"],
                      header["cycles"], header["period"], header["width"], header["pulses"],
                      header["polarity"], header["vfile"])
    count = p.count if kind == "pulse" else p.cycles if kind in ("triangle", "sine") else None
    return ProtocolCycles(kind, p.cycle_length, count)


def iv_loop_figure(path, V, I, colour, colour_label, title, discrete=False):
    """The I-V loop: I against V and log10 |I| against V, each segment coloured by
    ``colour`` (time or cycle, with a colour bar; ``discrete``: one colour per integer)."""
    from matplotlib.collections import LineCollection
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    colour = np.asarray(colour, dtype=float)
    lo, hi = colour.min(), max(colour.max(), colour.min() + 1e-12)
    if discrete:
        n = int(hi - lo) + 1
        cmap = plt.get_cmap("viridis", n)
        norm = plt.Normalize(lo - 0.5, lo + n - 0.5)
    else:
        cmap, norm = plt.get_cmap("viridis"), plt.Normalize(lo, hi)
    absI = np.abs(I)
    nonzero = absI[absI > 0]
    floor = max(nonzero.min() / 10 if nonzero.size else 0.1, 1e-6)
    for ax, y, label in ((axes[0], I, "I (µA)"),
                         (axes[1], np.log10(np.maximum(absI, floor)), "log10 |I / µA|")):
        points = np.column_stack([V, y])
        lines = LineCollection(np.stack([points[:-1], points[1:]], axis=1), cmap=cmap,
                               norm=norm, linewidths=1.6)
        lines.set_array(colour[:-1])
        ax.add_collection(lines)
        ax.scatter(V, y, c=colour, cmap=cmap, norm=norm, s=8, zorder=3)
        ax.autoscale()
        ax.set_xlabel("V (V)")
        ax.set_ylabel(label)
        ax.grid(color="0.85", lw=0.6)
    bar = fig.colorbar(lines, ax=axes, shrink=0.9)
    bar.set_label(colour_label)
    if discrete:
        bar.set_ticks(np.arange(lo, lo + n))
    axes[0].axhline(0.0, color="0.6", lw=0.8)
    axes[0].axvline(0.0, color="0.6", lw=0.8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def bias_figure(path, t, series, events, g_set, g_reset, title):
    """V(t) (applied; the protocol's where a compliance lowered it), the current and the
    power, and G(t) (G(E_F) and the Landauer G(V)) with the switching thresholds and the
    SET/RESET events."""
    plt = pyplot()
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(8, 7.6), sharex=True)
    top.plot(t, series["V_protocol"], "--", color="0.5", lw=1.0, label="protocol")
    top.plot(t, series["V"], "-", color="tab:red", lw=1.4, label="applied")
    limited = series["in_compliance"] > 0
    if limited.any():
        top.plot(t[limited], series["V"][limited], "o", ms=3, color="k",
                 label="in compliance")
    top.set_ylabel("V (V)")
    top.axhline(0.0, color="0.7", lw=0.8)
    top.legend(fontsize=8)
    middle.plot(t, series["I_uA"], lw=1.0, color="tab:blue")
    middle.set_ylabel("I (µA)", color="tab:blue")
    middle.axhline(0.0, color="0.7", lw=0.8)
    power = middle.twinx()
    power.plot(t, series["P_uW"], lw=0.8, color="tab:orange", alpha=0.8)
    power.set_ylabel("P = I V (µW)", color="tab:orange")
    bottom.plot(t, series["G_EF"], lw=1.2, label="G(E_F)")
    bottom.plot(t, series["G_V"], lw=1.0, alpha=0.7, label="G(V) = I/V")
    bottom.axhline(g_set, color="tab:green", ls=":", lw=1.0, label=f"SET at {g_set:g} G0")
    bottom.axhline(g_reset, color="tab:purple", ls=":", lw=1.0,
                   label=f"RESET at {g_reset:g} G0")
    for e in events:
        c = "tab:green" if e.kind == "SET" else "tab:purple"
        for ax in (top, middle, bottom):
            ax.axvline(e.time, color=c, lw=0.8, alpha=0.7)
    bottom.set_ylabel("G / G0")
    bottom.set_xlabel("time (ps)")
    bottom.legend(fontsize=8, ncol=2)
    top.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def device_analysis(prefix: str, outdir: str, series: dict, label: str,
                    g_set: float = G_SET, g_reset: float = G_RESET,
                    window: float = WINDOW) -> dict:
    """The device's view of a run with the bias columns (V, I_uA, ...): SET/RESET events
    (``events.csv``, and per cycle ``cycles.csv``), V(t) with G(t) (``bias.png``) and,
    under a protocol, the I-V loop (``iv_loop.png``). Returns the summary entries."""
    t = series["time_ps"]
    if window > t[-1] - t[0]:
        sys.stderr.write(f"lammps-recoil: note: the running median's {window:g} ps are longer "
                         f"than the run ({t[-1] - t[0]:g} ps): the smoothed G(E_F) is about "
                         "its median over the run, and no event can be seen; pass a shorter "
                         "--median\n")
    protocol = header_protocol(read_run_header(prefix + ".recoil.csv"))
    cycle, count = (None, None) if protocol is None else (protocol.length, protocol.cycles)
    events = switching_events(t, series["G_EF"], series["V"], g_set, g_reset, window, cycle,
                              count)
    write_csv(f"{outdir}/events.csv", {
        "time_ps": [e.time for e in events], "V": [e.bias for e in events],
        "G": [e.conductance for e in events], "cycle": [e.cycle for e in events],
        "SET": [e.kind == "SET" for e in events]},
        f"switching events of {prefix}, one row each: column SET is 1 for a SET (the "
        f"{window} ps running median of G(E_F) rose to {g_set} G0) and 0 for a RESET (it "
        f"fell to {g_reset} G0); G is that median (G0), V the applied bias (V)")
    rows = per_cycle(events)
    write_csv(f"{outdir}/cycles.csv", {k: [r[k] for r in rows] for k in CYCLE_COLUMNS},
              f"first SET and RESET per protocol cycle of {prefix} (V in V, t in ps, NaN: "
              "none in that cycle; n: events of each kind); no rows: no events")
    bias_figure(f"{outdir}/bias.png", t, series, events, g_set, g_reset,
                f"bias and conductance; {label}")
    if protocol is not None:
        if cycle:
            colour = cycle_index(t, t[0], cycle, count)
            iv_loop_figure(f"{outdir}/iv_loop.png", series["V"], series["I_uA"], colour,
                           "cycle", f"I-V loop ({protocol.kind}); {label}", discrete=True)
        else:
            iv_loop_figure(f"{outdir}/iv_loop.png", series["V"], series["I_uA"], t,
                           "time (ps)", f"I-V loop ({protocol.kind}); {label}")
    limited = series["in_compliance"] > 0
    return {"protocol": "constant" if protocol is None else protocol.kind,
            "I_max_uA": float(np.abs(series["I_uA"]).max()),
            "P_max_uW": float(np.abs(series["P_uW"]).max()),
            "in_compliance_fraction": float(limited.mean()),
            "events": events, "cycles": rows, "g_set": g_set, "g_reset": g_reset,
            "median_ps": window, "files": ["events.csv", "cycles.csv", "bias.png"]
            + (["iv_loop.png"] if protocol is not None else [])}


def frozen_spacing(frame) -> float:
    """The layer spacing (A) of the type-3 frozen slab of a dump frame (both slabs share
    the measured lattice): the median gap between its layers' mean z (1.80 A for the
    default (001) electrodes, 2.08 A for (111) ones)."""
    z = np.asarray(frame["z"])[np.asarray(frame["type"]) == 3]
    layer = _layers(z)
    if layer.max(initial=0) < 1:
        raise ValueError("the dump's type-3 frozen slab has fewer than two layers: "
                         "no layer spacing to count the atoms per layer on")
    centres = np.array([z[layer == k].mean() for k in range(layer.max() + 1)])
    return float(np.median(np.diff(centres)))


def _geometry(frames, spacing: float, outdir: str, prefix: str, label: str) -> dict:
    """The dump's figures and tables of :func:`analyze` (initial geometry with the recoil
    forces, initial and final states, mobile atoms per layer); returns the layers' change
    of atom count (z: change) where it is not zero."""
    first, last = frames[0], frames[-1]
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
    return {float(z): int(b - a) for z, a, b in zip(grid, layers["initial"], layers["final"])
            if a != b}


def analyze(prefix: str, outdir: str | None = None, control: str | None = None,
            spacing: float | None = None, g_set: float = G_SET, g_reset: float = G_RESET,
            window: float = WINDOW) -> dict:
    """Figures and tables of one run (and of a control run at V = 0, if given); with the
    bias columns also :func:`device_analysis` (thresholds ``g_set``, ``g_reset`` in G0,
    median ``window`` in ps). Atoms per layer are counted on the layers of the frozen
    slabs (``spacing``, A, default :func:`frozen_spacing` of the first frame). A control
    run whose applied bias is not 0 is refused before anything is written."""
    series = read_series(prefix + ".recoil.csv")
    ctrl = None if not control else read_series(control + ".recoil.csv")
    if ctrl is not None and "V" in ctrl and np.any(ctrl["V"] != 0):
        raise ValueError(f"the control run {control} is not at V = 0: its applied bias "
                         f"reaches {np.abs(ctrl['V']).max():g} V; give a run of -var V 0")
    check_thresholds(g_set, g_reset, window)
    dump = prefix + ".dump"
    try:
        frames = read_dump(dump) if os.path.exists(dump) else None
        why = f"no dump {dump}"
    except ValueError as err:             # a dump without a complete frame
        frames, why = None, str(err)
    if frames is None:
        sys.stderr.write(f"lammps-recoil: note: {why}: the geometry, states and layer "
                         "figures are left out\n")
    else:
        spacing = frozen_spacing(frames[0]) if spacing is None else spacing
    outdir = outdir or prefix + "_figures"
    os.makedirs(outdir, exist_ok=True)
    label = run_label(read_run_header(prefix + ".recoil.csv")) or os.path.basename(prefix)
    t = series["time_ps"]

    G_lines = {"G(E_F)": series["G_EF"], "Landauer G(V)": series["G_V"]}
    x_lines = {}
    if ctrl is not None:
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

    moved = None if frames is None else _geometry(frames, spacing, outdir, prefix, label)
    hist, edges = conductance_histogram(series["G_EF"])
    write_csv(f"{outdir}/histogram.csv", {"G_low": edges[:-1], "G_high": edges[1:],
                                          "count": hist}, f"G(E_F) histogram, {prefix}")
    histogram_figure(f"{outdir}/histogram.png", hist, edges,
                     f"G(E_F) histogram over the run; {label}")

    switched = switching_time(t, series["G_EF"])
    summary = {
        "outdir": outdir,
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
        "switching_time_ps": switched, "classified": classifiable(t),
        "moved_layers": moved,
    }
    if control:
        summary["control"] = {"prefix": control, "duration_ps": float(ctrl["time_ps"][-1]
                                                                     - ctrl["time_ps"][0]),
                              "G_initial": float(ctrl["G_EF"][0]),
                              "G_mean": float(ctrl["G_EF"].mean()),
                              "switching_time_ps": switching_time(ctrl["time_ps"],
                                                                  ctrl["G_EF"]),
                              "classified": classifiable(ctrl["time_ps"])}
    if "V" in series:
        summary.update(device_analysis(prefix, outdir, series, label, g_set, g_reset, window))
    summary["files"] = sorted(["conductance.png", "forces.png", "histogram.csv",
                               "histogram.png"] + summary.get("files", [])
                              + ([] if frames is None else ["geometry_initial.png",
                                                             "states.png", "layers.csv",
                                                             "layers.png"]))
    with open(f"{outdir}/summary.txt", "w") as fh:
        fh.writelines(line + "\n" for line in summary_lines(summary))
    return summary


def _switched(ts, classified: bool = True) -> str:
    if not classified:
        return (f"not classified (shorter than {SWITCH_REFERENCE + SWITCH_WINDOW:g} ps: the "
                "criterion's reference and window)")
    return "none" if ts is None else f"{ts:.1f} ps"


def summary_lines(summary: dict) -> list:
    """The summary of :func:`analyze` as the lines it prints and writes to summary.txt,
    with units and rounded values."""
    s = summary
    lines = [f"run: {s['run']}",
             f"duration: {s['duration_ps']:.1f} ps, {s['updates']} NEGF updates",
             f"G(E_F): initial {s['G_initial']:.3f} G0, mean {s['G_mean']:.3f} +- "
             f"{s['G_std']:.3f} G0 (standard deviation), final {s['G_final']:.3f} G0 "
             "(median of the last 5% of updates)",
             f"recoil force on the filament along z: initial {s['Frec_z_initial']:.3f} eV/A, "
             f"mean {s['Frec_z_mean']:.3f} eV/A; largest per-atom recoil force, mean "
             f"{s['Frec_max_mean']:.3f} eV/A",
             f"work of the recoil forces: {s['work_eV']:.3f} eV; NEGF time per update, "
             f"mean: {1e3 * s['negf_s_mean']:.1f} ms",
             f"switching time (analysis.switching_time: the first time from which the "
             f"{SWITCH_WINDOW:g} ps running median of G(E_F) differs by more than "
             f"{SWITCH_THRESHOLD:g} G0 from its median over the first {SWITCH_REFERENCE:g} "
             f"ps): {_switched(s['switching_time_ps'], s.get('classified', True))}"]
    if s["moved_layers"] is not None:
        moved = ", ".join(f"z = {z:.2f} A: {n:+d}" for z, n in s["moved_layers"].items())
        lines.append(f"mobile atoms gained (+) or lost (-) per layer: {moved or 'none'}")
    if "protocol" in s:
        lines.append(f"bias protocol: {s['protocol']}; largest |I| {s['I_max_uA']:.1f} uA, "
                     f"largest |P| {s['P_max_uW']:.1f} uW; in compliance at "
                     f"{100 * s['in_compliance_fraction']:.0f}% of the updates")
        events = "; ".join(f"{e.kind} at {e.time:.1f} ps, V = {e.bias:.3f} V" for e in
                           s["events"]) or "none"
        lines.append(f"SET/RESET events (switching.switching_events, another criterion "
                     f"than the switching time's: the {s['median_ps']:g} ps running median "
                     f"of G(E_F) rising to {s['g_set']:g} G0 is a SET, falling to "
                     f"{s['g_reset']:g} G0 a RESET): {events}")
        for row in s["cycles"]:
            first = [f"first {k} at V = {row[f'V_{k}']:.3f} V, t = {row[f't_{k}']:.1f} ps"
                     for k in ("SET", "RESET") if row[f"n_{k}"]]
            lines.append(f"  cycle {row['cycle']}: {row['n_SET']} SET, {row['n_RESET']} "
                         f"RESET; {'; '.join(first)}")
    if "control" in s:
        c = s["control"]
        lines.append(f"control run {c['prefix']}: {c['duration_ps']:.1f} ps, G(E_F) initial "
                     f"{c['G_initial']:.3f} G0, mean {c['G_mean']:.3f} G0; switching time "
                     f"{_switched(c['switching_time_ps'], c.get('classified', True))} "
                     "(drawn in conductance.png)")
    lines.append(f"wrote {s['outdir']}/: {', '.join(s['files'] + ['summary.txt'])}")
    return lines


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
             threshold: float = 1.0, window: float = 5.0, rerun: bool = True,
             g_set: float = G_SET, g_reset: float = G_RESET,
             median: float = WINDOW) -> dict:
    """Run the deck for every (bias, seed), ``jobs`` processes at a time; summarize.

    Per run: the switching time (G leaves its first-ps level by ``threshold`` G0, median
    over ``window`` ps; at V = 0 the retention time; censored at the run's end if it never
    does) and the SET/RESET events (thresholds ``g_set``, ``g_reset``, median over
    ``median`` ps) with their voltages, all events in ``ensemble_events.csv``; the
    distributions in ``ensemble.png``. Under a protocol (``-var protocol`` in
    ``variables``) the biases only name the runs: give one. ``rerun=False`` only
    summarizes the outputs already in ``outdir``: every run found there
    (:func:`present_runs`), whatever ``seeds`` and ``biases`` say. ``too_short`` in the
    summary counts the runs shorter than the criterion's first ps and ``window``, which it
    cannot classify (they count as not switched).
    """
    check_criterion(threshold, window)
    check_thresholds(g_set, g_reset, median)
    if rerun and not (len(seeds) and len(biases)):
        raise ValueError(f"an ensemble needs at least one seed and one bias, got "
                         f"{len(seeds)} seeds and {len(biases)} biases")
    protocol = dict(variables).get("protocol", "constant")
    if rerun and protocol != "constant" and len(biases) != 1:
        raise ValueError(f"under -var protocol {protocol} the protocol sets the bias, and the "
                         f"runs of {len(biases)} biases ({', '.join(f'{v:g}' for v in biases)})"
                         " would repeat each other: give one, e.g. --biases 1 (it only names "
                         "the runs)")
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
             "G_initial": [], "G_final": [], "duration_ps": [], "classified": [], "n_SET": [],
             "n_RESET": [], "wall_s": []}
    events = {"V": [], "seed": [], "SET": [], "time_ps": [], "bias": [], "cycle": []}
    for V, seed, name, rc, wall in results:
        if rc != 0:
            raise ValueError(f"run {name} failed (exit {rc}){_reason(f'{outdir}/{name}.stdout')}"
                             f"; its output: {outdir}/{name}.stdout")
        prefix = f"{outdir}/{name}"
        s = read_series(prefix + ".recoil.csv")
        t, G = s["time_ps"], s["G_EF"]
        ts = switching_time(t, G, threshold, window)
        final = np.median(G[-max(1, len(G) // 20):])
        found = []
        if "V" in s:                       # a series with the bias columns
            protocol = header_protocol(read_run_header(prefix + ".recoil.csv"))
            found = switching_events(t, G, s["V"], g_set, g_reset, median,
                                     *((None, None) if protocol is None
                                       else (protocol.length, protocol.cycles)))
        for e in found:
            for k, v in zip(events, (V, seed, e.kind == "SET", e.time, e.bias, e.cycle)):
                events[k].append(v)
        n_set = sum(e.kind == "SET" for e in found)
        for k, v in zip(table, (V, seed, ts is not None, np.nan if ts is None else ts,
                                0 if ts is None else np.sign(final - G[0]), G[0], final,
                                t[-1] - t[0], classifiable(t, window), n_set,
                                len(found) - n_set, wall)):
            table[k].append(v)
    write_csv(f"{outdir}/ensemble.csv", table, f"deck {deck}, switching: median G over "
              f"{window} ps moved by more than {threshold} G0 from the first ps; direction "
              f"+1: G rose, -1: G fell; SET/RESET: median G(E_F) over {median} ps reached "
              f"{g_set} / {g_reset} G0")
    write_csv(f"{outdir}/ensemble_events.csv", events, "SET (1) and RESET (0) events of "
              "the runs in ensemble.csv: time (ps), applied bias (V), protocol cycle")
    summary = {}
    for V in biases:
        rows = [i for i, v in enumerate(table["V"]) if v == V]
        times = [table["switching_time_ps"][i] for i in rows if table["switched"][i]]
        up = sum(1 for i in rows if table["switched"][i] and table["direction"][i] > 0)
        mine = [i for i, v in enumerate(events["V"]) if v == V]
        short = sum(1 for i in rows if not table["classified"][i])
        summary[V] = {"runs": len(rows), "switched": len(times), "times_ps": times,
                      "up": up, "too_short": short,
                      "V_SET": [events["bias"][i] for i in mine if events["SET"][i]],
                      "V_RESET": [events["bias"][i] for i in mine if not events["SET"][i]]}
    ensemble_figure(f"{outdir}/ensemble.png", table, events, threshold, window)
    return summary


def _reason(stdout: str) -> str:
    """': <the error line>' of a failed run's output, or ''."""
    try:
        with open(stdout) as fh:
            errors = [line.strip() for line in fh if "error" in line.lower()]
    except OSError:
        return ""
    return f": {errors[0]}" if errors else ""


def survival(times, ends) -> tuple:
    """Kaplan-Meier estimate of the fraction of runs still in their initial state: each
    run switches at ``times`` (NaN: never) or is censored at its end ``ends`` (ps).
    Returns step-curve abscissae and ordinates up to the longest run's end."""
    times, ends = np.asarray(times, dtype=float), np.asarray(ends, dtype=float)
    x, y, frac = [0.0], [1.0], 1.0
    for t in np.unique(times[np.isfinite(times)]):
        at_risk = np.sum((np.where(np.isfinite(times), times, np.inf) >= t) & (ends >= t))
        frac *= 1.0 - np.sum(times == t) / at_risk
        x += [t, t]
        y += [y[-1], frac]
    return np.array(x + [float(ends.max(initial=0.0))]), np.array(y + [frac])


def ensemble_figure(path, table, events, threshold, window) -> None:
    """Left: the fraction of runs still in their initial state against time, per bias
    (switching at V != 0, retention at V = 0; :func:`survival`: a run that never switched
    counts until its own end). Right: histograms of the SET and RESET voltages of all runs (of their times if
    all events came at one bias)."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    V, ts = np.asarray(table["V"]), np.asarray(table["switching_time_ps"], dtype=float)
    ends = np.asarray(table["duration_ps"], dtype=float)
    for v in np.unique(V):
        n = int(np.sum(V == v))
        x, y = survival(ts[V == v], ends[V == v])
        left.plot(x, y, lw=1.5, label=f"V = {v:g} V ({'retention' if v == 0 else 'switching'},"
                  f" {n} runs)")
    left.set_xlabel("time (ps)")
    left.set_ylabel("fraction in the initial state")
    left.set_ylim(-0.03, 1.03)
    left.set_title(f"G within {threshold:g} G0 of its first ps (median over {window:g} ps)",
                   fontsize=9)
    left.legend(fontsize=8)
    kinds = np.asarray(events["SET"], dtype=bool)
    bias = np.asarray(events["bias"], dtype=float)
    # voltages under protocols; at one constant bias the events' times instead
    x, label = ((bias, "bias at the event (V)") if bias.size and np.ptp(bias) > 0 else
                (np.asarray(events["time_ps"], dtype=float), "time of the event (ps)"))
    if x.size:
        bins = np.linspace(x.min() - 0.05, x.max() + 0.05, 21)
        right.hist([x[kinds], x[~kinds]], bins=bins, label=["SET", "RESET"],
                   color=["tab:green", "tab:purple"])
        right.legend(fontsize=8)
    else:
        right.text(0.5, 0.5, "no SET or RESET events", ha="center", va="center",
                   transform=right.transAxes)
    right.set_xlabel(label)
    right.set_ylabel("events")
    fig.savefig(path, dpi=130)
    plt.close(fig)
