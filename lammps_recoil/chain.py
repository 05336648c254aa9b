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
    """Hopping model of the chain: t(a) = t, nearest neighbours only (cutoff 1.5 a)."""
    zeta = 1.0 / a if zeta is None else zeta
    if not t < 0:
        raise ValueError(f"chain hopping t must be negative, got {t}")
    return ContactHopping(t0=t * np.exp(zeta * a), zeta=zeta, r_on=1.5 * a, r_off=1.5 * a,
                          v_left=t if v_left is None else v_left,
                          v_right=t if v_right is None else v_right)


def chain_system(v_left: float, v_right: float, eps: float = 0.0, t: float = DEFAULTS["t"],
                 a: float = DEFAULTS["a"], zeta: float | None = None,
                 n_side: int = 0) -> RecoilSystem:
    """NEGF system of the chain with device atoms j = -n_side..n_side (index n_side = 0)."""
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
    """Transmittance of the chain (Eq. 14)."""
    E = np.asarray(E, dtype=float)
    chi = (v_left**2 + v_right**2) / (2.0 * v_left * v_right)
    num = ((E - eps) * t**2 / (v_left * v_right) - chi * E) ** 2
    return 1.0 / (num / (4.0 * t**2 - E**2) + chi**2)


def force_eq16(v_left, v_right, zeta=1.0 / DEFAULTS["a"]):
    """Zero-bias force on the central atom to first order in v_L - v_R (Eq. 16)."""
    return (1.0 + 8.0 / np.pi) * zeta * (v_left - v_right)


def force_eq17(bias, v_left, v_right, eps=0.0, beta=0.5, t=DEFAULTS["t"],
               zeta=1.0 / DEFAULTS["a"]):
    """Renormalized force F(V) - F(0) on the central atom to first order (Eq. 17)."""
    return zeta * bias / (np.pi * t) * ((beta - 0.5) * (v_left - v_right) - eps)


def hessian_eq18(bias, q_eff, beta=0.5, t=DEFAULTS["t"], a=DEFAULTS["a"],
                 zeta=1.0 / DEFAULTS["a"]):
    """dF/dZ0 of the central atom (Eq. 18), eV/A^2: screened Coulomb plus electrons."""
    q2 = COULOMB * q_eff**2
    return (-4.0 * q2 / a**3
            - 2.0 * zeta**2 * t * (1.0 + 8.0 / np.pi + (beta - 0.5) * bias / (np.pi * t)))


def v_crit_eq19(q_eff, beta, t=DEFAULTS["t"], a=DEFAULTS["a"], zeta=1.0 / DEFAULTS["a"]):
    """Critical bias (V) above which the central atom becomes unstable (Eq. 19)."""
    if beta == 0.5:
        return np.inf
    q2 = COULOMB * q_eff**2
    return (np.pi * abs(t) / abs(0.5 - beta)
            * (2.0 * q2 / (zeta**2 * a**3 * abs(t)) - 1.0 - 8.0 / np.pi))
