"""Energy integration: bias windows, Fermi functions and Gauss-Legendre quadrature.

A :class:`Quadrature` is a list of energy nodes, each with

* ``w[:, S]`` -- the weight of the spectral density injected from lead S (S = 0 left,
  1 right) in the density matrix, i.e. (quadrature weight) x (occupation) / 2 pi (Eq. 9);
* ``tw`` -- the weight of T(E) in the Landauer conductance G/G0 (Eq. 11).

Chemical potentials follow the paper (after Eq. 10): mu_L = E_F - (1 - beta) e0 V and
mu_R = E_F + beta e0 V (V in volts, energies in eV, so e0 V is V eV).

The renormalized force F(V) - F(0), which MD uses, needs only the bias window: at T = 0
the left lead contributes -1 on [mu_L, E_F] and the right lead +1 on [E_F, mu_R] (for
V > 0). Each half-window is integrated with its own Gauss-Legendre rule, so the kink of
the Fermi step never lies inside an interval.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

#: Boltzmann constant (eV/K).
K_B = 8.617333262e-5
#: Default Gauss-Legendre points per half bias window (see docs: error < 1e-3 eV/A at 1 V).
DEFAULT_POINTS = 8
#: Fermi tails are integrated out to this many kT from the chemical potentials.
TAIL_KT = 20.0


def fermi(E, mu, temperature):
    """Fermi-Dirac occupation f(E - mu) at ``temperature`` (K); a step at T = 0."""
    E = np.asarray(E, dtype=float)
    if temperature == 0.0:
        return np.where(E < mu, 1.0, np.where(E > mu, 0.0, 0.5))
    return expit(-(E - mu) / (K_B * temperature))


def chemical_potentials(fermi_level: float, bias: float, beta: float):
    """mu_L, mu_R (eV) for bias V (volts) and voltage-drop asymmetry beta in [0, 1]."""
    check_bias(bias, beta)
    return fermi_level - (1.0 - beta) * bias, fermi_level + beta * bias


def check_bias(bias: float, beta: float, temperature: float = 0.0) -> None:
    if not np.isfinite(bias):
        raise ValueError(f"bias must be a finite number of volts, got {bias}")
    if not (0.0 <= beta <= 1.0):
        raise ValueError(f"beta (voltage-drop asymmetry) must lie in [0, 1], got {beta}")
    if not (np.isfinite(temperature) and temperature >= 0.0):
        raise ValueError(f"electron temperature must be >= 0 K, got {temperature}")


def gauss_legendre(a: float, b: float, n: int):
    """Nodes and weights of the n-point Gauss-Legendre rule on [a, b]."""
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (b - a) * x + 0.5 * (b + a), 0.5 * (b - a) * w


@dataclass
class Quadrature:
    """Energy nodes with density-matrix weights ``w`` (n, 2) and Landauer weights ``tw``."""

    energies: np.ndarray
    w: np.ndarray
    tw: np.ndarray

    def __len__(self):
        return len(self.energies)

    @property
    def window(self):
        return float(self.energies.min()), float(self.energies.max())

    def __add__(self, other: "Quadrature") -> "Quadrature":
        return Quadrature(np.concatenate([self.energies, other.energies]),
                          np.concatenate([self.w, other.w]),
                          np.concatenate([self.tw, other.tw]))


def _interval(a, b, n, wl, wr, tw_scale, edge=False):
    if edge:
        # E = a + (b - a) u^2 removes the 1/sqrt(E - E_0) band-edge singularity of the
        # lead density of states at the lower end.
        u, wu = gauss_legendre(0.0, 1.0, n)
        E, w = a + (b - a) * u**2, wu * 2.0 * u * (b - a)
    else:
        E, w = gauss_legendre(min(a, b), max(a, b), n)
    W = np.stack([w * wl(E), w * wr(E)], axis=1) / (2.0 * np.pi)
    return Quadrature(E, W, w * tw_scale)


def bias_window(fermi_level: float, bias: float, beta: float = 0.5,
                temperature: float = 0.0, n_points: int = DEFAULT_POINTS) -> Quadrature:
    """Nodes for the renormalized density matrix F(V) - F(0) and the conductance at V.

    At V = 0 the density weights vanish and the single Landauer node gives the
    linear-response conductance T(E_F) (thermally broadened at T > 0).
    """
    check_bias(bias, beta, temperature)
    if n_points < 1:
        raise ValueError(f"need at least one energy point, got {n_points}")
    EF = fermi_level
    mu_l, mu_r = chemical_potentials(EF, bias, beta)
    if temperature == 0.0:
        if bias == 0.0:
            return Quadrature(np.array([EF]), np.zeros((1, 2)), np.ones(1))
        sgn = np.sign(bias)
        tw = 1.0 / abs(bias)
        q = Quadrature(np.zeros(0), np.zeros((0, 2)), np.zeros(0))
        if mu_l != EF:
            q = q + _interval(mu_l, EF, n_points, lambda E: -sgn * np.ones_like(E),
                              np.zeros_like, tw)
        if mu_r != EF:
            q = q + _interval(EF, mu_r, n_points, np.zeros_like,
                              lambda E: sgn * np.ones_like(E), tw)
        return q
    kT = K_B * temperature
    lo = min(mu_l, mu_r, EF) - TAIL_KT * kT
    hi = max(mu_l, mu_r, EF) + TAIL_KT * kT
    E, w = gauss_legendre(lo, hi, 2 * n_points)
    f0 = fermi(E, EF, temperature)
    W = np.stack([fermi(E, mu_l, temperature) - f0, fermi(E, mu_r, temperature) - f0],
                 axis=1) * w[:, None] / (2 * np.pi)
    if bias == 0.0:
        tw = w * f0 * (1 - f0) / kT           # -df/dE
    else:
        tw = w * (fermi(E, mu_l, temperature) - fermi(E, mu_r, temperature)) / bias
    return Quadrature(E, W, tw)


def full_band(band_bottom: float, fermi_level: float, bias: float, beta: float = 0.5,
              temperature: float = 0.0, n_points: int = 96) -> Quadrature:
    """Nodes for the full F(V) of Eq. 10: each lead's states from E_0 up to mu_S.

    Landauer weights are zero here; combine with :func:`bias_window` for G.
    """
    check_bias(bias, beta, temperature)
    mu = chemical_potentials(fermi_level, bias, beta)
    q = Quadrature(np.zeros(0), np.zeros((0, 2)), np.zeros(0))
    for s in (0, 1):
        top = mu[s] + (TAIL_KT * K_B * temperature if temperature > 0 else 0.0)
        occ = (lambda E, m=mu[s]: fermi(E, m, temperature))
        zero = np.zeros_like
        q = q + _interval(band_bottom, top, n_points, occ if s == 0 else zero,
                          occ if s == 1 else zero, 0.0, edge=True)
    return q
