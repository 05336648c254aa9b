"""Semi-infinite leads: surface Green's functions, Fermi level and band edges.

Two kinds of lead, one interface (``positions``, ``side``, ``surface_gf(E, k)``,
``check_reach(device_positions)``):

* :class:`LayeredLead` -- an ideal crystal half-space made of identical monatomic layers
  (fcc (001), fcc (111), and the paper's 1D chain). For an in-plane wave vector kappa the
  half-space is a 1D chain of layers with scalar on-site term h0(kappa) and inter-layer
  hopping h1(kappa), whose surface Green's function is closed form,

      g_s = 2 / (z + sqrt(z - 2|h1|) sqrt(z + 2|h1|)),   z = E + i eta - h0,

  the retarded root (Im g_s <= 0 in the band, |g_s| -> 0 far outside). Real-space elements
  on the surface block are Fourier sums over kappa (the paper's "explicit Fourier-series
  expressions in the nearest-neighbour approximation"): no decimation, no transfer matrices,
  no ill-conditioning. With a periodic box the kappa set is the one commensurate with the
  box (exact for the periodic system); without a box it is a dense Monkhorst-Pack mesh of
  the 2D Brillouin zone with a small broadening eta (laterally infinite half-space).
* :class:`WireLead` -- a lead of finite cross-section given by its unit cell and
  translation vector: the exact retarded g at real energy from its Bloch modes (mode
  matching), or with a broadening eta > 0 by Lopez-Sancho decimation at E + i eta. Used
  for cross-checks against other codes (Kwant) and for systems with few lead channels.

Leads never move, so their surface Green's functions on a fixed energy grid are computed
once and cached; a layered lead stores g per displacement class (layer pair and in-plane
x_a - x_b), the number of atoms per layer instead of its square per layer pair.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.fft
from scipy.linalg import eig
from scipy.optimize import brentq, minimize_scalar
from scipy.spatial import cKDTree

from .geometry import (LayerLattice, check_box, check_positions, commensurate_count,
                       minimum_image)
from .hamiltonian import HoppingModel

SIDES = ("left", "right")
#: Default Monkhorst-Pack mesh (n x n) for the laterally infinite lead (its convergence:
#: docs/geometry.md).
DEFAULT_KMESH = 64
#: Default broadening (eV) of the laterally infinite lead's k sum (the forces' dependence
#: on it: docs/geometry.md).
DEFAULT_ETA = 0.01
#: k mesh for the bulk Fermi level (n x n); converged to < 1e-4 eV (tests).
FERMI_KMESH = 240
#: Memory bound (bytes) of each lead's caches of surface Green's functions.
CACHE_BYTES = 256 * 2**20
#: A wire lead decimates the whole cell at energies closer than this (eV) to a level of
#: the block H0_XX it eliminates, where 1/(E - lam) costs digits (relative error of g on
#: the 42-atom fcc(001) cell of benchmarks/bench_kwant.py, over its 13 levels: median
#: 1e-11 and largest 6e-9 at 1e-3 eV, largest 5e-8 at 1e-5, no convergence at 1e-8) ...
WIRE_MIN_GAP = 1e-3
#: ... and wherever the reduced chain's g misses the lead's Dyson equation by more than
#: this (relative): at eta = 1e-9 its matrices are worse conditioned than the whole
#: cell's, and on that cell a few energies in a thousand miss by up to 3e-7. (The check
#: cannot replace the gap: on a level the reduced chain can converge to another root of
#: the Dyson equation, 30% off while missing the equation by only 2e-8.)
WIRE_RESIDUAL = 1e-9
#: A wire lead's Bloch mode with |log|lambda|| at most this is propagating (|lambda| = 1):
#: near a channel edge at distance dE the pair e^{+-iq} is split by q ~ sqrt(dE / t)
#: and found to about 1e-16 / q, so only energies within ~1e-16 eV of an edge (where g
#: is continuous) are classified by their current's round-off.
MODE_UNIMODULAR = 1e-8
#: The mode pencil is singular (E on a flat band of the wire: a level of its cells at
#: every Bloch vector) where an eigenvalue's homogeneous pair (alpha, beta) has a norm
#: below this: both are of the order of the distance to the flat band.
MODE_SINGULAR = 1e-14


class LeadModes(NamedTuple):
    """Bloch modes psi_n = lambda^n u of a wire lead at one energy (columns; outgoing
    first): ``lam``, their psi_n (``X``) and psi_{n-1} (``Y``) parts, ``propagating``
    (|lambda| = 1) and ``current`` (the current each carries away from the device, into
    the next cell)."""

    lam: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    propagating: np.ndarray
    current: np.ndarray


class EnergyCache:
    """Arrays computed per energy (lead Green's functions), stacked in one array so that a
    batch of energies is looked up and gathered at once. Cleared as a whole when it would
    grow beyond ``max_bytes``."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self.clear()

    def clear(self):
        # the energies held, ascending, and the row of ``values`` holding each (kept sorted
        # as energies arrive: a lookup is a binary search, an insertion one memmove, so a
        # long MD run's growing cache costs little per batch)
        self.energies, self.rows, self.values = np.zeros(0), np.zeros(0, dtype=int), None

    def limit(self, max_bytes: int) -> None:
        """Set the memory bound; a cache that already holds more is cleared."""
        self.max_bytes = max_bytes
        if self.values is not None and self.values.nbytes > max_bytes:
            self.clear()

    def slots(self, energies, compute) -> np.ndarray:
        """Rows of ``values`` holding ``energies``; missing ones are filled with
        compute(missing energies) (an array stacked over them) first."""
        slot = self._find(energies)
        if np.any(slot < 0):
            new = np.unique(energies[slot < 0])
            values = compute(new)
            n = len(self.energies)
            if self.values is None or (n + len(new)) * values[0].nbytes > self.max_bytes:
                if n:                   # cleared: the batch's cached energies go too
                    new = np.unique(energies)
                    values = compute(new)
                self.clear()
                rows = max(len(new), min(64, self.max_bytes // values[0].nbytes))
                n, self.values = 0, np.empty((rows,) + values.shape[1:], dtype=values.dtype)
            elif n + len(new) > len(self.values):
                room = max(n + len(new), self.max_bytes // values[0].nbytes)
                grown = np.empty((min(2 * (n + len(new)), room),) + values.shape[1:],
                                 dtype=values.dtype)
                grown[:n] = self.values[:n]
                self.values = grown
            self.values[n:n + len(new)] = values
            at = np.searchsorted(self.energies, new)
            self.energies = np.insert(self.energies, at, new)
            self.rows = np.insert(self.rows, at, np.arange(n, n + len(new)))
            slot = self._find(energies)
        return slot

    def _find(self, energies) -> np.ndarray:
        if not len(self.energies):
            return np.full(len(energies), -1)
        pos = np.minimum(np.searchsorted(self.energies, energies), len(self.energies) - 1)
        return np.where(self.energies[pos] == energies, self.rows[pos], -1)


def lead_energies(E) -> np.ndarray:
    """Energies (eV) asked of a lead as a 1D float array; NaN or inf is an error."""
    energies = np.atleast_1d(np.asarray(E, dtype=float))
    bad = np.flatnonzero(~np.isfinite(energies))
    if bad.size:
        raise ValueError(f"energies must be finite (eV), got {energies[bad[0]]} at "
                         f"position {bad[0]}")
    return energies


def chain_surface_gf(z, h0, h1abs2):
    """Closed-form surface Green's function of a semi-infinite 1D chain (per k).

    ``z`` is the (complex) energy, ``h0`` the on-site term and ``h1abs2`` = |h1|^2. Returns
    the retarded root; vectorized over any broadcastable shapes. For the paper's chain
    (h0 = 0, h1 = t) this is g_R^{11} = (E - i sqrt(4t^2 - E^2)) / 2t^2 of section 3.
    """
    w = z - h0
    h = np.sqrt(h1abs2)
    return 2.0 / (w + np.sqrt(w - 2.0 * h) * np.sqrt(w + 2.0 * h))


def _indices(idx) -> str:
    """Default labels of device atoms in messages: their indices (at most ten)."""
    idx = np.asarray(idx)
    return f"{idx[:10].tolist()}{' ...' if idx.size > 10 else ''}"


def _band_filling(x):
    """Fraction of a 1D cosine band below energy (x = (E - h0) / 2|h1|)."""
    return 1.0 - np.arccos(np.clip(x, -1.0, 1.0)) / np.pi


class LayeredLead:
    """Ideal semi-infinite crystal made of monatomic layers stacked along z.

    Parameters
    ----------
    lattice : LayerLattice
        Layer description (:func:`~lammps_recoil.geometry.fcc_lattice`, ``chain_lattice``).
    positions : (Np, 3) array
        The lead's surface block: every atom of its first ``n`` layers (periodic box) or
        the patch of those layers within reach of the device (no box). They must sit on
        ideal lattice sites; the layer nearest to the device is the surface layer.
    side : "left" or "right"
        The left lead extends to -z, the right one to +z.
    hopping : HoppingModel
        Hopping law; the lead uses it on the ideal lattice.
    box : (Lx, Ly) or None
        Periodic box in x, y (commensurate kappa set) or None (laterally infinite).
    kmesh, eta : int, float
        Brillouin-zone mesh and broadening for the laterally infinite lead.
    """

    def __init__(self, lattice: LayerLattice, positions, side: str,
                 hopping: HoppingModel = HoppingModel(), box=None,
                 kmesh: int = DEFAULT_KMESH, eta: float | None = None):
        if side not in SIDES:
            raise ValueError(f"lead side must be 'left' or 'right', got {side!r}")
        self.lattice, self.side, self.hopping = lattice, side, hopping
        self.box = check_box(box)
        self.positions = check_positions(positions, f"{side} lead")
        if len(self.positions) == 0:
            raise ValueError(f"{side} lead has no atoms")
        self.outward = -lattice.step if side == "left" else lattice.step
        self._assign_layers()
        self._build_chain()
        self.kmesh = None               # mesh leads: n of the n x n zone mesh
        if lattice.is_chain:
            self.kappa, self.weights = np.zeros((1, 2)), np.ones(1)
            self.eta = 0.0 if eta is None else float(eta)
        elif self.box is not None:
            self.kappa = self._commensurate_kappa()
            self.weights = np.full(len(self.kappa), 1.0 / len(self.kappa))
            self.eta = 0.0 if eta is None else float(eta)
        else:
            if int(kmesh) != kmesh or kmesh < 1:
                raise ValueError(f"the k mesh of a laterally infinite lead must be a "
                                 f"positive integer (n x n points), got {kmesh}")
            self.kmesh = int(kmesh)
            self.kappa, self.weights = self.mesh(self.kmesh)
            self.eta = DEFAULT_ETA if eta is None else float(eta)
            if not (np.isfinite(self.eta) and self.eta > 0):
                raise ValueError(f"a laterally infinite lead needs a broadening eta > 0 eV "
                                 f"(its k sum is a continuum), got {eta}")
        self._caches = {}               # k -> (layers, EnergyCache of g on their classes)
        self._class_cache = {}
        self._chain_cache = {}
        self._tree = cKDTree(self.positions)
        self._reach_vectors = None

    # ------------------------------------------------------------------ geometry
    def _assign_layers(self):
        pos, lat, out = self.positions, self.lattice, self.outward
        z = pos[:, 2]
        surface_z = z.max() if self.side == "left" else z.min()
        n = (z - surface_z) / out[2]
        layer = np.rint(n).astype(int)
        if np.max(np.abs(n - layer)) > 1e-4 or layer.min() < 0:
            raise ValueError(f"{self.side} lead atoms are not on the layers of {lat.name} "
                             f"(spacing {abs(out[2]):.4f} A along z)")
        ref = np.flatnonzero(layer == 0)[0]
        self.origin = pos[ref].copy()
        rel = pos - self.origin - layer[:, None] * out
        if not lat.is_chain:
            f = lat.fractional(rel[:, :2])
            if np.max(np.abs(f - np.rint(f))) > 1e-4:
                raise ValueError(f"{self.side} lead atoms are not on ideal {lat.name} "
                                 "lattice sites")
        elif np.max(np.abs(rel[:, :2])) > 1e-6:
            raise ValueError(f"{self.side} lead chain atoms are not on the z axis")
        self.layer = layer
        self.n_layers = int(layer.max()) + 1
        # block atoms ordered by layer: the atoms of layers < d are the first _depth[d]
        self._by_layer = np.argsort(layer, kind="stable")
        self._depth = np.searchsorted(layer[self._by_layer], np.arange(self.n_layers + 1))
        self._rank = np.empty(len(layer), dtype=int)
        self._rank[self._by_layer] = np.arange(len(layer))
        counts = np.bincount(layer, minlength=self.n_layers)
        if lat.is_chain and np.any(counts != 1):
            raise ValueError(f"{self.side} chain lead needs exactly one atom per layer")
        if self.box is not None and not lat.is_chain:
            nc = commensurate_count(lat, self.box)
            if np.any(counts != nc):
                raise ValueError(f"{self.side} lead layers hold {counts.tolist()} atoms; a "
                                 f"complete layer of this periodic box has {nc}")

    def _build_chain(self):
        """In-plane (h0) and inter-layer (h1) bonds of the per-kappa chain."""
        lat, out, r_off = self.lattice, self.outward, self.hopping.r_off
        vecs = lat.in_plane_vectors(r_off + np.linalg.norm(out) + 1.0)
        inplane = vecs[(np.linalg.norm(vecs, axis=1) > 1e-9)
                       & (np.linalg.norm(vecs, axis=1) < r_off)]
        self._t_in, _ = self.hopping.hopping(np.linalg.norm(inplane, axis=1))
        self._d_in = inplane[:, :2]
        inter = vecs + out
        self._t_out, _ = self.hopping.hopping(np.linalg.norm(inter, axis=1))
        keep = self._t_out != 0.0
        self._t_out, self._d_out = self._t_out[keep], inter[keep, :2]
        if not keep.any():
            raise ValueError(f"{lat.name} layers {abs(out[2]):.3f} A apart are not coupled "
                             f"within the hopping cutoff {r_off} A")
        far = self.hopping.hopping(np.linalg.norm(vecs + 2 * out, axis=1))[0]
        if np.any(far != 0.0):
            raise ValueError(f"hopping cutoff {r_off} A reaches two {lat.name} layers away: "
                             "the per-layer chain would be wrong")

    def h0(self, kappa):
        """On-site term of the per-kappa chain (in-plane bonds), real (eV)."""
        kappa = np.atleast_2d(kappa)
        return (np.exp(1j * kappa @ self._d_in.T) @ self._t_in).real

    def h1(self, kappa):
        """Inter-layer hopping of the per-kappa chain, layer n -> n+1 outward (eV)."""
        kappa = np.atleast_2d(kappa)
        return np.exp(1j * kappa @ self._d_out.T) @ self._t_out

    def mesh(self, n: int, shifted: bool = True):
        """Monkhorst-Pack n x n mesh of the 2D Brillouin zone and its weights."""
        if self.lattice.is_chain:
            return np.zeros((1, 2)), np.ones(1)
        b = self.lattice.reciprocal()
        f = (np.arange(n) + (0.5 if shifted else 0.0)) / n
        f1, f2 = np.meshgrid(f, f, indexing="ij")
        kappa = f1.reshape(-1, 1) * b[0] + f2.reshape(-1, 1) * b[1]
        return kappa, np.full(len(kappa), 1.0 / len(kappa))

    def _commensurate_kappa(self):
        """In-plane wave vectors compatible with the periodic box, one per layer site."""
        nc = commensurate_count(self.lattice, self.box)
        bx, by = 2 * np.pi / self.box
        m, n = np.meshgrid(np.arange(nc), np.arange(nc), indexing="ij")
        cand = np.stack([m.ravel() * bx, n.ravel() * by], axis=1)
        A = np.array([self.lattice.a1[:2], self.lattice.a2[:2]])
        frac = np.mod(np.round(cand @ A.T / (2 * np.pi), 9), 1.0)
        _, idx = np.unique(np.round(frac, 7), axis=0, return_index=True)
        kappa = cand[np.sort(idx)]
        if len(kappa) != nc:
            raise RuntimeError("commensurate k set has the wrong size")
        return kappa

    # ------------------------------------------------------------------ physics
    def _chains(self, kappa) -> tuple:
        """h0, h1 and |h1|^2 of the per-kappa chains at the wave vectors ``kappa``, and the
        distinct (h0, |h1|^2) pairs among them with the index of each kappa's pair (the
        zone's point-group images repeat a pair: the surface Green's function is solved
        once per pair)."""
        key = kappa.tobytes()
        if key not in self._chain_cache:
            h0, h1 = self.h0(kappa), self.h1(kappa)
            h1abs2 = np.abs(h1) ** 2
            pair = np.round(np.stack([h0, h1abs2], axis=1), 12)
            _, first, inverse = np.unique(pair, axis=0, return_index=True,
                                          return_inverse=True)
            self._chain_cache[key] = (h0, h1, h1abs2, first, inverse.reshape(-1))
        return self._chain_cache[key]

    def _block_gf(self, E, kappa, nl: int) -> np.ndarray:
        r"""Layer-resolved Green's functions G_{nm}(E, kappa) of the first ``nl`` layers,
        (nl, nl, len(E), len(kappa)), in closed form.

        Layer n + 1 sees the half-chain beyond it, itself a half-chain with surface
        Green's function g_s, so G_{n+1,m} = g_s h1* G_{nm} (n >= m) and the diagonal
        obeys G_{nn} = g_s (1 + x^2 + ... + x^(2n)) with x^2 = |h1|^2 g_s^2 (the image
        solution of a chain with its end at layer 0):

        .. math:: G_{nm} = g_s\,(h_1^* g_s)^{n-m} \sum_{j=0}^{m} (|h_1| g_s)^{2j}
                  \quad (n \ge m), \qquad G_{mn}: h_1^* \to h_1.

        A polynomial in g_s: no inversion, and finite where the layers decouple (h1 = 0).
        g_s and the diagonal depend on kappa only through (h0, |h1|^2): they are computed
        once per distinct pair (:meth:`_chains`).
        """
        z = np.asarray(E, dtype=float)[:, None] + 1j * self.eta
        h0, h1, h1abs2, first, inverse = self._chains(kappa)
        gs = chain_surface_gf(z, h0[first], h1abs2[first])          # distinct pairs
        G = np.empty((nl, nl, len(z), len(kappa)), dtype=complex)
        x2, S = h1abs2[first] * gs * gs, np.ones_like(gs)           # S_m = sum_j<=m x^2j
        for m in range(nl):
            G[m, m] = (gs * S).take(inverse, axis=1)
            S = 1.0 + x2 * S
        if nl > 1:
            g_full = G[0, 0]
            down, up = np.conj(h1) * g_full, h1 * g_full            # a layer outward, inward
            for m in range(nl):
                for n in range(m + 1, nl):
                    np.multiply(down, G[n - 1, m], out=G[n, m])
                    np.multiply(up, G[m, n - 1], out=G[m, n])
        return G

    def surface_gf(self, E, k=None, atoms=None) -> np.ndarray:
        """Retarded Green's function g(E) of the isolated lead on its block atoms.

        ``E`` is one energy (returns an (n, n) matrix) or an array of them (returns a
        stack (len(E), n, n)); ``k`` is the in-plane Bloch vector of the periodic device
        (None for Gamma); ``atoms`` restricts g to those block atoms (default: all). g is
        computed and cached per energy on the displacement classes of the layers down to
        the deepest requested one (usually just the surface layer, which the device bonds
        to): leads never move, and the contact atoms of a moving device change from one
        MD update to the next.
        """
        atoms = np.arange(len(self.positions)) if atoms is None else np.asarray(atoms)
        energies = lead_energies(E)
        if atoms.size == 0 or energies.size == 0:   # no atoms: a device detached from it
            return np.zeros(np.shape(E) + (len(atoms),) * 2, dtype=complex)
        kk = np.zeros(2) if k is None else np.round(np.asarray(k, dtype=float), 12)
        # a mesh lead's patch is only as deep as the device reaches: all of it at once
        # (the FFT costs the same for every class), so a contact one layer deeper in a
        # later update does not start a new cache
        need = self.n_layers if self.kmesh else int(self.layer[atoms].max()) + 1
        depth, cache = self._caches.get(kk.tobytes(), (0, None))
        if depth < need:
            # one cache per Bloch vector, for the deepest layers asked for so far (it
            # serves shallower requests too); the lead's byte bound is shared among them
            depth, cache = need, EnergyCache()
            self._caches[kk.tobytes()] = (depth, cache)
            for _, c in self._caches.values():
                c.limit(CACHE_BYTES // len(self._caches))
        slot = cache.slots(energies, lambda e: self._class_gf(e, kk, depth))
        idx = self._rank[atoms]
        cls = self._classes(depth)[2][idx[:, None], idx]
        g = cache.values.take(slot, axis=0).take(cls, axis=1)
        return g if np.ndim(E) else g[0]

    def _classes(self, depth: int) -> tuple:
        """Displacement classes of the block atoms in the first ``depth`` layers (computed
        once per depth): g between atoms a, b depends only on their layers and on x_a - x_b
        (modulo the periodic box, with which kappa is commensurate). Returns the classes'
        layer pairs (C, 2) and in-plane displacements (C, 2), and the class of each pair
        of block atoms in layer order (n_block, n_block)."""
        if depth not in self._class_cache:
            block = self._by_layer[:self._depth[depth]]
            layer, xy = self.layer[block], self.positions[block, :2]
            n = len(block)
            d, _ = minimum_image((xy[:, None] - xy[None]).reshape(-1, 2), self.box)
            key = np.stack([np.repeat(layer, n), np.tile(layer, n),
                            *np.rint(d.T / 1e-6).astype(np.int64)], axis=1)
            # (a displacement split by round-off into two classes is harmless: both give
            # the same g)
            _, first, inverse = np.unique(key, axis=0, return_index=True,
                                          return_inverse=True)
            self._class_cache[depth] = (key[first, :2], d[first],
                                        inverse.reshape(n, n))
        return self._class_cache[depth]

    def _class_gf(self, E, kk, depth: int) -> np.ndarray:
        """g(E) on the displacement classes of the first ``depth`` layers by the Fourier
        sum over kappa, sum_kappa G_nm(E, kappa + k) e^{i kappa.d} / N_kappa, for a batch
        of energies (len(E), C).

        A periodic lead's kappa set is small: one matrix product per layer pair. On the
        n x n zone mesh of a laterally infinite lead the sum is a 2D FFT per layer pair
        (:meth:`_mesh_classes`), which gives every in-plane displacement at once: O(n^2
        log n) per energy instead of n^2 per class."""
        pairs, d, _ = self._classes(depth)
        G = self._block_gf(E, self.kappa + kk, depth)
        g = np.empty((len(E), len(d)), dtype=complex)
        # classes are sorted by layer pair: one product (or FFT) per pair
        cut = np.flatnonzero(np.any(np.diff(pairs, axis=0), axis=1)) + 1
        if self.kmesh is None:
            phase = self.weights * np.exp(1j * d @ self.kappa.T)            # (C, kappa)
            for part in np.split(np.arange(len(d)), cut):
                n, m = pairs[part[0]]
                g[:, part] = G[n, m] @ phase[part].T
            return g
        nk = self.kmesh
        index, shift = self._mesh_classes(depth)
        for part in np.split(np.arange(len(d)), cut):
            n, m = pairs[part[0]]
            # e^{i kappa.d} = e^{i kappa.(n - m) s} e^{i kappa.R}, s the in-plane offset of
            # consecutive layers and R = r1 a1 + r2 a2 a lattice vector
            X = G[n, m] * np.exp(1j * (n - m) * self.kappa @ self.outward[:2])
            F = scipy.fft.ifft2(X.reshape(len(E), nk, nk), overwrite_x=True).reshape(
                len(E), nk * nk)
            g[:, part] = F[:, index[part]] * shift[part]
        return g

    def _mesh_classes(self, depth: int) -> tuple:
        """For the zone mesh kappa = (m1 + 1/2)/n b1 + (m2 + 1/2)/n b2: each class's lattice
        vector R = r1 a1 + r2 a2 as the flat FFT index (r1 mod n) n + (r2 mod n), and the
        factor e^{i pi (r1 + r2) / n} of the mesh's half-step shift, so that
        sum_m X(m) e^{i kappa_m.R} / n^2 = shift x ifft2(X)[index]."""
        key = ("mesh", depth)
        if key not in self._class_cache:
            pairs, d, _ = self._classes(depth)
            R = d - (pairs[:, 0] - pairs[:, 1])[:, None] * self.outward[:2]
            r = np.rint(self.lattice.fractional(R)).astype(np.int64)
            nk = self.kmesh
            self._class_cache[key] = (np.mod(r[:, 0], nk) * nk + np.mod(r[:, 1], nk),
                                      np.exp(1j * np.pi * (r[:, 0] + r[:, 1]) / nk))
        return self._class_cache[key]

    def layer_dos(self, energies) -> np.ndarray:
        """Local density of states per atom and spin of each block layer, (nE, n_layers).

        -(1/pi) Im G_nn(E), the kappa average of the per-chain layer Green's functions
        (the diagonal of the real-space surface Green's function, 1/eV).
        """
        out = np.einsum("k,llek->el", self.weights,
                        self._block_gf(np.atleast_1d(energies), self.kappa, self.n_layers))
        return -np.imag(out) / np.pi

    def fermi_level(self, electrons_per_atom: float = 1.0, kmesh: int = FERMI_KMESH) -> float:
        """Bulk Fermi level E_F (eV) for the given conduction electrons per atom.

        The bulk band of the layered crystal is E = h0(kappa) + 2|h1(kappa)| cos q; the
        number of states below E per atom and spin is the kappa average of
        1 - arccos((E - h0)/2|h1|)/pi. Solved for 1/2 * electrons_per_atom (spin).
        """
        if not 0.0 < electrons_per_atom < 2.0:
            raise ValueError("electrons per atom must lie in (0, 2)")
        kappa, w = self.mesh(kmesh)
        h0, h = self.h0(kappa), np.abs(self.h1(kappa))

        def excess(E):
            x = (E - h0) / np.where(h > 0, 2 * h, 1e-300)
            return w @ _band_filling(x) - electrons_per_atom / 2.0

        lo, hi = self.band_edges()
        return float(brentq(excess, lo, hi, xtol=1e-12))

    def band_edges(self, kmesh: int = FERMI_KMESH) -> tuple[float, float]:
        """Bottom E_0 and top of the bulk band (eV), from a Gamma-centred mesh."""
        kappa, _ = self.mesh(kmesh, shifted=False)
        h0, h = self.h0(kappa), np.abs(self.h1(kappa))
        return float(np.min(h0 - 2 * h)), float(np.max(h0 + 2 * h))

    def open_channels(self, E: float, k=None) -> int:
        """Number of propagating channels at energy E (periodic or chain lead)."""
        kk = np.zeros(2) if k is None else np.asarray(k)
        kappa = self.kappa + kk
        if self.box is None and not self.lattice.is_chain:
            raise ValueError("a laterally infinite lead has infinitely many channels")
        return int(np.sum(np.abs(E - self.h0(kappa)) < 2 * np.abs(self.h1(kappa))))

    def channel_edges(self, k=None) -> np.ndarray:
        """Energies where a channel of a periodic lead opens or closes (eV).

        The band edges h0 +- 2|h1| of every per-kappa chain of the lead's kappa set: T(E)
        and the density of states have square-root kinks there, so adaptive energy
        integrals break their intervals at these points. Empty for a laterally infinite
        lead (a continuum).
        """
        if self.box is None and not self.lattice.is_chain:
            return np.zeros(0)
        kappa = self.kappa + (0.0 if k is None else np.asarray(k))
        h0, h = self.h0(kappa), np.abs(self.h1(kappa))
        return np.unique(np.round(np.concatenate([h0 - 2 * h, h0 + 2 * h]), 9))

    def flat_bands(self, k=None) -> np.ndarray:
        """Energies h0(kappa) of the kappa in the lead's set whose layers decouple.

        Where h1(kappa) = 0 (lines of the fcc (001) zone, the K points of (111)) every
        layer is an isolated flat band: a delta peak in the lead's density of states and
        an exact bound state of periodic device layers. Empty for a laterally infinite
        lead (a set of measure zero there).
        """
        if self.box is None and not self.lattice.is_chain:
            return np.zeros(0)
        kappa = self.kappa + (0.0 if k is None else np.asarray(k))
        flat = np.abs(self.h1(kappa)) < 1e-9
        return np.unique(np.round(self.h0(kappa[flat]), 9))

    def check_reach(self, device: np.ndarray, names=_indices) -> None:
        """Raise if a device atom reaches lead atoms beyond the surface block.

        ``names(indices)`` turns device indices into the labels used in the message.
        """
        deep, lateral = self.reach(device)
        if deep.size:
            raise ValueError(f"device atoms {names(deep)} come within the hopping cutoff "
                             f"of the {self.side} lead beyond its {self.n_layers} surface "
                             "layer(s): make the lead block thicker or keep the device away")
        if lateral.size:
            raise ValueError(f"device atoms {names(lateral)} reach {self.side} lead sites "
                             "outside its surface patch: build the lead with a larger patch")

    def reach(self, device: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Device atoms (indices) within the hopping cutoff of a lead site outside the
        block: beyond its last layer, and (laterally infinite lead) beside its surface
        patch, whose layers must hold every lattice site within reach of the device."""
        r_off = self.hopping.r_off
        device = np.asarray(device, dtype=float)
        zs = self.origin[2] + self.n_layers * self.outward[2]   # first layer not in block
        deep = np.flatnonzero((device[:, 2] - zs) * np.sign(-self.outward[2]) < r_off)
        lateral = np.zeros(0, dtype=int)
        if self.box is not None or self.lattice.is_chain:
            return deep, lateral
        lat = self.lattice
        if self._reach_vectors is None:        # in-plane lattice vectors around a site
            self._reach_vectors = lat.in_plane_vectors(
                r_off + np.linalg.norm(lat.a1) + np.linalg.norm(lat.a2))
        layers = self.origin + np.arange(self.n_layers)[:, None] * self.outward
        a, n = np.nonzero(np.abs(device[:, None, 2] - layers[None, :, 2]) < r_off)
        if a.size == 0:
            return deep, lateral
        # the sites of each near layer around each near atom's nearest site of that layer
        o = layers[n]
        base = o.copy()
        base[:, :2] += np.rint(lat.fractional(device[a, :2] - o[:, :2])) @ np.array(
            [lat.a1[:2], lat.a2[:2]])
        sites = base[:, None, :] + self._reach_vectors[None, :, :]
        i, v = np.nonzero(np.sum((sites - device[a, None, :]) ** 2, axis=2) < r_off ** 2)
        missing = np.isinf(self._tree.query(sites[i, v], distance_upper_bound=1e-6)[0])
        return deep, np.unique(a[i[missing]])


class WireLead:
    r"""Semi-infinite wire of finite cross-section from its unit cell.

    ``positions`` are the atoms of the lead's first cell (the one bonded to the device) and
    ``translation`` the lattice vector from that cell to the next one, pointing away from
    the device. H0 and H1 follow from ``hopping``; the cell must be long enough that no
    hopping reaches two cells away.

    With ``eta = 0`` (the default) the surface Green's function is the exact retarded one
    at real energy, g = lim g(E + i0+), by mode matching (Khomyakov, Brocks, Karpan,
    Zwierzycki and Kelly, Phys. Rev. B 72, 035450 (2005); Ando, Phys. Rev. B 44, 8017
    (1991)). A Bloch mode psi_n = lambda^n u of the lead (cell n; n grows away from the
    device) solves

    .. math::

        (E - H_0 - \lambda H_1 - \lambda^{-1} H_1^T)\,u = 0,

    a generalized eigenproblem of twice the cell's size (linearized in
    (psi_n, psi_{n-1}); a singular H1 gives modes at lambda = 0 and infinity, which it
    keeps). The lead's N outgoing modes (N atoms per cell) are those decaying away from
    the device, |lambda| < 1, and the propagating ones, |lambda| = 1, that carry current
    away from it, Im(psi_{n-1}^+ H1 psi_n) < 0 (positive group velocity): the limit
    eta -> 0+ of the modes decaying at E + i eta. With X and Y their psi_n and psi_{n-1}
    parts, F = X Y^-1 maps each cell onto the next, and

    .. math::

        g = (E - H_0 - H_1 F)^{-1}.

    The size of eta never enters: a bound state of the device stays a real pole of zero
    width, and nothing depends on a numerical broadening.

    With ``eta > 0`` the lead is broadened: g at E + i eta, by Lopez-Sancho decimation on
    a reduced chain: the atoms C of a cell that the previous cell bonds to (the columns of
    H1) form a chain C_1, C_2, ... once the rest X of every cell is eliminated,
    g_X = (z - H0_XX)^-1 from one eigendecomposition,

        eps_s = H0_CC + H0_CX g_X H0_XC           (surface C_1: no cell before it)
        eps   = eps_s + H1_XC^T g_X H1_XC         (bulk: X of the previous cell as well)
        alpha = H1_CC + H0_CX g_X H1_XC = beta^T  (C_i -> C_i+1),

    and the first cell's g follows from the chain's surface g_CC (the lead beyond the
    first cell seen from it) as g = (z - H0 - H1_:C g_CC H1_:C^T)^-1. Each decimation
    round inverts |C| x |C| instead of the cell (half of it for an fcc(001) wire). Energies
    within WIRE_MIN_GAP of a level of H0_XX, and those whose g misses the lead's Dyson
    equation by more than WIRE_RESIDUAL, decimate the whole cell.
    """

    def __init__(self, positions, translation, side: str,
                 hopping: HoppingModel = HoppingModel(), eta: float = 0.0,
                 tol: float = 1e-13, max_iter: int = 200):
        if side not in SIDES:
            raise ValueError(f"lead side must be 'left' or 'right', got {side!r}")
        if not (np.isfinite(eta) and eta >= 0.0):
            raise ValueError(f"wire lead broadening eta must be >= 0 eV, got {eta}")
        self.side, self.hopping, self.eta = side, hopping, float(eta)
        self.tol, self.max_iter = tol, max_iter
        self.positions = check_positions(positions, f"{side} wire lead")
        self.translation = np.asarray(translation, dtype=float)
        if (self.translation[2] > 0) != (side == "right"):
            raise ValueError(f"the {side} wire lead's translation must point away from "
                             "the device along z")
        self.box = None
        self.H0 = self._coupling(np.zeros(3))
        self.H1 = self._coupling(self.translation)
        if np.any(self._coupling(2 * self.translation)):
            raise ValueError("wire lead cell is too short: hopping reaches two cells away")
        c = np.flatnonzero(np.any(self.H1 != 0, axis=0))
        x = np.setdiff1d(np.arange(len(self.positions)), c)
        # H0_XX = U diag(levels) U^T; P = U^T H0_XC and Q = U^T H1_XC carry g_X's products
        self._levels, U = np.linalg.eigh(self.H0[np.ix_(x, x)])
        self._c, self._P, self._Q = c, U.T @ self.H0[np.ix_(x, c)], U.T @ self.H1[np.ix_(x, c)]
        self._cache = EnergyCache()

    def _coupling(self, shift):
        x = self.positions
        r = np.linalg.norm(x[None, :, :] + shift - x[:, None, :], axis=2)
        t, _ = self.hopping.hopping(r)
        if not np.any(shift):
            np.fill_diagonal(t, 0.0)
        return t

    def surface_gf(self, E, k=None, atoms=None) -> np.ndarray:
        """g(E) on the first cell's atoms (or ``atoms`` of it); E scalar or array (stack)."""
        if k is not None and np.any(k):
            raise ValueError("a wire lead has no transverse Bloch vector")
        atoms = np.arange(len(self.positions)) if atoms is None else np.asarray(atoms)
        energies = lead_energies(E)
        if energies.size == 0:
            return np.zeros((0, len(atoms), len(atoms)), dtype=complex)
        slot = self._cache.slots(energies, self._surface)
        g = self._cache.values[slot[:, None, None], atoms[None, :, None], atoms[None, None, :]]
        return g if np.ndim(E) else g[0]

    def _surface(self, E):
        """The first cell's g for an array of energies: by mode matching at eta = 0, else by
        decimation at E + i eta, from the reduced chain; the whole cell is decimated for
        energies near a level of H0_XX and for those where the reduced chain's g misses the
        lead's Dyson equation by more than WIRE_RESIDUAL."""
        if self.eta == 0.0:
            return self._mode_gf(np.asarray(E, dtype=float))
        z = np.asarray(E, dtype=float) + 1j * self.eta
        whole = np.zeros(len(z), dtype=bool)
        if self._levels.size:
            whole = np.abs(z.real[:, None] - self._levels).min(axis=1) < WIRE_MIN_GAP
        g = np.empty((len(z),) + self.H0.shape, dtype=complex)
        if not np.all(whole):
            with np.errstate(all="ignore"):        # (a reduced chain that fails is redone)
                g[~whole] = self._cell_gf(z[~whole], reduced=True)
                whole[~whole] = ~(self.dyson_residual(z[~whole], g[~whole]) <= WIRE_RESIDUAL)
        if np.any(whole):
            g[whole] = self._cell_gf(z[whole], reduced=False)
        bad = ~np.isfinite(g).all(axis=(1, 2))
        if np.any(bad):
            raise RuntimeError(f"decimation did not converge at E = {z[bad][0].real} eV "
                               f"(eta = {self.eta})")
        return g

    def modes(self, E: float) -> LeadModes:
        """The lead's Bloch modes at real energy E (eV), outgoing ones first (see the class
        docstring): lambda, psi_n (X) and psi_{n-1} (Y) of each (columns), and which are
        propagating. The first N (atoms per cell) are the outgoing modes."""
        n = len(self.positions)
        one, zero = np.eye(n), np.zeros((n, n))
        A = np.block([[E * one - self.H0, -self.H1.T], [one, zero]])
        B = np.block([[self.H1, zero], [zero, one]])
        (alpha, beta), vec = eig(A, B, homogeneous_eigvals=True)
        if np.min(np.hypot(np.abs(alpha), np.abs(beta))) < MODE_SINGULAR:
            raise ValueError(f"E = {E} eV lies on a flat band of the {self.side} wire lead "
                             "(a level of its cells at every Bloch vector), where its Green's "
                             "function is infinite")
        with np.errstate(divide="ignore"):
            log_abs = np.log(np.abs(alpha)) - np.log(np.abs(beta))     # log|lambda|
        X, Y = vec[:n], vec[n:]
        # current from cell n-1 into cell n: -2 Im(psi_{n-1}^+ H1 psi_n); zero for a single
        # evanescent mode
        current = -2.0 * np.einsum("im,ij,jm->m", Y.conj(), self.H1, X).imag
        propagating = np.abs(log_abs) <= MODE_UNIMODULAR
        # outgoing first: decaying away from the device, then propagating away from it (by
        # current), then propagating towards it, then growing; exactly N are outgoing
        key = np.where(propagating, -MODE_UNIMODULAR * np.sign(current) / 2, log_abs)
        order = np.argsort(key, kind="stable")
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.where(beta == 0.0, np.inf, alpha / np.where(beta == 0.0, 1.0, beta))
        return LeadModes(lam[order], X[:, order], Y[:, order], propagating[order],
                         current[order])

    def _mode_gf(self, E: np.ndarray) -> np.ndarray:
        """Exact retarded g of the first cell at real energies E: g = (E - H0 - H1 F)^-1
        with F = X Y^-1 from the outgoing modes."""
        n = len(self.positions)
        g = np.empty((len(E), n, n), dtype=complex)
        for i, e in enumerate(E):
            m = self.modes(e)
            F = np.linalg.solve(m.Y[:, :n].T, m.X[:, :n].T).T             # X Y^-1
            g[i] = np.linalg.inv(e * np.eye(n) - self.H0 - self.H1 @ F)
        return g

    def dyson_residual(self, z, g) -> np.ndarray:
        """max |g - (z - H0 - H1 g H1^T)^-1| / max |g| per energy: how far the first cell's
        g (a stack over the complex energies z) misses the lead's Dyson equation."""
        n = len(self.positions)
        dyson = np.linalg.inv(z[:, None, None] * np.eye(n) - self.H0 - self.H1 @ g @ self.H1.T)
        return np.abs(g - dyson).max(axis=(1, 2)) / np.abs(g).max(axis=(1, 2))

    def _cell_gf(self, z, reduced):
        """g of the first cell at the complex energies z, decimating the reduced chain or
        (``reduced=False``) the chain of whole cells; NaN where the decimation did not
        converge."""
        n = len(self.positions)
        M = z[:, None, None] * np.eye(n) - self.H0
        c = self._c if reduced else np.arange(n)
        if c.size:                                         # (else the lead is detached)
            cc = np.ix_(c, c)
            if reduced:
                d = 1.0 / (z[:, None] - self._levels)              # g_X in its eigenbasis
                Pd, Qd = self._P.T * d[:, None, :], self._Q.T * d[:, None, :]
                eps_s = self.H0[cc] + Pd @ self._P
                eps, alpha = eps_s + Qd @ self._Q, self.H1[cc] + Pd @ self._Q
            else:
                eps_s = eps = self.H0 + np.zeros((len(z), 1, 1), dtype=complex)
                alpha = self.H1 + np.zeros((len(z), 1, 1), dtype=complex)
            H1c = self.H1[:, c]
            M -= H1c @ self._decimate(z, eps_s, eps, alpha) @ H1c.T
        g = np.full_like(M, np.nan)
        ok = np.isfinite(M).all(axis=(1, 2))
        g[ok] = np.linalg.inv(M[ok])
        return g

    def _decimate(self, z, eps_s, eps, alpha):
        """Surface Green's function of the chain with on-site terms eps_s (surface), eps
        (bulk) and hopping alpha = beta^T to the next site (stacks over the energies z),
        by Lopez-Sancho decimation; each energy leaves the batch once its renormalized
        couplings fall below ``tol`` (NaN for those still in it after ``max_iter``
        rounds)."""
        m = alpha.shape[1]
        zI = z[:, None, None] * np.eye(m)
        beta = np.swapaxes(alpha, 1, 2)
        out, idx = np.empty_like(zI), np.arange(len(z))
        for _ in range(self.max_iter):
            ga_gb = np.linalg.solve(zI - eps, np.concatenate([alpha, beta], axis=2))
            ga, gb = ga_gb[..., :m], ga_gb[..., m:]            # g alpha, g beta
            agb, bga = alpha @ gb, beta @ ga
            eps_s = eps_s + agb
            eps = eps + agb + bga
            alpha, beta = alpha @ ga, beta @ gb
            done = np.maximum(np.abs(alpha).max(axis=(1, 2)),
                              np.abs(beta).max(axis=(1, 2))) < self.tol
            if np.any(done):
                out[idx[done]] = np.linalg.inv(zI[done] - eps_s[done])
                keep = ~done
                idx, zI, alpha, beta = idx[keep], zI[keep], alpha[keep], beta[keep]
                eps, eps_s = eps[keep], eps_s[keep]
                if not idx.size:
                    return out
        out[idx] = np.nan
        return out

    def fermi_level(self, *args, **kwargs):
        raise ValueError("a wire lead has no bulk Fermi level: pass fermi_level explicitly")

    def band_edges(self) -> tuple[float, float]:
        """Bottom and top of the wire's subbands (eV): its lowest and highest channel
        edges."""
        edges = self.channel_edges()
        return float(edges[0]), float(edges[-1])

    def channel_edges(self, k=None, nq: int = 256) -> np.ndarray:
        """Energies where a channel of the wire opens or closes (eV): the extrema of its
        subbands eps_n(q), eigenvalues of H0 + H1 e^{iq} + H1^T e^{-iq} on 0 <= q <= pi.

        q = 0 and q = pi are extrema of every subband (eps(q) = eps(-q)); interior extrema
        are located on an ``nq``-point grid and refined by a bounded scalar minimization
        (to 1e-12 in q). Where two subbands cross, the sorted bands have a kink that looks
        like an extremum; the crossing energy is then returned as well (a harmless extra
        break of the integration, not a branch point).
        """
        if k is not None and np.any(k):
            raise ValueError("a wire lead has no transverse Bloch vector")
        band = lambda q, n: np.linalg.eigvalsh(self._bloch(q))[0, n]
        q = np.linspace(0.0, np.pi, nq + 1)
        eps = np.linalg.eigvalsh(self._bloch(q))                    # (nq + 1, bands)
        edges = [eps[0], eps[-1]]
        left, mid, right = eps[:-2], eps[1:-1], eps[2:]
        for sign in (1.0, -1.0):                                     # minima, maxima
            i, n = np.nonzero((sign * (mid - left) < 0) & (sign * (mid - right) <= 0))
            for a, b in zip(i, n):
                res = minimize_scalar(lambda x: sign * band(x, b), bounds=(q[a], q[a + 2]),
                                      method="bounded", options={"xatol": 1e-12})
                edges.append([sign * res.fun])
        edges = np.sort(np.concatenate(edges))
        # (one edge found twice, from the grid ends and an interior extremum or from
        # degenerate subbands, is one edge; kept to round-off, as a van Hove point of g
        # can be an inverse square root that an integral's substitution must sit on)
        return edges[np.concatenate([[True], np.diff(edges) > 1e-12])]

    def flat_bands(self, k=None, nq: int = 64) -> np.ndarray:
        """Energies of the wire's flat subbands (eV): levels of H(q) at every q (checked on
        an ``nq``-point grid). A flat band is a pole of g on the real axis (a delta peak in
        the lead's density of states), where the mode pencil is singular."""
        if k is not None and np.any(k):
            raise ValueError("a wire lead has no transverse Bloch vector")
        eps = np.linalg.eigvalsh(self._bloch(np.linspace(0.0, np.pi, nq + 1)))
        cand = eps[0]
        flat = np.all(np.abs(eps[:, :, None] - cand[None, None, :]).min(axis=1) < 1e-9, axis=0)
        return np.unique(np.round(cand[flat], 9))

    def _bloch(self, q):
        """H(q) = H0 + H1 e^{iq} + H1^T e^{-iq} for an array of q (a stack)."""
        q = np.atleast_1d(q)[:, None, None]
        return self.H0 + self.H1 * np.exp(1j * q) + self.H1.T * np.exp(-1j * q)

    def check_reach(self, device: np.ndarray, names=_indices) -> None:
        far = self.positions + self.translation
        d = np.linalg.norm(device[:, None, :] - far[None, :, :], axis=2)
        bad = np.flatnonzero(np.any(d < self.hopping.r_off, axis=1))
        if bad.size:
            raise ValueError(f"device atoms {names(bad)} reach the {self.side} wire "
                             "lead's second cell")
