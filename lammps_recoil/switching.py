"""Resistive switching events along a run: SET, RESET, their voltages and times.

A memristor is read by its conductance. Along a run the state is read from G(E_F), the
zero-bias conductance of the instantaneous geometry (Eq. 7 at E_F), smoothed by a
running median over ``window`` ps (thermal fluctuations at 300 K are a few tenths of G0).
Two thresholds with hysteresis, g_reset < g_set, define the states: the filament is in
its low-resistance state (LRS) from the moment the smoothed G reaches g_set until it falls
to g_reset, then in its high-resistance state (HRS) until it reaches g_set again. A SET
is an HRS -> LRS transition, a RESET an LRS -> HRS one; the state at the start is LRS if
G >= g_set there, HRS if G <= g_reset, and undetermined in between (the first threshold
reached then fixes it without an event). Each event carries the time of the first
update at which the smoothed G crossed, the applied bias there, and the cycle of a
periodic protocol it falls in (:attr:`~lammps_recoil.protocols.Protocol.cycle_length`).

Under a constant bias, switching times and (at V = 0) retention times are the times at
which G leaves its initial level (:func:`~lammps_recoil.analysis.switching_time`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Default thresholds (G0) for the default filament at 300 K: LRS 2-3 G0, HRS about 1 G0.
G_SET, G_RESET = 2.0, 1.5
#: Default running-median window (ps).
WINDOW = 1.0
KINDS = ("SET", "RESET")


@dataclass(frozen=True)
class Event:
    """A switching event: ``kind`` "SET" or "RESET", ``time`` (ps), ``bias`` (V applied
    at that update), ``conductance`` (the smoothed G/G0 there), ``cycle`` (0-based cycle
    of the protocol; 0 without one)."""

    kind: str
    time: float
    bias: float
    conductance: float
    cycle: int


def check_thresholds(g_set: float, g_reset: float, window: float = WINDOW) -> None:
    """Refuse thresholds that are not 0 <= g_reset < g_set (G0) and a median window that
    is not a positive number of ps."""
    if not (np.isfinite(g_set) and np.isfinite(g_reset) and 0 <= g_reset < g_set):
        raise ValueError(f"switching thresholds need 0 <= g_reset < g_set (G0), got g_set = "
                         f"{g_set}, g_reset = {g_reset}")
    if not (np.isfinite(window) and window > 0):
        raise ValueError(f"the running median's window must be > 0 ps, got {window}")


def smoothed(t, G, window: float = WINDOW) -> np.ndarray:
    """Running median of G over ``window`` ps centred on each update: the update and
    window/2 on each side (2 h + 1 samples, h = window / 2 dt rounded; shorter at the
    ends), so that a clean step up and a clean step down are found at the same update;
    the samples themselves if the window holds no neighbour."""
    t, G = np.asarray(t, float), np.asarray(G, float)
    if len(t) < 2:
        return G.copy()
    half = int(round(window / (2.0 * np.median(np.diff(t)))))
    if half < 1:
        return G.copy()
    return np.array([np.median(G[max(0, i - half):i + half + 1]) for i in range(len(G))])


def cycle_index(t, t0: float, length: float, count: int | None = None) -> np.ndarray:
    """The protocol cycle (0, 1, ...) of times ``t`` (ps) of a series starting at ``t0``,
    cycles of ``length`` ps: a cycle's end belongs to it (so a run that ends with its last
    cycle has no point in a next one); times after the last of ``count`` cycles (the held
    bias) get the index ``count``."""
    k = np.maximum(np.ceil((np.asarray(t, dtype=float) - t0) / length - 1e-9) - 1, 0)
    return (k if count is None else np.minimum(k, count)).astype(int)


def switching_events(t, G, V, g_set: float = G_SET, g_reset: float = G_RESET,
                     window: float = WINDOW, cycle_length: float | None = None,
                     cycles: int | None = None) -> list[Event]:
    """SET and RESET events of a run (module docstring) from its update times ``t`` (ps),
    conductances ``G`` (G0) and applied biases ``V`` (volts); the protocol's
    ``cycle_length`` (ps) and number of ``cycles`` number the events (:func:`cycle_index`)."""
    check_thresholds(g_set, g_reset, window)
    t, V = np.asarray(t, float), np.asarray(V, float)
    g = smoothed(t, G, window)
    state = "LRS" if g[0] >= g_set else "HRS" if g[0] <= g_reset else None
    events = []
    for k in range(1, len(g)):
        if g[k] >= g_set and state != "LRS":
            if state == "HRS":
                events.append(_event("SET", t, V, g, k, cycle_length, cycles))
            state = "LRS"
        elif g[k] <= g_reset and state != "HRS":
            if state == "LRS":
                events.append(_event("RESET", t, V, g, k, cycle_length, cycles))
            state = "HRS"
    return events


def _event(kind, t, V, g, k, cycle_length, cycles) -> Event:
    cycle = 0 if not cycle_length else int(cycle_index(t[k], t[0], cycle_length, cycles))
    return Event(kind, float(t[k]), float(V[k]), float(g[k]), cycle)


#: The columns of :func:`per_cycle`'s rows (cycles.csv).
CYCLE_COLUMNS = ("cycle",) + tuple(f"{c}_{kind}" for kind in KINDS for c in ("V", "t", "n"))


def per_cycle(events: list[Event]) -> list[dict]:
    """One row per cycle with events (:data:`CYCLE_COLUMNS`): the cycle, the first SET and
    first RESET in it (voltage and time, NaN if none) and the number of each."""
    rows = []
    for c in sorted({e.cycle for e in events}):
        row = {"cycle": c}
        for kind in KINDS:
            mine = [e for e in events if e.cycle == c and e.kind == kind]
            row[f"V_{kind}"] = mine[0].bias if mine else np.nan
            row[f"t_{kind}"] = mine[0].time if mine else np.nan
            row[f"n_{kind}"] = len(mine)
        rows.append(row)
    return rows
