"""Geometry: fcc lattices, atomic layers, neighbour search and input validation.

Everything here is pure geometry in LAMMPS ``metal`` units (Angstrom). The transport
axis is z; a periodic box, when given, is periodic in x and y only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

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


def check_positions(positions, what: str = "atoms", ids=None) -> np.ndarray:
    """Return positions as an (N, 3) float array; reject NaN/inf naming the offending atoms
    by ``ids`` (e.g. LAMMPS atom IDs; default their indices)."""
    pos = np.asarray(positions, dtype=float)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"{what}: positions must have shape (N, 3), got {pos.shape}")
    bad = np.flatnonzero(~np.all(np.isfinite(pos), axis=1))
    if bad.size:
        named = ids is not None and len(ids) == len(pos)
        name, shown = ("atom IDs", np.asarray(ids)[bad]) if named else ("atoms", bad)
        raise ValueError(f"{what}: non-finite (NaN or inf) coordinates for {name} "
                         f"{shown[:10].tolist()}{' ...' if bad.size > 10 else ''} "
                         f"(first: {pos[bad[0]].tolist()})")
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


class Pairs(NamedTuple):
    """Pairs of atoms (i, j) with ``d = X_j + shift*box - X_i``, the vector of the minimum
    image, and ``shift`` the integer (x, y) image of atom j."""

    i: np.ndarray
    j: np.ndarray
    d: np.ndarray
    shift: np.ndarray


def neighbor_pairs(positions: np.ndarray, cutoff: float,
                   box: np.ndarray | None = None) -> Pairs:
    """All pairs i < j closer than ``cutoff`` (KD-tree; periodic in x, y when ``box``).

    The box must be wider than twice the cutoff so that the minimum image is the only
    image within reach.
    """
    pos = np.asarray(positions, dtype=float)
    if box is not None and np.any(box < 2.0 * cutoff):
        raise ValueError(f"periodic box {box.tolist()} is narrower than twice the "
                         f"neighbour cutoff {cutoff} A")
    z = pos[:, 2] if len(pos) else np.zeros(1)
    tree = _kdtree(pos, box, z.min(), np.ptp(z) + 2.0 * cutoff + 1.0)
    pairs = tree.query_pairs(cutoff, output_type="ndarray")
    if len(pairs) == 0:
        return Pairs(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3)),
                     np.zeros((0, 2), int))
    i, j = pairs[:, 0], pairs[:, 1]
    return Pairs(i, j, *minimum_image(pos[j] - pos[i], box))


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

    def pairs(self, moving) -> Pairs:
        """:class:`Pairs` as in :func:`neighbor_pairs`, with indices into the moving
        atoms followed by the fixed atoms ``near`` (the attribute, set at each search)."""
        moving = np.asarray(moving, dtype=float)
        if self._stale(moving):
            self._search(moving)
        both = np.vstack([moving, self.fixed[self.near]])
        d, shift = minimum_image(both[self.j] - both[self.i], self.box)
        keep = np.einsum("ij,ij->i", d, d) < self.cutoff ** 2
        return Pairs(self.i[keep], self.j[keep], d[keep], shift[keep])

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


def unwrap_bonded(positions, box, cutoff: float, label=None) -> np.ndarray:
    """Positions of atoms periodic in x, y made continuous: each bonded cluster (bonds
    shorter than ``cutoff``, minimum image) unwrapped along its bonds, each further cluster
    moved to the image of its centroid nearest the first cluster's.

    Raises ValueError if a cluster is bonded to its own periodic image (a layer or a
    chain that spans the box: it has no finite unwrapped form); ``label(n)`` names atom n
    in the message.
    """
    from scipy.sparse.csgraph import breadth_first_order
    x = check_positions(positions, "atoms")
    if box is None or len(x) == 0:
        return x.copy()
    i, j, d, _ = neighbor_pairs(x, cutoff, box)
    n = len(x)
    graph = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    bond = {**{(a, b): v for a, b, v in zip(i, j, d)},
            **{(b, a): -v for a, b, v in zip(i, j, d)}}
    out, done, first = x.copy(), np.zeros(n, dtype=bool), None
    for start in range(n):
        if done[start]:
            continue
        order, pred = breadth_first_order(graph, start, directed=False,
                                          return_predecessors=True)
        for a in order[1:]:
            out[a] = out[pred[a]] + bond[(pred[a], a)]
        if first is None:
            first = out[order].mean(axis=0)
        else:
            v = first - out[order].mean(axis=0)
            out[order] += v - minimum_image(v[None], box)[0][0]
        done[order] = True
    wound = np.flatnonzero(np.linalg.norm(out[j] - out[i] - d, axis=1) > 1e-6)
    if wound.size:
        label = label or (lambda m: f"atom {m}")
        k = wound[0]
        raise ValueError(f"paths of bonds join {label(i[k])} to {label(j[k])} both within "
                         f"the periodic box ({box[0]:.4f} x {box[1]:.4f} A) and across it: "
                         "the structure is bonded to its own periodic image (complete layers "
                         "or a chain around the box) and has no finite extent")
    return out


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
            # the sites inside the box, each once (the reach covers every site)
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


#: Orientations of an fcc electrode along z: layer spacing / nearest-neighbour distance
#: and in-plane nearest neighbours per atom.
FCC_ORIENTATIONS = {"001": (1.0 / np.sqrt(2.0), 4), "111": (np.sqrt(2.0 / 3.0), 6)}
#: Largest distance (A) of a frozen electrode atom from the site of the lattice measured
#: from its electrode; the leads use the ideal sites.
FROZEN_TOLERANCE = 0.1
#: Largest relative difference between the layer spacing and the spacing the measured
#: in-plane lattice implies (fcc, not strained along z), and between the two in-plane
#: lattice constants the box implies.
STRAIN_TOLERANCE = 0.01
#: Atoms of one layer lie within this distance (A) of the layer's mean z.
LAYER_TOLERANCE = 0.3


@dataclass(frozen=True)
class ElectrodeLattice:
    """The fcc lattice of one frozen electrode, measured from its atoms.

    ``lattice`` is exactly commensurate with the box and ``sites`` (in the order of the
    atoms given) are its ideal sites; ``deviation`` is each atom's distance from its site.
    ``stacking`` is "AB" for (001), "ABC" or "ACB" for (111) (the in-plane shift from one
    layer to the next one up, +z, is +(a1 + a2)/3 or -(a1 + a2)/3 with a2 at +60 degrees
    from a1). ``surface`` is the site of the layer that faces the filament.
    """

    lattice: LayerLattice
    orientation: str
    a0: float
    stacking: str
    n_layers: int
    sites: np.ndarray
    deviation: np.ndarray
    side: str

    @property
    def thickness(self) -> float:
        """Distance (A) between the outermost and the innermost layer along z."""
        return (self.n_layers - 1) * self.lattice.spacing

    @property
    def surface(self) -> np.ndarray:
        z = self.sites[:, 2]
        return self.sites[np.argmax(z) if self.side == "left" else np.argmin(z)]


def _layers(z: np.ndarray) -> np.ndarray:
    """Layer index (0 at lowest z) of each atom, from gaps in z."""
    order = np.argsort(z)
    gap = np.diff(z[order]) > LAYER_TOLERANCE
    index = np.empty(len(z), dtype=int)
    index[order] = np.concatenate([[0], np.cumsum(gap)])
    return index


def measure_electrode(positions, ids, box, side: str, what: str,
                      orientation: str = "auto") -> ElectrodeLattice:
    """Measure the fcc lattice of a frozen electrode (layers stacked along z).

    Orientation from the ratio of layer spacing to nearest-neighbour distance and the
    in-plane coordination (:data:`FCC_ORIENTATIONS`); in-plane lattice vectors from the
    nearest neighbours of an atom, made exactly commensurate with the periodic ``box``;
    stacking and in-plane registry from the layers' mean offsets. ``orientation`` "001" or
    "111" must match what is measured. Raises ValueError naming the expected and the found
    values (``ids``: LAMMPS atom IDs for messages; ``what`` names the electrode).
    """
    x = check_positions(positions, what)
    ids = np.asarray(ids)
    box = np.asarray(box, dtype=float)[:2]
    layer = _layers(x[:, 2])
    n_layers = int(layer.max()) + 1
    zl = np.array([x[layer == n, 2].mean() for n in range(n_layers)])
    spacing = np.diff(zl)
    d = float(spacing.mean()) if n_layers > 1 else np.nan
    if n_layers > 1 and np.max(np.abs(spacing - d)) > STRAIN_TOLERANCE * d:
        counts = np.bincount(layer)
        sparse = np.flatnonzero(counts < 0.5 * np.median(counts))
        stray = "".join(f"; the layer at z = {zl[n]:.3f} A holds only atom(s) "
                        f"{ids[layer == n][:10].tolist()} (a layer here holds "
                        f"{int(np.median(counts))}): check their type" for n in sparse)
        raise ValueError(f"{what}: its layers are unevenly spaced along z (spacings "
                         f"{np.round(spacing, 4).tolist()} A): an fcc electrode has equal "
                         f"spacings{stray}")
    # in-plane nearest neighbours of the first layer's atom nearest to the box centre
    # (periodic images; an incommensurate box then still shows the lattice)
    ref = x[layer == 0]
    ref = ref[np.argsort(np.linalg.norm(ref[:, :2] - 0.5 * box, axis=1), kind="stable")]
    shifts = np.array([[i, j] for i in (-1, 0, 1) for j in (-1, 0, 1)]) * box
    vec = (ref[:, None, :2] - ref[0, :2] + shifts[None, :, :]).reshape(-1, 2)
    r = np.linalg.norm(vec, axis=1)
    vec, r = vec[r > 0.5], r[r > 0.5]
    if len(vec) == 0:
        raise ValueError(f"{what}: a layer holds a single atom and the box is too small to "
                         "see its neighbours")
    a_nn = float(r.min())
    nn = vec[r < a_nn * (1 + 0.1)]
    order_found = len(nn)
    if n_layers == 1:            # one layer: the in-plane coordination alone
        found = {4: "001", 6: "111"}.get(order_found)
        if found != "001":
            raise ValueError(f"{what} has one atomic layer (z = {zl[0]:.3f} A) with "
                             f"{order_found} in-plane neighbours: at least two frozen layers "
                             "are needed to measure a (111) stacking")
        d = a_nn / np.sqrt(2.0)
    ratio = d / a_nn
    found = min(FCC_ORIENTATIONS, key=lambda o: abs(FCC_ORIENTATIONS[o][0] - ratio))
    expect_ratio, coordination = FCC_ORIENTATIONS[found]
    if abs(ratio / expect_ratio - 1) > 5 * STRAIN_TOLERANCE or order_found != coordination:
        raise ValueError(
            f"{what} is not an fcc (001) or (111) crystal along z: layer spacing "
            f"{d:.4f} A, in-plane nearest-neighbour distance {a_nn:.4f} A (ratio {ratio:.4f}; "
            f"fcc(001): 0.7071 with 4 in-plane neighbours, fcc(111): 0.8165 with 6), "
            f"{order_found} in-plane neighbours")
    if orientation not in ("auto", found):
        raise ValueError(
            f"{what} is fcc({found}) (layer spacing {d:.4f} A = {ratio:.4f} x the in-plane "
            f"nearest-neighbour distance {a_nn:.4f} A, {coordination} in-plane neighbours), "
            f"but lattice {orientation} was requested: leave the lattice to be measured "
            f"(-var lattice auto, the default) or give -var lattice {found}")
    # basis: a1 the neighbour closest to +x, a2 at +90 (001) or +60 (111) degrees from it
    angle = np.mod(np.arctan2(nn[:, 1], nn[:, 0]), 2 * np.pi)
    a1 = nn[np.argmin(np.minimum(angle, 2 * np.pi - angle))]
    turn = np.pi / 2 if found == "001" else np.pi / 3
    want = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]) @ a1
    a2 = nn[np.argmin(np.linalg.norm(nn - want, axis=1))]
    A = np.array([a1, a2])
    if abs(np.linalg.det(A)) < 0.1 * a_nn ** 2:
        raise ValueError(f"{what}: its layers are not two-dimensional lattices (in-plane "
                         f"neighbours {np.round(nn, 3).tolist()} A lie on a line)")
    # the box in this basis must be whole lattice vectors; then the lattice is refitted to
    # the box exactly
    M = np.diag(box) @ np.linalg.inv(A)
    Mi = np.rint(M)
    if np.max(np.abs(M - Mi)) > 0.05 or abs(np.linalg.det(Mi)) < 0.5:
        period = [np.linalg.norm(a1) if found == "111" else np.sqrt(2) * a_nn,
                  np.sqrt(3) * a_nn if found == "111" else np.sqrt(2) * a_nn]
        raise ValueError(
            f"the periodic box ({box[0]:.4f} x {box[1]:.4f} A) is not commensurate with "
            f"{what}: in units of its measured lattice (fcc({found}), nearest-neighbour "
            f"distance {a_nn:.4f} A, in-plane vectors {np.round(a1, 4).tolist()} and "
            f"{np.round(a2, 4).tolist()} A) the box vectors are {np.round(M, 3).tolist()}, "
            f"expected whole numbers (for x along a lattice row: Lx a multiple of "
            f"{period[0]:.4f} A, Ly of {period[1]:.4f} A); make Lx and Ly whole numbers "
            "of lattice periods, e.g. "
            f"{np.maximum(np.rint(box[0] / period[0]), 1) * period[0]:.4f} x "
            f"{np.maximum(np.rint(box[1] / period[1]), 1) * period[1]:.4f} A")
    A = np.linalg.solve(Mi, np.diag(box))
    lengths = np.linalg.norm(A, axis=1)
    if abs(lengths[0] / lengths[1] - 1) > STRAIN_TOLERANCE:
        raise ValueError(f"the periodic box strains {what}: with {Mi.astype(int).tolist()} "
                         f"lattice vectors its in-plane nearest-neighbour distances are "
                         f"{lengths[0]:.4f} and {lengths[1]:.4f} A, which differ by more than "
                         f"{100 * STRAIN_TOLERANCE:g}%")
    a_nn = float(np.sqrt(lengths[0] * lengths[1]))
    a0 = a_nn * np.sqrt(2.0)
    d_ideal = a0 / 2 if found == "001" else a0 / np.sqrt(3.0)
    if n_layers == 1:
        d = d_ideal
    if abs(d / d_ideal - 1) > STRAIN_TOLERANCE:
        raise ValueError(
            f"{what} is strained along z: layer spacing {d:.4f} A, but fcc({found}) with the "
            f"in-plane lattice of the box (a0 = {a0:.4f} A) has {d_ideal:.4f} A (accepted: "
            f"within {100 * STRAIN_TOLERANCE:g}%)")
    Ainv = np.linalg.inv(A)
    # registry: the mean offset of each layer modulo the lattice, relative to atom 0
    origin = ref[0, :2]
    frac = (x[:, :2] - origin) @ Ainv
    offset = np.zeros((n_layers, 2))
    for n in range(n_layers):
        # circular mean, then the median about it: an atom off its site moves no others
        f = frac[layer == n]
        mean = np.angle(np.exp(2j * np.pi * f).mean(axis=0)) / (2 * np.pi)
        offset[n] = mean + np.median(np.mod(f - mean + 0.5, 1.0) - 0.5, axis=0)
    shift = np.mod(np.diff(offset, axis=0), 1.0).reshape(-1, 2)
    if found == "001":
        stackings = {"AB": np.array([0.5, 0.5])}
    else:
        stackings = {"ABC": np.array([1, 1]) / 3, "ACB": np.array([2, 2]) / 3}
    dist = {name: np.abs(np.mod(shift - s + 0.5, 1.0) - 0.5).max(axis=1)
            for name, s in stackings.items()}
    seq = [min(dist, key=lambda k: dist[k][n]) for n in range(n_layers - 1)]
    if found == "001" and dist["AB"].max(initial=0.0) > 0.1:
        n = int(np.argmax(dist["AB"]))
        raise ValueError(f"{what}: layers {n} and {n + 1} (z = {zl[n]:.3f}, {zl[n + 1]:.3f} A) "
                         f"are not stacked as fcc(001) (in-plane shift "
                         f"{np.round(shift[n], 3).tolist()} lattice vectors, expected "
                         "[0.5, 0.5])")
    if found == "111":
        worst = [dist[s][n] for n, s in enumerate(seq)]
        if len(set(seq)) > 1 or max(worst) > 0.1:
            letters = "A"
            for s in seq:
                step = 1 if s == "ABC" else -1
                letters += "ABC"[("ABC".index(letters[-1]) + step) % 3]
            raise ValueError(
                f"{what}: its (111) layers stack as {letters} (from low to high z), not as "
                "fcc ABC... or ACB...; every layer must be shifted the same way from the one "
                "below (an ABAB sequence is hcp, a change of direction a twin or stacking "
                "fault inside the frozen slab)")
    stacking = seq[0] if seq else "AB"
    step_frac = stackings[stacking]
    step_xy = step_frac @ A
    # ideal sites: origin + n step + lattice vector nearest to each atom
    z0 = float(np.mean(zl - np.arange(n_layers) * d))
    base = np.column_stack([origin + (offset[0] @ A) + layer[:, None] * step_xy,
                            z0 + layer * d])
    f = np.rint((x[:, :2] - base[:, :2]) @ Ainv)
    sites = base.copy()
    sites[:, :2] += f @ A
    sites[:, :2] = np.mod(sites[:, :2], box)
    sites[:, :2] = np.where(sites[:, :2] >= box - 1e-9, 0.0, sites[:, :2])
    dev, _ = minimum_image(x - sites, box)
    deviation = np.linalg.norm(dev, axis=1)
    worst = int(np.argmax(deviation))
    if deviation[worst] > FROZEN_TOLERANCE:
        raise ValueError(
            f"{what}: atom {ids[worst]} is {deviation[worst]:.3f} A from its site of the "
            f"fcc({found}) lattice measured from the electrode (a0 = {a0:.4f} A, site "
            f"{np.round(sites[worst], 4).tolist()}); frozen atoms must lie within "
            f"{FROZEN_TOLERANCE} A of their sites")
    counts = np.bincount(layer, minlength=n_layers)
    per_layer = int(round(box[0] * box[1] / abs(np.linalg.det(A))))
    if np.any(counts != per_layer):
        n = int(np.flatnonzero(counts != per_layer)[0])
        raise ValueError(f"{what}: layer {n} (z = {zl[n]:.3f} A) holds {counts[n]} atoms; a "
                         f"complete layer of this periodic box has {per_layer}")
    keys = np.rint(sites * 1e3).astype(np.int64)
    _, first, many = np.unique(keys, axis=0, return_index=True, return_counts=True)
    if np.any(many > 1):
        raise ValueError(f"{what}: atoms share a lattice site (atom {ids[first[many > 1][0]]})")
    lat = LayerLattice(np.array([*A[0], 0.0]), np.array([*A[1], 0.0]),
                       np.array([*step_xy, d]), name=f"fcc({found}) {stacking}")
    return ElectrodeLattice(lat, found, float(a0), stacking, n_layers, sites, deviation, side)
