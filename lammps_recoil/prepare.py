"""Structures from other tools as typed LAMMPS data files (docs/geometry.md, "Structures
from other tools").

:func:`prepare` takes any structure ASE reads (extxyz, POSCAR, cif, lammps-data,
lammps-dump, ...) or an ``ase.Atoms`` and assigns the atom types of the data-file contract:
the crystalline fcc slabs at the low-z and the high-z end are the electrodes, their
outermost layers (layers x spacing at least the EAM cutoff) frozen (types 3 left, 4
right), the rest of each crystalline slab mobile (type 2); every atom between them is the
filament (type 1). A crystalline slab is the largest stack of layers from the end that
:func:`~lammps_recoil.geometry.measure_electrode` accepts as one fcc crystal (complete
layers of the periodic box, every atom within FROZEN_TOLERANCE of its site, equal layer
spacings, one stacking). The electrodes' extent can instead be given in Angstrom
(``electrode`` thickness or ``z_planes``). The types then go the way of any data file:
:func:`~lammps_recoil.builders.system_from_types` measures the frozen slabs' lattice and
builds the NEGF system of the paper's partition L | F | R (Eqs. 1-10).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .builders import (ELECTRODE_TYPE, FILAMENT_TYPE, LEFT_TYPE, RIGHT_TYPE, Electrodes,
                       measure_electrodes, system_from_types, write_data)
from .geometry import _layers, measure_electrode
from .system import RecoilSystem

#: Cutoff radius (A) of potentials/Cu_Sheng2011.eam.alloy (line 5; check.eam_cutoff reads
#: any potential's): the default thickness of the frozen slabs.
EAM_CUTOFF = 6.5
#: The element of the tight-binding and EAM models.
ELEMENT = "Cu"
SIDES = ("left", "right")


@dataclass
class PreparedStructure:
    """Atoms of a structure with the data file's types (1 filament, 2 mobile electrode,
    3 and 4 frozen left and right), in the order read (LAMMPS IDs 1..N).

    ``box``: periodic (Lx, Ly); ``zbounds``: the data file's z extent (one layer spacing
    beyond the outermost atoms); ``layers[side]``: (frozen, mobile) layer counts of each
    electrode; ``electrodes``: the frozen slabs' measured lattices.
    """

    positions: np.ndarray
    types: np.ndarray
    box: np.ndarray
    zbounds: tuple
    layers: dict
    electrodes: Electrodes
    source: str

    @property
    def ids(self) -> np.ndarray:
        return np.arange(1, len(self.types) + 1)

    def describe(self) -> str:
        counts = ", ".join(f"{t}: {int(np.sum(self.types == t))}" for t in range(1, 5))
        el = ", ".join(f"{s} {f} frozen + {m} mobile layers"
                       for s, (f, m) in self.layers.items())
        return (f"{self.source}: {len(self.types)} Cu atoms, box {self.box[0]:.4f} x "
                f"{self.box[1]:.4f} A; {self.electrodes.describe()}; electrodes: {el}; "
                f"atoms per type {counts}")

    def write_data(self, path) -> None:
        """LAMMPS data file (atom_style atomic, metal units, types 1-4)."""
        write_data(path, self.positions, self.types, self.box, self.zbounds,
                   f"Cu structure from {self.source} (lammps-recoil prepare)")

    def recoil_system(self, device: str = "filament", **kw) -> RecoilSystem:
        """The NEGF system (``kw`` as for builders.system_from_types)."""
        return system_from_types(self.positions, self.types, self.box, ids=self.ids,
                                 device=device, electrodes=self.electrodes, **kw)


def read_structure(path: str, format: str | None = None):
    """The last frame of any file ASE reads (LAMMPS files with ``format``, e.g.
    "lammps-data", as ASE cannot tell them by name)."""
    import os

    import ase.io
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    kw = {"atom_style": "atomic"} if format == "lammps-data" else {}
    try:
        return ase.io.read(path, format=format, **kw)
    except Exception as err:            # each ASE reader has its own parse errors
        raise ValueError(f"{path}: ASE cannot read it{f' as {format}' if format else ''} "
                         f"({type(err).__name__}: {err}); give the format (ase.io.read "
                         "names, e.g. extxyz, vasp, cif, lammps-data, lammps-dump-text)") \
            from None


def _check_cell(atoms, source: str) -> np.ndarray:
    """(Lx, Ly) of an orthogonal cell periodic in x and y."""
    cell = np.asarray(atoms.cell[:], dtype=float)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not (pbc[0] and pbc[1]) or cell[0, 0] <= 0 or cell[1, 1] <= 0:
        raise ValueError(f"{source}: no periodic cell in x and y (pbc {pbc.tolist()}, cell "
                         f"{np.round(cell, 4).tolist()} A): the electrodes are slabs "
                         "periodic in x and y; give the structure its periodic cell")
    off = [abs(cell[0, 1]), abs(cell[0, 2]), abs(cell[1, 0]), abs(cell[1, 2]),
           abs(cell[2, 0]), abs(cell[2, 1])]
    if max(off) > 1e-6:
        raise ValueError(f"{source}: the cell {np.round(cell, 4).tolist()} A is not "
                         "orthogonal with a along x, b along y and c along z (the deck's "
                         "box is orthogonal, periodic in x and y); for a (111) slab build "
                         "a rectangular cell, e.g. ase.build.fcc111(..., orthogonal=True)")
    return np.array([cell[0, 0], cell[1, 1]])


def _check_species(atoms, source: str) -> None:
    """All atoms Cu. LAMMPS files carry no element: ASE then numbers the species by atom
    type (its 'type' array), and the deck's pair_coeff makes every type Cu."""
    numbers = np.asarray(atoms.numbers)
    if "type" in atoms.arrays and np.array_equal(numbers, atoms.arrays["type"]):
        return
    symbols = np.array(atoms.get_chemical_symbols())
    bad = np.flatnonzero(symbols != ELEMENT)
    if bad.size:
        found = dict(zip(*np.unique(symbols[bad], return_counts=True)))
        raise ValueError(f"{source}: atoms other than {ELEMENT}: "
                         f"{ {str(k): int(v) for k, v in found.items()} } (first atoms "
                         f"{(bad[:10] + 1).tolist()}, numbered as in the data file); the "
                         f"tight-binding and EAM models are {ELEMENT}'s")


def _count(thickness: float, spacing: float) -> int:
    """Layers n whose n x spacing is at least ``thickness`` (check.py's rule)."""
    return int(np.ceil(thickness / spacing - 1e-9))


def _crystal_layers(x, layer_order, layer, box, side, source) -> int:
    """The number of layers, from the end, that form one fcc crystal (at least 2)."""
    n_best, error = 0, None
    what = f"the {'low' if side == 'left' else 'high'}-z end slab"
    for n in range(2, len(layer_order) + 1):
        m = np.isin(layer, layer_order[:n])
        try:
            measure_electrode(x[m], np.flatnonzero(m) + 1, box, side, what)
        except ValueError as err:
            error = err
            break
        n_best = n
    if n_best == 0:
        end = "low" if side == "left" else "high"
        raise ValueError(f"{source}: fewer than two crystalline end slabs: the outermost "
                         f"two layers at the {end}-z end are not an fcc crystal ({error}); "
                         "the electrodes must be fcc Cu slabs, complete layers of the "
                         "periodic cell, at both ends along z")
    return n_best


def prepare(structure, frozen: float = EAM_CUTOFF, electrode=None, z_planes=None,
            format: str | None = None) -> PreparedStructure:
    """Typed atoms of a structure (module docstring): a path ASE reads or an ase.Atoms.

    ``frozen`` (A): each frozen slab is the fewest outermost layers whose count x layer
    spacing reaches it (default the Sheng EAM cutoff, as ``lammps-recoil check`` asks).
    The electrodes are the crystalline end slabs unless given: ``electrode`` (A, one value
    or (left, right)): the outermost layers whose count x spacing reaches it;
    ``z_planes`` (z_left, z_right) in A: the layers (atoms within 0.3 A in z) whose mean
    z lies below z_left and above z_right. Raises ValueError naming what was found.
    """
    if isinstance(structure, str) or hasattr(structure, "__fspath__"):
        source = str(structure)
        atoms = read_structure(source, format)
    else:
        atoms, source = structure, "structure"
    if electrode is not None and z_planes is not None:
        raise ValueError("give the electrodes' extent either as a thickness (electrode) or as "
                         "z planes, not both")
    if not frozen > 0:
        raise ValueError(f"the frozen thickness must be positive (A), got {frozen}")
    if len(atoms) == 0:
        raise ValueError(f"{source}: no atoms")
    box = _check_cell(atoms, source)
    _check_species(atoms, source)
    x = np.array(atoms.positions, dtype=float)
    x[:, :2] = np.mod(x[:, :2], box)
    x[:, :2] = np.where(x[:, :2] >= box - 1e-9, 0.0, x[:, :2])
    layer = _layers(x[:, 2])
    n_total = int(layer.max()) + 1
    zl = np.array([x[layer == n, 2].mean() for n in range(n_total)])
    if n_total < 3:
        raise ValueError(f"{source}: {n_total} atomic layer(s) along z: a filament between "
                         "two fcc electrode slabs needs layers at both ends and between")
    orders = {"left": np.arange(n_total), "right": np.arange(n_total)[::-1]}
    # electrode layers per side
    n_el = {}
    if z_planes is not None:
        zlo, zhi = (float(z) for z in z_planes)
        if not zlo < zhi:
            raise ValueError(f"z planes ({zlo}, {zhi}) A: the left one must lie below the "
                             "right one")
        n_el = {"left": int(np.sum(zl < zlo)), "right": int(np.sum(zl > zhi))}
    elif electrode is not None:
        thick = np.asarray(electrode, dtype=float).reshape(-1)
        if thick.size not in (1, 2) or not np.all(thick >= 0):
            raise ValueError(f"electrode thickness: one value or two (left, right), >= 0 A; "
                             f"got {thick.tolist()}")
        thick = np.broadcast_to(thick, (2,))
        for s, t in zip(SIDES, thick):
            o = orders[s]
            n_el[s] = _count(t, abs(zl[o[1]] - zl[o[0]])) if t > 0 else 0
    else:
        n_el = {s: _crystal_layers(x, orders[s], layer, box, s, source) for s in SIDES}
        if n_el["left"] + n_el["right"] > n_total - 1:
            raise ValueError(f"{source}: all {n_total} layers (z {zl[0]:.3f} to "
                             f"{zl[-1]:.3f} A) form one fcc crystal: no filament between two "
                             "crystalline end slabs; give the electrodes' extent (electrode "
                             "thickness or z planes) to choose the filament")
    if n_el["left"] + n_el["right"] > n_total - 1:
        raise ValueError(f"{source}: the electrodes ({n_el['left']} + {n_el['right']} "
                         f"layers) leave no filament layer of the {n_total} layers")
    types = np.full(len(x), FILAMENT_TYPE)
    layers = {}
    for s, frozen_type in zip(SIDES, (LEFT_TYPE, RIGHT_TYPE)):
        o = orders[s]
        d = abs(zl[o[1]] - zl[o[0]])
        n_f = _count(frozen, d)
        if n_el[s] < n_f:
            end = "low" if s == "left" else "high"
            span = sorted((zl[o[0]], zl[o[max(n_el[s] - 1, 0)]]))
            found = (f"{n_el[s]} layers (z {span[0]:.3f} to {span[1]:.3f} A), "
                     f"{n_el[s] * d:.3f} A (layers x spacing {d:.4f} A)")
            lz = float(atoms.cell[2, 2]) if atoms.pbc[2] else 0.0
            wrapped = (f"; its atoms span the cell's whole z length ({zl[0]:.3f} to "
                       f"{zl[-1]:.3f} of {lz:.3f} A): if the structure was wrapped into its "
                       "periodic cell along z, unwrap it so that the electrodes are the two "
                       "ends" if lz > 0 and zl[-1] - zl[0] > lz - 1.5 * d else "")
            raise ValueError(f"{source}: the {s} electrode at the {end}-z end is {found}: "
                             f"thinner than the frozen slab of {n_f} layers (>= {frozen} A, the "
                             "frozen thickness; default the EAM cutoff) it needs; give the "
                             f"structure thicker fcc electrode slabs{wrapped}")
        types[np.isin(layer, o[:n_f])] = frozen_type
        types[np.isin(layer, o[n_f:n_el[s]])] = ELECTRODE_TYPE
        layers[s] = (n_f, n_el[s] - n_f)
    ids = np.arange(1, len(x) + 1)
    # the frozen slabs measured here; the mobile electrode atoms' sites are checked with
    # the NEGF device chosen later (the 'filament' device needs them on their sites)
    electrodes = measure_electrodes(x, types, box, ids)
    pad = electrodes.left.lattice.spacing
    zbounds = (float(x[:, 2].min() - pad), float(x[:, 2].max() + pad))
    return PreparedStructure(x, types, box, zbounds, layers, electrodes, source)


def system_from_atoms(structure, device: str = "filament", frozen: float = EAM_CUTOFF,
                      electrode=None, z_planes=None, format: str | None = None,
                      **kw) -> RecoilSystem:
    """The NEGF system of any structure in one call: :func:`prepare`'s types, then
    builders.system_from_types (lattice measured, ``kw`` to it and to RecoilSystem)."""
    prep = prepare(structure, frozen, electrode, z_planes, format)
    return prep.recoil_system(device, **kw)
