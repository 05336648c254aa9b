"""Independent code: Kwant's transmission for 3D Cu constrictions between fcc wire leads.

Both codes get the same sites and the same hopping law t(r); Kwant solves the leads by
its mode solver, lammps_recoil by its own (``WireLead``: mode matching at real energy) and
a sparse device solve. As Kwant needs, the scattering region holds an explicit copy of one
lead cell at each end, and the lead cell is long enough that no hopping reaches two cells
away.
"""
import numpy as np
import pytest

from lammps_recoil import A0_CU, HoppingModel, RecoilSystem, WireLead

kwant = pytest.importorskip("kwant")
pytestmark = pytest.mark.kwant

HOP = HoppingModel()
OFFSET = np.array([0.3, 0.2, 0.0])
PRIMITIVE = A0_CU / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], float)
ROT111 = np.array([[1, -1, 0] / np.sqrt(2), [1, 1, -2] / np.sqrt(6), [1, 1, 1] / np.sqrt(3)])
# primitive vectors in the lab frame and the wire period as integer lattice coordinates
FRAMES = {"001": (PRIMITIVE, np.array([1, 1, -1])),
          "111": (PRIMITIVE @ ROT111.T, np.array([1, 1, 1]))}


def column(orientation, radii):
    """Integer coordinates and positions of an fcc column; cell c has radius radii[c]."""
    prim, period = FRAMES[orientation]
    P = (period @ prim)[2]
    m = np.arange(-14, 15)
    ijk = np.array(np.meshgrid(m, m, m, indexing="ij")).reshape(3, -1).T
    pos = ijk @ prim + OFFSET
    keep = np.zeros(len(pos), bool)
    for c, r in enumerate(radii):
        keep |= ((pos[:, 2] > c * P - 1e-6) & (pos[:, 2] < (c + 1) * P - 1e-6)
                 & (np.hypot(pos[:, 0], pos[:, 1]) <= r))
    return ijk[keep], pos[keep], P


def kwant_system(orientation, ijk):
    """The finalized Kwant system of the column with wire leads at both ends."""
    prim, period = FRAMES[orientation]
    lat = kwant.lattice.general(prim, basis=[OFFSET], norbs=1).sublattices[0]
    P = (period @ prim)[2]

    def fill(builder, cell_ijk, targets_ijk):
        for a in cell_ijk:
            builder[lat(*a)] = 0.0
        for a in cell_ijk:
            pa = lat(*a).pos
            for b in targets_ijk:
                d = np.linalg.norm(lat(*b).pos - pa)
                if 1e-6 < d < HOP.r_off:
                    builder[lat(*a), lat(*b)] = float(HOP.hopping(d)[0])

    syst = kwant.Builder()
    fill(syst, ijk, ijk)
    z = np.array([lat(*a).pos[2] for a in ijk])
    for sign, cell in ((-1, ijk[z < P - 1e-6]), (1, ijk[z > z.max() - P + 1e-6])):
        lead = kwant.Builder(kwant.TranslationalSymmetry(lat.vec(sign * period)))
        fill(lead, cell, np.vstack([cell, cell + sign * period]))
        syst.attach_lead(lead)
    return syst.finalized()


def kwant_transmission(fsys, energies):
    return np.array([kwant.smatrix(fsys, E).transmission(1, 0) for E in energies])


@pytest.mark.parametrize("orientation, radii", [
    ("001", (3.7, 3.7, 2.2, 1.9, 2.2, 3.7, 3.7)),
    ("111", (3.0, 3.0, 1.6, 3.0, 3.0)),
])
def test_transmission_matches_kwant(orientation, radii):
    ijk, sites, P = column(orientation, radii)
    T = np.array([0.0, 0.0, P])
    first = sites[sites[:, 2] < P - 1e-6]                 # device copy of the left cell
    last = sites[sites[:, 2] > sites[:, 2].max() - P + 1e-6]
    left = WireLead(first - T, -T, "left", HOP)
    right = WireLead(last + T, T, "right", HOP)
    energies = np.array([-4.3, -2.2, -0.7, 0.61, 1.45])
    ours = RecoilSystem(sites, left, right, HOP, fermi_level=0.6).transmission(energies)
    theirs = kwant_transmission(kwant_system(orientation, ijk), energies)
    assert ours.max() > 0.5 and len(sites) > 60
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
