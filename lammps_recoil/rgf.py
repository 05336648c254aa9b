"""Recursive Green's function of the device, slab by slab along z (paper Eq. 6).

The device atoms, ordered along z, are cut into slabs 0 .. m-1 of consecutive atoms such
that the Hamiltonian couples only neighbouring slabs, with the atoms bonded to the left lead
(B_L) in slab 0 and those bonded to the right lead (B_R) in slab m-1
(:func:`slab_partition`). The device matrix A = G_F^-1 = z - H_F - Sigma_L - Sigma_R is then
block tridiagonal: A_kk = z - H_kk (- Sigma_S on the lead's slab), A_{k,k+-1} = -H_{k,k+-1}.
The Green's functions of the slabs 0..k alone (left-connected) and k..m-1 alone
(right-connected),

.. math::

    g^L_0 = A_{00}^{-1},\\quad g^L_k = (A_{kk} - H_{k,k-1} g^L_{k-1} H_{k-1,k})^{-1},\\qquad
    g^R_{m-1} = A_{m-1,m-1}^{-1},\\quad g^R_k = (A_{kk} - H_{k,k+1} g^R_{k+1} H_{k+1,k})^{-1},

give the columns of G_F in any slab j:

.. math::

    G_{jj} = (A_{jj} - H_{j,j-1} g^L_{j-1} H_{j-1,j} - H_{j,j+1} g^R_{j+1} H_{j+1,j})^{-1},

    G_{kj} = g^L_k H_{k,k+1} G_{k+1,j} \\ (k < j),\\qquad
    G_{kj} = g^R_k H_{k,k-1} G_{k-1,j} \\ (k > j).

For the columns at B_R (in slab m-1) one left-connected sweep suffices, for B_L one
right-connected sweep; columns in other slabs take both sweeps up to their slab. Of each
g^L_k only the columns at the atoms bonded to slab k+1 are kept (from LAPACK's LU of the
block, :func:`inverse_columns`), and every step runs on all energies of a batch (one LU
per energy, matrix products over the whole stack). Cost per energy: about sum_k s_k^3 for
slab sizes s_k, linear in the device length; memory: energies x sum_k s_k x (atoms at the
interface).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import get_lapack_funcs


def matmul(m: np.ndarray, a: np.ndarray) -> np.ndarray:
    """m @ a for a complex matrix a; a real m multiplies a's real and imaginary parts in one
    real product (half the flops of the complex one)."""
    if np.iscomplexobj(m):
        return m @ a
    return _as_complex(m @ _as_real(a))


def add_energy_and_sigmas(M, z, blocks, sigmas) -> None:
    """M (a stack over the energies z of -H on some atoms) += z - Sigma_S, each Sigma_S on
    the positions ``blocks[S]`` of its lead's boundary atoms among them (a slice where they
    are consecutive)."""
    m = M.shape[1]
    flat = M.reshape(len(z), m * m)                  # a view: M is contiguous
    flat[:, ::m + 1] += z[:, None]
    for p, sigma in zip(blocks, sigmas):
        p = as_slice(p)
        if isinstance(p, slice):
            M[:, p, p] -= sigma
        else:
            flat[:, (p[:, None] * m + p).ravel()] -= sigma.reshape(len(z), len(p) ** 2)


def as_slice(p):
    """Positions ``p`` as a slice if they are consecutive and ascending (else unchanged)."""
    p = np.asarray(p)
    if len(p) and p[-1] - p[0] == len(p) - 1 and np.all(np.diff(p) == 1):
        return slice(int(p[0]), int(p[-1]) + 1)
    return p


def inverse_columns(M: np.ndarray, cols, pivots=None) -> np.ndarray:
    """Columns ``cols`` of M[e]^-1 for every matrix of a contiguous complex stack M (which
    is overwritten): LAPACK's LU (getrf) of each matrix, then the whole inverse (getri,
    2/3 s^3 operations) when more than 2/3 of the s columns are wanted, else triangular
    solves for those columns (getrs, s^2 per column). C-ordered M[e] is the Fortran matrix
    M[e]^T: its LU is done in place, and M^T's inverse seen in C order is M's.
    ``pivots`` (an array over the energies): lowered to each LU's :func:`pivot_ratio`; an
    exactly singular matrix then sets it to 0 and its columns to zero (the caller solves
    that energy again) instead of raising."""
    ne, s = M.shape[:2]
    rows = np.arange(s)[cols]
    cols, k = as_slice(rows), len(rows)
    whole = 3 * k > 2 * s
    _, _getri, _getrs = _LAPACK[M.dtype.type]
    if not whole:
        rhs = np.zeros((s, k), dtype=M.dtype, order="F")
        rhs[rows, np.arange(k)] = 1.0
        out = (np.empty if pivots is None else np.zeros)((ne, s, k), dtype=M.dtype)
    for e, lu, piv in _factorizations(M, pivots):
        if whole:
            _getri(lu, piv, overwrite_lu=True)
        else:
            out[e], _ = _getrs(lu, piv, rhs, trans=1)
    return M[:, :, cols] if whole else out


def solve_blocks(A: np.ndarray, R: np.ndarray, pivots=None) -> np.ndarray:
    """A[e]^-1 R[e] for every energy of the stacks; with ``pivots`` (an array over the
    energies) by LAPACK's LU per energy (A overwritten), each lowering its energy's entry
    to the LU's :func:`pivot_ratio` (0 and zero columns where A[e] is exactly singular,
    as :func:`inverse_columns`)."""
    if pivots is None:
        return np.linalg.solve(A, R)
    _getrs = _LAPACK[A.dtype.type][2]
    out = np.zeros(R.shape, dtype=A.dtype)
    for e, lu, piv in _factorizations(A, pivots):
        out[e], _ = _getrs(lu, piv, R[e], trans=1)
    return out


def _factorizations(M: np.ndarray, pivots=None):
    """(e, lu, piv) for each matrix M[e] of a contiguous stack, factorized in place by
    LAPACK's getrf (of the Fortran matrix M[e]^T that C-ordered M[e] is). An exactly
    singular matrix raises, or with ``pivots`` is zeroed and skipped; ``pivots`` is
    lowered to each LU's :func:`pivot_ratio` (read before the caller overwrites the LU)
    once all are done."""
    _getrf = _LAPACK[M.dtype.type][0]
    if pivots is not None:
        size, diagonal = element_size(M), np.zeros(M.shape[:2], dtype=M.dtype)
    for e in range(len(M)):
        lu, piv, info = _getrf(M[e].T, overwrite_a=True)
        if info > 0:
            if pivots is None:
                raise np.linalg.LinAlgError("Singular matrix")
            M[e] = 0.0
            continue
        if pivots is not None:
            diagonal[e] = lu.diagonal()
        yield e, lu, piv
    if pivots is not None:
        np.minimum(pivots, pivot_ratio(diagonal, size), out=pivots)


def element_size(M: np.ndarray) -> np.ndarray:
    """The largest real or imaginary part of an element of each matrix of the stack M (the
    size that :func:`pivot_ratio` measures pivots against)."""
    return np.abs(M.reshape(len(M), -1).view(M.real.dtype)).max(axis=1)


def pivot_ratio(diagonal: np.ndarray, size: np.ndarray) -> np.ndarray:
    """For each energy, the smallest pivot of its matrix's LU factorization (``diagonal``:
    the diagonals of U, energies x s; zeros where the matrix was exactly singular) over
    the matrix's :func:`element_size`. A heuristic of its distance from singularity over
    its size (1 / its condition number, up to the LU's growth): partial pivoting is not
    rank-revealing, and a nearly singular matrix may show no small pivot. A pivot or size
    that is not finite (an overflow in single precision) gives 0."""
    smallest = np.abs(diagonal).min(axis=1, initial=np.inf)
    ratio = np.divide(smallest, size, out=np.zeros(len(size)), where=size > 0)
    ratio[np.isnan(ratio)] = 0.0
    return ratio


#: LAPACK's LU, inverse and solve in double (z) and single (c) complex precision.
_LAPACK = {t: get_lapack_funcs(("getrf", "getri", "getrs"), (np.zeros(1, t),))
           for t in (np.complex128, np.complex64)}


def _as_complex(r: np.ndarray) -> np.ndarray:
    """A float array whose last axis holds real and imaginary parts side by side, seen as
    complex of the same precision."""
    return r.view(np.complex64 if r.dtype == np.float32 else np.complex128)


def _as_real(a: np.ndarray) -> np.ndarray:
    """The float view of a complex array (contiguous along its last axis)."""
    a = np.ascontiguousarray(a)
    return a.view(np.float32 if a.dtype == np.complex64 else np.float64)


def left_multiply(m, a: np.ndarray) -> np.ndarray:
    """m @ a[e] for every energy e of a complex stack a (energies x q x r). A real m
    multiplies the float view of a, whose rows hold the real and imaginary parts side by
    side: one real product per energy (half the flops of the complex one) and no copy.
    A sparse m (a hopping block between slabs) multiplies all energies at once, the stack
    laid out as one q x (energies r) matrix."""
    if sp.issparse(m):
        ne, q, _ = a.shape
        real = not np.iscomplexobj(m.data)
        b = a.transpose(1, 0, 2)
        b = _as_real(b) if real else np.ascontiguousarray(b)
        out = (m @ b.reshape(q, -1)).reshape(m.shape[0], ne, b.shape[2]).transpose(1, 0, 2)
        out = np.ascontiguousarray(out)
        return _as_complex(out) if real else out
    if np.iscomplexobj(m):
        return m @ a
    return _as_complex(np.matmul(m, _as_real(a)))


def sandwich(m: np.ndarray, a: np.ndarray, mh: np.ndarray) -> np.ndarray:
    """m @ a[e] @ mh for every energy of a stack a (each factor as one product)."""
    left = left_multiply(m, a)                                   # energies x p x q
    return left_multiply(mh.T, left.transpose(0, 2, 1)).transpose(0, 2, 1)


#: Consecutive slabs are merged up to at least this many atoms: below it the numpy calls
#: per slab, not the flops, set the cost (thin filaments have 2-9 atoms per slab).
SLAB_MIN = 16


def slab_partition(n: int, rows, cols, first, last, min_size: int | None = None) -> np.ndarray:
    """Slab bounds (slab k = atoms bounds[k]:bounds[k+1]) of n atoms in z order, bonded by
    the pairs (rows, cols): slab 0 ends after the last atom of ``first`` (B_L), each next
    slab holds every atom bonded to the previous one that lies beyond it (at least one
    atom), and the slab that would first reach an atom of ``last`` (B_R) runs to the end.
    So the bonds join only neighbouring slabs, B_L lies in slab 0 and B_R in slab m-1
    (one slab if B_L and B_R overlap in z order). Then consecutive slabs are merged until
    each holds at least ``min_size`` (default SLAB_MIN) atoms (a short remainder joins the
    last slab)."""
    min_size = SLAB_MIN if min_size is None else min_size
    reach = np.arange(n)
    np.maximum.at(reach, np.asarray(rows, dtype=int), np.asarray(cols, dtype=int))
    reach = np.maximum.accumulate(reach)            # farthest atom bonded to atoms 0..i
    lo_last = int(np.min(last)) if len(last) else n
    end = int(np.max(first)) + 1 if len(first) else 1
    if end > lo_last:
        return np.array([0, n])
    bounds = [0]
    while end < n:
        bounds.append(end)
        nxt = max(int(reach[end - 1]) + 1, end + 1)
        end = n if nxt > lo_last else nxt
    bounds.append(n)
    merged = [0]
    for e in bounds[1:-1]:
        if e - merged[-1] >= min_size and n - e >= min_size:
            merged.append(e)
    return np.array(merged + [n])


@dataclass
class Interface:
    """Bonds between slab k and slab k+1: the atoms of slab k bonded to slab k+1 (``exit``,
    positions in slab k), those of slab k+1 bonded to slab k (``entry``, positions in slab
    k+1), and the hoppings H_{k,k+1}[exit, entry] (``up``) and H_{k+1,k}[entry, exit]
    (``down``), sparse matrices where at most SPARSE_HOPPING of their elements are bonds."""

    exit: np.ndarray
    entry: np.ndarray
    up: np.ndarray | sp.csr_matrix
    down: np.ndarray | sp.csr_matrix


#: An interface's hopping blocks are kept sparse when they have at least SPARSE_MIN
#: elements, at most a fraction SPARSE_HOPPING of them bonds (an atom of a (111) layer
#: bonds to three of the next layer's: 2-3% of the 88-131-atom blocks between whole layers
#: of the 963-atom device in docs/large.md). Smaller blocks stay dense: there the sparse
#: product saves less than the copies that lay the stack out for it.
SPARSE_HOPPING = 0.25
SPARSE_MIN = 64 * 64
#: In single precision, an energy at which an LU's smallest pivot falls below this fraction
#: of its block's largest element (pivot_ratio) is solved again in double
#: (BlockTridiagonal.solve): the single-precision error there is about 6e-8 / SINGLE_PIVOT
#: relative.
SINGLE_PIVOT = 1e-3


class BlockTridiagonal:
    """-H of one configuration cut into slabs (:func:`slab_partition`), solved by the
    recursive Green's function (module docstring) at any batch of energies.

    ``H`` is sparse or dense, Hermitian; ``boundaries`` are the device atoms bonded to the
    left and the right lead (the self-energies' supports).
    """

    def __init__(self, H, boundaries):
        H = sp.csr_matrix(H)
        if not H.has_canonical_format:
            H = H.copy()
            H.sum_duplicates()                          # one stored element per pair
        if H.dtype.kind == "c" and not H.data.imag.any():
            H = H.real                                  # the Gamma point: real arithmetic
        n = H.shape[0]
        row = np.repeat(np.arange(n), np.diff(H.indptr))
        self.bounds = b = slab_partition(n, row, H.indices, *boundaries)
        m = len(b) - 1
        self.minus_h, self.interfaces = [], []
        for k in range(m):
            # slab k's rows, as far as the next slab's columns: -H_kk and H_{k,k+1}
            lo, mid, hi = b[k], b[k + 1], b[min(k + 2, m)]
            span = slice(H.indptr[lo], H.indptr[mid])
            r, c = row[span] - lo, H.indices[span] - lo
            keep = c >= 0                               # not the bonds back to slab k-1
            D = np.zeros((mid - lo, hi - lo), dtype=H.dtype)
            D[r[keep], c[keep]] = H.data[span][keep]
            self.minus_h.append(-D[:, :mid - lo])
            if k == m - 1:
                break
            up = D[:, mid - lo:]
            ex = np.flatnonzero(np.any(up != 0.0, axis=1))
            en = np.flatnonzero(np.any(up != 0.0, axis=0))
            up = up[np.ix_(ex, en)]
            down = up.conj().T.copy()                   # H is Hermitian
            if up.size >= SPARSE_MIN and np.count_nonzero(up) <= SPARSE_HOPPING * up.size:
                up, down = sp.csr_matrix(up), sp.csr_matrix(down)
            self.interfaces.append(Interface(ex, en, up, down))
        self._single = None             # the interfaces in single precision (made once)
        # each lead's self-energy lives on its end slab
        self.lead_slab = (0, m - 1)
        self.lead_pos = [np.asarray(bd, dtype=int) - b[s] for bd, s in
                         zip(boundaries, self.lead_slab)]
        for p, s in zip(self.lead_pos, self.lead_slab):
            if np.any((p < 0) | (p >= b[s + 1] - b[s])):
                raise AssertionError("lead boundary outside its end slab")

    @property
    def n_slabs(self) -> int:
        return len(self.bounds) - 1

    def _interfaces(self, single: bool) -> list:
        """The interfaces, with their hoppings in single precision if ``single``."""
        if not single:
            return self.interfaces
        if self._single is None:
            lower = lambda h: h.astype(np.complex64 if np.iscomplexobj(h) else np.float32)
            self._single = [Interface(f.exit, f.entry, lower(f.up), lower(f.down))
                            for f in self.interfaces]
        return self._single

    def _block(self, z, sigmas, k, extra=(), dtype=np.complex128):
        """A_kk on the energies z, minus the extra self-energies (positions, stack)."""
        M = np.empty((len(z),) + self.minus_h[k].shape, dtype=dtype)
        M[:] = self.minus_h[k]
        leads = [(p, s) for p, s, slab in zip(self.lead_pos, sigmas, self.lead_slab)
                 if slab == k] + list(extra)
        add_energy_and_sigmas(M, z, [p for p, _ in leads], [s for _, s in leads])
        return M

    def _sweep(self, z, sigmas, start, stop, step, single=False, pivots=None):
        """Connected Green's functions of slabs start, start+step, ... (excluding stop) from
        the device end at ``start``: for each such slab k, g_k restricted to the columns of
        its atoms bonded towards ``stop``, and the self-energy it adds to slab k+step (on
        that slab's atoms bonded back), as dicts keyed by slab (``single``: in single
        precision; ``pivots``: see :func:`inverse_columns`)."""
        g, sigma = {}, {}
        faces = self._interfaces(single)
        dtype = np.complex64 if single else np.complex128
        for k in range(start, stop, step):
            f = faces[k if step > 0 else k - 1]
            out, into, hop, back = ((f.exit, f.entry, f.up, f.down) if step > 0 else
                                    (f.entry, f.exit, f.down, f.up))
            extra = [sigma[k]] if k in sigma else []
            g[k] = inverse_columns(self._block(z, sigmas, k, extra, dtype), out, pivots)
            sigma[k + step] = (into, sandwich(back, g[k][:, out], hop))
        return g, sigma

    def solve(self, z: np.ndarray, sigmas, columns: np.ndarray, out=None,
              weights=None, only_rows=None, single: bool = False) -> np.ndarray:
        """Columns ``columns`` of G_F at the complex energies z (energies x atoms x
        columns, repeats allowed), or with ``weights`` (energies x columns x q; distinct
        columns) the products G_F[:, columns] weights (energies x atoms x q: the scattering
        states G_F V_S^+ w when the weights are V_S^+ w); ``sigmas``: the leads'
        self-energies on their boundary atoms, stacked over z. ``out``: an array (energies
        x at least the atoms x columns or q) whose first rows receive them (returned).
        ``only_rows``: the rows wanted (energies x len(only_rows) x columns or q returned):
        the columns are carried from their slabs only as far as the slabs of these rows.
        ``single``: the sweeps and the columns in single precision (complex64: the
        products at twice the rate; relative errors about kappa x 6e-8 for the condition
        number kappa of G_F^-1, 1e-6 to 2e-5 on the test devices), returned as complex128.
        An energy at which a slab's LU meets a pivot below SINGLE_PIVOT of its block's
        largest element (a pole of G_F nearer than about that fraction of |H|, where
        single precision loses its digits) is solved again in double."""
        b, m, ne = self.bounds, self.n_slabs, len(z)
        columns = np.asarray(columns, dtype=int)
        q = len(columns) if weights is None else weights.shape[2]
        lo, hi = 0, m - 1
        if only_rows is not None:
            if out is not None:
                raise ValueError("only_rows and out exclude each other")
            only_rows = np.asarray(only_rows, dtype=int)
            if len(only_rows):
                at = np.searchsorted(b, only_rows, side="right") - 1
                lo, hi = int(at.min()), int(at.max())
        X = np.empty((ne, b[hi + 1] - b[lo], q), dtype=complex) if out is None else out
        pick = (lambda Y: Y) if only_rows is None else (lambda Y: Y[:, only_rows - b[lo]])
        slab = np.searchsorted(b, columns, side="right") - 1
        if not len(columns) or not ne or not q or (only_rows is not None
                                                    and not len(only_rows)):
            X[:, :b[hi + 1] - b[lo]] = 0.0
            return pick(X)
        if weights is not None and len(np.unique(columns)) < len(columns):
            raise ValueError("columns with weights must be distinct")
        targets = np.unique(slab)
        dtype = np.complex64 if single else np.complex128
        pivots = np.full(ne, np.inf) if single else None
        gl, sl = self._sweep(z, sigmas, 0, targets.max(), 1, single, pivots)
        gr, sr = self._sweep(z, sigmas, m - 1, targets.min(), -1, single, pivots)
        filled = np.zeros(q, dtype=bool)
        for j in targets:
            which = np.flatnonzero(slab == j)
            extra = [s[j] for s in (sl, sr) if j in s]
            A = self._block(z, sigmas, j, extra, dtype)
            if weights is None:          # unit columns: G_jj's columns from A_jj's LU
                oc = as_slice(which)
                Gj = inverse_columns(A, columns[which] - b[j], pivots)
            else:                        # the products with this slab's rows of the weights
                w = weights[:, which]
                oc = np.flatnonzero(np.any(w != 0.0, axis=(0, 1)))
                R = np.zeros((ne, b[j + 1] - b[j], len(oc)), dtype=dtype)
                R[:, columns[which] - b[j]] = w[:, :, oc]
                oc = as_slice(oc)
                Gj = solve_blocks(A, R, pivots)
            # weights mixing columns of several slabs: added to what earlier slabs gave;
            # a column no earlier slab gave starts from zero
            idx = np.arange(q)[oc]
            seen = filled[idx]
            add = bool(seen.any())
            if add and not seen.all():
                X[:, :b[hi + 1] - b[lo], idx[~seen]] = 0.0
            filled[idx] = True
            for k, G in self._columns(j, Gj, gl, gr, lo, hi, single):
                rows = slice(b[k] - b[lo], b[k + 1] - b[lo])
                if add:
                    X[:, rows, oc] += G
                else:
                    X[:, rows, oc] = G
        if not filled.all():
            X[:, :b[hi + 1] - b[lo], ~filled] = 0.0
        if single and np.any(bad := ~(pivots >= SINGLE_PIVOT)):     # NaN too
            rows = np.arange(b[lo], b[hi + 1])                 # again in double
            X[bad, :len(rows)] = self.solve(z[bad], [s[bad] for s in sigmas], columns,
                                            weights=None if weights is None else weights[bad],
                                            only_rows=rows)
        return pick(X)

    def _columns(self, j, Gj, gl, gr, lo: int = 0, hi: int | None = None, single=False):
        """(k, G_kj Y) for the slabs k = lo..hi (default all), from G_jj Y (``Gj``) and
        the connected Green's functions of the sweeps (module docstring): from slab j the
        column is carried through the slabs between j and that range, not beyond it."""
        hi = self.n_slabs - 1 if hi is None else hi
        faces = self._interfaces(single)
        if lo <= j <= hi:
            yield j, Gj
        G = Gj
        for k in range(j - 1, lo - 1, -1):               # G_kj = gL_k H_{k,k+1} G_{k+1,j}
            f = faces[k]
            G = gl[k] @ left_multiply(f.up, G[:, f.entry])
            if k <= hi:
                yield k, G
        G = Gj
        for k in range(j + 1, hi + 1):                   # G_kj = gR_k H_{k,k-1} G_{k-1,j}
            f = faces[k - 1]
            G = gr[k] @ left_multiply(f.down, G[:, f.exit])
            if k >= lo:
                yield k, G


class SlabBonds:
    """Re rho_ij on bonds from factors rho = X P^+ (Eq. 9), as products of slab blocks.

    ``bounds``: slabs of the device atoms (:func:`slab_partition`: bonds join only the
    same or neighbouring slabs); ``i`` device atoms, ``j`` device atoms or lead contacts in
    the extended numbering (``n`` device atoms, then the contact rows of each lead). The
    bonds are grouped by the slab of i and the slab of j (the same, the next, or a lead's
    contacts), and each group is read from one block X[rows] P[columns]^+ (the rows and
    columns spanned by its bonds), formed as one matrix product per energy instead of
    gathering a row of X and of P per bond. A bond from slab k+1 back to slab k is read,
    transposed, from the block of slab k: rho_ij = conj(rho_ji) between device atoms
    (X P^+ is Hermitian there).
    """

    def __init__(self, bounds, i, j, n: int):
        b = np.asarray(bounds)
        m = len(b) - 1
        i, j = np.asarray(i, dtype=int), np.asarray(j, dtype=int)
        dev = j < n
        ki = np.searchsorted(b, i, side="right") - 1
        kj = np.where(dev, np.searchsorted(b, np.minimum(j, n - 1), side="right") - 1, m)
        if np.any(dev & (np.abs(kj - ki) > 1)):
            raise ValueError("a bond joins slabs that are not neighbours")
        flip = dev & (kj < ki)
        row, col = np.where(flip, j, i), np.where(flip, i, j)
        group = np.minimum(ki, kj) * 3 + np.where(dev, np.abs(kj - ki), 2)
        self.n_bonds, self.flip = len(i), np.where(flip, -1.0, 1.0)
        self.blocks = []      # (rows, columns, bond positions, flat entries of the block)
        for q in np.unique(group):
            sel = np.flatnonzero(group == q)
            rows = slice(row[sel].min(), row[sel].max() + 1)
            cols = slice(col[sel].min(), col[sel].max() + 1)
            flat = (row[sel] - rows.start) * (cols.stop - cols.start) + col[sel] - cols.start
            self.blocks.append((rows, cols, sel, flat))

    def __call__(self, X: np.ndarray, P: np.ndarray, phase=None, imag: bool = False):
        """Re(conj(phase_b) rho_ij) per bond b = (i, j), rho_ij = sum_c X_ic conj(P_jc)
        (X: energies x device x c, P: energies x extended x c, both contiguous along c),
        as energies x bonds, and with ``imag`` also the imaginary part (a pair);
        ``phase``: Bloch phases per bond (None, or real ones at Gamma)."""
        ne = X.shape[0]
        complex_phase = phase is not None and np.iscomplexobj(phase)
        re_out = np.empty((ne, self.n_bonds))
        im_out = np.empty((ne, self.n_bonds)) if imag else None
        Xf, Pf = X.view(float), P.view(float)        # Re(x conj(p)) = real dot of views
        # Im(x conj(p)) = Re(x conj(i p)): the same product with i P
        Pi = (1j * P).view(float) if imag or complex_phase else None
        for rows, cols, sel, flat in self.blocks:
            x = Xf[:, rows]
            re = (x @ Pf[:, cols].transpose(0, 2, 1)).reshape(ne, -1)[:, flat]
            if Pi is None:
                re_out[:, sel] = re
                continue
            # Im rho_ij: the block's Im, negated for a bond read transposed
            im = self.flip[sel] * (x @ Pi[:, cols].transpose(0, 2, 1)).reshape(ne, -1)[:, flat]
            if complex_phase:    # conj(ph) rho = ph.re re + ph.im im + i (ph.re im - ph.im re)
                ph = phase[sel]
                re, im = re * ph.real + im * ph.imag, im * ph.real - re * ph.imag
            re_out[:, sel] = re
            if imag:
                im_out[:, sel] = im
        return (re_out, im_out) if imag else re_out
