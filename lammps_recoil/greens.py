"""Retarded Green's function of the device and its scattering states (paper Eqs. 5-9).

For each energy E (and transverse Bloch vector k of a periodic device) the device matrix

    G_F(E)^-1 = E - H_F - Sigma_L(E) - Sigma_R(E),   Sigma_S = V_S^+ g_S V_S     (Eq. 6)

is factorized once (sparse LU; atoms are ordered along z so the factorization is banded and
its cost grows linearly with filament length). Only the columns that the physics needs are
solved for: Y_S = G_F V_S^+, one column per lead contact atom. From them:

* transmission (Caroli, Eq. 7): T = tr[a_L (V_L Y_R) a_R (V_L Y_R)^+], a_S = i(g_S - g_S^+),
  so that Gamma_S = V_S^+ a_S V_S;
* scattering-state amplitudes on the *extended* region (device plus the lead contact atoms)
  for electrons injected from lead S,

      Psi_S = [ Y_S ;  delta_{S,L'} + g_L' V_L' Y_S  for each lead L' ],

  whose outer product Psi_S a_S Psi_S^+ / 2 pi is the spectral density injected from S
  (Eq. 9 on the device block; the lead-contact rows follow from the same scattering states
  and are needed for bonds between device and lead atoms).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu


@dataclass
class Coupling:
    """Bonds between device atoms and one lead's block atoms (the matrix V_S of Eq. 5).

    ``contacts``: lead block atoms bonded to the device; ``boundary``: device atoms bonded
    to the lead; per bond: ``dev`` (device index), ``con`` (index into contacts), ``vec``
    (X_lead - X_dev, A) and the hopping ``t``.
    """

    contacts: np.ndarray
    boundary: np.ndarray
    dev: np.ndarray
    con: np.ndarray
    vec: np.ndarray
    t: np.ndarray

    def matrix(self, k=None) -> np.ndarray:
        """V_S restricted to (contacts x boundary): V[l, f] = t exp(-i k . vec)."""
        V = np.zeros((len(self.contacts), len(self.boundary)), dtype=complex)
        phase = 1.0 if k is None else np.exp(-1j * (self.vec[:, :2] @ np.asarray(k)))
        col = np.searchsorted(self.boundary, self.dev)
        np.add.at(V, (self.con, col), self.t * phase)
        return V


def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a Hermitian positive semi-definite matrix (negative round-off clipped)."""
    w, u = np.linalg.eigh(a)
    return (u * np.sqrt(np.clip(w, 0.0, None))) @ u.conj().T


class DeviceMatrix:
    """G_F(E)^-1 = (E + i eta) - H_F - Sigma_L(E) - Sigma_R(E) as a sparse matrix (Eq. 6).

    The sparsity pattern (H, the diagonal and the dense boundary blocks of the
    self-energies) is fixed per configuration; only the values change with energy.
    """

    def __init__(self, H, couplings, eta: float = 0.0):
        n = H.shape[0]
        H = H.tocoo()
        blocks = [(np.repeat(c.boundary, len(c.boundary)), np.tile(c.boundary, len(c.boundary)))
                  for c in couplings]
        rows = np.concatenate([H.row, np.arange(n)] + [b[0] for b in blocks])
        cols = np.concatenate([H.col, np.arange(n)] + [b[1] for b in blocks])
        keys, where = np.unique(cols.astype(np.int64) * n + rows, return_inverse=True)
        self.shape, self.eta = (n, n), eta
        self.indices = (keys % n).astype(np.int32)
        self.indptr = np.searchsorted(keys // n, np.arange(n + 1)).astype(np.int32)
        self._h = np.zeros(len(keys), dtype=complex)
        np.add.at(self._h, where[:H.nnz], -H.data)
        self._diag = where[H.nnz:H.nnz + n]
        start = H.nnz + n
        self._sigma = []
        for b in blocks:
            self._sigma.append(where[start:start + len(b[0])])
            start += len(b[0])

    def __call__(self, E: float, Vs, gs) -> sp.csc_matrix:
        data = self._h.copy()
        data[self._diag] += complex(E, self.eta)
        for pos, g, V in zip(self._sigma, gs, Vs):
            np.add.at(data, pos, -(V.conj().T @ g @ V).ravel())
        return sp.csc_matrix((data, self.indices, self.indptr), shape=self.shape)


class Scattering:
    """Solution of the device problem at one energy and Bloch vector.

    ``M`` is G_F^-1 (from :class:`DeviceMatrix`), ``Vs[S]`` the couplings V_S(k)
    (contacts x boundary) and ``gs[S]`` the lead Green's functions on the contact atoms.
    The factorization keeps the atoms' order (sorted along z: banded, linear cost). Attributes ``g[S]``, ``a[S]``, ``V[S]`` and ``Y[S]`` = G_F V_S^+ (device x
    contacts) for each solved source S in (0, 1) = (left, right).
    """

    def __init__(self, M, couplings, Vs, gs, sources=(0, 1)):
        self.couplings = couplings
        self.g, self.V = gs, Vs
        self.a = [1j * (g - g.conj().T) for g in gs]
        lu = splu(M, permc_spec="NATURAL")
        self.Y = [None, None]
        for s in sources:
            rhs = np.zeros((M.shape[0], len(couplings[s].contacts)), dtype=complex)
            rhs[couplings[s].boundary] = self.V[s].conj().T
            self.Y[s] = lu.solve(rhs)

    def coupled(self, s_from: int, s_to: int) -> np.ndarray:
        """V_{s_to} Y_{s_from}: amplitude reaching lead s_to's contacts (contacts x contacts)."""
        return self.V[s_to] @ self.Y[s_from][self.couplings[s_to].boundary]

    def amplitudes(self, s: int) -> np.ndarray:
        """Psi_S on the extended region (device rows, then left and right contact rows)."""
        blocks = [self.Y[s]]
        for t in (0, 1):
            z = self.g[t] @ self.coupled(s, t)
            if t == s:
                z = z + np.eye(len(z))
            blocks.append(z)
        return np.vstack(blocks)

    def transmission(self) -> float:
        """Caroli transmission T(E) (Eq. 7) from whichever source was solved."""
        s = 1 if self.Y[1] is not None else 0
        X = self.coupled(s, 1 - s)
        return float(np.real(np.einsum("ij,jk,ik->", self.a[1 - s] @ X, self.a[s], X.conj())))

    def channels(self) -> np.ndarray:
        """Transmission eigenvalues (eigenchannels), largest first; they sum to T(E)."""
        s = 1 if self.Y[1] is not None else 0
        X = self.coupled(s, 1 - s)
        r = sqrtm_psd(self.a[1 - s]) @ X @ sqrtm_psd(self.a[s])
        return np.sort(np.linalg.svd(r, compute_uv=False) ** 2)[::-1]
