"""Geometry: fcc lattices, atomic layers, neighbour search and input validation.

Everything here is pure geometry in LAMMPS ``metal`` units (Angstrom). The transport
axis is z; a periodic box, when given, is periodic in x and y only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

#: Nearest-neighbour distance of fcc Cu with the Sheng EAM potential at 0 K (Angstrom).
A_NN_CU = 2.5425
#: Cubic lattice constant of fcc Cu with the Sheng EAM potential at 0 K (Angstrom).
A0_CU = A_NN_CU * np.sqrt(2.0)
#: Two atoms closer than this are rejected as overlapping (Angstrom).
MIN_DISTANCE = 1.2
#: Verlet skin of :class:`NeighborList` (Angstrom): candidate pairs are searched within
#: cutoff + skin and searched again once an atom has moved by more than half of it.
VERLET_SKIN = 1.0
#: Sweeps of label propagation before bond_components turns to a graph search.
LABEL_SWEEPS = 12
#: z room (Angstrom) of the fixed atoms' KD-tree beyond the atoms it first saw.
TREE_MARGIN = 10.0


@dataclass(frozen=True)
class LayerLattice:
    """A crystal seen as a stack of identical monatomic layers along z.

    ``a1``, ``a2`` are the in-plane primitive vectors (3-vectors with zero z; both zero for
    a 1D chain) and ``step`` is the lattice vector from one layer to the next one *up* (+z),
    in-plane shift included. Every layer holds one atom per 2D primitive cell.
    """

    a1: np.ndarray
    a2: np.ndarray
    step: np.ndarray
    name: str = ""

    @property
    def is_chain(self) -> bool:
        return not np.any(self.a1)

    @property
    def spacing(self) -> float:
        """Distance between adjacent layers along z (Angstrom)."""
        return float(self.step[2])

    @property
    def cell_area(self) -> float:
        """Area of the 2D primitive cell (Angstrom^2); 1 for a chain."""
        if self.is_chain:
            return 1.0
        return float(abs(self.a1[0] * self.a2[1] - self.a1[1] * self.a2[0]))

    def reciprocal(self) -> np.ndarray:
        """2D reciprocal vectors b1, b2 (rows, 1/Angstrom) with a_i . b_j = 2 pi delta_ij."""
        A = np.array([self.a1[:2], self.a2[:2]])
        return 2.0 * np.pi * np.linalg.inv(A).T

    def in_plane_vectors(self, radius: float) -> np.ndarray:
        """All in-plane lattice vectors m a1 + n a2 with |.| <= radius (rows, 3-vectors)."""
        if self.is_chain:
            return np.zeros((1, 3))
        area = self.cell_area
        # |m a1 + n a2| >= |m| area / |a2|, so this bound on |m|, |n| is safe.
        nmax = int(np.ceil(radius * max(np.linalg.norm(self.a1), np.linalg.norm(self.a2))
                           / area)) + 1
        m, n = np.meshgrid(np.arange(-nmax, nmax + 1), np.arange(-nmax, nmax + 1))
        vecs = m.reshape(-1, 1) * self.a1 + n.reshape(-1, 1) * self.a2
        return vecs[np.linalg.norm(vecs, axis=1) <= radius + 1e-9]

    def fractional(self, xy: np.ndarray) -> np.ndarray:
        """In-plane fractional coordinates of points (rows of x, y) in the basis a1, a2."""
        A = np.array([self.a1[:2], self.a2[:2]])
        return np.asarray(xy)[:, :2] @ np.linalg.inv(A)


def fcc_lattice(orientation: str = "001", a0: float = A0_CU) -> LayerLattice:
    """Layer description of an fcc crystal with cubic lattice constant ``a0``.

    ``"001"``: x, y, z along the cubic axes; layers a0/2 apart, ABAB stacking.
    ``"111"``: z along [111], x along [1-10]; close-packed layers a0/sqrt(3) apart,
    ABC stacking.
    """
    a_nn = a0 / np.sqrt(2.0)
    if orientation == "001":
        a1 = np.array([a0 / 2, a0 / 2, 0.0])
        a2 = np.array([-a0 / 2, a0 / 2, 0.0])
        step = np.array([a0 / 2, 0.0, a0 / 2])
    elif orientation == "111":
        a1 = np.array([a_nn, 0.0, 0.0])
        a2 = np.array([a_nn / 2, a_nn * np.sqrt(3.0) / 2, 0.0])
        step = np.array([a_nn / 2, a_nn * np.sqrt(3.0) / 6, a0 / np.sqrt(3.0)])
    else:
        raise ValueError(f"fcc orientation must be '001' or '111', got {orientation!r}")
    return LayerLattice(a1, a2, step, name=f"fcc({orientation})")


def chain_lattice(a: float) -> LayerLattice:
    """A 1D atomic chain along z with interatomic distance ``a`` (paper section 3)."""
    zero = np.zeros(3)
    return LayerLattice(zero, zero, np.array([0.0, 0.0, a]), name="chain")


def check_box(box) -> np.ndarray | None:
    """Validate a transverse periodic box (Lx, Ly) and return it as an array (or None)."""
    if box is None:
        return None
    box = np.asarray(box, dtype=float).reshape(-1)
    if box.shape != (2,) or not np.all(np.isfinite(box)) or np.any(box <= 0):
        raise ValueError(f"periodic box must be two positive lengths (Lx, Ly), got {box}")
    return box


def check_positions(positions, what: str = "atoms") -> np.ndarray:
    """Return positions as an (N, 3) float array; reject NaN/inf with the offending atoms."""
    pos = np.asarray(positions, dtype=float)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"{what}: positions must have shape (N, 3), got {pos.shape}")
    bad = np.flatnonzero(~np.all(np.isfinite(pos), axis=1))
    if bad.size:
        raise ValueError(f"{what}: non-finite (NaN or inf) coordinates for atoms "
                         f"{bad[:10].tolist()}{' ...' if bad.size > 10 else ''}")
    return pos


def minimum_image(d: np.ndarray, box: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Wrap difference vectors into the minimum image in x, y.

    Returns the wrapped vectors and the integer image shifts (n_x, n_y) that were added.
    """
    if box is None:
        return d, np.zeros((len(d), 2), dtype=int)
    shift = -np.rint(d[:, :2] / box).astype(int)
    out = d.copy()
    out[:, :2] += shift * box
    return out, shift


def _kdtree(pos: np.ndarray, box: np.ndarray | None, zlo: float, lz: float) -> cKDTree:
    """KD-tree of points periodic in x, y (when ``box``) with z in [zlo, zlo + lz), the
    z period lz chosen long enough that the z wrap joins nothing."""
    if box is None:
        return cKDTree(pos)
    wrapped = pos.copy()
    wrapped[:, :2] = np.mod(wrapped[:, :2], box)
    # cKDTree needs data inside [0, L): clamp the rare x == L after np.mod rounding.
    wrapped[:, :2] = np.where(wrapped[:, :2] >= box, 0.0, wrapped[:, :2])
    wrapped[:, 2] -= zlo
    return cKDTree(wrapped, boxsize=np.array([box[0], box[1], lz]))


def neighbor_pairs(positions: np.ndarray, cutoff: float, box: np.ndarray | None = None):
    """All pairs i < j closer than ``cutoff`` (KD-tree; periodic in x, y when ``box``).

    Returns ``(i, j, d, shift)`` where ``d = X_j + shift*box - X_i`` is the bond vector of
    the minimum image and ``shift`` the integer image of atom j. The box must be wider than
    twice the cutoff so that the minimum image is the only image within reach.
    """
    pos = np.asarray(positions, dtype=float)
    if box is not None and np.any(box < 2.0 * cutoff):
        raise ValueError(f"periodic box {box.tolist()} is narrower than twice the "
                         f"neighbour cutoff {cutoff} A")
    z = pos[:, 2] if len(pos) else np.zeros(1)
    tree = _kdtree(pos, box, z.min(), np.ptp(z) + 2.0 * cutoff + 1.0)
    pairs = tree.query_pairs(cutoff, output_type="ndarray")
    if len(pairs) == 0:
        return (np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3)), np.zeros((0, 2), int))
    i, j = pairs[:, 0], pairs[:, 1]
    d, shift = minimum_image(pos[j] - pos[i], box)
    return i, j, d, shift


class NeighborList:
    """Pairs closer than ``cutoff`` among moving atoms and between moving and ``fixed``
    atoms (pairs among fixed atoms are left out), for moving atoms that move a little
    between calls (MD updates).

    A Verlet list: the KD-tree search runs within cutoff + skin, among the moving atoms and
    against a tree of the fixed atoms built once, and runs again
    only once a moving atom has moved by more than skin / 2 since (or their number
    changed); in between, the candidate pairs' minimum-image distances are recomputed.
    The skin shrinks to fit a narrow periodic box (2 (cutoff + skin) <= box).
    """

    def __init__(self, fixed, cutoff: float, box=None, skin: float = VERLET_SKIN):
        self.fixed, self.cutoff, self.box = np.asarray(fixed, dtype=float), cutoff, box
        room = np.inf if box is None else 0.5 * float(np.min(box)) - cutoff - 1e-9
        self.skin = max(0.0, min(skin, room))
        self.ref = self._tree = None

    def pairs(self, moving):
        """(i, j, d, shift) as in :func:`neighbor_pairs`, with indices into the moving
        atoms followed by the fixed atoms ``near`` (the attribute, set at each search)."""
        moving = np.asarray(moving, dtype=float)
        if self._stale(moving):
            self._search(moving)
        both = np.vstack([moving, self.fixed[self.near]])
        d, shift = minimum_image(both[self.j] - both[self.i], self.box)
        keep = np.einsum("ij,ij->i", d, d) < self.cutoff ** 2
        return self.i[keep], self.j[keep], d[keep], shift[keep]

    def _stale(self, moving) -> bool:
        if self.ref is None or len(moving) != len(self.ref):
            return True
        dx, _ = minimum_image(moving - self.ref, self.box)
        return bool(np.einsum("ij,ij->i", dx, dx).max(initial=0.0) > (0.5 * self.skin) ** 2)

    def _search(self, moving) -> None:
        reach = self.cutoff + self.skin
        lo, hi = moving[:, 2].min() - reach, moving[:, 2].max() + reach
        if self._tree is None or lo < self._zlo or hi > self._zlo + self._lz - 2 * reach:
            # the fixed atoms' tree, built once (again only if the moving atoms leave
            # its z range); the z period leaves room for the search radius at both ends
            z = np.concatenate([self.fixed[:, 2], [lo, hi]])
            self._zlo = z.min() - TREE_MARGIN
            self._lz = np.ptp(z) + 2 * TREE_MARGIN + 2 * reach
            self._tree = _kdtree(self.fixed, self.box, self._zlo, self._lz)
        mine = _kdtree(moving, self.box, self._zlo, self._lz)
        pairs = mine.query_pairs(reach, output_type="ndarray").reshape(-1, 2)
        cross = mine.sparse_distance_matrix(self._tree, reach, output_type="ndarray")
        self.near, j = np.unique(cross["j"], return_inverse=True)
        self.i = np.concatenate([pairs[:, 0], cross["i"]])
        self.j = np.concatenate([pairs[:, 1], len(moving) + j.reshape(-1)])
        self.ref = moving.copy()


def check_overlaps(positions: np.ndarray, box: np.ndarray | None, label=None,
                   min_distance: float = MIN_DISTANCE, pairs=None) -> None:
    """Raise ValueError naming the closest pair if two atoms are closer than min_distance.

    ``label(n)`` names atom n in the message (default "atom n"). ``pairs``: the result of
    :func:`neighbor_pairs` of these positions with a cutoff >= min_distance, if at hand.
    """
    i, j, d, _ = pairs if pairs is not None else neighbor_pairs(positions, min_distance, box)
    r = np.linalg.norm(d, axis=1)
    close = np.flatnonzero(r < min_distance)
    if close.size:
        k = close[np.argmin(r[close])]
        label = label or (lambda n: f"atom {n}")
        raise ValueError(f"overlapping atoms: {label(i[k])} and {label(j[k])} are "
                         f"{r[k]:.3f} A apart (minimum allowed {min_distance} A); "
                         f"{close.size} such pair(s)")


def bond_components(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Connected components of n sites bonded by the pairs (i, j): a label per site, the
    smallest site index of its component.

    Min-label propagation with pointer jumping takes a few sweeps for sites numbered along
    a filament (z order); a graph that needs more (a long folded chain) goes to scipy's
    graph search.
    """
    label = np.arange(n)
    for _ in range(LABEL_SWEEPS):
        low = np.minimum(label[i], label[j])
        new = label.copy()
        np.minimum.at(new, i, low)
        np.minimum.at(new, j, low)
        new = new[new]
        if np.array_equal(new, label):            # equal labels across every bond
            return label
        label = new
    graph = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    first = np.full(comp.max() + 1, n)
    np.minimum.at(first, comp, np.arange(n))
    return first[comp]


def lattice_sites(lattice: LayerLattice, origin: np.ndarray, layers, box=None,
                  center_xy=None, radius: float | None = None) -> np.ndarray:
    """Sites of the given layer indices of a layered crystal.

    Layer n is at ``origin + n * step``. With a periodic ``box`` every site of the layer in
    [0, Lx) x [0, Ly) is returned (the box must be commensurate); otherwise the sites within
    in-plane distance ``radius`` of ``center_xy``.
    """
    origin = np.asarray(origin, dtype=float)
    out = []
    for n in layers:
        o = origin + n * lattice.step
        if lattice.is_chain:
            out.append(o[None, :])
            continue
        if box is not None:
            reach = float(np.hypot(*box)) + np.linalg.norm(lattice.step[:2]) * abs(n)
            vecs = lattice.in_plane_vectors(reach) + o
            frac = vecs[:, :2] / box
            keep = np.all((frac >= -1e-9) & (frac < 1 - 1e-9), axis=1)
            # Shift sites into the box to keep every site once.
            vecs = vecs[keep]
        else:
            c = np.asarray(center_xy, dtype=float)
            # Lattice vectors around the centre, reduced to the nearest lattice point.
            f = lattice.fractional((c - o[:2])[None, :])[0]
            base = o + np.rint(f[0]) * lattice.a1 + np.rint(f[1]) * lattice.a2
            vecs = lattice.in_plane_vectors(radius + 2 * np.linalg.norm(lattice.a1)) + base
            vecs = vecs[np.linalg.norm(vecs[:, :2] - c, axis=1) <= radius]
        out.append(vecs)
    return np.concatenate(out, axis=0)


def commensurate_count(lattice: LayerLattice, box: np.ndarray) -> int:
    """Number of layer sites in a periodic box; raises if the box is not commensurate."""
    for vec in (np.array([box[0], 0.0]), np.array([0.0, box[1]])):
        f = lattice.fractional(vec[None, :])[0]
        if np.max(np.abs(f - np.rint(f))) > 1e-6:
            raise ValueError(f"periodic box {box.tolist()} is not commensurate with the "
                             f"{lattice.name} layer lattice")
    n = box[0] * box[1] / lattice.cell_area
    return int(round(n))
