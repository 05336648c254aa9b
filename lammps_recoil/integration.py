"""Energy integration: bias windows, Fermi functions, fixed and adaptive quadrature.

Chemical potentials follow the paper (after Eq. 10): mu_L = E_F - (1 - beta) e0 V and
mu_R = E_F + beta e0 V (V in volts, energies in eV, so e0 V is V eV).

An energy integral is a list of :class:`Segment` s. Each segment carries the occupation
weights w_S(E) of the spectral density injected from lead S (S = 0 left, 1 right) and the
Landauer weight of T(E). The renormalized force F(V) - F(0), which MD uses, needs only the
bias window, one segment with weights w_S = f(E - mu_S) - f(E - E_F): at T = 0 the left
lead contributes -1 on [mu_L, E_F] and the right lead +1 on [E_F, mu_R] (V > 0), and E_F,
where the weights jump, is a fixed interval end (a ``step``); at T > 0 the segment spans
the window plus 20 kT tails.

A segment is cut into pieces at its steps and at the periodic leads' channel edges, where
the integrand has square-root branch points (a + b sqrt|E - E_c|: a lead subband opens);
edges that crowd closer than EDGE_GAP x tol to another are left to the adaptive rule
(:func:`isolated`). Each piece is integrated in a variable u in [0, 1] that approaches
such an end quadratically (E - E_c ~ u^2), which makes the integrand smooth in u
(:class:`Piece`); the band bottom's 1/sqrt(E - E_0) of full-band integrals is absorbed
the same way. Pieces are integrated adaptively (default: Gauss-Kronrod (3, 7) with
bisection of the intervals of largest error until the estimate |K7 - G3|, summed over
the intervals column by column, is below ``tol`` in every column of forces, conductance
and charges; filament resonances a few meV wide are found by the bisection) or with a
fixed n-point Gauss-Legendre rule on each part between the steps (not cut at the channel
edges). |K7 - G3| is the error of the embedded 3-point rule: the K7 values returned are
far more accurate (measured in docs/engine.md and docs/large.md).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, NamedTuple


import numpy as np
from scipy.special import expit, roots_legendre

#: Boltzmann constant (eV/K).
K_B = 8.617333262e-5
#: Default absolute accuracy of adaptive integrals: eV/A for forces, G0 for conductance.
DEFAULT_TOL = 1e-3
#: Fermi tails are integrated out to this many kT from the chemical potentials.
TAIL_KT = 20.0
#: Biases below this (volts) are zero bias: linear response, no window. F(V) - F(0) is
#: of order V there (1e-8 eV/A at most on the filaments here), and a narrower window's
#: ends, E_F +- V/2 in double precision, would carry a relative error of 1e-16 E_F / V in
#: the current (2.5e-4 at V = 1e-12).
TINY_BIAS = 1e-8
#: A removed pole closer than this (eV) to a channel edge, a step or an end of a segment
#: is not a separate interval end (the edge, step or end is); nor is an edge this close
#: to another (the same edge of two leads, to round-off).
CUT_MERGE = 1e-9
#: Most subintervals an adaptive integral may use before it gives up.
MAX_INTERVALS = 400
#: Channel edges closer than EDGE_GAP x tol (eV, tol in the integrand's units) to another
#: edge are not cut (:func:`isolated`): 0.03 eV at the deck's tol = 1e-2 eV/A.
EDGE_GAP = 3.0

# Gauss-Kronrod (3, 7) rule on [-1, 1]: Kronrod nodes, Kronrod weights and the weights of
# the embedded 3-point Gauss rule (zero on the nodes it does not use).
_GK_X = np.array([-0.9604912687080202, -0.7745966692414834, -0.4342437493468026, 0.0,
                  0.4342437493468026, 0.7745966692414834, 0.9604912687080202])
_GK_WK = np.array([0.1046562260264672, 0.2684880898683334, 0.4013974147759622,
                   0.4509165386584741, 0.4013974147759622, 0.2684880898683334,
                   0.1046562260264672])
_GK_WG = np.array([0.0, 5.0 / 9.0, 0.0, 8.0 / 9.0, 0.0, 5.0 / 9.0, 0.0])


def _kronrod_nodes(a, b):
    h, c = 0.5 * (b - a), 0.5 * (a + b)
    return c + h * _GK_X


def _kronrod(y, a, b, watch=None):
    """K7 estimates of the integrals over the intervals [a, b] (arrays) from the values y
    at their Kronrod nodes (intervals x 7 x columns), and their errors |K7 - G3| in each of
    the first ``watch`` columns (all by default)."""
    h = (0.5 * (b - a))[:, None]
    K, G = h * np.einsum("k,nkc->nc", _GK_WK, y), h * np.einsum("k,nkc->nc", _GK_WG, y)
    return K, np.abs(K - G)[:, :watch]


@dataclass(frozen=True)
class Piece:
    """An energy interval [lo, hi] integrated in u in [0, 1].

    An end with a square-root branch point (``root_lo``, ``root_hi``) is approached
    quadratically: E = lo + L u^2 (root at lo), hi - L (1 - u)^2 (at hi),
    lo + L (3u^2 - 2u^3) (both), else lo + L u, with L = hi - lo. Then sqrt|E - E_c| is
    linear in u near the root and (E - E_0)^(-1/2) dE/du is finite.
    """

    lo: float
    hi: float
    root_lo: bool = False
    root_hi: bool = False

    def energy(self, u):
        """E(u) and the Jacobian dE/du."""
        u = np.asarray(u, dtype=float)
        L = self.hi - self.lo
        if self.root_lo and self.root_hi:
            return self.lo + L * u * u * (3.0 - 2.0 * u), 6.0 * L * u * (1.0 - u)
        if self.root_lo:
            return self.lo + L * u * u, 2.0 * L * u
        if self.root_hi:
            return self.hi - L * (1.0 - u) ** 2, 2.0 * L * (1.0 - u)
        return self.lo + L * u, np.full(u.shape, L)

    def coordinate(self, E):
        """u(E), the inverse of :meth:`energy`."""
        x = np.clip((np.asarray(E, dtype=float) - self.lo) / (self.hi - self.lo), 0.0, 1.0)
        if self.root_lo and self.root_hi:
            return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * x) / 3.0)
        if self.root_lo:
            return np.sqrt(x)
        if self.root_hi:
            return 1.0 - np.sqrt(1.0 - x)
        return x


class NotConverged(FloatingPointError):
    """An adaptive integral did not reach its tolerance; ``worst`` is the interval (eV) of
    largest error."""

    def __init__(self, message: str, worst: tuple):
        super().__init__(message)
        self.worst = worst


class AdaptiveIntegral(NamedTuple):
    """Result of :func:`adaptive_integral`: the integral (one entry per column of the
    integrand), its error estimate (the largest over the steering columns of the sum over
    the intervals), the number of function evaluations, the final intervals' ends
    (energies, ascending) and each interval's error estimate (its largest column)."""

    value: np.ndarray
    error: float
    n_evals: int
    ends: np.ndarray
    errors: np.ndarray


class Integral(NamedTuple):
    """Result of :meth:`Segment.integrate`: the integral, its error estimate (NaN for
    fixed rules), the number of function evaluations and the partition (interval ends)
    to start a similar integral from (None for fixed rules)."""

    value: np.ndarray
    error: float
    n_evals: int
    partition: np.ndarray | None


def adaptive_integral(f, pieces, tol: float, start=(), watch=None) -> AdaptiveIntegral:
    """Adaptive Gauss-Kronrod (3, 7) integral of a vector function over the pieces.

    ``f(energies)`` returns one row per energy, so that a batch of nodes is evaluated
    together (and shared among MPI ranks). The error is estimated column by column, the
    sum over the intervals of |K7 - G3| in each of the first ``watch`` columns (all by
    default; further columns are integrated on the same nodes without steering them), and
    the integral's error is the largest of these sums: the max norm of the error vector,
    which bounds the error of every column as the per-interval estimates bound theirs.
    Each piece is integrated in its variable u (:class:`Piece`), starting from the
    intervals between the energies ``start`` that lie inside it; while the error exceeds
    ``tol``, the intervals are ranked by their largest error in the columns above tol/2
    and the first ones, enough to leave every column within tol/2, are bisected (in u) in
    one batch. The choice depends only on the values, so the nodes used do not depend on
    how a batch is evaluated.
    """
    start = np.asarray(start, dtype=float)
    first = []
    for p, piece in enumerate(pieces):
        u = piece.coordinate(start[(start > piece.lo) & (start < piece.hi)])
        u = np.unique(np.concatenate([[0.0, 1.0], u[(u > 1e-9) & (u < 1.0 - 1e-9)]]))
        first += [(p, lo, hi) for lo, hi in zip(u[:-1], u[1:])]
    done, count = [], 0                  # (piece, lo, hi, K, errors per column)

    def evaluate(intervals):
        nonlocal count
        nodes = [pieces[p].energy(_kronrod_nodes(lo, hi)) for p, lo, hi in intervals]
        y = f(np.concatenate([E for E, _ in nodes])) * np.concatenate([J for _, J in nodes]
                                                                      )[:, None]
        count += len(intervals)
        _, lo, hi = (np.array(c) for c in zip(*intervals))
        K, err = _kronrod(y.reshape(len(intervals), 7, -1), lo, hi, watch)
        done.extend((p, a, b, k, e) for (p, a, b), k, e in zip(intervals, K, err))

    evaluate(first)
    while True:
        done.sort(key=lambda d: (d[0], d[1]))
        err = np.array([d[4] for d in done])
        column = err.sum(axis=0)
        if (total := float(column.max())) <= tol:
            break
        rank = err[:, column > 0.5 * tol].max(axis=1)
        if len(done) >= MAX_INTERVALS:
            p, lo, hi, _, _ = done[int(np.argmax(rank))]
            worst = tuple(float(e) for e in pieces[p].energy(np.array([lo, hi]))[0])
            raise NotConverged(
                f"adaptive energy integral over [{pieces[0].lo:.4f}, {pieces[-1].hi:.4f}] eV "
                f"did not reach {tol:g} in {MAX_INTERVALS} intervals (error {total:.2e}, "
                f"largest on [{worst[0]:.9f}, {worst[1]:.9f}] eV)", worst)
        order = np.argsort(-rank, kind="stable")
        excess = (column - np.cumsum(err[order], axis=0)).max(axis=1)
        k = int(np.argmax(excess <= 0.5 * tol)) + 1
        worst = [done[i] for i in order[:k]]
        done[:] = [done[i] for i in np.sort(order[k:])]
        evaluate([half for p, lo, hi, _, _ in worst
                  for half in ((p, lo, 0.5 * (lo + hi)), (p, 0.5 * (lo + hi), hi))])
    ends = [pieces[p].lo if lo == 0.0 else float(pieces[p].energy(lo)[0])   # exact piece ends
            for p, lo, _, _, _ in done] + [pieces[-1].hi]
    return AdaptiveIntegral(sum(d[3] for d in done), total, 7 * count,
                            np.array(ends, dtype=float), err.max(axis=1))


def coarsen(ends, errors, tol: float) -> np.ndarray:
    """A partition to start the next, similar integral from (the next MD update): the
    intervals of ``ends``, with neighbouring pairs merged when even 32 times their summed
    error (a G3 error grows as h^6) stays below their share tol / len(errors). A partition
    that is reused thus loses the refinement of resonances that have moved away."""
    keep = np.ones(len(ends), dtype=bool)
    small = 32.0 * (errors[:-1] + errors[1:]) < tol / max(len(errors), 1)
    n = 0
    while n < len(errors) - 1:
        if small[n]:
            keep[n + 1] = False
            n += 2
        else:
            n += 1
    return np.asarray(ends)[keep]


def isolated(edges, tol: float) -> np.ndarray:
    """The channel edges (sorted) worth cutting an integral to absolute accuracy ``tol``
    at: those at least EDGE_GAP x tol eV from every other edge.

    A cut removes one square-root branch point a + b sqrt|E - E_c| from the integrand but
    costs a piece of its own (7 points at the least). Wide periodic leads have many
    channels, each opening with a weak branch point (one transverse mode of many in the
    lead's Green's function), and their edges crowd: a cut at each makes pieces of a few
    meV that cost more points than the adaptive rule spends on the branch points it steps
    over. The rule error across an uncut branch point falls only as h^1.5 with the
    interval h, so the spacing below which edges are left uncut shrinks with the
    tolerance: at tight tolerances every edge is cut."""
    edges = np.asarray(edges, dtype=float)
    if len(edges) < 2:
        return edges
    gaps = np.diff(edges)
    below, above = np.concatenate([[np.inf], gaps]), np.concatenate([gaps, [np.inf]])
    gap = EDGE_GAP * tol
    return edges[(below >= gap) & (above >= gap)]


def fermi(E, mu, temperature):
    """Fermi-Dirac occupation f(E - mu) of the leads' states (the f_S of Eqs. 8-10) at
    ``temperature`` (K), energies in eV; a step at T = 0 (1/2 at E = mu)."""
    E = np.asarray(E, dtype=float)
    if temperature == 0.0:
        return np.heaviside(mu - E, 0.5)
    return expit(-(E - mu) / (K_B * temperature))


def real_number(value, name: str) -> float:
    """``value`` as a float if it is one real number (a Python or numpy integer or float,
    or a 0-d array of one), else a TypeError naming ``name``: strings, booleans, complex
    numbers and sequences are refused, not converted."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be one real number, got {value!r} "
                        f"({type(value).__name__})")
    return float(value)


def positive_count(value, name: str) -> int:
    """``value`` as an int if it is a positive integer, else a ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_bias(bias: float, beta: float, temperature: float = 0.0) -> None:
    """Refuse a bias (V) that is not finite, a voltage-drop asymmetry beta outside [0, 1]
    and a negative or non-finite electron temperature (K); each must be one real number."""
    for name, value in (("bias (V)", bias), ("beta", beta), ("temperature (K)", temperature)):
        real_number(value, name)
    if not np.isfinite(bias):
        raise ValueError(f"bias must be a finite number of volts, got {bias}")
    if not (0.0 <= beta <= 1.0):
        raise ValueError(f"beta (voltage-drop asymmetry) must lie in [0, 1], got {beta}")
    if not (np.isfinite(temperature) and temperature >= 0.0):
        raise ValueError(f"electron temperature must be >= 0 K, got {temperature}")


def chemical_potentials(fermi_level: float, bias: float, beta: float):
    """mu_L, mu_R (eV) for bias V (volts) and voltage-drop asymmetry beta in [0, 1] (the
    paper, after Eq. 10)."""
    check_bias(bias, beta)
    return fermi_level - (1.0 - beta) * bias, fermi_level + beta * bias


def window_bounds(fermi_level: float, bias: float, beta: float,
                  temperature: float = 0.0) -> tuple[float, float]:
    """[lo, hi] (eV) of the energies a bias window weights: from the lowest to the highest
    of mu_L, mu_R and E_F, widened by the Fermi tails (TAIL_KT k_B T on each side)."""
    mu = chemical_potentials(fermi_level, bias, beta)
    tail = TAIL_KT * K_B * temperature
    return min(*mu, fermi_level) - tail, max(*mu, fermi_level) + tail


def gauss_legendre(a: float, b: float, n: int):
    """Nodes and weights of the n-point Gauss-Legendre rule on [a, b]."""
    x, w = roots_legendre(n)
    return 0.5 * (b - a) * x + 0.5 * (b + a), 0.5 * (b - a) * w


@dataclass
class Segment:
    """An energy interval [a, b] with its weights.

    ``occupation(E)`` returns (w_L, w_R): the occupation factors multiplying the spectral
    density injected from each lead (divided by 2 pi where the density matrix is formed);
    ``landauer(E)`` the weight of T(E) in G/G0. ``edge`` marks a lower end at the band
    bottom, where the lead density of states diverges as 1/sqrt(E - E_0). ``steps`` are
    energies inside (a, b) where the weights jump.
    """

    a: float
    b: float
    occupation: Callable
    landauer: Callable
    edge: bool = False
    steps: tuple = ()

    def pieces(self, kinks=(), cuts=()) -> list[Piece]:
        """The segment cut at its steps, at the square-root ``kinks`` (channel edges) and
        at the ``cuts`` (poles removed from the integrand, which no node may hit) inside
        it; kinks and the band-bottom edge are root ends of their pieces."""
        kinks, cuts = np.sort(np.asarray(kinks, dtype=float)), np.asarray(cuts, dtype=float)
        # an edge on a step or an end (to round-off) is that step or end, which becomes a
        # root end: a piece of round-off length would put nodes on the branch point
        anchors = np.array([self.a, self.b, *self.steps], dtype=float)
        gap = np.abs(kinks[:, None] - anchors[None, :])
        on = gap.min(axis=1, initial=np.inf) <= CUT_MERGE
        kinks[on] = anchors[gap[on].argmin(axis=1)]
        kinks = np.sort(kinks[(kinks >= self.a) & (kinks <= self.b)])
        kinks = kinks[np.diff(kinks, prepend=-np.inf) > CUT_MERGE]       # (one edge, once)
        cuts = cuts[(cuts > self.a) & (cuts < self.b)]
        # a pole on a channel edge (or a step): the edge is its end already, and its root
        # substitution must not be lost to a piece of round-off length
        near = np.concatenate([kinks, self.steps, [self.a, self.b]])
        cuts = cuts[np.abs(cuts[:, None] - near[None, :]).min(axis=1) > CUT_MERGE]
        ends = np.unique(np.concatenate([[self.a, self.b], self.steps, kinks, cuts]))
        roots = set(kinks.tolist()) | ({self.a} if self.edge else set())
        return [Piece(lo, hi, lo in roots, hi in roots) for lo, hi in zip(ends[:-1], ends[1:])]

    def nodes(self, n: int, cuts=()):
        """Fixed n-point Gauss-Legendre nodes and weights (dE included) on each piece
        between the steps and ``cuts`` (with the band-bottom substitution)."""
        n = positive_count(n, "the number of energy points per piece (n_points)")
        u, wu = gauss_legendre(0.0, 1.0, n)
        rules = [piece.energy(u) for piece in self.pieces(cuts=cuts)]
        return np.concatenate([E for E, _ in rules]), np.concatenate([wu * J for _, J in rules])

    def integrate(self, func, n_points: int | None = None, tol: float = DEFAULT_TOL,
                  kinks=(), start=(), cuts=(), watch=None) -> Integral:
        """Integral of the vector function over the segment.

        ``func(energies, segment)`` returns one row per energy. Fixed Gauss-Legendre with
        ``n_points`` on each side of a step or cut, else :func:`adaptive_integral` on the
        pieces cut also at the ``kinks``, to absolute accuracy ``tol`` (max norm of the
        error estimate over the first ``watch`` columns), starting from the partition
        ``start``.
        """
        if n_points is not None:
            E, w = self.nodes(n_points, cuts)
            return Integral(w @ func(E, self), np.nan, len(E), None)
        if not tol > 0:
            raise ValueError(f"tol (the energy integral's accuracy: eV/A for forces, G0 for "
                             f"the conductance) must be positive, got {tol}")
        try:
            res = adaptive_integral(lambda e: func(e, self), self.pieces(kinks, cuts), tol,
                                    start, watch)
        except NotConverged as fail:
            raise NotConverged(f"{fail}{_near(fail.worst, kinks, cuts)}", fail.worst) from None
        return Integral(res.value, res.error, res.n_evals, coarsen(res.ends, res.errors, tol))


def _near(worst, kinks, cuts) -> str:
    """Why an integral whose largest error is on the interval ``worst`` (eV) could not
    converge, if an unbroadened state or a channel edge lies there."""
    lo, hi = worst
    pad = max(hi - lo, 1e-9)
    for name, points in (("an unbroadened state (a real pole: round-off of the Green's "
                          "function near it limits the accuracy to about 1e-9)", cuts),
                         ("a lead channel edge", kinks)):
        at = [e for e in np.atleast_1d(points) if lo - pad <= e <= hi + pad]
        if at:
            return f": {name} lies at E = {at[0]:.9f} eV; use a larger tol"
    return ("; resonances crowd the window there (a long filament has many): use a larger "
            "tol, e.g. 0.03")


def _constant(value):
    return lambda E: value


def bias_window(fermi_level: float, bias: float, beta: float = 0.5,
                temperature: float = 0.0) -> list[Segment]:
    """The segment for the renormalized density matrix F(V) - F(0) and the conductance.

    Weights w_S(E) = f(E - mu_S) - f(E - E_F) and Landauer weight (f(E - mu_R) -
    f(E - mu_L)) / V (-df/dE at V = 0). At V = 0 and T = 0 the list is empty: no force;
    the conductance is then T(E_F).
    """
    check_bias(bias, beta, temperature)
    if abs(bias) < TINY_BIAS:
        bias = 0.0
    EF = fermi_level
    mu_l, mu_r = chemical_potentials(EF, bias, beta)
    if temperature == 0.0 and bias == 0.0:
        return []
    lo, hi = window_bounds(EF, bias, beta, temperature)
    # at T = 0 the weights jump at E_F (a half window narrower than TINY_BIAS is empty)
    steps = (EF,) if temperature == 0.0 and lo + TINY_BIAS <= EF <= hi - TINY_BIAS else ()

    def occupation(E):
        f0 = fermi(E, EF, temperature)
        return fermi(E, mu_l, temperature) - f0, fermi(E, mu_r, temperature) - f0

    if bias == 0.0:
        def landauer(E):
            f0 = fermi(E, EF, temperature)
            return f0 * (1.0 - f0) / (K_B * temperature)          # -df/dE
    else:
        def landauer(E):
            return (fermi(E, mu_r, temperature) - fermi(E, mu_l, temperature)) / bias
    return [Segment(lo, hi, occupation, landauer, steps=steps)]


def full_band(band_bottom: float, fermi_level: float, bias: float, beta: float = 0.5,
              temperature: float = 0.0) -> list[Segment]:
    """Segments for the full F(V) of Eq. 10: each lead's states from E_0 up to mu_S."""
    check_bias(bias, beta, temperature)
    mu = chemical_potentials(fermi_level, bias, beta)
    segs = []
    for s in (0, 1):
        top = mu[s] + (TAIL_KT * K_B * temperature if temperature > 0 else 0.0)

        def occupation(E, s=s):
            f = fermi(E, mu[s], temperature)
            return (f, 0.0) if s == 0 else (0.0, f)

        segs.append(Segment(band_bottom, top, occupation, _constant(0.0), edge=True))
    return segs
