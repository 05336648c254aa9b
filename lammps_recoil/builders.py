"""Ready-made geometries: a Cu filament on ideal fcc sites between two fcc electrodes.

Along z the structure is a stack of fcc layers (periodic in x and y):

    [frozen left electrode | mobile left electrode | filament | mobile right | frozen right]

The frozen outer layers never move in MD and are the NEGF lead surface blocks (ideal
half-spaces continue beyond them); everything mobile is the NEGF device. The filament
occupies the lattice sites of its layers that lie within a radius r(z) of the box centre:
a cylinder, a cone or an hourglass with a neck.

In LAMMPS data files the regions are atom types: 1 filament (receives recoil forces),
2 mobile electrode, 3 frozen left electrode, 4 frozen right electrode.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import A0_CU, fcc_lattice, lattice_sites
from .hamiltonian import HoppingModel
from .leads import LayeredLead
from .system import RecoilSystem

#: Region codes of :class:`Filament` atoms.
REGIONS = ("filament", "electrode_left", "electrode_right", "frozen_left", "frozen_right")
#: LAMMPS atom type of each region code.
TYPES = np.array([1, 2, 2, 3, 4])
FILAMENT_TYPE, ELECTRODE_TYPE, LEFT_TYPE, RIGHT_TYPE = 1, 2, 3, 4
SHAPES = ("cylinder", "cone", "hourglass")
CU_MASS = 63.55          # as in the Sheng EAM file (pair eam/alloy sets it anyway)


def system_from_types(positions, types, box, orientation: str = "001", a0: float = A0_CU,
                      hopping: HoppingModel = HoppingModel(), lead_eta=None, ids=None,
                      **kw) -> RecoilSystem:
    """NEGF system of a typed structure: types 1-2 form the device, 3 and 4 the leads.

    Device atoms keep their order in ``positions``; ``kw`` goes to RecoilSystem.
    """
    positions, types = np.asarray(positions, dtype=float), np.asarray(types)
    lat = fcc_lattice(orientation, a0)
    leads = []
    for side, t in (("left", LEFT_TYPE), ("right", RIGHT_TYPE)):
        if not np.any(types == t):
            raise ValueError(f"no frozen {side} electrode atoms (type {t}): the {side} lead "
                             "is missing")
        leads.append(LayeredLead(lat, positions[types == t], side, hopping, box=box,
                                 eta=lead_eta))
    device = np.isin(types, (FILAMENT_TYPE, ELECTRODE_TYPE))
    if not np.any(types == FILAMENT_TYPE):
        raise ValueError(f"the filament is empty: no atoms of type {FILAMENT_TYPE}")
    system = RecoilSystem(positions[device], *leads, hopping, box=box, **kw)
    if ids is not None:
        system.update(positions[device], np.asarray(ids)[device])
    return system


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

    @property
    def device(self) -> np.ndarray:
        """Indices of the NEGF device atoms (filament and mobile electrode layers)."""
        return np.flatnonzero(np.isin(self.types, (FILAMENT_TYPE, ELECTRODE_TYPE)))

    def leads(self, hopping: HoppingModel = HoppingModel(), **kw):
        lat = fcc_lattice(self.orientation, self.a0)
        return tuple(LayeredLead(lat, self.positions[self.mask(f"frozen_{s}")], s, hopping,
                                 box=self.box, **kw) for s in ("left", "right"))

    def recoil_system(self, hopping: HoppingModel = HoppingModel(), lead_eta=None,
                      **kw) -> RecoilSystem:
        """The NEGF system of this geometry (device = all mobile atoms)."""
        return system_from_types(self.positions, self.types, self.box, self.orientation,
                                 self.a0, hopping, lead_eta, **kw)

    def isolated_system(self, hopping: HoppingModel = HoppingModel(), kmesh: int = 64,
                        eta: float = 0.02, radius: float | None = None,
                        **kw) -> RecoilSystem:
        """The filament alone between two laterally infinite ideal fcc half-spaces.

        The half-spaces continue the electrodes' lattice (every electrode layer is ideal);
        their surface patches hold the sites of the two layers next to the filament
        within ``radius`` of its axis (default: widest filament layer + 2 r_off). Lead
        Green's functions are k sums over a ``kmesh`` x ``kmesh`` zone mesh with
        broadening ``eta`` (eV).
        """
        lat = fcc_lattice(self.orientation, self.a0)
        fil = self.mask("filament")
        centre = 0.5 * self.box
        if radius is None:
            radius = (np.linalg.norm(self.positions[fil, :2] - centre, axis=1).max()
                      + 2.0 * hopping.r_off)
        leads = []
        for side in ("left", "right"):
            layers = self.layer[self.mask(f"electrode_{side}", f"frozen_{side}")]
            surface = layers.max() if side == "left" else layers.min()
            pick = self.mask(f"electrode_{side}", f"frozen_{side}") & (self.layer == surface)
            origin = self.positions[np.flatnonzero(pick)[0]]
            step = -lat.step if side == "left" else lat.step
            sites = np.vstack([lattice_sites(lat, origin + n * step, [0], center_xy=centre,
                                             radius=radius) for n in range(2)])
            leads.append(LayeredLead(lat, sites, side, hopping, kmesh=kmesh, eta=eta))
        return RecoilSystem(self.positions[fil], *leads, hopping, **kw)

    def write_data(self, path) -> None:
        """Write a LAMMPS data file (atom_style atomic, metal units, types 1-4)."""
        lo, hi = self.zbounds
        lines = ["LAMMPS data file: Cu filament between fcc electrodes (lammps-recoil) "
                 + " ".join(f"{k}={v}" for k, v in self.params.items()), "",
                 f"{len(self.positions)} atoms", "4 atom types", "",
                 f"0.0 {self.box[0]:.10f} xlo xhi", f"0.0 {self.box[1]:.10f} ylo yhi",
                 f"{lo:.10f} {hi:.10f} zlo zhi", "", "Masses", ""]
        lines += [f"{t} {CU_MASS}" for t in range(1, 5)]
        lines += ["", "Atoms # atomic", ""]
        lines += [f"{n + 1} {t} {x:.10f} {y:.10f} {z:.10f}"
                  for n, (t, (x, y, z)) in enumerate(zip(self.types, self.positions))]
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
    if not (neck_radius > 0 and base_radius > 0):
        raise ValueError("filament radii must be positive")
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
