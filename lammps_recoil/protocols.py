"""Bias protocols: the applied voltage V(t) of a production run (volts, t in ps).

t is the time since the start of production. The NEGF update at time t uses V(t) and
holds its forces until the next update, so a protocol is sampled at the update times.
All protocols are pure functions of t (restart-safe: a resumed run recomputes V from its
step). Shapes (``V_min`` < ``V_max`` where a range is used):

* ``constant``: V(t) = V.
* ``ramp``: from V_min towards V_max at ``rate`` (V/ps), then held at V_max.
* ``triangle``: start at V_0 = clip(0, V_min, V_max), rise to V_max, fall to V_min, rise
  back to V_0 at ``rate``: one cycle lasts 2 (V_max - V_min) / rate; after ``cycles``
  cycles V stays at V_0. (V_min = -1.5, V_max = 1.5: 0 -> 1.5 -> -1.5 -> 0 V.)
* ``sine``: V(t) = c + a sin(2 pi t / period), c = (V_max + V_min)/2, a = (V_max - V_min)/2,
  for ``cycles`` periods, then c.
* ``pulse``: ``count`` pulses of height V_max and duration ``width`` every ``period``
  starting at t = 0, V_min in between and afterwards; ``polarity alternate`` flips the
  sign of every second pulse (SET and RESET pulses).
* ``file``: linear interpolation of a two-column file (time in ps from 0, strictly
  increasing; voltage), held at its last value after its end.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

KINDS = ("constant", "ramp", "triangle", "sine", "pulse", "file")
POLARITIES = ("same", "alternate")
#: Tolerance (ps) on times compared with protocol edges and with the update interval:
#: update times are step * dt in floating point.
TIME_TOL = 1e-9


@dataclass(frozen=True)
class Protocol:
    """A validated bias protocol (see module docstring); ``bias(t)`` gives V(t)."""

    kind: str = "constant"
    V: float = 1.0
    V_min: float = 0.0
    V_max: float = 1.0
    rate: float = 0.1
    cycles: int = 1
    period: float = 10.0
    width: float = 1.0
    count: int = 1
    polarity: str = "same"
    times: tuple = ()
    voltages: tuple = ()

    @property
    def start(self) -> float:
        """V_0 of the triangle: 0 clipped into [V_min, V_max]."""
        return float(np.clip(0.0, self.V_min, self.V_max))

    def bias(self, t):
        """V(t) in volts (t in ps, scalar or array)."""
        t = np.asarray(t, dtype=float)
        k = self.kind
        if k == "constant":
            v = np.full_like(t, self.V)
        elif k == "ramp":
            v = np.minimum(self.V_min + self.rate * t, self.V_max)
        elif k == "triangle":
            span = self.V_max - self.V_min
            cycle = 2 * span / self.rate
            # phase measured from V_min on the rising leg
            s = (self.start - self.V_min) / self.rate + np.minimum(t, self.cycles * cycle)
            u = np.mod(s, cycle) * self.rate
            v = self.V_min + np.where(u <= span, u, 2 * span - u)
        elif k == "sine":
            c, a = (self.V_max + self.V_min) / 2, (self.V_max - self.V_min) / 2
            on = t < self.cycles * self.period
            v = c + a * np.where(on, np.sin(2 * np.pi * t / self.period), 0.0)
        elif k == "pulse":
            # times on the update grid are step * dt in floating point (0.3 / 0.2 =
            # 1.4999999999999998): a pulse starts at n period and ends at n period + width
            # to within TIME_TOL
            n = np.floor((t + TIME_TOL) / self.period)
            on = (t - n * self.period < self.width - TIME_TOL) & (n < self.count) & (t >= 0)
            sign = np.where((self.polarity == "alternate") & (np.mod(n, 2) == 1), -1.0, 1.0)
            v = np.where(on, sign * self.V_max, self.V_min)
        else:
            v = np.interp(t, self.times, self.voltages)
        return v if v.ndim else float(v)

    @property
    def cycle_length(self) -> float | None:
        """Duration of one cycle (ps) of a periodic protocol (triangle, sine, pulse),
        else None."""
        if self.kind == "triangle":
            return 2 * (self.V_max - self.V_min) / self.rate
        if self.kind in ("sine", "pulse"):
            return self.period
        return None

    @property
    def duration(self) -> float | None:
        """Time (ps) at which the protocol reaches its final, held bias (the end of the
        ramp, of the last triangle or sine cycle, of the last pulse, of the file); None
        for a constant bias."""
        if self.kind == "constant":
            return None
        if self.kind == "ramp":
            return (self.V_max - self.V_min) / self.rate
        if self.kind in ("triangle", "sine"):
            return self.cycles * self.cycle_length
        if self.kind == "pulse":
            return (self.count - 1) * self.period + self.width
        return self.times[-1]

    def grid_note(self, update_ps: float) -> str | None:
        """A note when a pulse's width or period is not a whole number of NEGF updates of
        ``update_ps`` ps (None otherwise): the bias is applied at the updates, so a pulse
        lasts its width rounded up to whole updates."""
        if self.kind != "pulse":
            return None
        off = [f"{name} {value:g} ps" for name, value in (("width", self.width),
                                                          ("period", self.period))
               if abs(value / update_ps - round(value / update_ps)) * update_ps > TIME_TOL]
        if not off:
            return None
        # updates (k dt) at which pulse n is on: n period <= k dt < n period + width
        first = lambda time: np.ceil((time - TIME_TOL) / update_ps)
        starts = np.arange(self.count) * self.period
        held = np.unique(np.round((first(starts + self.width) - first(starts)) * update_ps,
                                  9))
        lasts = (f"each pulse lasts {held[0]:g} ps" if len(held) == 1 else
                 f"the pulses last {held.min():g} to {held.max():g} ps")
        return (f"the pulse {' and '.join(off)} {'is' if len(off) == 1 else 'are'} not a "
                f"whole number of NEGF updates ({update_ps:g} ps): the bias is applied at "
                f"the updates, so {lasts}, each starting at the first update at or after "
                "its time")

    def coverage(self, production_ps: float):
        """What a production of ``production_ps`` covers of the protocol: None if all of
        it, else a :class:`Coverage` (the fraction of :attr:`duration` and the range of V
        applied)."""
        end = self.duration
        if end is None or production_ps >= end * (1 - 1e-9):
            return None
        v = self.bias(np.linspace(0.0, production_ps, 4001))
        lo, hi = self.extremes()
        return Coverage(production_ps / end, end, float(v.min()), float(v.max()), lo, hi)

    def extremes(self) -> tuple[float, float]:
        """Lowest and highest bias the protocol applies (V)."""
        if self.kind == "constant":
            return self.V, self.V
        if self.kind == "file":
            return min(self.voltages), max(self.voltages)
        if self.kind == "pulse":
            lows = [self.V_min, self.V_max]
            if self.polarity == "alternate" and self.count > 1:
                lows.append(-self.V_max)
            return min(lows), max(lows)
        return self.V_min, self.V_max


class Coverage(NamedTuple):
    """A production shorter than its bias protocol (:meth:`Protocol.coverage`): the
    ``fraction`` of the protocol's ``duration`` (ps) it covers, the range [``V_low``,
    ``V_high``] of the bias it applies and the protocol's own range [``V_min``,
    ``V_max``] (volts)."""

    fraction: float
    duration: float
    V_low: float
    V_high: float
    V_min: float
    V_max: float

    def note(self, kind: str, production_ps: float) -> str:
        """The warning printed before such a run (``lammps-recoil check`` and both deck
        routes)."""
        return (f"the {kind} protocol lasts {self.duration:g} ps but the production "
                f"(production_ps) is {production_ps:g} ps: it covers "
                f"{100 * self.fraction:.0f}% of the protocol and applies V from "
                f"{self.V_low:.4g} to {self.V_high:.4g} V of the protocol's {self.V_min:g} to "
                f"{self.V_max:g} V; the whole protocol needs -var production_ps "
                f"{self.duration:g}")


def make_protocol(kind="constant", V=1.0, V_min=0.0, V_max=1.0, rate=0.1, cycles=1,
                  period=10.0, width=1.0, count=1, polarity="same", file="",
                  update_ps=None) -> Protocol:
    """Parse and validate protocol parameters (strings or numbers from deck variables).

    ``update_ps``: the NEGF update interval (ps); a pulse must be at least that long (and
    so must the gap between pulses), a sweep leg and a sine period at least two updates.
    Errors name the parameter, the value found and what is accepted.
    """
    kind = str(kind)
    if kind not in KINDS:
        raise ValueError(f"protocol must be one of {', '.join(KINDS)}, got {kind}")
    try:
        f = dict(V=float(V), V_min=float(V_min), V_max=float(V_max), rate=float(rate),
                 period=float(period), width=float(width))
        cyc, cnt = float(cycles), float(count)
    except (TypeError, ValueError) as err:
        raise ValueError(f"bad protocol parameter: {err}") from None
    for name, value in f.items():
        if not np.isfinite(value):
            raise ValueError(f"protocol parameter {name} must be a finite number, got {value}")
    for name, value in (("cycles", cyc), ("count", cnt)):
        if value < 1 or value != int(value):
            raise ValueError(f"protocol parameter {name} must be an integer >= 1, got {value:g}")
    if str(polarity) not in POLARITIES:
        raise ValueError(f"polarity must be same or alternate, got {polarity}")
    dt = update_ps
    times, volts = (), ()
    if kind in ("ramp", "triangle", "sine") and not f["V_max"] > f["V_min"]:
        raise ValueError(f"protocol {kind} needs V_min < V_max, got V_min = {f['V_min']} V, "
                         f"V_max = {f['V_max']} V")
    if kind in ("ramp", "triangle"):
        if not f["rate"] > 0:
            raise ValueError(f"sweep rate must be > 0 V/ps, got {f['rate']}")
        leg = (f["V_max"] - f["V_min"]) / f["rate"]
        if dt is not None and leg < 2 * dt - TIME_TOL:
            raise ValueError(
                f"a sweep from V_min = {f['V_min']} to V_max = {f['V_max']} V at rate "
                f"{f['rate']} V/ps lasts {leg:g} ps, less than two NEGF updates "
                f"({2 * dt:g} ps): accepted rate <= {(f['V_max'] - f['V_min']) / (2 * dt):g} V/ps")
    if kind == "sine" and not (f["period"] > 0 and (dt is None
                                                   or f["period"] >= 2 * dt - TIME_TOL)):
        raise ValueError(f"sine period must be >= two NEGF updates"
                         f"{'' if dt is None else f' ({2 * dt:g} ps)'}, got {f['period']} ps")
    if kind == "pulse":
        if not 0 < f["width"] < f["period"]:
            raise ValueError(f"pulse width must lie in (0, period = {f['period']} ps), got "
                             f"{f['width']} ps")
        if dt is not None and (f["width"] < dt - TIME_TOL
                               or f["period"] - f["width"] < dt - TIME_TOL):
            raise ValueError(
                f"pulse width {f['width']} ps and gap {f['period'] - f['width']:g} ps must each "
                f"be at least the NEGF update interval {dt:g} ps (every x timestep)")
    if kind == "file":
        if str(file) in ("", "none"):
            raise ValueError("protocol file needs its voltages: -var vfile PATH, a file of two "
                             "columns time (ps), voltage (V)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")          # numpy warns on an empty file
                data = np.loadtxt(str(file), ndmin=2)
        except (OSError, ValueError, UserWarning) as err:
            raise ValueError(f"protocol file {file!r}: cannot read two columns time (ps), "
                             f"voltage (V): {err}") from None
        if data.shape[1] != 2 or len(data) < 1:
            raise ValueError(f"protocol file {file}: expected two columns time (ps), voltage "
                             f"(V), found {data.shape[1]} columns")
        if not np.all(np.isfinite(data)):
            row = int(np.flatnonzero(~np.all(np.isfinite(data), axis=1))[0])
            raise ValueError(f"protocol file {file}: non-finite values in data row {row + 1}: "
                             f"{data[row].tolist()}")
        if data[0, 0] != 0 or np.any(np.diff(data[:, 0]) <= 0):
            raise ValueError(f"protocol file {file}: times must start at 0 ps and increase "
                             f"strictly, found {data[:3, 0].tolist()}...")
        times, volts = tuple(data[:, 0].tolist()), tuple(data[:, 1].tolist())
    return Protocol(kind, f["V"], f["V_min"], f["V_max"], f["rate"], int(cyc), f["period"],
                    f["width"], int(cnt), str(polarity), times, volts)


def deck_protocol(params: dict, update_ps: float | None = None) -> Protocol:
    """The protocol of the deck's parameters (:func:`lammps_recoil.params.parse_params`:
    ``protocol``, ``V``, ``V_min``, ``V_max``, ``rate``, ``cycles``, ``period``, ``width``,
    ``pulses``, ``polarity``, ``vfile``), validated for NEGF updates every ``update_ps``."""
    return make_protocol(params["protocol"], params["V"], params["V_min"], params["V_max"],
                         params["rate"], params["cycles"], params["period"], params["width"],
                         params["pulses"], params["polarity"], params["vfile"], update_ps)
