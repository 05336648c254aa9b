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
from scipy.linalg import get_lapack_funcs
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


def self_energy(V, g: np.ndarray) -> np.ndarray:
    """Sigma_S = V_S^+ g_S V_S on the device atoms bonded to lead S (Eq. 6); g may be a
    stack over energies, V_S a sparse matrix (then g a stack)."""
    return hopping(V, hopped(g, V), adjoint=True)


def hopping(V, Y: np.ndarray, adjoint: bool = False) -> np.ndarray:
    """V @ Y (V^+ @ Y with ``adjoint``) for the device-lead hoppings V, dense or sparse
    (then Y a stack over energies)."""
    A = V.conj().T if adjoint else V
    return sparse_product(A, Y) if sp.issparse(A) else A @ Y


def hopped(Y: np.ndarray, V) -> np.ndarray:
    """Y @ V for the device-lead hoppings V, dense or sparse (then Y a stack:
    Y V = (V^T Y^T)^T)."""
    if sp.issparse(V):
        return np.swapaxes(sparse_product(V.T, np.swapaxes(Y, 1, 2)), 1, 2)
    return Y @ V


def sparse_product(A, Y: np.ndarray) -> np.ndarray:
    """A @ Y[e] for a sparse matrix A and every matrix of a stack Y (energies x q x r), as
    one sparse product (the device-lead hoppings V_S: a few bonds per boundary atom)."""
    ne, q, r = Y.shape
    out = A @ np.moveaxis(Y, 0, 1).reshape(q, ne * r)
    return np.moveaxis(out.reshape(A.shape[0], ne, r), 1, 0)


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

    @staticmethod
    def _distinct(columns, weights, ne: int):
        """With weights, distinct columns: a boundary atom of both leads is one column with
        the weights of its rows summed."""
        if weights is None or len(np.unique(columns)) == len(columns):
            return columns, weights
        columns, at = np.unique(columns, return_inverse=True)
        summed = np.zeros((ne, len(columns), weights.shape[2]), dtype=complex)
        np.add.at(summed, (slice(None), at), weights)
        return columns, summed

    def __call__(self, E: float, sigmas) -> sp.csc_matrix:
        """The sparse matrix at one energy; ``sigmas`` are the leads' self-energies on
        their boundary atoms (Sigma_S = V_S^+ g_S V_S)."""
        indices, indptr, h, diag, where = self._sparse_pattern()
        data = h.copy()
        data[diag] += complex(E, self.eta)
        for pos, sigma in zip(where, sigmas):
            np.add.at(data, pos, -sigma.ravel())
        return sp.csc_matrix((data, indices, indptr), shape=self.shape)

    def solve(self, E: np.ndarray, sigmas, columns: np.ndarray, rows: int = 0,
              weights=None, only_rows=None, single: bool = False) -> np.ndarray:
        """Columns ``columns`` of G_F(E) (len(E) x device x len(columns), repeats allowed),
        or with ``weights`` (len(E) x columns x q) the products G_F[:, columns] weights
        (len(E) x device x q); ``sigmas`` are the leads' self-energies stacked over the
        energies E. The solver is ``self.solver``; the dense
        one solves on the boundary atoms (columns off it take the full LU). With ``rows``
        larger than the device, the array returned has that many rows, the device's first:
        the rows after them are not set (the caller's to fill). ``only_rows``: those rows
        of G_F alone (len(E) x len(only_rows) x ...; the recursive solver then carries the
        columns only as far as their slabs). ``single``: the recursive solver works in
        single precision (:meth:`~lammps_recoil.rgf.BlockTridiagonal.solve`); the others
        ignore it."""
        if only_rows is not None:
            if rows:
                raise ValueError("only_rows and rows exclude each other")
            if self.solver == "rgf":
                columns, weights = self._distinct(columns, weights, len(E))
                return self.slabs().solve(np.asarray(E) + 1j * self.eta, sigmas, columns,
                                          weights=weights, only_rows=only_rows,
                                          single=single)
            full = self.solve(E, sigmas, columns, weights=weights)
            return full[:, np.asarray(only_rows, dtype=int)]
        n, ne = self.shape[0], len(E)
        z = np.asarray(E) + 1j * self.eta
        q = len(columns) if weights is None else weights.shape[2]
        out = np.empty((ne, max(rows, n), q), dtype=complex)
        columns, weights = self._distinct(columns, weights, ne)
        if self.solver == "rgf":
            return self.slabs().solve(z, sigmas, columns, out, weights, single=single)
        if weights is None:              # unit columns, the same at every energy
            rhs = np.zeros((n, q), dtype=complex)
            rhs[columns, np.arange(q)] = 1.0
            stack = lambda r: np.broadcast_to(r, (ne,) + r.shape)
        else:
            rhs = np.zeros((ne, n, q), dtype=complex)
            rhs[:, columns] = weights
            stack = lambda r: r
        if self.solver == "lu":
            for m, e in enumerate(E):
                out[m, :n] = splu(self(e, [s[m] for s in sigmas]),
                                  permc_spec="NATURAL").solve(stack(rhs)[m])
            return out
        bnd, inner, lam, U, Wh, minus_hbb, pos, minus_ww = self._boundary_schur()
        gap = lam[:, None] - z                        # interior x energies
        if (gap.size and np.abs(gap).min() < SCHUR_MIN_GAP
                or not len(bnd)
                or np.any(bnd[np.minimum(np.searchsorted(bnd, columns), len(bnd) - 1)]
                          != columns)):                 # or a column off B (bnd sorted)
            M = np.empty((ne, n, n), dtype=complex)
            M[:] = self._dense
            add_energy_and_sigmas(M, z, [c.boundary for c in self.lead_contacts], sigmas)
            out[:, :n] = np.linalg.solve(M, stack(rhs))
            return out
        d, nb, ni = -1.0 / gap, len(bnd), len(inner)   # 1 / (z - lam)
        S = matmul(minus_ww, d).T.reshape(ne, nb, nb)
        S += minus_hbb
        add_energy_and_sigmas(S, z, pos, sigmas)
        GB = np.linalg.solve(S, stack(rhs[..., bnd, :]))
        out[:, bnd] = GB
        # interior rows, all energies in two products: (I, B) x (B, energies * columns)
        Y = matmul(Wh, GB.transpose(1, 0, 2).reshape(nb, ne * q)).reshape(ni, ne, q)
        Y *= d[:, :, None]
        out[:, inner] = matmul(U, Y.reshape(ni, ne * q)).reshape(ni, ne, q).transpose(1, 0, 2)
        return out


#: Pivots of the Cholesky factorization of a lead's spectral function a_S = i(g_S - g_S^+)
#: on its contact atoms below this fraction of its largest diagonal element end it: what
#: is left belongs to closed channels (zero but for round-off). The scattering states leave
#: it out, a remainder whose elements are of the order of this fraction of a_S's largest
#: diagonal element (a channel is dropped only if its eigenvalue is below about n_contacts
#: times that).
CHANNEL_RTOL = 1e-12


def spectral_factor(g: np.ndarray) -> np.ndarray:
    """w with w w^+ = a = i(g - g^+) for a stack of lead Green's functions g on contact
    atoms (energies x contacts x contacts), from LAPACK's Cholesky factorization with
    complete pivoting (zpstrf, stopped at pivots below CHANNEL_RTOL of a's largest
    diagonal element): the first rank(a) columns, the rest zero. Its nonzero columns span
    the open channels that lead S injects at each energy (their number is the rank of
    Gamma_S); any factor serves, and the pivoted Cholesky costs a seventh of an
    eigendecomposition."""
    a = 1j * (g - dagger(g))
    bad = ~np.isfinite(a).all(axis=(1, 2))
    if bad.any():
        raise FloatingPointError(f"a lead's Green's function is not finite at "
                                 f"{int(bad.sum())} of {len(a)} energies of the batch")
    ne, n = a.shape[:2]
    w = np.zeros_like(a)
    for e in range(ne):
        top = float(np.diagonal(a[e]).real.max(initial=0.0))
        if top <= 0.0:
            continue                                  # no open channel
        c, piv, rank, info = _pstrf(a[e], lower=1, tol=CHANNEL_RTOL * top)
        if info < 0:
            raise ValueError(f"zpstrf: illegal argument {-info}")
        w[e, piv - 1, :rank] = np.tril(c[:, :rank])
    return w


def open_columns(w: np.ndarray) -> np.ndarray:
    """A stack of :func:`spectral_factor` cut to the batch's largest number of open
    channels (columns past it are zero at every energy)."""
    return w[..., :int(np.any(w != 0.0, axis=(0, 1)).sum())]


_pstrf, = get_lapack_funcs(("pstrf",), (np.zeros(1, complex),))


class Scattering:
    """Solution of the device problem on a batch of energies at one Bloch vector.

    ``matrix`` is the :class:`DeviceMatrix`, ``Vs[S]`` the device-lead matrices V_S(k)
    (contacts x boundary; dense, or sparse for large devices) and ``gs[S]`` the lead Green's functions on the contact atoms
    (energies x contacts x contacts), S in (0, 1) = (left, right). Attributes: ``gamma[S]`` =
    i(Sigma_S - Sigma_S^+) = V_S^+ a_S V_S on the boundary atoms B_S (the broadening
    Gamma_S of Eq. 7, with a_S = i(g_S - g_S^+) on the contacts) and, for each solved
    source S, ``X[S]`` = G_F[:, B_S] (energies x device x boundary), the only columns of
    G_F the physics needs.

    With ``spectral`` (per lead, a factor w_S of a_S = w_S w_S^+ on its contacts over the
    energies, :func:`spectral_factor`, its columns cut to the open channels) the solve is
    instead for the scattering states themselves: ``X[S]`` = G_F V_S^+ w_S Z_S, one column
    per open channel of lead S (at most |B_S| of them: Z_S, orthonormal columns, drops the
    combinations of channels that do not reach the device), and the density factors of
    Eq. 9 need no product with Gamma_S (:meth:`density_factors`). ``single``: the
    recursive solver in single precision (:meth:`DeviceMatrix.solve`).
    """

    def __init__(self, E, matrix: DeviceMatrix, Vs, gs, sources=(0, 1), spectral=None,
                 single: bool = False):
        self.lead_contacts = matrix.lead_contacts
        self.g, self.V = gs, Vs
        sigmas = [self_energy(V, g) for V, g in zip(Vs, gs)]
        self.gamma = [1j * (s - dagger(s)) for s in sigmas]
        bound = [self.lead_contacts[s].boundary for s in sources]
        # the columns with room for the lead contacts' rows below the device's
        n = matrix.shape[0]
        self.contact_rows = np.cumsum([n] + [len(c.contacts) for c in self.lead_contacts])
        self.states = spectral is not None
        weights, widths = None, [len(b) for b in bound]
        self.incident, self.hidden = [None, None], [None, None]
        if self.states:
            Ls = [self._channels(s, spectral[s]) for s in sources]
            widths = [L.shape[2] for L in Ls]
            weights = np.zeros((len(E), sum(map(len, bound)), sum(widths)), dtype=complex)
            r = c = 0
            for L, b, q in zip(Ls, bound, widths):
                weights[:, r:r + len(b), c:c + q] = L
                r, c = r + len(b), c + q
        Q = matrix.solve(E, sigmas, np.concatenate(bound), self.contact_rows[-1], weights,
                         single=single)
        self.Q, self.X, start = [None, None], [None, None], 0
        for s, q in zip(sources, widths):
            self.Q[s] = Q[..., start:start + q]
            self.X[s], start = self.Q[s][:, :n], start + q

    def _channels(self, s: int, w: np.ndarray) -> np.ndarray:
        """V_S^+ w_S Z_S (energies x B_S x q), the sources of the scattering states from
        lead S; keeps w_S Z_S (the incident waves on S's contacts) and, where Z_S drops
        channels, their weight on each contact (``hidden``: rows of w_S Z_perp, which
        reach the device through no bond and add to the contacts' density alone)."""
        L = hopping(self.V[s], w, adjoint=True)
        if w.shape[2] > L.shape[1] > 0:
            # more channels than boundary atoms: (V^+ w)^+ = Z R, V^+ w Z = R^+, and
            # V^+ w Z_perp = 0 for the channels' other combinations
            Z, R = np.linalg.qr(dagger(L))
            L, wz = dagger(R), w @ Z
            self.hidden[s] = real_dot(w, w) - real_dot(wz, wz)
            w = wz
        self.incident[s] = w
        return L

    def _block(self, s: int, t: int) -> np.ndarray:
        """G_F[B_t, B_S] (its product with V_S^+ w_S Z_S for scattering states)."""
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

        For scattering states (``spectral``), Psi a_S Psi^+ = (Psi w_S)(Psi w_S)^+ with
        Psi w_S Z_S = [X ; g_t V_t X[B_t] + delta_{tS} w_S Z_S]: then P is that array, X
        its device rows, and the diagonal its rows' norms (plus the channels Z_S drops, on
        S's contacts).
        """
        X, Q, ends = self.X[s], self.Q[s], self.contact_rows
        for t in (0, 1):                               # Q's contact rows, in place
            Q[:, ends[t]:ends[t + 1]] = self.g[t] @ hopping(self.V[t], self._block(s, t))
        rows = slice(ends[s], ends[s + 1])
        if self.states:
            Q[:, rows] += self.incident[s]
            diag = real_dot(Q, Q)
            if self.hidden[s] is not None:
                diag[:, rows] += self.hidden[s]
            return X, Q, diag
        P = Q @ self.gamma[s]
        a = 1j * (self.g[s] - dagger(self.g[s]))
        aV = np.ascontiguousarray(hopped(a, self.V[s]))
        diag = real_dot(Q, P)
        diag[:, rows] += 2.0 * real_dot(Q[:, rows], aV) + np.diagonal(a, axis1=1, axis2=2).real
        P[:, rows] += aV
        return X, P, diag

    def transmission(self) -> np.ndarray:
        """Caroli transmission T(E) = tr[Gamma_t G Gamma_S G^+] (Eq. 7) from whichever
        source S was solved (t the other lead); for scattering states Y = G V_S^+ w_S Z_S,
        tr[Gamma_t Y Y^+]."""
        s = 1 if self.X[1] is not None else 0
        G = self._block(s, 1 - s)
        ne = len(G)
        GG = self.gamma[1 - s] @ G if self.states else self.gamma[1 - s] @ G @ self.gamma[s]
        return real_dot(GG.reshape(ne, -1), G.reshape(ne, -1))

    def channels(self, rows=slice(None)) -> np.ndarray:
        """Transmission eigenvalues (eigenchannels), largest first, at the energies
        ``rows`` of the batch (all by default); they sum to T(E). (The singular values of
        Gamma_t^1/2 G Gamma_S^1/2, or of Gamma_t^1/2 Y for scattering states Y: the same,
        as Y Y^+ = G Gamma_S G^+; min(|B_L|, |B_R|) of them.)"""
        s = 1 if self.X[1] is not None else 0
        r = sqrtm_psd(self.gamma[1 - s][rows]) @ self._block(s, 1 - s)[rows]
        if not self.states:
            r = r @ sqrtm_psd(self.gamma[s][rows])
        sv = np.linalg.svd(r, compute_uv=False) ** 2
        count = min(len(c.boundary) for c in self.lead_contacts)
        sv = np.concatenate([sv, np.zeros(sv.shape[:-1] + (max(0, count - sv.shape[-1]),))],
                            axis=-1)[..., :count]
        return np.sort(sv, axis=-1)[..., ::-1]
