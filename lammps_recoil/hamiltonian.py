"""Tight-binding Hamiltonian of the conduction electrons (paper Eq. 2 and section 4).

One orbital per atom, equal on-site energies (zero) and a distance-dependent transfer
integral

    t(r) = t0 * exp(-zeta * r) * s(r),      t0 = -1.8 eV, zeta = 1/a, a = 2.5425 A,

where s(r) is a smooth cutoff: s = 1 for r <= r_on, s = 0 for r >= r_off and the quintic
"smootherstep" in between, so that t and dt/dr are continuous when a bond stretches during
MD. The defaults r_on = 3.0 A and r_off = 3.4 A leave ideal nearest-neighbour bonds (2.54 A,
and thermal stretching by 0.4 A) untouched and drop second neighbours (3.60 A) entirely,
which is the paper's nearest-neighbour model with the bond-breaking jump removed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .geometry import A_NN_CU, neighbor_pairs


@dataclass(frozen=True)
class HoppingModel:
    """Transfer integral t(r) = t0 exp(-zeta r) s(r) with a smooth cutoff s(r)."""

    t0: float = -1.8
    zeta: float = 1.0 / A_NN_CU
    r_on: float = 3.0
    r_off: float = 3.4

    def __post_init__(self):
        if not (self.zeta > 0 and 0 < self.r_on <= self.r_off and np.isfinite(self.r_off)):
            raise ValueError(f"invalid hopping model {self}: need zeta > 0 and "
                             "0 < r_on <= r_off < inf")

    def hopping(self, r):
        """Return t(r) and dt/dr (eV, eV/A) for an array of distances (A)."""
        r = np.asarray(r, dtype=float)
        bare = self.t0 * np.exp(-self.zeta * r)
        if self.r_off > self.r_on:
            width = self.r_off - self.r_on
            x = np.clip((r - self.r_on) / width, 0.0, 1.0)
            s = 1.0 - x**3 * (10.0 - 15.0 * x + 6.0 * x**2)
            ds = -30.0 * x**2 * (1.0 - x) ** 2 / width
        else:
            s = (r < self.r_off).astype(float)
            ds = np.zeros_like(r)
        return bare * s, bare * (ds - self.zeta * s)

    def bond_hopping(self, positions, i, j, vec):
        """t and dt/dr of the bonds i-j (``vec`` = X_j - X_i); geometric by default."""
        return self.hopping(np.linalg.norm(vec, axis=1))

    def nearest_neighbour_hopping(self, a: float = A_NN_CU) -> float:
        """t at the ideal nearest-neighbour distance (t1 = -0.6622 eV for the defaults)."""
        return float(self.hopping(a)[0])


@dataclass
class Bonds:
    """Directed-once list of bonds i -> j (each pair appears once).

    ``vec`` is X_j - X_i for the image of j that is bonded (A); ``shift`` the integer (x, y)
    image of j; ``t`` the transfer integral and ``dtdr`` its radial derivative. Indices
    refer to whatever atom numbering the caller uses (device atoms, then lead contacts).
    """

    i: np.ndarray
    j: np.ndarray
    vec: np.ndarray
    t: np.ndarray
    dtdr: np.ndarray
    shift: np.ndarray = field(default=None)

    def __post_init__(self):
        if self.shift is None:
            self.shift = np.zeros((len(self.i), 2), dtype=int)

    def __len__(self):
        return len(self.i)

    @property
    def length(self) -> np.ndarray:
        return np.linalg.norm(self.vec, axis=1)

    def phases(self, k) -> np.ndarray:
        """Bloch phases exp(i k . vec) of each bond for an in-plane wave vector k."""
        if k is None or not np.any(k):
            return np.ones(len(self.i))
        return np.exp(1j * (self.vec[:, :2] @ np.asarray(k, dtype=float)))


def find_bonds(positions: np.ndarray, model: HoppingModel, box=None, pairs=None) -> Bonds:
    """Bonds with nonzero hopping among ``positions`` (KD-tree, periodic in x, y), from
    ``pairs`` = neighbor_pairs(positions, model.r_off, box) if given."""
    i, j, d, shift = pairs if pairs is not None else neighbor_pairs(positions, model.r_off, box)
    t, dtdr = model.bond_hopping(positions, i, j, d)
    keep = t != 0.0
    return Bonds(i[keep], j[keep], d[keep], t[keep], dtdr[keep], shift[keep])


def hamiltonian(bonds: Bonds, n: int, k=None, onsite=None, dense: bool = False):
    """Hermitian Hamiltonian H(k) of ``n`` sites from a bond list (Eq. 2): a sparse COO
    matrix, or with ``dense`` an (n, n) array (cheaper to build for small devices);
    repeated entries (periodic images of one pair) add up.

    Bloch convention: H_ij(k) = sum_L t_{i, j+L} exp(i k . (X_{j+L} - X_i)).
    """
    val = bonds.t * bonds.phases(k)
    rows = np.concatenate([bonds.i, bonds.j])
    cols = np.concatenate([bonds.j, bonds.i])
    data = np.concatenate([val, np.conj(val)])
    if onsite is not None:
        rows = np.concatenate([rows, np.arange(n)])
        cols = np.concatenate([cols, np.arange(n)])
        data = np.concatenate([data, np.broadcast_to(np.asarray(onsite, float), (n,))])
    if not dense:
        return sp.coo_matrix((data, (rows, cols)), shape=(n, n))
    return dense_sum(rows, cols, data, (n, n))


def dense_sum(rows, cols, values, shape) -> np.ndarray:
    """Dense matrix of the given shape from (row, column, value) triplets, repeated entries
    added up (as in a COO matrix); complex if the values are."""
    flat = np.asarray(rows) * shape[1] + cols
    size = shape[0] * shape[1]
    out = np.bincount(flat, weights=np.real(values), minlength=size)
    if np.iscomplexobj(values):
        out = out + 1j * np.bincount(flat, weights=np.imag(values), minlength=size)
    return out.reshape(shape)
