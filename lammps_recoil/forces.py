"""Recoil forces from the density matrix on bonds (paper Eqs. 3, 4 and 10).

With rho_kj = <c_j^+ c_k> per spin, the paper's force model (Eq. 4) on atom i is

    F_i = 2 sum_{j in NN(i)} t'(r_ij) n_ij [ 2 Re rho_ij + rho_jj ],  n_ij = (X_j - X_i)/r_ij,

where the factor 2 is the spin sum and t'(r) = dt/dr (= -zeta t for the bare exponential,
so that -zeta n_ij t_ij of Eq. 4 is recovered; the smooth cutoff adds its own derivative).
The on-site term rho_jj comes from f^i_jj of Eq. 3. The ``"hellmann-feynman"`` model drops
it: F_i = -sum_{jk} (dH_jk/dX_i) <c_j^+ c_k>, the current-carrying Hellmann-Feynman
force of the tight-binding literature (the paper's ref. [13]: Todorov, Dundas, McEniry,
PRB 81, 075416 (2010)), whose zero-bias value is minus the gradient of the electronic
grand potential.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .hamiltonian import dense_sum

MODELS = {"paper": 1.0, "hellmann-feynman": 0.0}
#: Devices of at most this many atoms keep the force matrix of Eq. 4 dense (else sparse).
DENSE_FORCE_MAX = 90


def onsite_weight(model: str) -> float:
    """The weight of the on-site term rho_jj in the force (1 for Eq. 4, 0 for
    Hellmann-Feynman); refuses an unknown model, naming the known ones."""
    try:
        return MODELS[model]
    except KeyError:
        raise ValueError(f"force model must be one of {sorted(MODELS)}, got {model!r}") from None


def force_matrix(i, j, vec, dtdr, n_device: int, n_ext: int, model: str = "paper",
                 dense: bool = False):
    """Eq. 4 as a linear map: forces = K @ [2 Re rho_bond ; rho_diag].

    ``i`` are device atoms, ``j`` device or lead-contact atoms (extended numbering, n_ext
    atoms), ``vec`` = X_j - X_i; ``rho_bond`` = rho_ij (per spin) on these bonds and
    ``rho_diag`` the on-site occupations (per spin) of the extended region. Row 3 a + c of
    K (sparse, or a dense array with ``dense``: cheaper to build for small devices) is the
    force component c (eV/A) on device atom a; lead atoms get none. Applying K to a matrix
    of columns (one per energy) gives the forces per energy.
    """
    w = onsite_weight(model)
    m = len(i)
    g = 2.0 * dtdr[:, None] * vec / np.linalg.norm(vec, axis=1)[:, None]   # (m, 3)
    dev = j < n_device
    c = np.arange(3)
    bond = np.arange(m)
    # (atom, column, sign): bond term on i and j, on-site term rho_jj on i and rho_ii on j
    terms = [(i, bond, 1.0, 1.0), (j[dev], bond[dev], -1.0, 1.0),
             (i, m + j, 1.0, w), (j[dev], m + i[dev], -1.0, w)]
    rows, cols, vals = [], [], []
    for atoms, col, sign, weight in terms:
        sel = bond if len(atoms) == m else bond[dev]
        rows.append((3 * atoms[:, None] + c).ravel())
        cols.append(np.repeat(col, 3))
        vals.append((sign * weight * g[sel]).ravel())
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    shape = (3 * n_device, m + n_ext)
    if dense:                       # repeated (row, column) entries add up, as in CSR
        return dense_sum(rows, cols, vals, shape)
    return sp.csr_matrix((vals, (rows, cols)), shape=shape)


class BondForces:
    """Eq. 4 on one configuration's bonds: density matrices -> forces on the device atoms.

    ``bonds`` (:class:`~lammps_recoil.hamiltonian.Bonds`) join device atoms ``i`` to device
    or lead-contact atoms ``j`` of the extended region (``n_device`` device atoms first,
    ``n_ext`` in all). The force matrix of each model (:func:`force_matrix`) is built on
    first use and kept.
    """

    def __init__(self, bonds, n_device: int, n_ext: int):
        self.bonds, self.n_device, self.n_ext = bonds, n_device, n_ext
        self._K = {}

    def __call__(self, rho_bond: np.ndarray, rho_diag: np.ndarray, model: str) -> np.ndarray:
        """Forces (eV/A), one row of 3 n_device per energy, from the real part of rho_ij on
        the bonds (Bloch phases included) and the on-site rho_jj (energies x bonds, energies
        x n_ext; per spin)."""
        K = self._K.get(model)
        if K is None:
            b = self.bonds
            K = self._K[model] = force_matrix(b.i, b.j, b.vec, b.dtdr, self.n_device,
                                              self.n_ext, model,
                                              dense=self.n_device <= DENSE_FORCE_MAX)
        return (K @ np.hstack([2.0 * rho_bond, rho_diag]).T).T


def require_finite(forces: np.ndarray, names=lambda idx: str(idx[:10].tolist())):
    """Return ``forces`` or raise FloatingPointError naming the atoms with NaN/inf."""
    bad = np.flatnonzero(~np.all(np.isfinite(forces), axis=1))
    if bad.size:
        raise FloatingPointError(f"recoil forces are not finite on device atoms {names(bad)}")
    return forces
