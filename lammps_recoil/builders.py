"""Ready-made geometries: a Cu filament on ideal fcc sites between two fcc electrodes.

Along z the structure is a stack of fcc layers (periodic in x and y):

    [frozen left electrode | mobile left electrode | filament | mobile right | frozen right]

The frozen outer layers never move in MD and double as the NEGF lead surface blocks (the
``lead_layers`` frozen layers nearest to the filament); everything mobile is the NEGF
device. The filament occupies the lattice sites of its layers that lie within a radius
r(z) of the box centre: a cylinder, a cone or an hourglass with a neck.
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
SHAPES = ("cylinder", "cone", "hourglass")


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
    lead_layers: int
    params: dict

    def mask(self, *names) -> np.ndarray:
        codes = [REGIONS.index(n) for n in names]
        return np.isin(self.region, codes)

    @property
    def device(self) -> np.ndarray:
        """Indices of the NEGF device atoms (filament and mobile electrode layers)."""
        return np.flatnonzero(self.mask("filament", "electrode_left", "electrode_right"))

    def lead_block(self, side: str) -> np.ndarray:
        """Indices of the frozen atoms forming a lead's surface block."""
        frozen = np.flatnonzero(self.mask(f"frozen_{side}"))
        lay = self.layer[frozen]
        inner = np.sort(np.unique(lay))
        inner = inner[-self.lead_layers:] if side == "left" else inner[:self.lead_layers]
        return frozen[np.isin(lay, inner)]

    def leads(self, hopping: HoppingModel = HoppingModel(), **kw):
        lat = fcc_lattice(self.orientation, self.a0)
        return tuple(LayeredLead(lat, self.positions[self.lead_block(s)], s, hopping,
                                 box=self.box, **kw) for s in ("left", "right"))

    def recoil_system(self, hopping: HoppingModel = HoppingModel(), lead_eta=None,
                      **kw) -> RecoilSystem:
        """The NEGF system of this geometry (device = all mobile atoms)."""
        left, right = self.leads(hopping, eta=lead_eta)
        return RecoilSystem(self.positions[self.device], left, right, hopping,
                            box=self.box, **kw)


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
                   shape: str = "hourglass", neck_radius: float = 2.6,
                   base_radius: float = 4.4, lead_layers: int = 2,
                   a0: float = A0_CU) -> Filament:
    """Two periodic fcc electrodes joined by a filament on ideal fcc sites.

    ``nx``, ``ny``: transverse size in cubic cells ((001)) or in rectangular cells of
    a_nn x sqrt(3) a_nn ((111)). ``frozen_layers``: outer layers held fixed on each side
    (at least ``lead_layers``, the NEGF lead block). ``electrode_layers``: mobile electrode
    layers per side. ``gap_layers``: filament layers. Radii in Angstrom: for a cone the
    radius goes from ``base_radius`` on the left to ``neck_radius`` on the right; for an
    hourglass from ``base_radius`` at both ends to ``neck_radius`` in the middle.
    """
    for name, v in (("nx", nx), ("ny", ny), ("frozen_layers", frozen_layers),
                    ("gap_layers", gap_layers), ("lead_layers", lead_layers)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v}")
    if electrode_layers < 0 or int(electrode_layers) != electrode_layers:
        raise ValueError(f"electrode_layers must be a non-negative integer, got "
                         f"{electrode_layers}")
    if frozen_layers < lead_layers:
        raise ValueError(f"frozen_layers ({frozen_layers}) must be at least the NEGF lead "
                         f"block ({lead_layers} layers)")
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
                  neck_radius=neck_radius, base_radius=base_radius, lead_layers=lead_layers,
                  a0=a0)
    return Filament(pos, np.concatenate(region), np.concatenate(layer), box, zb,
                    orientation, a0, lead_layers, params)
