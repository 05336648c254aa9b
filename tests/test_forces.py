"""Recoil forces: consistency laws that a wrong density matrix or sign would break."""
import numpy as np
import pytest
from conftest import build_filament, displaced, run_on_ranks

from lammps_recoil import LayeredLead, RecoilSystem, fcc_lattice
from lammps_recoil.builders import REGIONS
from lammps_recoil.chain import chain_system
from lammps_recoil.integration import full_band


@pytest.fixture(scope="module")
def constriction():
    f = build_filament(nx=2, ny=2, frozen_layers=3, electrode_layers=1, gap_layers=3,
                       shape="cylinder", neck_radius=1.3)
    s = f.recoil_system(device="mobile")
    x = displaced(s.positions, 0.08, 1)
    s.update(x)
    return f, s, x


@pytest.fixture(scope="module")
def constriction111():
    f = build_filament(orientation="111", nx=3, ny=2, frozen_layers=2, electrode_layers=1,
                       gap_layers=3, shape="cylinder", neck_radius=1.5)
    s = f.recoil_system(device="mobile")
    x = displaced(s.positions, 0.05, 2)
    s.update(x)
    return f, s, x


def test_hellmann_feynman_is_minus_grad_grand_potential(constriction111):
    """At V = 0, T = 0 the hopping-gradient forces equal -dOmega/dX, with
    Omega = (2/pi) int_{E0}^{EF} Im ln det G^-1(E) dE (scattering states), by central
    finite differences on the same energy nodes. Covers device-device bonds and the
    bonds to the lead contact atoms (12-14: filament; 3: electrode atom next to the lead)."""
    _, s, x0 = constriction111
    n = 40
    F = s.forces(0.0, model="hellmann-feynman", full=True, full_points=n).forces
    assert s.bound_states() == []      # Omega below counts scattering states only
    E, w = full_band(s.band_edges[0], s.fermi_level, 0.0)[0].nodes(n)   # [E0, EF]

    def omega_difference(xp, xm):
        s.update(xp)
        mp = [s.inverse_green(e).toarray() for e in E]
        s.update(xm)
        mm = [s.inverse_green(e).toarray() for e in E]
        phase = [np.angle(np.linalg.slogdet(np.linalg.solve(b, a))[0]) for a, b in zip(mp, mm)]
        return 2.0 / np.pi * np.dot(w, phase)

    h = 1e-4
    try:
        for atom, c in [(12, 2), (13, 1), (14, 0), (3, 2)]:
            xp, xm = x0.copy(), x0.copy()
            xp[atom, c] += h
            xm[atom, c] -= h
            fd = -omega_difference(xp, xm) / (2 * h)
            assert abs(F[atom, c]) > 1e-3
            assert F[atom, c] == pytest.approx(fd, abs=2e-7)
    finally:
        s.update(x0)


def test_window_equals_full_difference_chain():
    """F(V) - F(0) from the bias window equals the difference of two full-band
    integrals from E_0 (Eq. 10 at V and at 0): checks the signs of the window."""
    s = chain_system(-2.2, -1.5, eps=0.2, n_side=2)
    for V, beta in [(0.6, 0.3), (-0.4, 0.9)]:
        w = s.forces(V, beta=beta, n_points=16)
        full = s.forces(V, beta=beta, full=True, full_points=100)
        zero = s.forces(0.0, full=True, full_points=100)
        np.testing.assert_allclose(w.forces, full.forces - zero.forces, atol=1e-12)
        np.testing.assert_allclose(w.density, full.density - zero.density, atol=1e-12)


def test_window_equals_full_difference_fcc111(constriction111):
    """Same in 3D (fcc (111), no flat band below 2 eV); the full-band integrals have 1D
    band-edge kinks of the periodic lead, so they converge algebraically (1e-4 at 800)."""
    _, s, _ = constriction111
    w = s.forces(0.5, n_points=16).forces
    full = (s.forces(0.5, full=True, full_points=800).forces
            - s.forces(0.0, full=True, full_points=800).forces)
    assert np.abs(w).max() > 0.03
    assert np.abs(full - w).max() < 3e-4


def test_partition_invariance(constriction):
    """Moving the device/lead boundary one layer outward (an ideal layer joins the
    device, the lead starts one layer deeper) leaves every force unchanged: the
    non-self-consistent model is exact for ideal leads."""
    f, s, x0 = constriction
    ref = s.forces(1.0)
    g = build_filament(nx=2, ny=2, frozen_layers=3, electrode_layers=1, gap_layers=3,
                       shape="cylinder", neck_radius=1.3)
    inner = {"left": g.layer[g.mask("frozen_left")].max(),
             "right": g.layer[g.mask("frozen_right")].min()}
    for side, lay in inner.items():
        g.region[g.layer == lay] = REGIONS.index(f"electrode_{side}")
    big = g.recoil_system(device="mobile")
    xb = big.positions.copy()
    # place the displaced original device atoms inside the bigger device
    match = [np.flatnonzero(np.all(np.abs(xb - p) < 1e-9, axis=1))[0]
             for p in f.positions[f.device("mobile")]]
    xb[match] = x0
    big.update(xb)
    res = big.forces(1.0)
    assert big.n_atoms == s.n_atoms + 16
    assert np.abs(ref.forces).max() > 0.05
    np.testing.assert_allclose(res.forces[match], ref.forces, atol=1e-10)
    assert res.conductance == pytest.approx(ref.conductance, abs=1e-10)
    # the atoms that touched the old lead surface are now one layer away from it
    assert ref.at_lead.any() and not res.at_lead[match].any()


def test_kpoints_equal_supercell():
    """A (2, 1) Gamma-centred k grid on a cell equals the doubled cell at Gamma."""
    f = build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=1, gap_layers=2,
                       shape="cylinder", neck_radius=1.3)
    s = f.recoil_system(kpoints=(2, 1), device="mobile")
    x = displaced(s.positions, 0.06, 3)
    s.update(x)
    ref = s.forces(0.8, beta=0.3)
    Lx = f.box[0]
    # two copies of the displaced cell side by side
    left, right = f.leads()
    lat = fcc_lattice("001")
    box2 = np.array([2 * Lx, f.box[1]])
    dbl = lambda p: np.vstack([p, p + [Lx, 0, 0]])
    L2 = LayeredLead(lat, dbl(left.positions), "left", box=box2)
    R2 = LayeredLead(lat, dbl(right.positions), "right", box=box2)
    s2 = RecoilSystem(dbl(x), L2, R2, box=box2)
    res = s2.forces(0.8, beta=0.3)
    n = len(x)
    np.testing.assert_allclose(res.forces[:n], ref.forces, atol=1e-11)
    np.testing.assert_allclose(res.forces[n:], ref.forces, atol=1e-11)
    assert res.conductance == pytest.approx(2 * ref.conductance, abs=1e-10)


def test_mirror_symmetry_and_direction():
    """An ideal (001) filament is mirror symmetric in z: at beta = 1/2 the forces at -V
    are the mirror image of those at V (F_z(-z, -V) = -F_z(z, V)). With V > 0 the right
    lead has the higher chemical potential (mu_R = E_F + V/2) and the filament is pushed
    toward it, the electron-injecting electrode (see the README's Conventions, Bias, on the sign)."""
    f = build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=1, gap_layers=3,
                       shape="cylinder", neck_radius=1.3)
    s = f.recoil_system(device="mobile")
    x = s.positions
    mirror = [np.flatnonzero(np.all(np.abs(x - p * [1, 1, -1]) < 1e-6, axis=1))[0] for p in x]
    plus, minus = s.forces(1.0), s.forces(-1.0)
    np.testing.assert_allclose(minus.forces[mirror] * [1, 1, -1], plus.forces, atol=1e-9)
    fil = f.mask("filament")[f.device("mobile")]
    assert plus.forces[fil, 2].sum() > 0.1
    assert plus.conductance == pytest.approx(minus.conductance, abs=1e-9)


PROBE_RUN = """
import sys
import numpy as np
from mpi4py import MPI
sys.path.insert(0, "tests")
from conftest import build_filament
s = build_filament().recoil_system(device="filament")
s.comm = MPI.COMM_WORLD
rows = []
for V, n in ((1.0, None), (0.0, None), (1.0, 1)):   # n = 1: no energy on the last rank
    r = s.forces(V, n_points=n)
    rows.append(np.concatenate([[r.fermi_transmission, r.conductance], r.channels]))
got = s.comm.gather(np.array(rows), root=0)
if s.comm.Get_rank() == 0:
    np.save(sys.argv[1], np.array(got))
"""


def test_fermi_probe_is_the_same_on_every_rank(tmp_path):
    """T(E_F) and its channels are solved by the last MPI rank and shared: bit for bit the
    same on 3 ranks after a window integral, at V = 0 (no window) and when the last rank
    has no energy (the ranks' lead caches differ by then), and equal to the serial ones."""
    got = run_on_ranks(PROBE_RUN, 3, tmp_path)
    for rank in got[1:]:
        np.testing.assert_array_equal(rank, got[0])
    s = build_filament().recoil_system(device="filament")
    for row, (V, n) in zip(got[0], ((1.0, None), (0.0, None), (1.0, 1))):
        r = s.forces(V, n_points=n)
        ref = np.concatenate([[r.fermi_transmission, r.conductance], r.channels])
        np.testing.assert_allclose(row, ref, rtol=1e-12, atol=1e-12)   # closed: ~1e-31
