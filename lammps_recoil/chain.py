"""The paper's 1D atomic-chain toy model (section 3, Eqs. 14-19).

Atoms sit at X_j = j a along z. All bonds have hopping t < 0 except the two bonds of the
central atom j = 0 (the "filament"): t_{0,-1} = v_L and t_{0,+1} = v_R. The central atom
has on-site energy eps, all others zero. Force coefficients follow Eq. 4 with
dt_ij/dr = -zeta t_ij for every bond. Atoms j = -n_side..n_side form the NEGF device; the
rest are two semi-infinite chain leads, so E_F = 0 and E_0 = 2t (half filling).

This module builds that system for the NEGF engine and holds the paper's closed forms.
Bias V is in volts, energies in eV, lengths in Angstrom, forces in eV/A; the screened ion
charge q_eff is in units of e0 (e0^2 = 14.3996 eV A).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import chain_lattice
from .hamiltonian import HoppingModel
from .leads import LayeredLead
from .system import RecoilSystem

#: e0^2 / (4 pi epsilon_0) in eV Angstrom.
COULOMB = 14.399645

DEFAULTS = dict(t=-1.8, a=2.5)


@dataclass(frozen=True)
class ContactHopping(HoppingModel):
    """Nearest-neighbour chain hopping t, with the central atom's bonds set to v_L, v_R.

    The central atom is the one at z = 0; bonds to its left (right) neighbour get v_L
    (v_R). Every bond has dt/dr = -zeta t_ij, the exponential law behind Eq. 4.
    """

    v_left: float = -1.8
    v_right: float = -1.8

    def bond_hopping(self, positions, i, j, vec):
        t, dtdr = self.hopping(np.linalg.norm(vec, axis=1))
        zi, zj = positions[i, 2], positions[j, 2]
        at_i, at_j = np.abs(zi) < 1e-9, np.abs(zj) < 1e-9
        other = np.where(at_i, zj, zi)
        central = at_i | at_j
        t = np.where(central & (other < 0), self.v_left,
                     np.where(central & (other > 0), self.v_right, t))
        return t, np.where(central, -self.zeta * t, dtdr)


def chain_hopping(t: float = DEFAULTS["t"], a: float = DEFAULTS["a"], zeta: float | None = None,
                  v_left: float | None = None, v_right: float | None = None) -> ContactHopping:
    """Hopping model of the chain: t(a) = t (eV), nearest neighbours only (cutoff 1.5 a, a
    in A), dt/dr = -zeta t (zeta in 1/A, default 1/a)."""
    if not (np.isfinite(a) and a > 0):
        raise ValueError(f"chain spacing a must be a positive distance in A, got {a}")
    zeta = 1.0 / a if zeta is None else zeta
    if not t < 0:
        raise ValueError(f"chain hopping t must be negative, got {t}")
    if not (np.isfinite(zeta) and zeta > 0):
        raise ValueError(f"chain zeta (dt/dr = -zeta t) must be positive, in 1/A, got {zeta}")
    return ContactHopping(t0=t * np.exp(zeta * a), zeta=zeta, r_on=1.5 * a, r_off=1.5 * a,
                          v_left=t if v_left is None else v_left,
                          v_right=t if v_right is None else v_right)


def chain_system(v_left: float, v_right: float, eps: float = 0.0, t: float = DEFAULTS["t"],
                 a: float = DEFAULTS["a"], zeta: float | None = None,
                 n_side: int = 0) -> RecoilSystem:
    """NEGF system of the chain with device atoms j = -n_side..n_side (index n_side = 0)."""
    if isinstance(n_side, bool) or not isinstance(n_side, (int, np.integer)) or n_side < 0:
        raise ValueError(f"n_side (device atoms on each side of the central one) must be an "
                         f"integer >= 0, got {n_side!r}")
    hop = chain_hopping(t, a, zeta, v_left, v_right)
    z = a * np.arange(-n_side, n_side + 1)
    xyz = lambda zz: np.column_stack([np.zeros_like(zz), np.zeros_like(zz), zz])
    lat = chain_lattice(a)
    left = LayeredLead(lat, xyz(np.array([-(n_side + 1) * a])), "left", hop)
    right = LayeredLead(lat, xyz(np.array([(n_side + 1) * a])), "right", hop)
    onsite = np.where(z == 0.0, eps, 0.0)
    return RecoilSystem(xyz(z), left, right, hop, onsite=onsite, fermi_level=0.0)


# ---------------------------------------------------------------------- closed forms
def transmission_eq14(E, v_left, v_right, eps=0.0, t=DEFAULTS["t"]):
    """Transmittance of the chain (Eq. 14) at energies E (eV); hoppings and eps in eV."""
    E = np.asarray(E, dtype=float)
    chi = (v_left**2 + v_right**2) / (2.0 * v_left * v_right)
    num = ((E - eps) * t**2 / (v_left * v_right) - chi * E) ** 2
    return 1.0 / (num / (4.0 * t**2 - E**2) + chi**2)


def force_eq16(v_left, v_right, zeta=None, a=DEFAULTS["a"]):
    """Zero-bias force (eV/A) on the central atom to first order in v_L - v_R (Eq. 16);
    hoppings in eV, zeta in 1/A (default 1/a, a in A, as :func:`chain_hopping`)."""
    zeta = 1.0 / a if zeta is None else zeta
    return (1.0 + 8.0 / np.pi) * zeta * (v_left - v_right)


def force_eq17(bias, v_left, v_right, eps=0.0, beta=0.5, t=DEFAULTS["t"], zeta=None,
               a=DEFAULTS["a"]):
    """Renormalized force F(V) - F(0) (eV/A) on the central atom to first order (Eq. 17);
    bias in V, energies in eV, zeta in 1/A (default 1/a)."""
    zeta = 1.0 / a if zeta is None else zeta
    return zeta * bias / (np.pi * t) * ((beta - 0.5) * (v_left - v_right) - eps)


def hessian_eq18(bias, q_eff, beta=0.5, t=DEFAULTS["t"], a=DEFAULTS["a"], zeta=None):
    """dF/dZ0 of the central atom (Eq. 18), eV/A^2: screened Coulomb plus electrons; bias
    in V, t in eV, the spacing a in A and zeta (1/A, default 1/a, as :func:`chain_hopping`)."""
    zeta = 1.0 / a if zeta is None else zeta
    q2 = COULOMB * q_eff**2
    return (-4.0 * q2 / a**3
            - 2.0 * zeta**2 * t * (1.0 + 8.0 / np.pi + (beta - 0.5) * bias / (np.pi * t)))


def v_crit_eq19(q_eff, beta, t=DEFAULTS["t"], a=DEFAULTS["a"], zeta=None):
    """Critical bias (V) above which the central atom becomes unstable (Eq. 19); t in eV, a
    in A, zeta in 1/A (default 1/a, as :func:`chain_hopping`)."""
    zeta = 1.0 / a if zeta is None else zeta
    if beta == 0.5:
        return np.inf
    q2 = COULOMB * q_eff**2
    return (np.pi * abs(t) / abs(0.5 - beta)
            * (2.0 * q2 / (zeta**2 * a**3 * abs(t)) - 1.0 - 8.0 / np.pi))


# ---------------------------------------------------------------------- numerical studies
def gamma_chain(gamma: float, eps: float = 0.0, t: float = DEFAULTS["t"],
                a: float = DEFAULTS["a"], zeta: float | None = None,
                n_side: int = 0) -> RecoilSystem:
    """The chain of Fig. 1 with v_L,R = (1 +- gamma) t."""
    return chain_system((1 + gamma) * t, (1 - gamma) * t, eps, t, a, zeta, n_side)


def displaced_chain(u: float, t: float = DEFAULTS["t"], a: float = DEFAULTS["a"],
                    zeta: float | None = None, n_side: int = 0) -> RecoilSystem:
    """The central atom displaced by u along +z: v_L = t e^(-zeta u), v_R = t e^(+zeta u).

    (The paper writes v_L,R ~ t e^(+-zeta Z0); its Eq. 18 follows with this orientation,
    Z0 = u along +z.)
    """
    zeta = 1.0 / a if zeta is None else zeta
    return chain_system(t * np.exp(-zeta * u), t * np.exp(zeta * u), 0.0, t, a, zeta,
                        n_side)


def coulomb_force(u: float, q_eff: float, a: float = DEFAULTS["a"]) -> float:
    """-dU/du for U = q_eff^2 (1/|u + a| + 1/|u - a|), the screened ion term of section 3."""
    q2 = COULOMB * q_eff**2
    return q2 * (np.sign(u + a) / (u + a) ** 2 + np.sign(u - a) / (u - a) ** 2)


def stiffness(bias: float, q_eff: float, beta: float = 0.5, t: float = DEFAULTS["t"],
              a: float = DEFAULTS["a"], zeta: float | None = None, h: float = 1e-3,
              full_points: int = 200) -> float:
    """dF/du of the central atom at u = 0 (eV/A^2): NEGF force of Eq. 10 (full, from E_0)
    plus the screened Coulomb term, by central finite differences. Stable if < 0."""
    def force(u):
        s = displaced_chain(u, t, a, zeta)
        el = s.forces(bias, beta, full=True, full_points=full_points).forces[0, 2]
        return el + coulomb_force(u, q_eff, a)
    return (force(h) - force(-h)) / (2.0 * h)


def critical_bias(q_eff: float, beta: float, t: float = DEFAULTS["t"],
                  a: float = DEFAULTS["a"], zeta: float | None = None,
                  v_max: float | None = None, n_grid: int = 9, **kw) -> float:
    """Smallest |V| (same sign as 1/2 - beta) at which the stiffness changes sign,
    bracketed on an ``n_grid`` grid of [0, v_max] and refined by Brent's method."""
    from scipy.optimize import brentq
    if beta == 0.5:
        return np.inf
    sign = np.sign(0.5 - beta)
    v_max = 1.9 * abs(t) if v_max is None else v_max
    k = lambda v: stiffness(sign * v, q_eff, beta, t, a, zeta, **kw)
    if k(0.0) >= 0:
        raise ValueError(f"the chain is already unstable at V = 0 (q_eff = {q_eff})")
    grid = np.linspace(0.0, v_max, n_grid)
    values = [k(v) for v in grid]
    for lo, hi, klo, khi in zip(grid, grid[1:], values, values[1:]):
        if klo < 0 <= khi:
            return float(sign * brentq(k, lo, hi, xtol=1e-4))
    raise ValueError(f"no instability below |V| = {v_max} V")


def fermi_wavevector(a: float = DEFAULTS["a"]) -> float:
    """k_F of the half-filled chain, pi / 2a (1/A)."""
    return np.pi / (2.0 * a)


def momentum_balance_eq13(bias: float, conductance: float, a: float = DEFAULTS["a"]):
    """Total force on the constriction for one channel and small bias:
    (2/pi) e0 V k_F (1 - G/G0) (after Eq. 13), eV/A."""
    return 2.0 / np.pi * bias * fermi_wavevector(a) * (1.0 - conductance)


def contact_forces(gamma: float, bias: float, beta: float = 0.5, n_side: int = 40,
                   model: str = "paper", t: float = DEFAULTS["t"], a: float = DEFAULTS["a"],
                   full: bool = False):
    """Forces on atoms -n_side..n_side of the Fig. 1 chain, its conductances and charges.

    Returns (system, result): renormalized forces F(V) - F(0) (``full=False``) or the full
    F(V) of Eq. 10.
    """
    s = gamma_chain(gamma, t=t, a=a, n_side=n_side)
    return s, s.forces(bias, beta, model=model, full=full, full_points=200)


def total_force(forces: np.ndarray) -> float:
    """Total z force on the chain segment, averaged over its two outermost parities.

    At half filling the forces oscillate with period 2a (2 k_F = pi/a) and decay slowly
    into the leads, so plain partial sums over -n..n swing with the parity of the edge
    atoms; the mean of the sums over -n..n and -(n-1)..(n-1) converges (at V = 0.05 V,
    gamma = 0.4: 0.002816, 0.002816, 0.002814, 0.002807 eV/A for n = 10, 20, 40, 80).
    """
    fz = forces[:, 2]
    return 0.5 * (fz.sum() + fz[1:-1].sum())


def fig1a(gammas, bias: float = 1.0, beta: float = 0.5, n_side: int = 40,
          t: float = DEFAULTS["t"], a: float = DEFAULTS["a"]) -> dict:
    """Fig. 1(a): conductance and recoil force vs gamma at bias V.

    ``F_contact`` is the force on the central atom; ``F_total`` the total force of
    :func:`total_force` on atoms -n_side..n_side; ``eq13`` the momentum-balance estimate.
    """
    out = {k: [] for k in ("gamma", "T_EF", "G_V", "F_contact", "F_total", "eq13")}
    for g in gammas:
        s, r = contact_forces(g, bias, beta, n_side, t=t, a=a)
        T = s.conductance()
        for k, v in zip(out, (g, T, r.conductance, r.forces[n_side, 2], total_force(r.forces),
                              momentum_balance_eq13(bias, T, a))):
            out[k].append(v)
    return {k: np.array(v) for k, v in out.items()}


def fig1b(gamma: float = 0.4, biases=(0.0, 1.0), beta: float = 0.5, n_side: int = 6,
          t: float = DEFAULTS["t"], a: float = DEFAULTS["a"]) -> dict:
    """Fig. 1(b): full forces F(V) (Eq. 10, from E_0) and partial charges 1 - n_j of the
    atoms j = -n_side..n_side, at each bias."""
    out = {"site": np.arange(-n_side, n_side + 1)}
    for V in biases:
        _, r = contact_forces(gamma, V, beta, n_side, t=t, a=a, full=True)
        out[f"F_V{V:g}"] = r.forces[:, 2]
        out[f"charge_V{V:g}"] = 1.0 - r.density
    return out
