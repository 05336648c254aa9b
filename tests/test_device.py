"""NEGF device choices and solver paths: exact identities that a wrong partition, site
assignment or batching would break."""
import numpy as np
import pytest
from conftest import build_filament, displaced

from lammps_recoil import greens
from lammps_recoil.builders import SITE_TOLERANCE, ElectrodeSites, system_from_types
from lammps_recoil.geometry import fcc_lattice, minimum_image


@pytest.fixture(scope="module")
def geometry():
    return build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=2, gap_layers=4,
                          shape="cylinder", neck_radius=1.3)


def test_filament_device_equals_mobile_device_on_ideal_electrodes(geometry):
    """With the electrode atoms on their lattice sites the 'filament' device (electrodes
    folded into ideal leads) and the 'mobile' device (electrodes in the device) are the
    same physical system: identical forces on the (displaced) filament atoms and the same
    conductance and T(E_F), at zero and finite temperature."""
    f = geometry
    x = f.positions.copy()
    fil = f.mask("filament")
    x[fil] = displaced(x[fil], 0.1, 7)
    small = system_from_types(x, f.types, f.box, device="filament")
    big = system_from_types(x, f.types, f.box, device="mobile")
    assert small.n_atoms == fil.sum() and big.n_atoms == len(f.device("mobile"))
    in_big = fil[f.device("mobile")]
    for kw in (dict(bias=0.8), dict(bias=0.5, temperature=100.0, beta=0.7)):
        a, b = small.forces(**kw), big.forces(**kw)
        assert np.abs(a.forces).max() > 0.02
        np.testing.assert_allclose(a.forces, b.forces[in_big], atol=1e-11)
        assert a.conductance == pytest.approx(b.conductance, abs=1e-11)
        # T(E_F), solved along with the first energy batch
        t_ef = small.transmission(small.fermi_level)[0]
        assert a.fermi_transmission == pytest.approx(t_ef, abs=1e-12)
        assert b.fermi_transmission == pytest.approx(t_ef, abs=1e-11)


def test_electrode_sites_recovered_from_thermal_positions(geometry):
    """Sites are the builder's lattice sites, whatever the thermal displacement (< 0.3 A,
    one atom 1.1 A along z: past half the 0.9 A layer spacing, still nearest to its own
    site) and periodic image of the atoms; the displacement is a minimum image."""
    f = geometry
    rng = np.random.default_rng(4)
    x = f.positions.copy()
    el = f.types == 2
    kick = rng.uniform(-0.3, 0.3, (el.sum(), 3))
    kick[2] = [0.0, 0.0, 1.1]
    x[el] += kick
    x[np.flatnonzero(el)[::3], 0] += f.box[0]          # some atoms in the next image
    sites = ElectrodeSites(x, f.types, f.box, fcc_lattice("001"))
    d, _ = minimum_image(f.positions[el] - sites.sites, f.box)
    assert np.abs(d).max() < 1e-9
    np.testing.assert_allclose(sites.displacement(x[el]), np.linalg.norm(kick, axis=1),
                               atol=1e-9)
    assert sites.check(x[el]) == pytest.approx(np.linalg.norm(kick, axis=1).max())


def test_electrode_atom_off_its_site_is_refused(geometry):
    f = geometry
    x = f.positions.copy()
    atom = np.flatnonzero(f.types == 2)[3]
    sites = ElectrodeSites(x, f.types, f.box, fcc_lattice("001"), ids=np.arange(len(x)) + 1)
    y = x[f.types == 2].copy()
    y[3, 0] += SITE_TOLERANCE + 0.1
    with pytest.raises(ValueError, match=rf"mobile electrode atoms \[{atom + 1}\] are up to "
                                         rf"{SITE_TOLERANCE + 0.1:.2f} A from their lattice "
                                         r"sites \(> 1.27 A\)"):
        sites.check(y)
    x[atom] = x[np.flatnonzero(f.types == 2)[4]] + [0.2, 0.0, 0.0]
    with pytest.raises(ValueError, match="share lattice sites"):
        ElectrodeSites(x, f.types, f.box, fcc_lattice("001"))
    with pytest.raises(ValueError, match="NEGF device must be one of"):
        system_from_types(f.positions, f.types, f.box, device="electrodes")


@pytest.mark.parametrize("device", ["filament", "mobile"])
def test_dense_batched_and_sparse_solvers_agree(geometry, device, monkeypatch):
    """The dense solve on the boundary atoms, batched over energies, and the banded sparse LU
    per energy give the same forces, densities and conductance; so do batches of 1, 3 and
    all energies."""
    f = geometry
    x = f.positions.copy()
    fil = f.mask("filament")
    x[fil] = displaced(x[fil], 0.08, 2)
    results = []
    for dense_max, batch in ((10**6, None), (0, None), (10**6, 3), (10**6, 1)):
        monkeypatch.setattr(greens, "SCHUR_MAX", dense_max)
        s = system_from_types(x, f.types, f.box, device=device)
        if batch:
            s._batch = batch
        results.append(s.forces(0.6, beta=0.4, n_points=12))
    ref = results[0]
    assert np.abs(ref.forces).max() > 0.02
    for r in results[1:]:
        np.testing.assert_allclose(r.forces, ref.forces, atol=1e-12)
        np.testing.assert_allclose(r.density, ref.density, atol=1e-12)
        assert r.conductance == pytest.approx(ref.conductance, abs=1e-12)


@pytest.mark.parametrize("device", ["filament", "mobile"])
def test_boundary_solve_gives_columns_of_the_inverse(geometry, device):
    """The dense solve on the boundary atoms (Schur complement over the interior's
    eigenvalues) returns the boundary columns of the inverse of the full G_F^-1 (Eq. 6), at
    energies in the window, on an interior eigenvalue and near one (full LU there), and
    for a column off the boundary (full LU); no energies give an empty stack."""
    f = geometry
    x = f.positions.copy()
    fil = f.mask("filament")
    x[fil] = displaced(x[fil], 0.08, 3)
    s = system_from_types(x, f.types, f.box, device=device)
    M = s._M[0]
    bnd, inner, lam, *_ = M._boundary_schur()
    assert 0 < len(inner) and s.n_atoms <= greens.SCHUR_MAX
    cols = np.concatenate([c.boundary for c in s.lead_contacts])
    on_level = lam[np.argmin(abs(lam - s.fermi_level))]
    assert abs(on_level - s.fermi_level) < 2.0
    for E, c in ((np.array([0.1, s.fermi_level, 1.1]), cols),
                 (np.array([0.3, on_level]), cols),
                 (np.array([0.5, on_level + 1e-4]), cols),
                 (np.array([0.5]), np.append(cols, inner[0]))):     # a column off B
        sigmas = [greens.self_energy(V, s._lead_gf(k, E, 0)) for k, V in enumerate(s._V[0])]
        X = M.solve(E, sigmas, c)
        for m, e in enumerate(E):
            full = np.linalg.inv(M(e, [sg[m] for sg in sigmas]).toarray())[:, c]
            np.testing.assert_allclose(X[m], full, rtol=0, atol=1e-11 * abs(full).max())
    none = np.zeros(0)
    assert M.solve(none, [np.zeros((0, len(c.boundary), len(c.boundary)))
                          for c in s.lead_contacts], cols).shape == (0, s.n_atoms, len(cols))


def test_device_detached_from_one_lead():
    """A device built between both leads may lose one (a ruptured filament): then T = 0,
    and the renormalized force depends on mu_R alone - the same for (V, beta) = (1, 1/2)
    and (1/2, 1), zero for beta = 0 (mu_R = E_F)."""
    from lammps_recoil import LayeredLead, RecoilSystem
    from lammps_recoil.geometry import A_NN_CU, chain_lattice
    a, lat = A_NN_CU, chain_lattice(A_NN_CU)
    xyz = lambda z: np.column_stack([np.zeros_like(z), np.zeros_like(z), z])
    s = RecoilSystem(xyz(a * np.arange(-1.0, 2.0)), LayeredLead(lat, xyz(np.array([-2 * a])),
                     "left"), LayeredLead(lat, xyz(np.array([2 * a])), "right"),
                     fermi_level=0.3)
    x = s.positions.copy()
    x[:, 2] += 1.0                        # 3.54 A from the left lead: beyond the cutoff
    s.update(x)
    assert [len(c.contacts) for c in s.lead_contacts] == [0, 1]
    assert np.all(s.transmission([0.1, 0.5]) == 0.0) and s.conductance(1.0) == 0.0
    half, full, none = s.forces(1.0, beta=0.5), s.forces(0.5, beta=1.0), s.forces(1.0, beta=0)
    assert np.abs(half.forces).max() > 0.1
    np.testing.assert_allclose(full.forces, half.forces, atol=1e-12)
    assert np.abs(none.forces).max() == 0.0


def test_fcc111_electrode_sites_and_device_identity():
    """The same for fcc(111) (ABC stacking: the in-plane shift of each layer matters)."""
    f = build_filament(orientation="111", nx=3, ny=2, frozen_layers=2, electrode_layers=2,
                       gap_layers=3, shape="cylinder", neck_radius=1.5)
    rng = np.random.default_rng(1)
    x, el = f.positions.copy(), f.types == 2
    x[el] += rng.uniform(-0.3, 0.3, (el.sum(), 3))
    sites = ElectrodeSites(x, f.types, f.box, fcc_lattice("111"))
    d, _ = minimum_image(f.positions[el] - sites.sites, f.box)
    assert np.abs(d).max() < 1e-9
    a = system_from_types(f.positions, f.types, f.box, "111", device="filament").forces(0.5)
    b = system_from_types(f.positions, f.types, f.box, "111", device="mobile").forces(0.5)
    assert np.abs(a.forces).max() > 0.02
    np.testing.assert_allclose(a.forces, b.forces[f.mask("filament")[f.device("mobile")]],
                               atol=1e-11)
