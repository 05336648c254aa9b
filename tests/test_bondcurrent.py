"""Bond currents (Im of the window density matrix, Eq. 9): Kirchhoff's law, the Landauer
current through every cross-section, reversal with V, uniform flow in a perfect crystal,
and the closed form G0 V of the uniform chain."""
import numpy as np
import pytest
from conftest import build_filament, displaced, perfect_system

from lammps_recoil import G0_SIEMENS
from lammps_recoil.chain import chain_system


@pytest.fixture(scope="module")
def rough():
    """A thermally displaced (001) constriction, its mobile electrode layers included."""
    f = build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=1, gap_layers=4,
                       shape="cylinder", neck_radius=1.3)
    s = f.recoil_system(device="mobile")
    s.update(displaced(s.positions, 0.1, 7))
    return s


def planes(bc, leads_z):
    """Heights between consecutive distinct z of the device atoms, inside the gap between
    the leads' contact atoms (no lead-lead bond crosses there)."""
    z = np.unique(np.round(bc.positions[:, 2], 6))
    mid = 0.5 * (z[:-1] + z[1:])
    return mid[(mid > leads_z[0]) & (mid < leads_z[1])]


def contact_heights(bc):
    zi = bc.positions[bc.i, 2]
    zl = zi + bc.vec[:, 2]
    return zl[bc.lead == 1].max(), zl[bc.lead == 2].min()


def test_uniform_chain_carries_g0_v_on_every_bond():
    """A uniform chain has T = 1 in the window: I = G0 V on every bond, toward +z for
    V > 0, and every atom's current vector is I z."""
    s = chain_system(-1.8, -1.8, n_side=4)
    bias = 0.6
    bc = s.forces(bias, tol=1e-9, bond_currents=True).bond_currents
    expected = G0_SIEMENS * bias * 1e6
    direction = np.sign(bc.vec[:, 2])
    np.testing.assert_allclose(bc.current * direction, expected, rtol=1e-10)
    np.testing.assert_allclose(bc.atom_throughput(), expected, rtol=1e-10)
    np.testing.assert_allclose(bc.atom_vectors(), [[0, 0, expected]] * bc.n_atoms,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bias, beta, T", [(0.9, 0.5, 0.0), (-0.6, 0.3, 0.0),
                                            (0.5, 0.5, 100.0)])
def test_kirchhoff_and_cross_sections(rough, bias, beta, T):
    """Every device atom (also those bonded to the leads, counting their bonds to lead
    atoms) conserves the current, and the current through each plane between the leads
    equals the Landauer current G(V) V of the same call and an independent integral of
    the Caroli T(E) (system.current)."""
    r = rough.forces(bias, beta, T, bond_currents=True)
    bc = r.bond_currents
    I = r.current
    assert abs(I) > 10.0
    assert np.abs(bc.divergence()).max() < 1e-9 * abs(I)
    cuts = planes(bc, contact_heights(bc))
    assert len(cuts) >= 6
    through = np.array([bc.through(z) for z in cuts])
    np.testing.assert_allclose(through, I, rtol=1e-6)
    assert I == pytest.approx(rough.current(bias, beta, T, tol=1e-7), rel=1e-3)


def test_reversing_the_bias_reverses_every_bond_current():
    """An ideal (001) filament is mirror symmetric in z: at beta = 1/2, I_b(-V) = -I_b(V) on
    every bond, and the mirror image of a bond carries the same current at V (z -> -z
    turns the flow i -> j into the flow mirror(j) -> mirror(i))."""
    f = build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=1, gap_layers=3,
                       shape="cylinder", neck_radius=1.3)
    s = f.recoil_system(device="mobile")
    plus = s.forces(0.8, bond_currents=True).bond_currents
    s._partitions.clear()
    minus = s.forces(-0.8, bond_currents=True).bond_currents
    assert np.abs(plus.current).max() > 1.0
    np.testing.assert_allclose(minus.current, -plus.current, atol=1e-9)
    x = plus.positions
    box = np.array([*s.box, 1.0])

    def key(a, b):
        """A bond from a to b, translated so that a lies in the periodic cell."""
        shift = np.floor(a / box) * box * [1, 1, 0]
        return tuple(np.round(np.concatenate([a - shift, b - shift]), 4) + 0.0)

    flow = {}
    for a, d, c in zip(x[plus.i], plus.vec, plus.current):
        flow[key(a, a + d)], flow[key(a + d, a)] = c, -c
    m = np.array([1.0, 1.0, -1.0])
    matched = 0
    for a, d, c in zip(x[plus.i], plus.vec, plus.current):
        other = flow.get(key((a + d) * m, a * m))        # mirror(j) -> mirror(i)
        if other is not None:
            assert other == pytest.approx(c, abs=1e-9)
            matched += 1
    assert matched == len(plus.current)


@pytest.mark.parametrize("kpoints", [1, (2, 2)])
def test_perfect_crystal_flow_is_uniform(kpoints):
    """A perfect fcc(001) crystal between its own leads: every bond between adjacent
    layers carries I / (number of bonds between two layers), the bonds within a layer
    none."""
    s = perfect_system("001", 2, 2, layers=4, kpoints=kpoints)
    r = s.forces(0.7, bond_currents=True)
    bc = r.bond_currents
    dz = bc.vec[:, 2]
    inter = np.abs(dz) > 0.1
    per_plane = np.count_nonzero(inter & (bc.lead == 0)) // 3     # 4 layers: 3 gaps
    assert per_plane == 4 * 8                                      # 8 atoms x 4 bonds up
    np.testing.assert_allclose(bc.current[inter] * np.sign(dz[inter]), r.current / per_plane,
                               rtol=1e-9)
    assert np.abs(bc.current[~inter]).max() < 1e-9 * r.current
    assert r.channels.sum() == pytest.approx(len(s.kpoints) * r.fermi_transmission, abs=1e-9)


def test_bond_currents_do_not_change_the_forces(rough):
    """The currents ride on the force integral's nodes: forces and conductance are those
    of a call without them, bit for bit."""
    rough._partitions.clear()
    a = rough.forces(1.0)
    rough._partitions.clear()
    b = rough.forces(1.0, bond_currents=True)
    assert a.bond_currents is None
    np.testing.assert_array_equal(a.forces, b.forces)
    assert a.conductance == b.conductance and a.n_energies == b.n_energies
    with pytest.raises(ValueError, match="full=False"):
        rough.forces(1.0, full=True, bond_currents=True)


def test_channels_at_the_fermi_level(rough):
    """The result's transmission eigenvalues are those of system.channels() and add up to
    T(E_F)."""
    r = rough.forces(0.5)
    np.testing.assert_allclose(r.channels, rough.channels(), atol=1e-12)
    assert r.channels.sum() == pytest.approx(r.fermi_transmission, abs=1e-10)
    assert np.all(np.diff(r.channels) <= 0)
