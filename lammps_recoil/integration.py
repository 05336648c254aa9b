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

Segments are integrated either adaptively (default: Gauss-Kronrod (3, 7) with bisection
of the interval of largest error until the summed error estimate |K7 - G3| of forces,
conductance and charges is below ``tol``; the periodic leads' channel edges, where the
integrand has square-root kinks, start as interval ends; filament resonances a few meV
wide are found by the bisection) or with a fixed n-point Gauss-Legendre rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


import numpy as np
from scipy.special import expit, roots_legendre

#: Boltzmann constant (eV/K).
K_B = 8.617333262e-5
#: Default absolute accuracy of adaptive integrals: eV/A for forces, G0 for conductance.
DEFAULT_TOL = 1e-3
#: Fermi tails are integrated out to this many kT from the chemical potentials.
TAIL_KT = 20.0
#: Biases below this (volts) are zero bias: linear response, no window (F(V) - F(0) is
#: of order V there, and 1/V would overflow for denormal numbers).
TINY_BIAS = 1e-12
#: Most subintervals an adaptive integral may use before it gives up.
MAX_INTERVALS = 400

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


def _kronrod(y, a, b):
    """K7 estimate of the integral over [a, b] from the values y at the Kronrod nodes,
    and its error |K7 - G3| (max norm)."""
    h = 0.5 * (b - a)
    K, G = h * (_GK_WK @ y), h * (_GK_WG @ y)
    return K, float(np.abs(K - G).max())


def adaptive_integral(f, a: float, b: float, tol: float, breaks=()):
    """Adaptive Gauss-Kronrod (3, 7) integral of a vector function over [a, b].

    ``f(energies)`` returns one row per energy, so that a batch of nodes is evaluated
    together (and shared among MPI ranks). Starts from the intervals between ``breaks``;
    while the summed error exceeds ``tol`` it bisects, in one batch, the intervals of
    largest error that together hold all but tol/2 of it. The choice depends only on the
    values, so the nodes used do not depend on how a batch is evaluated. Returns
    (integral, error, n_evals, ends) where ``ends`` are the final interval boundaries.
    """
    ends = np.unique(np.concatenate([[a, b], [x for x in breaks if a < x < b]]))
    pieces, count = [], 0            # (error, lo, hi, K)

    def evaluate(intervals):
        nonlocal count
        y = f(np.concatenate([_kronrod_nodes(lo, hi) for lo, hi in intervals]))
        count += len(intervals)
        for n, (lo, hi) in enumerate(intervals):
            K, err = _kronrod(y[7 * n:7 * n + 7], lo, hi)
            pieces.append((err, lo, hi, K))

    evaluate(list(zip(ends[:-1], ends[1:])))
    while (total := sum(p[0] for p in pieces)) > tol:
        if len(pieces) >= MAX_INTERVALS:
            raise FloatingPointError(
                f"adaptive energy integral over [{a:.4f}, {b:.4f}] eV did not reach "
                f"{tol:g} in {MAX_INTERVALS} intervals (error {total:.2e})")
        pieces.sort(key=lambda p: (-p[0], p[1]))
        excess = total - np.cumsum([p[0] for p in pieces])
        k = int(np.argmax(excess <= 0.5 * tol)) + 1
        worst, pieces[:] = pieces[:k], pieces[k:]
        evaluate([half for _, lo, hi, _ in worst
                  for half in ((lo, 0.5 * (lo + hi)), (0.5 * (lo + hi), hi))])
    total = sum(p[3] for p in pieces)
    ends = np.array(sorted({x for p in pieces for x in p[1:3]}))
    return total, sum(p[0] for p in pieces), 7 * count, ends


def fermi(E, mu, temperature):
    """Fermi-Dirac occupation f(E - mu) at ``temperature`` (K); a step at T = 0."""
    E = np.asarray(E, dtype=float)
    if temperature == 0.0:
        return np.where(E < mu, 1.0, np.where(E > mu, 0.0, 0.5))
    return expit(-(E - mu) / (K_B * temperature))


def check_bias(bias: float, beta: float, temperature: float = 0.0) -> None:
    if not np.isfinite(bias):
        raise ValueError(f"bias must be a finite number of volts, got {bias}")
    if not (0.0 <= beta <= 1.0):
        raise ValueError(f"beta (voltage-drop asymmetry) must lie in [0, 1], got {beta}")
    if not (np.isfinite(temperature) and temperature >= 0.0):
        raise ValueError(f"electron temperature must be >= 0 K, got {temperature}")


def chemical_potentials(fermi_level: float, bias: float, beta: float):
    """mu_L, mu_R (eV) for bias V (volts) and voltage-drop asymmetry beta in [0, 1]."""
    check_bias(bias, beta)
    return fermi_level - (1.0 - beta) * bias, fermi_level + beta * bias


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
    bottom, integrated in u with E = a + (b - a) u^2 to absorb the 1/sqrt(E - E_0) edge.
    ``steps`` are energies inside (a, b) where the weights jump: always interval ends.
    """

    a: float
    b: float
    occupation: Callable
    landauer: Callable
    edge: bool = False
    steps: tuple = ()

    def nodes(self, n: int):
        """Fixed n-point Gauss-Legendre nodes and weights on each piece between the steps
        (with the edge substitution)."""
        if n < 1:
            raise ValueError(f"need at least one energy point, got {n}")
        if self.edge:
            u, wu = gauss_legendre(0.0, 1.0, n)
            return self.a + (self.b - self.a) * u**2, wu * 2.0 * u * (self.b - self.a)
        ends = [self.a, *self.steps, self.b]
        rules = [gauss_legendre(lo, hi, n) for lo, hi in zip(ends[:-1], ends[1:])]
        return np.concatenate([r[0] for r in rules]), np.concatenate([r[1] for r in rules])

    def integrate(self, func, n_points: int | None = None, tol: float = DEFAULT_TOL,
                  breaks=()):
        """Integral of the vector function over the segment.

        ``func(energies, segment)`` returns one row per energy. Fixed Gauss-Legendre with
        ``n_points``, else :func:`adaptive_integral` to absolute accuracy ``tol`` (max
        norm), starting from intervals split at the energies ``breaks`` (kinks of the
        integrand). Returns (integral, error estimate or nan, n_evals, interval ends).
        """
        if n_points is not None:
            E, w = self.nodes(n_points)
            return w @ func(E, self), np.nan, len(E), np.array([self.a, *self.steps, self.b])
        breaks = np.union1d(np.asarray(breaks, dtype=float), self.steps)
        if self.edge:
            span = self.b - self.a
            g = lambda u: func(self.a + span * u * u, self) * (2.0 * u * span)[:, None]
            inside = breaks[(breaks > self.a) & (breaks < self.b)]
            val, err, n, u = adaptive_integral(g, 0.0, 1.0, tol,
                                               np.sqrt((inside - self.a) / span))
            return val, err, n, self.a + span * u * u
        return adaptive_integral(lambda e: func(e, self), self.a, self.b, tol, breaks)


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
    tail = TAIL_KT * K_B * temperature
    lo, hi = min(mu_l, mu_r, EF) - tail, max(mu_l, mu_r, EF) + tail
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
