"""Ready-made geometries: a Cu filament on ideal fcc sites between two fcc electrodes.

Along z the structure is a stack of fcc layers (periodic in x and y):

    [frozen left electrode | mobile left electrode | filament | mobile right | frozen right]

The frozen outer layers never move in MD. The NEGF device is chosen with ``device``:

* ``"filament"`` (default, the paper's partition L | F | R): the filament atoms are the
  device; for the electrons each electrode is an ideal half-crystal that continues the
  frozen layers' lattice through the mobile electrode layers, whose atoms are counted at
  their lattice sites (:class:`ElectrodeSites`; a structure with an atom farther than
  SITE_TOLERANCE from its site is refused, and an MD run widens the device to "mobile"
  once that happens);
* ``"mobile"``: all mobile atoms (filament and mobile electrode layers) are the device at
  their actual positions and the frozen layers are the lead surface blocks, so thermal
  disorder of the electrodes enters the electronic structure (about 7x the atoms).

The filament occupies the lattice sites of its layers that lie within a radius r(z) of the
box centre: a cylinder, a cone or an hourglass with a neck.

In LAMMPS data files the regions are atom types: 1 filament (receives recoil forces),
2 mobile electrode, 3 and 4 the frozen electrode slabs; the one at lower z is the left
electrode. The electrodes' lattice (orientation, a0, stacking, registry) is measured from
the frozen slabs (:func:`measure_electrodes`), so a structure from any source runs on its
own lattice (docs/geometry.md states the contract).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .geometry import (A0_CU, A_NN_CU, STRAIN_TOLERANCE, ElectrodeLattice, LayerLattice,
                       check_box, check_positions, fcc_lattice, lattice_sites,
                       measure_electrode, minimum_image, unwrap_bonded)
from .hamiltonian import HoppingModel
from .leads import DEFAULT_ETA, DEFAULT_KMESH, LayeredLead
from .system import RecoilSystem

#: Region codes of :class:`Filament` atoms.
REGIONS = ("filament", "electrode_left", "electrode_right", "frozen_left", "frozen_right")
#: LAMMPS atom type of each region code.
TYPES = np.array([1, 2, 2, 3, 4])
FILAMENT_TYPE, ELECTRODE_TYPE, LEFT_TYPE, RIGHT_TYPE = 1, 2, 3, 4
#: What each atom type of a data file is.
TYPE_MEANING = ("1 filament (receives recoil forces), 2 mobile electrode, 3 and 4 the frozen "
                "electrode slabs (the one at lower z is the left electrode)")
SHAPES = ("cylinder", "cone", "hourglass")
CU_MASS = 63.55          # as in the Sheng EAM file (pair eam/alloy sets it anyway)


#: NEGF device choices and the atom types they hold (see the module docstring).
DEVICES = {"filament": (FILAMENT_TYPE,), "mobile": (FILAMENT_TYPE, ELECTRODE_TYPE)}
#: The way out for electrodes that are not ideal crystals (end of messages).
NOT_IDEAL = ("Electrodes that are not crystalline run with the 'mobile' NEGF device (-var "
             "device mobile: all mobile atoms at their positions) and periodic leads")
#: Largest distance (A) of a mobile electrode atom from its lattice site for which the
#: "filament" device still counts it as a site of the ideal lead: half the nearest-neighbour
#: distance (farther, the atom no longer belongs to its site). Thermal vibrations at 300 K
#: are about 0.15 A rms; atoms at the filament's foot reached 1.28 A in 150 ps runs.
SITE_TOLERANCE = 0.5 * A_NN_CU


#: The leads the electrons see: "periodic", the electrodes of the periodic box (an array
#: of filaments), or "infinite", laterally infinite ideal half-crystals continuing them
#: (one filament: the paper's semi-infinite leads; :func:`infinite_leads`).
LEADS = ("periodic", "infinite")
#: In-plane room (A) of a laterally infinite lead's surface patch beyond the hopping
#: cutoff of the device atoms, and room along z before the first layer left out of it:
#: how far device atoms may move before the patch no longer holds their lead neighbours.
PATCH_MARGIN = 1.5


def check_device(device: str) -> tuple:
    """Atom types of an NEGF device choice."""
    try:
        return DEVICES[device]
    except KeyError:
        raise ValueError(f"NEGF device must be one of {sorted(DEVICES)}, got {device!r}") \
            from None


#: Largest relative difference between an a0 given by the caller and the a0 measured
#: from the frozen layers (the leads use the measured one).
A0_TOLERANCE = 0.02
#: Largest relative difference between the measured a0 and Sheng's Cu a0 (A0_CU): the
#: tight-binding and EAM models are Cu's.
CU_TOLERANCE = 0.05
#: Accepted values of the ``lattice`` option ("auto": measured from the frozen layers).
LATTICES = ("auto", "001", "111")


@dataclass(frozen=True)
class Electrodes:
    """The two frozen electrodes of a typed structure, their lattices measured.

    The left electrode is the frozen one at lower z, whatever its type (``left_type``):
    the bias V is applied to the right one (higher z). ``sites`` holds the ideal sites of
    each frozen atom (in the order of the structure's atoms; NaN for other atoms).
    """

    left: ElectrodeLattice
    right: ElectrodeLattice
    left_type: int
    right_type: int
    sites: np.ndarray

    def of(self, side: str) -> ElectrodeLattice:
        return self.left if side == "left" else self.right

    @property
    def swapped(self) -> bool:
        return self.left_type != LEFT_TYPE

    def note(self) -> str:
        """What a user should know about the assignment of the electrodes ('' if none)."""
        if not self.swapped:
            return ""
        return (f"the frozen atoms of type {self.left_type} lie at lower z than those of type "
                f"{self.right_type}: type {self.left_type} is the left electrode (mu_L) and "
                f"the bias V is applied to type {self.right_type} (the electrode at higher z)")

    def describe(self) -> str:
        e = self.left
        return (f"fcc({e.orientation}) a0 = {e.a0:.4f} A, stacking {self.left.stacking} (left)"
                f" / {self.right.stacking} (right), frozen layers {self.left.n_layers} + "
                f"{self.right.n_layers}")


def _orientation(lattice) -> str:
    if isinstance(lattice, LayerLattice):
        return lattice.name[4:7] if lattice.name.startswith("fcc(") else "auto"
    if lattice is None:
        return "auto"
    if str(lattice) not in LATTICES:
        raise ValueError(f"lattice must be auto, 001 or 111, got {lattice}")
    return str(lattice)


def measure_electrodes(positions, types, box, ids=None, lattice="auto",
                       a0: float | None = None) -> Electrodes:
    """Measure both frozen electrodes (types 3 and 4) of a typed structure.

    ``lattice`` ("auto", "001", "111" or a LayerLattice whose orientation is required) and
    ``a0`` (if given, within A0_TOLERANCE of the measured value) are checks: the leads
    always use the lattice measured from the atoms. Raises ValueError naming the cause.
    """
    positions, types = check_positions(positions, "structure"), np.asarray(types)
    if box is None:
        raise ValueError("a periodic box (Lx, Ly) is needed: the electrodes are periodic "
                         "slabs in x and y")
    box = check_box(np.asarray(box, dtype=float).reshape(-1)[:2])
    orientation = _orientation(lattice)
    ids = np.arange(1, len(types) + 1) if ids is None else np.asarray(ids)
    for t in (LEFT_TYPE, RIGHT_TYPE):
        if not np.any(types == t):
            raise ValueError(f"no frozen electrode atoms of type {t}: types 3 and 4 are the "
                             "two frozen electrode slabs (the lower one in z is the left "
                             "electrode), both are needed")
    z3, z4 = positions[types == LEFT_TYPE, 2], positions[types == RIGHT_TYPE, 2]
    if not (z3.max() < z4.min() or z4.max() < z3.min()):
        raise ValueError(f"the frozen atoms of type 3 (z {z3.min():.3f} to {z3.max():.3f} A) "
                         f"and type 4 (z {z4.min():.3f} to {z4.max():.3f} A) overlap in z: "
                         "each type must be one slab, one at each end of the structure")
    lo, hi = (LEFT_TYPE, RIGHT_TYPE) if z3.max() < z4.min() else (RIGHT_TYPE, LEFT_TYPE)
    measured, sites = {}, np.full_like(positions, np.nan)
    for side, t in (("left", lo), ("right", hi)):
        m = types == t
        measured[side] = measure_electrode(positions[m], ids[m], box, side,
                                           f"the {side} frozen electrode (type {t})",
                                           orientation)
        sites[m] = measured[side].sites
    L, R = measured["left"], measured["right"]
    if L.orientation != R.orientation:
        raise ValueError(f"the left electrode is fcc({L.orientation}) and the right one "
                         f"fcc({R.orientation}): both must have the same orientation along z")
    if abs(L.a0 / R.a0 - 1) > STRAIN_TOLERANCE:
        raise ValueError(f"the electrodes have different lattice constants: a0 = {L.a0:.4f} A "
                         f"(left) and {R.a0:.4f} A (right), accepted: within "
                         f"{100 * STRAIN_TOLERANCE:g}%")
    if abs(L.a0 / A0_CU - 1) > CU_TOLERANCE:
        raise ValueError(f"the electrodes' lattice constant a0 = {L.a0:.4f} A is more than "
                         f"{100 * CU_TOLERANCE:g}% from Cu's {A0_CU:.4f} A (Sheng EAM, 0 K): "
                         "the tight-binding and EAM models are Cu's")
    if a0 is not None and abs(a0 / L.a0 - 1) > A0_TOLERANCE:
        raise ValueError(f"a0 = {a0} A was given, but the frozen layers measure a0 = "
                         f"{L.a0:.4f} A (accepted: within {100 * A0_TOLERANCE:g}%); leave a0 "
                         "out to use the measured lattice")
    return Electrodes(L, R, lo, hi, sites)


class ElectrodeSites:
    """Lattice sites of the mobile electrode atoms (type 2), continuing the lattice of the
    frozen electrode (types 3 and 4, measured by :func:`measure_electrodes`) on their side
    of the filament.

    ``sites`` (n, 3) and ``side`` (0 left, 1 right) per electrode atom, in the order of
    the type-2 atoms in ``positions``. Raises if an atom is farther than SITE_TOLERANCE
    from its site or two atoms share a site. ``lattice``: as in measure_electrodes, or the
    :class:`Electrodes` already measured.
    """

    def __init__(self, positions, types, box, lattice="auto", ids=None):
        positions, types = check_positions(positions, "structure"), np.asarray(types)
        self.box = np.asarray(box, dtype=float).reshape(-1)[:2]
        ids = np.arange(1, len(types) + 1) if ids is None else np.asarray(ids)
        self.electrodes = lattice if isinstance(lattice, Electrodes) else \
            measure_electrodes(positions, types, self.box, ids, lattice)
        mine = types == ELECTRODE_TYPE
        self.ids = ids[mine]
        x = positions[mine]
        self.sites, self.side = np.zeros_like(x), np.zeros(len(x), dtype=int)
        zmid = 0.5 * (self.electrodes.left.surface[2] + self.electrodes.right.surface[2])
        for s, el in enumerate((self.electrodes.left, self.electrodes.right)):
            lat = el.lattice
            a = np.array([lat.a1[:2], lat.a2[:2]])
            step = lat.step if s == 0 else -lat.step
            on = (x[:, 2] < zmid) if s == 0 else (x[:, 2] >= zmid)
            surface = el.surface                               # layer facing the filament
            u = (x[on, 2] - surface[2]) / step[2]
            best, dist = np.zeros((on.sum(), 3)), np.full(on.sum(), np.inf)
            # the nearest site among the corners of the enclosing cell, beyond the surface
            for n in (np.floor(u), np.floor(u) + 1):
                base = surface + n[:, None] * step
                f = np.floor(lat.fractional((x[on] - base)[:, :2]))
                for c in ((0, 0), (0, 1), (1, 0), (1, 1)):
                    site = base.copy()
                    site[:, :2] += (f + c) @ a
                    d, _ = minimum_image(x[on] - site, self.box)
                    r = np.where(n >= 1, np.linalg.norm(d, axis=1), np.inf)
                    closer = r < dist
                    best[closer], dist[closer] = site[closer], r[closer]
            best[:, :2] = np.mod(best[:, :2], self.box)
            self.sites[on], self.side[on] = best, s
        keys = np.rint(self.sites * 1e4).astype(np.int64)
        _, first, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
        if np.any(counts > 1):
            k = np.flatnonzero(np.all(keys == keys[first[counts > 1][0]], axis=1))
            raise ValueError(
                f"mobile electrode atoms {self.ids[k].tolist()} share lattice sites (both "
                f"nearest to {np.round(self.sites[k[0]], 3).tolist()}) of the {('left', 'right')[self.side[k[0]]]}"
                f" electrode's lattice continued from its frozen layers "
                f"({self.electrodes.of(('left', 'right')[self.side[k[0]]]).lattice.name}): "
                "the mobile electrode layers (type 2) do not continue the frozen lattice, "
                "as the 'filament' NEGF device needs; check that they are on the frozen "
                f"slab's lattice and stacking, or make them filament (type 1). {NOT_IDEAL}")
        self.check(x)

    def displacement(self, x) -> np.ndarray:
        """Distance (A) of each electrode atom from its site (minimum image in x, y)."""
        d, _ = minimum_image(np.asarray(x, dtype=float) - self.sites, self.box)
        return np.linalg.norm(d, axis=1)

    def off_site(self, x) -> tuple:
        """Largest distance (A) of an atom from its site, and the IDs of the atoms farther
        than SITE_TOLERANCE, farthest first."""
        d = self.displacement(x)
        bad = np.flatnonzero(d > SITE_TOLERANCE)
        return float(d.max(initial=0.0)), self.ids[bad[np.argsort(-d[bad])]]

    def check(self, x) -> float:
        """Largest distance from the sites (A); raises beyond SITE_TOLERANCE."""
        far, ids = self.off_site(x)
        if ids.size:
            raise ValueError(
                f"mobile electrode atoms {ids[:10].tolist()} are up to {far:.2f} A from their "
                f"lattice sites (> {SITE_TOLERANCE:.2f} A), the frozen layers' lattice "
                "continued: the 'filament' NEGF device treats the electrodes as ideal "
                f"crystals. {NOT_IDEAL}")
        return far

    def leads(self, hopping, lead_eta):
        """The two ideal leads: frozen sites plus the electrode sites of each side."""
        el = self.electrodes
        leads = []
        for s, side in enumerate(("left", "right")):
            frozen = el.of(side)
            block = np.vstack([frozen.sites, self.sites[self.side == s]])
            leads.append(LayeredLead(frozen.lattice, block, side, hopping, box=self.box,
                                     eta=lead_eta))
        return leads


def check_leads(leads: str, device: str = "filament", lead_eta=None, kpoints=1) -> None:
    """The lead choice (:data:`LEADS`) and what goes with it: laterally infinite leads
    hold the filament device alone, at the Gamma point, with their own broadening."""
    if leads not in LEADS:
        raise ValueError(f"leads must be one of {', '.join(LEADS)}, got {leads!r}")
    if leads == "periodic":
        return
    if device != "filament":
        raise ValueError(
            f"the NEGF device {device!r} (all mobile atoms at their positions) is not "
            "supported between laterally infinite leads: those continue the ideal "
            "electrodes from their surface layer, and a disordered electrode cell would "
            "have to be cut out of an infinite crystal (the whole contact surface "
            "becomes the device: far too expensive for MD updates). Use device filament "
            "with leads infinite (the paper's partition), or device mobile with leads "
            "periodic")
    if np.any(np.asarray(kpoints) != 1):
        raise ValueError(f"kpoints = {kpoints}: transverse Bloch vectors belong to a periodic "
                         "device; with laterally infinite leads the filament is alone (their "
                         "zone mesh is inf_kmesh). Use kpoints 1 with leads infinite")
    if lead_eta:
        raise ValueError(f"lead_eta = {lead_eta} eV broadens the periodic leads; laterally "
                         "infinite leads have their own broadening, inf_eta")


def infinite_leads(sites: "ElectrodeSites", device, hopping: HoppingModel = HoppingModel(),
                   kmesh: int = DEFAULT_KMESH, eta: float = DEFAULT_ETA,
                   margin: float | None = None) -> tuple:
    """The two laterally infinite ideal half-crystals that continue the electrodes of
    ``sites`` (frozen layers and mobile electrode layers at their sites) from the layer
    facing the filament outward: the paper's semi-infinite leads for one filament at
    ``device`` (unwrapped positions, A).

    Each is a :class:`~lammps_recoil.leads.LayeredLead` without a box (Green's functions
    on a ``kmesh`` x ``kmesh`` zone mesh with broadening ``eta``, eV) whose block holds the
    sites of its first layers within r_off + ``margin`` in plane of a device atom, as many
    layers as keep every device atom r_off + ``margin`` from the first layer left out
    (``margin`` in A, default :data:`PATCH_MARGIN`). The electrode layers of the periodic
    box must be complete (checked as for periodic leads).
    """
    device = check_positions(device, "device")
    reach = hopping.r_off + (PATCH_MARGIN if margin is None else margin)
    tree = cKDTree(device[:, :2])
    centre = device[:, :2].mean(axis=0)
    radius = float(np.linalg.norm(device[:, :2] - centre, axis=1).max()) + reach
    out = []
    for periodic in sites.leads(hopping, None):
        lat, origin, step = periodic.lattice, periodic.origin, periodic.outward
        gap = lambda n: np.min((device[:, 2] - origin[2] - n * step[2]) * -np.sign(step[2]))
        n_layers = next(n for n in range(1, 100) if gap(n) >= reach)
        block = []
        for n in range(n_layers):
            layer = lattice_sites(lat, origin + n * step, [0], center_xy=centre, radius=radius)
            block.append(layer[tree.query(layer[:, :2])[0] <= reach])
        out.append(LayeredLead(lat, np.vstack(block), periodic.side, hopping, kmesh=kmesh,
                               eta=eta))
    return tuple(out)


def system_from_types(positions, types, box, orientation="auto", a0: float | None = None,
                      hopping: HoppingModel = HoppingModel(), lead_eta=None, ids=None,
                      device: str = "filament", sites=None, electrodes=None,
                      leads: str = "periodic", inf_kmesh: int = DEFAULT_KMESH,
                      inf_eta: float = DEFAULT_ETA, **kw) -> RecoilSystem:
    """NEGF system of a typed structure (types 1 filament, 2 mobile electrode, 3 and 4
    frozen electrodes; the one at lower z is the left) with the given ``device`` (module
    docstring).

    The leads' lattice is measured from the frozen layers (:func:`measure_electrodes`;
    ``orientation`` and ``a0`` are checked against it) and the leads hold its ideal sites.
    ``box``: (Lx, Ly), or a 3-vector whose z length is ignored. Device atoms keep their
    order in ``positions``; ``kw`` goes to RecoilSystem. The "filament" device places the
    electrode atoms on ``sites`` (an :class:`ElectrodeSites` of these positions, made here
    if not given; an MD driver keeps it to check the electrodes as they move).

    ``leads``: "periodic" (the box's electrodes, broadened by ``lead_eta``) or "infinite"
    (:func:`infinite_leads` on an ``inf_kmesh`` x ``inf_kmesh`` mesh with broadening
    ``inf_eta``, eV): the filament alone, without a box, its atoms unwrapped across the
    periodic box (:func:`~lammps_recoil.geometry.unwrap_bonded`; the system's positions
    are the unwrapped ones).
    """
    positions, types = check_positions(positions, "structure"), np.asarray(types)
    members = check_device(device)
    check_leads(leads, device, lead_eta, kw.get("kpoints", 1))
    check_types(types, ids)
    electrodes = electrodes or (sites.electrodes if sites is not None else None)
    if electrodes is None:
        electrodes = measure_electrodes(positions, types, box, ids, orientation, a0)
    box = check_box(np.asarray(box, dtype=float).reshape(-1)[:2])
    inside = np.isin(types, members)
    x, labels = positions[inside], None if ids is None else np.asarray(ids)[inside]
    if device == "filament":
        sites = sites or ElectrodeSites(positions, types, box, electrodes, ids)
    if leads == "infinite":
        try:
            x = unwrap_bonded(x, box, hopping.r_off,
                              None if labels is None else (lambda n: f"atom {labels[n]}"))
        except ValueError as err:
            raise ValueError(f"the filament cannot stand alone between laterally infinite "
                             f"leads: {err}; use leads periodic for it") from None
        pair, box = infinite_leads(sites, x, hopping, inf_kmesh, inf_eta), None
    elif device == "filament":
        pair = sites.leads(hopping, lead_eta)
    else:
        pair = [LayeredLead(electrodes.of(side).lattice, electrodes.of(side).sites, side,
                            hopping, box=box, eta=lead_eta) for side in ("left", "right")]
    return RecoilSystem(x, *pair, hopping, box=box, ids=labels, **kw)


def check_types(types, ids=None) -> None:
    """Atom types must be 1-4 (module docstring) and the filament not empty."""
    types = np.asarray(types)
    ids = np.arange(1, len(types) + 1) if ids is None else np.asarray(ids)
    bad = np.flatnonzero((types < 1) | (types > 4))
    if bad.size:
        raise ValueError(f"atoms {ids[bad[:10]].tolist()} have type {types[bad[0]]}: 4 atom "
                         f"types are expected: {TYPE_MEANING}")
    if not np.any(types == FILAMENT_TYPE):
        raise ValueError(f"the filament is empty: no atoms of type {FILAMENT_TYPE} "
                         f"({TYPE_MEANING})")


@dataclass
class Filament:
    """Atoms of a filament geometry and what each of them is.

    ``region[i]`` indexes :data:`REGIONS`; ``layer[i]`` is the fcc layer (0 = outermost
    frozen layer on the left); ``box`` the periodic (Lx, Ly) and ``zbounds`` the extent
    along z used for a LAMMPS box.
    """

    positions: np.ndarray
    region: np.ndarray
    layer: np.ndarray
    box: np.ndarray
    zbounds: tuple
    orientation: str
    a0: float
    params: dict

    def mask(self, *names) -> np.ndarray:
        codes = [REGIONS.index(n) for n in names]
        return np.isin(self.region, codes)

    @property
    def types(self) -> np.ndarray:
        """LAMMPS atom types (1 filament, 2 electrode, 3/4 frozen left/right)."""
        return TYPES[self.region]

    def device(self, device: str = "filament") -> np.ndarray:
        """Indices of the atoms of an NEGF device choice (module docstring)."""
        return np.flatnonzero(np.isin(self.types, check_device(device)))

    def leads(self, hopping: HoppingModel = HoppingModel(), **kw):
        lat = fcc_lattice(self.orientation, self.a0)
        return tuple(LayeredLead(lat, self.positions[self.mask(f"frozen_{s}")], s, hopping,
                                 box=self.box, **kw) for s in ("left", "right"))

    def recoil_system(self, hopping: HoppingModel = HoppingModel(), lead_eta=None,
                      device: str = "filament", **kw) -> RecoilSystem:
        """The NEGF system of this geometry; ``device``: "filament" or "mobile"."""
        return system_from_types(self.positions, self.types, self.box, self.orientation,
                                 self.a0, hopping, lead_eta, device=device, **kw)

    def isolated_system(self, hopping: HoppingModel = HoppingModel(),
                        kmesh: int = DEFAULT_KMESH, eta: float = DEFAULT_ETA,
                        **kw) -> RecoilSystem:
        """The filament alone between two laterally infinite ideal fcc half-crystals that
        continue the electrodes (:func:`infinite_leads`: every electrode layer ideal; lead
        Green's functions on a ``kmesh`` x ``kmesh`` zone mesh with broadening ``eta``,
        eV)."""
        return system_from_types(self.positions, self.types, self.box, self.orientation,
                                 self.a0, hopping, leads="infinite", inf_kmesh=kmesh,
                                 inf_eta=eta, **kw)

    def write_data(self, path) -> None:
        """Write a LAMMPS data file (atom_style atomic, metal units, types 1-4)."""
        write_data(path, self.positions, self.types, self.box, self.zbounds,
                   "LAMMPS data file: Cu filament between fcc electrodes (lammps-recoil) "
                   + " ".join(f"{k}={v}" for k, v in self.params.items()))


def write_data(path, positions, types, box, zbounds, title: str) -> None:
    """Write a LAMMPS data file (atom_style atomic, metal units, 4 Cu atom types, IDs 1..N
    in the order given); ``box`` (Lx, Ly) from 0, ``zbounds`` (zlo, zhi)."""
    lo, hi = zbounds
    lines = [title, "", f"{len(positions)} atoms", "4 atom types", "",
             f"0.0 {box[0]:.10f} xlo xhi", f"0.0 {box[1]:.10f} ylo yhi",
             f"{lo:.10f} {hi:.10f} zlo zhi", "", "Masses", ""]
    lines += [f"{t} {CU_MASS}" for t in range(1, 5)]
    lines += ["", "Atoms # atomic", ""]
    lines += [f"{n + 1} {t} {x:.10f} {y:.10f} {z:.10f}"
              for n, (t, (x, y, z)) in enumerate(zip(types, positions))]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def _box(orientation, nx, ny, a0):
    if orientation == "001":
        return np.array([nx * a0, ny * a0])
    a_nn = a0 / np.sqrt(2.0)
    return np.array([nx * a_nn, ny * a_nn * np.sqrt(3.0)])


def radius_profile(shape: str, u: np.ndarray, r_neck: float, r_base: float) -> np.ndarray:
    """Filament radius at reduced height u in [0, 1] across the gap."""
    if shape == "cylinder":
        return np.full_like(u, r_neck)
    if shape == "cone":
        return r_base + (r_neck - r_base) * u
    if shape == "hourglass":
        return r_neck + (r_base - r_neck) * (2.0 * np.abs(u - 0.5)) ** 2
    raise ValueError(f"filament shape must be one of {SHAPES}, got {shape!r}")


def build_filament(orientation: str = "001", nx: int = 4, ny: int = 4,
                   frozen_layers: int = 4, electrode_layers: int = 3, gap_layers: int = 6,
                   shape: str = "hourglass", neck_radius: float = 2.9,
                   base_radius: float = 3.7, a0: float = A0_CU) -> Filament:
    """Two periodic fcc electrodes joined by a filament on ideal fcc sites.

    ``nx``, ``ny``: transverse size in cubic cells ((001)) or in rectangular cells of
    a_nn x sqrt(3) a_nn ((111)). ``frozen_layers``: outer layers held fixed on each side
    (the NEGF lead blocks). ``electrode_layers``: mobile electrode
    layers per side. ``gap_layers``: filament layers. Radii in Angstrom: for a cone the
    radius goes from ``base_radius`` on the left to ``neck_radius`` on the right; for an
    hourglass from ``base_radius`` at both ends to ``neck_radius`` in the middle.
    """
    for name, v in (("nx", nx), ("ny", ny), ("frozen_layers", frozen_layers),
                    ("gap_layers", gap_layers)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v}")
    if electrode_layers < 0 or int(electrode_layers) != electrode_layers:
        raise ValueError(f"electrode_layers must be a non-negative integer, got "
                         f"{electrode_layers}")
    for name, v in (("neck_radius", neck_radius), ("base_radius", base_radius),
                    ("a0 (the lattice constant)", a0)):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive length in A, got {v}")
    if shape not in SHAPES:
        raise ValueError(f"filament shape must be one of {SHAPES}, got {shape!r}")
    lat = fcc_lattice(orientation, a0)
    box = _box(orientation, nx, ny, a0)
    widest = max(neck_radius, base_radius if shape != "cylinder" else neck_radius)
    if min(box) - 2.0 * widest < a0:
        raise ValueError(f"filament radius {widest} A is too wide for the {box[0]:.2f} x "
                         f"{box[1]:.2f} A electrodes: its periodic images would come closer "
                         f"than {a0:.2f} A (second neighbours)")
    n_el = frozen_layers + electrode_layers
    n_tot = 2 * n_el + gap_layers
    origin = np.array([0.25 * lat.a1[0] + 0.1 * a0, 0.25 * a0, 0.0])
    pos, region, layer = [], [], []
    centre = 0.5 * box
    for n in range(n_tot):
        sites = lattice_sites(lat, origin, [n], box=box)
        if n < frozen_layers:
            code = REGIONS.index("frozen_left")
        elif n < n_el:
            code = REGIONS.index("electrode_left")
        elif n < n_el + gap_layers:
            u = (n - n_el + 0.5) / gap_layers
            r = radius_profile(shape, np.array([u]), neck_radius, base_radius)[0]
            dist = np.linalg.norm(sites[:, :2] - centre, axis=1)
            sites = sites[dist <= r + 1e-6]
            if len(sites) == 0:
                raise ValueError(f"filament layer {n - n_el} at radius {r:.2f} A holds no "
                                 "lattice site: the filament does not join the electrodes")
            code = REGIONS.index("filament")
        elif n < n_tot - frozen_layers:
            code = REGIONS.index("electrode_right")
        else:
            code = REGIONS.index("frozen_right")
        pos.append(sites)
        region.append(np.full(len(sites), code))
        layer.append(np.full(len(sites), n))
    pos = np.concatenate(pos)
    pos[:, 2] -= 0.5 * (n_tot - 1) * lat.spacing      # centre the stack on z = 0
    pad = lat.spacing
    zb = (float(pos[:, 2].min() - pad), float(pos[:, 2].max() + pad))
    params = dict(orientation=orientation, nx=nx, ny=ny, frozen_layers=frozen_layers,
                  electrode_layers=electrode_layers, gap_layers=gap_layers, shape=shape,
                  neck_radius=neck_radius, base_radius=base_radius, a0=a0)
    return Filament(pos, np.concatenate(region), np.concatenate(layer), box, zb,
                    orientation, a0, params)
