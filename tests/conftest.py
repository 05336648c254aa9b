"""Shared geometries for the tests (small, so that the suite stays fast)."""
import numpy as np
import pytest

from lammps_recoil import A0_CU, A_NN_CU, LayeredLead, RecoilSystem, fcc_lattice
from lammps_recoil.builders import build_filament
from lammps_recoil.geometry import lattice_sites

ORIGIN = np.array([0.13, 0.21, 0.0])


def fcc_box(orientation, nx, ny):
    if orientation == "001":
        return np.array([nx * A0_CU, ny * A0_CU])
    return np.array([nx * A_NN_CU, ny * A_NN_CU * np.sqrt(3.0)])


def perfect_system(orientation="001", nx=2, ny=2, layers=4, lead_layers=2, **kw):
    """Ideal periodic fcc crystal: device layers 0..layers-1 between ideal leads."""
    lat = fcc_lattice(orientation)
    box = fcc_box(orientation, nx, ny)
    sites = lambda ls: lattice_sites(lat, ORIGIN, ls, box=box)
    left = LayeredLead(lat, sites(range(-1, -lead_layers - 1, -1)), "left", box=box)
    right = LayeredLead(lat, sites(range(layers, layers + lead_layers)), "right", box=box)
    return RecoilSystem(sites(range(layers)), left, right, box=box, **kw)


def displaced(positions, amplitude, seed):
    rng = np.random.default_rng(seed)
    return positions + amplitude * rng.standard_normal(positions.shape)


@pytest.fixture(scope="session")
def small_filament():
    """A short (001) constriction in a 2x2 cell: 2 mobile layers per side, 3 gap layers."""
    return build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=1, gap_layers=3,
                          shape="cylinder", neck_radius=1.3)
