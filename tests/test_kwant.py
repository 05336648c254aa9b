"""Independent code: Kwant's transmission for 3D Cu constrictions between fcc wire leads.

Both codes get the same sites and the same hopping law t(r); Kwant solves the leads by
its mode solver, lammps_recoil by its own (``WireLead``: mode matching at real energy) and
a sparse device solve. As Kwant needs, the scattering region holds an explicit copy of one
lead cell at each end, and the lead cell is long enough that no hopping reaches two cells
away.
"""
import numpy as np
import pytest
from conftest import COLUMN_OFFSET, FRAMES, column, wire_constriction

from lammps_recoil import HoppingModel

kwant = pytest.importorskip("kwant")
pytestmark = pytest.mark.kwant

HOP = HoppingModel()


def kwant_system(orientation, ijk):
    """The finalized Kwant system of the column with wire leads at both ends."""
    prim, period = FRAMES[orientation]
    lat = kwant.lattice.general(prim, basis=[COLUMN_OFFSET], norbs=1).sublattices[0]
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
    ijk, sites, _ = column(orientation, radii)
    energies = np.array([-4.3, -2.2, -0.7, 0.61, 1.45])
    ours = wire_constriction(orientation, radii, 0.6).transmission(energies)
    theirs = kwant_transmission(kwant_system(orientation, ijk), energies)
    assert ours.max() > 0.5 and len(sites) > 60
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
