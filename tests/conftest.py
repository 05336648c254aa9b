"""Shared geometries for the tests (small, so that the suite stays fast)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lammps_recoil import (A0_CU, A_NN_CU, HoppingModel, LayeredLead, RecoilSystem, WireLead,
                           fcc_lattice)
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


COLUMN_OFFSET = np.array([0.3, 0.2, 0.0])
PRIMITIVE = A0_CU / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], float)
ROT111 = np.array([[1, -1, 0] / np.sqrt(2), [1, 1, -2] / np.sqrt(6), [1, 1, 1] / np.sqrt(3)])
# primitive vectors in the lab frame and the wire period as integer lattice coordinates
FRAMES = {"001": (PRIMITIVE, np.array([1, 1, -1])),
          "111": (PRIMITIVE @ ROT111.T, np.array([1, 1, 1]))}


def column(orientation, radii):
    """Integer coordinates and positions of an fcc column along z ((001) or (111)) and its
    period P (A): cell c (c P <= z < (c + 1) P) holds the sites within radii[c] of the
    axis."""
    prim, period = FRAMES[orientation]
    P = (period @ prim)[2]
    m = np.arange(-14, 15)
    ijk = np.array(np.meshgrid(m, m, m, indexing="ij")).reshape(3, -1).T
    pos = ijk @ prim + COLUMN_OFFSET
    keep = np.zeros(len(pos), bool)
    for c, r in enumerate(radii):
        keep |= ((pos[:, 2] > c * P - 1e-6) & (pos[:, 2] < (c + 1) * P - 1e-6)
                 & (np.hypot(pos[:, 0], pos[:, 1]) <= r))
    return ijk[keep], pos[keep], P


def wire_constriction(orientation, radii, fermi_level, eta=0.0, hopping=HoppingModel()):
    """The column's sites as the device, between wire leads that continue its first and
    last cells (the device holds a copy of one lead cell at each end)."""
    _, sites, P = column(orientation, radii)
    T = np.array([0.0, 0.0, P])
    first = sites[sites[:, 2] < P - 1e-6]
    last = sites[sites[:, 2] > sites[:, 2].max() - P + 1e-6]
    left = WireLead(first - T, -T, "left", hopping, eta=eta)
    right = WireLead(last + T, T, "right", hopping, eta=eta)
    return RecoilSystem(sites, left, right, hopping, fermi_level=fermi_level)


def displaced(positions, amplitude, seed):
    rng = np.random.default_rng(seed)
    return positions + amplitude * rng.standard_normal(positions.shape)


@pytest.fixture(scope="session")
def small_filament():
    """A short (001) constriction in a 2x2 cell: 2 mobile layers per side, 3 gap layers."""
    return build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=1, gap_layers=3,
                          shape="cylinder", neck_radius=1.3)


def run_on_ranks(script: str, ranks: int, tmp_path) -> np.ndarray:
    """Run the Python ``script`` on ``ranks`` MPI ranks (the venv's mpiexec, from the
    repository's root; skipped without mpi4py or mpiexec) and return the array it saves
    to the path it gets as its argument."""
    pytest.importorskip("mpi4py")
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip("no mpiexec next to the Python interpreter")
    out = tmp_path / "ranks.npy"
    proc = subprocess.run([str(mpiexec), "-n", str(ranks), sys.executable, "-c", script,
                           str(out)], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)
