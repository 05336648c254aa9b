"""Recoil forces from the density matrix on bonds (paper Eqs. 3, 4 and 10).

With rho_kj = <c_j^+ c_k> per spin, the paper's force model (Eq. 4) on atom i is

    F_i = 2 sum_{j in NN(i)} t'(r_ij) n_ij [ 2 Re rho_ij + rho_jj ],  n_ij = (X_j - X_i)/r_ij,

where the factor 2 is the spin sum and t'(r) = dt/dr (= -zeta t for the bare exponential,
so that -zeta n_ij t_ij of Eq. 4 is recovered; the smooth cutoff adds its own derivative).
The on-site term rho_jj comes from f^i_jj of Eq. 3. The ``"hellmann-feynman"`` model drops
it: F_i = -sum_{jk} (dH_jk/dX_i) <c_j^+ c_k>, whose zero-bias value is minus the gradient
of the electronic grand potential.
"""
from __future__ import annotations

import numpy as np

MODELS = {"paper": 1.0, "hellmann-feynman": 0.0}


def onsite_weight(model: str) -> float:
    try:
        return MODELS[model]
    except KeyError:
        raise ValueError(f"force model must be one of {sorted(MODELS)}, got {model!r}") from None


def bond_forces(i, j, vec, dtdr, rho_bond, rho_diag, n_device: int, model: str = "paper"):
    """Per-atom forces (n_device, 3) in eV/A from bond and on-site density values.

    ``i`` are device atoms, ``j`` device or lead-contact atoms (extended numbering),
    ``vec`` = X_j - X_i, ``rho_bond`` = rho_ij (per spin) and ``rho_diag`` the on-site
    occupations (per spin) of the extended region. Forces on lead atoms are not returned.
    """
    w = onsite_weight(model)
    r = np.linalg.norm(vec, axis=1)
    unit = vec / r[:, None]
    two_re = 2.0 * np.real(rho_bond)
    on_i = 2.0 * dtdr[:, None] * unit * (two_re + w * rho_diag[j])[:, None]
    on_j = -2.0 * dtdr[:, None] * unit * (two_re + w * rho_diag[i])[:, None]
    F = np.zeros((n_device, 3))
    for c in range(3):
        F[:, c] = np.bincount(i, on_i[:, c], minlength=n_device)[:n_device]
        dev = j < n_device
        F[:, c] += np.bincount(j[dev], on_j[dev, c], minlength=n_device)[:n_device]
    return F


def require_finite(forces: np.ndarray, names=lambda idx: str(idx[:10].tolist())):
    """Return ``forces`` or raise FloatingPointError naming the atoms with NaN/inf."""
    bad = np.flatnonzero(~np.all(np.isfinite(forces), axis=1))
    if bad.size:
        raise FloatingPointError(f"recoil forces are not finite on device atoms {names(bad)}")
    return forces
