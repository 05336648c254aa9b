"""Retarded Green's function of the device and its scattering states (paper Eqs. 5-9).

For a batch of energies E (and one transverse Bloch vector k of a periodic device) the
device matrix

    G_F(E)^-1 = E - H_F - Sigma_L(E) - Sigma_R(E),   Sigma_S = V_S^+ g_S V_S     (Eq. 6)

is factorized and only the columns that the physics needs are solved for: Y_S = G_F V_S^+,
one column per lead contact atom. Small devices (up to DENSE_MAX atoms, e.g. a filament
between ideal electrodes) are solved with dense LU for the whole batch in one LAPACK call;
larger ones with a sparse LU per energy that keeps the atoms' z order (banded, cost linear
in the filament length). From Y:

* transmission (Caroli, Eq. 7): T = tr[a_L (V_L Y_R) a_R (V_L Y_R)^+], a_S = i(g_S - g_S^+),
  so that Gamma_S = V_S^+ a_S V_S;
* scattering-state amplitudes on the *extended* region (device plus the lead contact atoms)
  for electrons injected from lead S,

      Psi_S = [ Y_S ;  delta_{S,L'} + g_L' V_L' Y_S  for each lead L' ],

  whose outer product Psi_S a_S Psi_S^+ / 2 pi is the spectral density injected from S
  (Eq. 9 on the device block; the lead-contact rows follow from the same scattering states
  and are needed for bonds between device and lead atoms).

Every array with energy dependence carries the energy as its first axis.
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
    """Square roots of Hermitian positive semi-definite matrices (a stack; round-off clipped)."""
    w, u = np.linalg.eigh(a)
    return (u * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ dagger(u)


def dagger(a: np.ndarray) -> np.ndarray:
    """Conjugate transpose of a matrix or of each matrix in a stack."""
    return np.conj(np.swapaxes(a, -1, -2))


def self_energy(V: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Sigma_S = V_S^+ g_S V_S on the device atoms bonded to lead S (Eq. 6); g may be a
    stack over energies."""
    return dagger(V) @ g @ V


#: Devices of at most this many atoms are solved by dense LU batched over energies; larger
#: ones by banded sparse LU, one energy at a time (crossover measured by bench_negf.py).
DENSE_MAX = 90


class DeviceMatrix:
    """G_F(E)^-1 = (E + i eta) - H_F - Sigma_L(E) - Sigma_R(E) (Eq. 6) and its solution.

    The sparsity pattern (H, the diagonal and the dense boundary blocks of the
    self-energies) is fixed per configuration; only the values change with energy.
    """

    def __init__(self, H, couplings, eta: float = 0.0):
        n = H.shape[0]
        self.couplings, self.shape, self.eta = couplings, (n, n), eta
        self.H = H
        self._dense = -H.toarray().astype(complex) if n <= DENSE_MAX else None
        self._pattern = None

    def _sparse_pattern(self):
        """CSC structure of H + diagonal + boundary blocks, and where each part goes."""
        if self._pattern is None:
            n = self.shape[0]
            H = self.H.tocoo()
            blocks = [(np.repeat(c.boundary, len(c.boundary)),
                       np.tile(c.boundary, len(c.boundary))) for c in self.couplings]
            rows = np.concatenate([H.row, np.arange(n)] + [b[0] for b in blocks])
            cols = np.concatenate([H.col, np.arange(n)] + [b[1] for b in blocks])
            keys, where = np.unique(cols.astype(np.int64) * n + rows, return_inverse=True)
            indices = (keys % n).astype(np.int32)
            indptr = np.searchsorted(keys // n, np.arange(n + 1)).astype(np.int32)
            h = np.zeros(len(keys), dtype=complex)
            np.add.at(h, where[:H.nnz], -H.data)
            sigma, start = [], H.nnz + n
            for b in blocks:
                sigma.append(where[start:start + len(b[0])])
                start += len(b[0])
            self._pattern = (indices, indptr, h, where[H.nnz:H.nnz + n], sigma)
        return self._pattern

    def __call__(self, E: float, Vs, gs) -> sp.csc_matrix:
        """The sparse matrix at one energy; ``gs`` are the leads' (contacts x contacts) g."""
        indices, indptr, h, diag, sigma = self._sparse_pattern()
        data = h.copy()
        data[diag] += complex(E, self.eta)
        for pos, g, V in zip(sigma, gs, Vs):
            np.add.at(data, pos, -self_energy(V, g).ravel())
        return sp.csc_matrix((data, indices, indptr), shape=self.shape)

    def solve(self, E: np.ndarray, Vs, gs, sources=(0, 1)) -> list:
        """Y_S = G_F V_S^+ (len(E) x device x contacts) for each S in ``sources`` (else
        None); ``gs`` are the leads' g stacked over the energies E. The columns of G_F at
        the boundary atoms are solved for (fewer than the contact atoms) and Y_S follows."""
        n = self.shape[0]
        bound = np.unique(np.concatenate([self.couplings[s].boundary for s in sources]))
        rhs = np.zeros((n, len(bound)), dtype=complex)
        rhs[bound, np.arange(len(bound))] = 1.0
        if self._dense is not None:
            M = np.repeat(self._dense[None], len(E), axis=0)
            idx = np.arange(n)
            M[:, idx, idx] += (np.asarray(E) + 1j * self.eta)[:, None]
            for c, V, g in zip(self.couplings, Vs, gs):
                M[:, c.boundary[:, None], c.boundary[None, :]] -= self_energy(V, g)
            X = np.linalg.solve(M, np.broadcast_to(rhs, (len(E),) + rhs.shape))
        else:
            X = np.stack([splu(self(e, Vs, [g[m] for g in gs]), permc_spec="NATURAL").solve(rhs)
                          for m, e in enumerate(E)])
        Y = [None, None]
        for s in sources:
            cols = X[:, :, np.searchsorted(bound, self.couplings[s].boundary)]
            Y[s] = (cols.reshape(len(E) * n, cols.shape[2]) @ dagger(Vs[s])).reshape(
                len(E), n, Vs[s].shape[0])           # one BLAS call for all energies
        return Y


class Scattering:
    """Solution of the device problem on a batch of energies at one Bloch vector.

    ``matrix`` is the :class:`DeviceMatrix`, ``Vs[S]`` the couplings V_S(k) (contacts x
    boundary) and ``gs[S]`` the lead Green's functions on the contact atoms (energies x
    contacts x contacts). Attributes ``g[S]``, ``a[S]``, ``V[S]`` and ``Y[S]`` = G_F V_S^+
    (energies x device x contacts) for each solved source S in (0, 1) = (left, right).
    """

    def __init__(self, E, matrix: DeviceMatrix, Vs, gs, sources=(0, 1)):
        self.couplings = matrix.couplings
        self.g, self.V = gs, Vs
        self.a = [1j * (g - dagger(g)) for g in gs]
        self.Y = matrix.solve(E, Vs, gs, sources)

    def coupled(self, s_from: int, s_to: int, sel=slice(None)) -> np.ndarray:
        """V_{s_to} Y_{s_from}: amplitude reaching lead s_to's contacts (contacts x contacts),
        on the energies ``sel`` of the batch."""
        return self.V[s_to] @ self.Y[s_from][sel][:, self.couplings[s_to].boundary]

    def amplitudes(self, s: int, sel=slice(None)) -> np.ndarray:
        """Psi_S on the extended region (device rows, then left and right contact rows),
        on the energies ``sel`` of the batch."""
        blocks = [self.Y[s][sel]]
        for t in (0, 1):
            z = self.g[t][sel] @ self.coupled(s, t, sel)
            if t == s:
                z = z + np.eye(z.shape[-1])
            blocks.append(z)
        return np.concatenate(blocks, axis=1)

    def transmission(self) -> np.ndarray:
        """Caroli transmission T(E) (Eq. 7) from whichever source was solved."""
        s = 1 if self.Y[1] is not None else 0
        X = self.coupled(s, 1 - s)
        return np.einsum("eik,eik->e", self.a[1 - s] @ X @ self.a[s], X.conj()).real

    def channels(self) -> np.ndarray:
        """Transmission eigenvalues (eigenchannels), largest first; they sum to T(E)."""
        s = 1 if self.Y[1] is not None else 0
        r = sqrtm_psd(self.a[1 - s]) @ self.coupled(s, 1 - s) @ sqrtm_psd(self.a[s])
        return np.sort(np.linalg.svd(r, compute_uv=False) ** 2, axis=-1)[..., ::-1]
