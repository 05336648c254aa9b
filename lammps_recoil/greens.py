"""Retarded Green's function of the device and its scattering states (paper Eqs. 5-9).

For a batch of energies E (and one transverse Bloch vector k of a periodic device) the
device matrix

    G_F(E)^-1 = E - H_F - Sigma_L(E) - Sigma_R(E),   Sigma_S = V_S^+ g_S V_S     (Eq. 6)

is factorized and only the columns that the physics needs are solved for: X_S = G_F[:, B_S],
one column per device atom bonded to lead S (the boundary B_S). Small devices (up to
SCHUR_MAX atoms, e.g. a filament between ideal electrodes) are solved densely for the
whole batch at once, on the boundary B = B_L + B_R alone: the interior I (atoms bonded to
no lead) enters G_F^-1 only through E - H_II, which one eigendecomposition per
configuration, H_II = U diag(lam) U^+, inverts at every energy, so that

    G_F[B, B] = S^-1,  S = E - H_BB - Sigma_L - Sigma_R - W diag(1/(E - lam)) W^+,
    G_F[I, B] = U diag(1/(E - lam)) W^+ G_F[B, B],     W = H_BI U

(a Schur complement: an LU of |B| x |B| per energy instead of N x N; a batch with an
energy within SCHUR_MIN_GAP of an interior eigenvalue takes the full LU). Larger devices
are solved by the recursive Green's function over slabs along z (:mod:`lammps_recoil.rgf`,
batched over energies, cost linear in the filament length); a sparse LU per energy that
keeps the atoms' z order (banded) remains as a choice (:data:`SOLVERS`). With the broadenings
Gamma_S = V_S^+ a_S V_S on B_S, a_S = i(g_S - g_S^+):

* transmission (Caroli, Eq. 7): T = tr[Gamma_t G_F[B_t, B_S] Gamma_S G_F[B_t, B_S]^+] from
  whichever lead S was solved, t the other one (either gives the same T when the device
  has no broadening eta);
* the spectral density injected from lead S (Eq. 9) on the *extended* region (device plus
  the lead contact atoms, needed for bonds between device and lead atoms), from the
  scattering states Psi_S = [G_F V_S^+ ; delta_{S,t} + g_t V_t G_F V_S^+ for each lead t]
  as Psi_S a_S Psi_S^+, written in factors of rank |B_S| (see
  :meth:`Scattering.density_factors`).

Every array with energy dependence carries the energy as its first axis.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from .rgf import BlockTridiagonal, add_energy_and_sigmas, matmul


@dataclass
class LeadContact:
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


def to_dense(H) -> np.ndarray:
    """A sparse or dense matrix as a dense array."""
    return H.toarray() if sp.issparse(H) else np.asarray(H)


def dagger(a: np.ndarray) -> np.ndarray:
    """Conjugate transpose of a matrix or of each matrix in a stack."""
    return np.conj(np.swapaxes(a, -1, -2))


def real_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Re sum_k a_k conj(b_k) over the last axis of complex arrays (each with that axis
    contiguous) in real arithmetic: in the float views the real and imaginary parts
    interleave, so it is one real dot product of twice the length (half the flops of the
    complex one, none spent on the imaginary part)."""
    return np.einsum("...k,...k->...", a.view(float), b.view(float))


def bond_density(i, j, X: np.ndarray, P: np.ndarray, phase=None, imag: bool = False):
    """Re(conj(phase_b) rho_ij) per bond b = (i, j) with rho_ij = sum_c X_ic conj(P_jc)
    (energies x bonds), and with ``imag`` also its imaginary part (a pair), from the rows
    of X and P gathered per bond: for small devices (larger ones:
    :class:`~lammps_recoil.rgf.SlabBonds`). ``phase``: Bloch phases per bond, or None at
    Gamma."""
    Pj = P.take(j, axis=1)
    if phase is not None and np.iscomplexobj(phase):          # off the Gamma point
        Pj *= phase[:, None]
    Xi = X.take(i, axis=1)
    re = real_dot(Xi, Pj)
    if not imag:
        return re
    Pj *= 1j                                      # Im z = Re(z conj(i)) = real_dot(., i P)
    return re, real_dot(Xi, Pj)


def self_energy(V: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Sigma_S = V_S^+ g_S V_S on the device atoms bonded to lead S (Eq. 6); g may be a
    stack over energies."""
    return dagger(V) @ g @ V


#: Devices of at most this many atoms are solved densely on their boundary atoms, batched
#: over energies (solver "schur"); larger ones by the recursive Green's function over slabs
#: along z, batched too (solver "rgf"; crossover measured by bench_large.py; at this size
#: the (I, B*B) matrix of the Schur complement stays below 40 MB).
SCHUR_MAX = 250
#: A dense batch with an energy closer than this (eV) to an eigenvalue of the interior
#: block H_II is solved by full LU (the Schur complement's 1/(E - lam) loses digits: a
#: relative error of 7e-10 at 1e-7 eV, 8e-12 at 1e-5, 1e-15 far away).
SCHUR_MIN_GAP = 1e-5
#: Solvers of :class:`DeviceMatrix`: "schur" (dense, on the boundary atoms), "lu" (sparse
#: LU per energy, banded in z order), "rgf" (:mod:`lammps_recoil.rgf`), "auto" (by size).
SOLVERS = ("auto", "schur", "lu", "rgf")


class BoundarySchur(NamedTuple):
    """What the dense path of :class:`DeviceMatrix` keeps per configuration: the boundary
    atoms B (sorted), the interior I, H_II = U diag(lam) U^+, ``Wh`` = W^+ (W = H_BI U),
    -H_BB, the positions of each lead's boundary in B, and -conj(W_ci) W_bi as a (B*B, I)
    matrix (-W diag(d) W^+ for all energies in one product)."""

    bnd: np.ndarray
    inner: np.ndarray
    lam: np.ndarray
    U: np.ndarray
    Wh: np.ndarray
    minus_hbb: np.ndarray
    pos: list
    minus_ww: np.ndarray


class SparsePattern(NamedTuple):
    """CSC structure of H + diagonal + boundary blocks (``indices``, ``indptr``), the
    values of -H in it (``h``), and where the diagonal and each lead's self-energy block
    go (``diag``, ``sigma``)."""

    indices: np.ndarray
    indptr: np.ndarray
    h: np.ndarray
    diag: np.ndarray
    sigma: list


class DeviceMatrix:
    """G_F(E)^-1 = (E + i eta) - H_F - Sigma_L(E) - Sigma_R(E) (Eq. 6) and its solution.

    ``H`` is sparse or dense (small devices). The sparsity pattern (H, the diagonal and
    the dense boundary blocks of the self-energies) is fixed per configuration; only the
    values change with energy.
    """

    def __init__(self, H, lead_contacts, eta: float = 0.0, solver: str = "auto"):
        if solver not in SOLVERS:
            raise ValueError(f"device solver must be one of {SOLVERS}, got {solver!r}")
        n = H.shape[0]
        self.lead_contacts, self.shape, self.eta = lead_contacts, (n, n), eta
        self.H = H
        self.solver = solver if solver != "auto" else "schur" if n <= SCHUR_MAX else "rgf"
        self._minus_h = self._pattern = self._schur = self._slabs = None

    @property
    def _dense(self) -> np.ndarray:
        """-H as a dense complex array (the Schur path)."""
        if self._minus_h is None:
            self._minus_h = -to_dense(self.H).astype(complex)
        return self._minus_h

    def slabs(self) -> BlockTridiagonal:
        """-H cut into slabs along z for the recursive Green's function (built once)."""
        if self._slabs is None:
            self._slabs = BlockTridiagonal(self.H, [c.boundary for c in self.lead_contacts])
        return self._slabs

    def _boundary_schur(self) -> BoundarySchur:
        """The dense path's :class:`BoundarySchur` (built once). At the Gamma point H is
        real, and so are U and W: the products with them run in real arithmetic
        (:func:`~lammps_recoil.rgf.matmul`)."""
        if self._schur is None:
            H = -self._dense
            if not H.imag.any():
                H = H.real
            off = np.ones(self.shape[0], dtype=bool)
            off[np.concatenate([c.boundary for c in self.lead_contacts])] = False
            bnd, inner = np.flatnonzero(~off), np.flatnonzero(off)
            lam, U = np.linalg.eigh(H[np.ix_(inner, inner)])
            W = H[np.ix_(bnd, inner)] @ U
            ww = np.einsum("ci,bi->bci", W.conj(), W).reshape(len(bnd) ** 2, len(inner))
            self._schur = BoundarySchur(
                bnd, inner, lam, U, dagger(W), self._dense[np.ix_(bnd, bnd)],
                [np.searchsorted(bnd, c.boundary) for c in self.lead_contacts], -ww)
        return self._schur

    def _sparse_pattern(self) -> SparsePattern:
        """The :class:`SparsePattern` of the sparse LU path (built once)."""
        if self._pattern is None:
            n = self.shape[0]
            H = sp.coo_matrix(self.H)
            blocks = [(np.repeat(c.boundary, len(c.boundary)),
                       np.tile(c.boundary, len(c.boundary))) for c in self.lead_contacts]
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
            self._pattern = SparsePattern(indices, indptr, h, where[H.nnz:H.nnz + n], sigma)
        return self._pattern

    def __call__(self, E: float, sigmas) -> sp.csc_matrix:
        """The sparse matrix at one energy; ``sigmas`` are the leads' self-energies on
        their boundary atoms (Sigma_S = V_S^+ g_S V_S)."""
        indices, indptr, h, diag, where = self._sparse_pattern()
        data = h.copy()
        data[diag] += complex(E, self.eta)
        for pos, sigma in zip(where, sigmas):
            np.add.at(data, pos, -sigma.ravel())
        return sp.csc_matrix((data, indices, indptr), shape=self.shape)

    def solve(self, E: np.ndarray, sigmas, columns: np.ndarray, rows: int = 0) -> np.ndarray:
        """Columns ``columns`` of G_F(E) (len(E) x device x len(columns), repeats allowed);
        ``sigmas`` are the leads' self-energies stacked over the energies E. The solver is
        ``self.solver``; the dense one solves on the boundary atoms (columns off it take the
        full LU). With ``rows`` larger than the device, the array returned has that many
        rows, the device's first: the rows after them are not set (the caller's to fill)."""
        n, ne = self.shape[0], len(E)
        z = np.asarray(E) + 1j * self.eta
        out = np.empty((ne, max(rows, n), len(columns)), dtype=complex)
        if self.solver == "rgf":
            return self.slabs().solve(z, sigmas, columns, out)
        rhs = np.zeros((n, len(columns)), dtype=complex)
        rhs[columns, np.arange(len(columns))] = 1.0
        if self.solver == "lu":
            for m, e in enumerate(E):
                out[m, :n] = splu(self(e, [s[m] for s in sigmas]),
                                  permc_spec="NATURAL").solve(rhs)
            return out
        bnd, inner, lam, U, Wh, minus_hbb, pos, minus_ww = self._boundary_schur()
        gap = lam[:, None] - z                        # interior x energies
        if (gap.size and np.abs(gap).min() < SCHUR_MIN_GAP
                or np.count_nonzero(rhs[bnd]) < len(columns)):   # or a column off B
            M = np.empty((ne, n, n), dtype=complex)
            M[:] = self._dense
            add_energy_and_sigmas(M, z, [c.boundary for c in self.lead_contacts], sigmas)
            out[:, :n] = np.linalg.solve(M, np.broadcast_to(rhs, (ne,) + rhs.shape))
            return out
        d, nb, ni, k = -1.0 / gap, len(bnd), len(inner), len(columns)   # 1 / (z - lam)
        S = matmul(minus_ww, d).T.reshape(ne, nb, nb)
        S += minus_hbb
        add_energy_and_sigmas(S, z, pos, sigmas)
        GB = np.linalg.solve(S, np.broadcast_to(rhs[bnd], (ne, nb, k)))
        out[:, bnd] = GB
        # interior rows, all energies in two products: (I, B) x (B, energies * columns)
        Y = matmul(Wh, GB.transpose(1, 0, 2).reshape(nb, ne * k)).reshape(ni, ne, k)
        Y *= d[:, :, None]
        out[:, inner] = matmul(U, Y.reshape(ni, ne * k)).reshape(ni, ne, k).transpose(1, 0, 2)
        return out


class Scattering:
    """Solution of the device problem on a batch of energies at one Bloch vector.

    ``matrix`` is the :class:`DeviceMatrix`, ``Vs[S]`` the device-lead matrices V_S(k)
    (contacts x boundary) and ``gs[S]`` the lead Green's functions on the contact atoms
    (energies x contacts x contacts), S in (0, 1) = (left, right). Attributes: ``gamma[S]`` =
    i(Sigma_S - Sigma_S^+) = V_S^+ a_S V_S on the boundary atoms B_S (the broadening
    Gamma_S of Eq. 7, with a_S = i(g_S - g_S^+) on the contacts) and, for each solved
    source S, ``X[S]`` = G_F[:, B_S] (energies x device x boundary), the only columns of
    G_F the physics needs.
    """

    def __init__(self, E, matrix: DeviceMatrix, Vs, gs, sources=(0, 1)):
        self.lead_contacts = matrix.lead_contacts
        self.g, self.V = gs, Vs
        sigmas = [self_energy(V, g) for V, g in zip(Vs, gs)]
        self.gamma = [1j * (s - dagger(s)) for s in sigmas]
        bound = [self.lead_contacts[s].boundary for s in sources]
        # the columns with room for the lead contacts' rows below the device's
        n = matrix.shape[0]
        self.contact_rows = np.cumsum([n] + [len(c.contacts) for c in self.lead_contacts])
        Q = matrix.solve(E, sigmas, np.concatenate(bound), self.contact_rows[-1])
        self.Q, self.X, start = [None, None], [None, None], 0
        for s, b in zip(sources, bound):
            self.Q[s] = Q[..., start:start + len(b)]
            self.X[s], start = self.Q[s][:, :n], start + len(b)

    def _block(self, s: int, t: int) -> np.ndarray:
        """G_F[B_t, B_S]."""
        return self.X[s].take(self.lead_contacts[t].boundary, axis=1)

    def density_factors(self, s: int):
        """Factors of the spectral density injected from lead S (Eq. 9 times 2 pi) on the
        extended region (device rows, then the left and right contact rows):
        rho_ij = sum_b X_ib conj(P_jb) for device atoms i, and the diagonal.

        Scattering states from S are Psi = [G_F V_S^+ ; delta_{tS} + g_t V_t G_F V_S^+] on
        the device and on each lead t's contacts. With Q = [X ; g_t V_t X[B_t]] (rank
        |B_S|), Psi a_S Psi^+ = Q Gamma_S Q^+ plus, on lead S's contacts, the incident
        terms a_S + Q (a_S V_S)^+ + h.c. Returns X (energies x device x B_S), P =
        Q Gamma_S + [0; a_S V_S on S's contacts] (energies x extended x B_S) and the real
        diagonal (energies x extended).
        """
        X, Q, gamma, ends = self.X[s], self.Q[s], self.gamma[s], self.contact_rows
        for t in (0, 1):                               # Q's contact rows, in place
            Q[:, ends[t]:ends[t + 1]] = self.g[t] @ (self.V[t] @ self._block(s, t))
        P = Q @ gamma
        rows = slice(ends[s], ends[s + 1])
        a = 1j * (self.g[s] - dagger(self.g[s]))
        aV = a @ self.V[s]
        diag = real_dot(Q, P)
        diag[:, rows] += 2.0 * real_dot(Q[:, rows], aV) + np.diagonal(a, axis1=1, axis2=2).real
        P[:, rows] += aV
        return X, P, diag

    def transmission(self) -> np.ndarray:
        """Caroli transmission T(E) = tr[Gamma_t G Gamma_S G^+] (Eq. 7) from whichever
        source S was solved (t the other lead)."""
        s = 1 if self.X[1] is not None else 0
        G = self._block(s, 1 - s)
        ne = len(G)
        return real_dot((self.gamma[1 - s] @ G @ self.gamma[s]).reshape(ne, -1), G.reshape(ne, -1))

    def channels(self, rows=slice(None)) -> np.ndarray:
        """Transmission eigenvalues (eigenchannels), largest first, at the energies
        ``rows`` of the batch (all by default); they sum to T(E)."""
        s = 1 if self.X[1] is not None else 0
        r = (sqrtm_psd(self.gamma[1 - s][rows]) @ self._block(s, 1 - s)[rows]
             @ sqrtm_psd(self.gamma[s][rows]))
        return np.sort(np.linalg.svd(r, compute_uv=False) ** 2, axis=-1)[..., ::-1]
