"""The device solvers (dense Schur complement, sparse LU, recursive Green's function over z
slabs) against each other and against the inverse of the full G_F^-1 (Eq. 6): disordered
devices of a few hundred atoms, at Gamma and off it (complex H), on and near interior
levels, at the leads' channel edges; forces (Eq. 10) and transmission (Eq. 7) through each."""
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from conftest import build_filament, displaced

from lammps_recoil import greens, rgf
from lammps_recoil import system as system_module
from lammps_recoil.builders import system_from_types
from lammps_recoil.integration import DEFAULT_TOL
from lammps_recoil.parallel import openblas_pools, threaded_pools
from lammps_recoil.rgf import BlockTridiagonal, SlabBonds, slab_partition

SOLVERS = ("schur", "lu", "rgf")


def use_solver(system, solver):
    """Rebuild the system's device matrices (one per Bloch vector) with one solver."""
    system._M = [greens.DeviceMatrix(H, system.lead_contacts, system.eta, solver)
                 for H in system._H]


def relative_gap(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.fixture(scope="module")
def disordered():
    """(111) 6x4 electrodes and an hourglass: 311 device atoms (the filament and three
    mobile electrode layers per side), every one displaced by 0.12 A rms, k grid 2x2."""
    f = build_filament(orientation="111", nx=6, ny=4, frozen_layers=2, electrode_layers=3,
                       gap_layers=4, neck_radius=3.0, base_radius=4.0)
    x = f.positions.copy()
    dev = f.device("mobile")
    x[dev] = displaced(x[dev], 0.12, 11)
    s = system_from_types(x, f.types, f.box, orientation="111", device="mobile",
                          kpoints=(2, 2))
    assert s.n_atoms == 311 > greens.SCHUR_MAX
    s.precision = "double"          # the solvers are compared in double precision
    return s


def test_chain_slabs():
    """A nearest-neighbour chain of n atoms cut with B_L = {0}, B_R = {n-1}: n slabs of one
    atom, merged to three atoms with min_size 3; with second neighbours two atoms per slab;
    B_L overlapping B_R: one slab."""
    n = 9
    i = np.arange(n - 1)
    rows, cols = np.concatenate([i, i + 1]), np.concatenate([i + 1, i])
    cut = lambda r, c, first, last, size=1: slab_partition(n, r, c, first, last, size)
    np.testing.assert_array_equal(cut(rows, cols, [0], [n - 1]), np.arange(n + 1))
    np.testing.assert_array_equal(cut(rows, cols, [0], [n - 1], 3), [0, 3, 6, 9])
    j = np.arange(n - 2)
    rows2, cols2 = np.concatenate([rows, j, j + 2]), np.concatenate([cols, j + 2, j])
    np.testing.assert_array_equal(cut(rows2, cols2, [0, 1], [n - 2, n - 1]), [0, 2, 4, 6, 9])
    np.testing.assert_array_equal(cut(rows, cols, [0, 5], [4, 8]), [0, n])


def test_slabs_of_a_disordered_device_couple_only_neighbours(disordered):
    """Every bond of H(k) joins atoms of the same or of neighbouring slabs; B_L lies in the
    first slab, B_R in the last; every atom in exactly one slab."""
    s = disordered
    for M in s._M:
        b = M.slabs().bounds
        assert b[0] == 0 and b[-1] == s.n_atoms and np.all(np.diff(b) > 0) and len(b) > 4
        H = sp.coo_matrix(M.H)
        slab = np.searchsorted(b, np.arange(s.n_atoms), side="right") - 1
        assert np.abs(slab[H.row] - slab[H.col]).max() == 1
        assert slab[s.lead_contacts[0].boundary].max() == 0
        assert slab[s.lead_contacts[1].boundary].min() == len(b) - 2


def test_slab_blocks_reassemble_h_from_any_storage(disordered):
    """The slab blocks and interface hoppings put back together give H(k) exactly, at
    Gamma (real) and off it (complex), whether H comes as canonical CSR, as CSR with every
    element split into two stored parts in shuffled order plus explicit zeros (not summed
    by scipy), or dense; interface atoms are those with a nonzero hopping across."""
    s = disordered
    rng = np.random.default_rng(3)
    for M in s._M[:2]:
        bnd = [c.boundary for c in M.lead_contacts]
        H = sp.csr_matrix(M.H)
        dense = H.toarray()
        coo = H.tocoo()
        order = rng.permutation(2 * coo.nnz + 10)
        extra = rng.integers(0, H.shape[0], (2, 10))       # explicit zeros
        data = np.concatenate([coo.data - 0.25, np.full(coo.nnz, 0.25), np.zeros(10)])
        row = np.concatenate([coo.row, coo.row, extra[0]])[order]
        col = np.concatenate([coo.col, coo.col, extra[1]])[order]
        by_row = np.argsort(row, kind="stable")
        split = sp.csr_matrix((data[order][by_row], col[by_row],
                               np.searchsorted(row[by_row], np.arange(H.shape[0] + 1))),
                              shape=H.shape)
        assert not split.has_canonical_format
        for given in (H, split, dense):
            slabs = BlockTridiagonal(given, bnd)
            b = slabs.bounds
            back = np.zeros(H.shape, dtype=complex)
            for k in range(slabs.n_slabs):
                back[b[k]:b[k + 1], b[k]:b[k + 1]] = -slabs.minus_h[k]
            for k, f in enumerate(slabs.interfaces):
                up = f.up.toarray() if sp.issparse(f.up) else f.up
                down = f.down.toarray() if sp.issparse(f.down) else f.down
                assert np.all(np.any(up != 0, axis=1)) and np.all(np.any(up != 0, axis=0))
                back[np.ix_(b[k] + f.exit, b[k + 1] + f.entry)] = up
                back[np.ix_(b[k + 1] + f.entry, b[k] + f.exit)] = down
            assert np.abs(back - dense).max() <= 1e-15


def energies_to_test(s, ik):
    """Energies in the band around E_F, on an eigenvalue of the interior block H_II (and
    1e-7, 1e-4 eV off it), on an eigenvalue of a middle slab's H_kk, and on the leads'
    channel edges at this Bloch vector (and 1e-9 eV off them)."""
    H = greens.to_dense(s._H[ik])
    bnd = np.concatenate([c.boundary for c in s.lead_contacts])
    inner = np.setdiff1d(np.arange(s.n_atoms), bnd)
    lam = np.linalg.eigvalsh(H[np.ix_(inner, inner)])
    level = lam[np.argmin(abs(lam - s.fermi_level))]
    slabs = BlockTridiagonal(s._H[ik], [c.boundary for c in s.lead_contacts])
    k = slabs.n_slabs // 2
    mid = np.linalg.eigvalsh(-slabs.minus_h[k])
    slab_level = mid[np.argmin(abs(mid - s.fermi_level))]
    kpt = s.kpoints[ik]
    edges = np.concatenate([lead.channel_edges(kpt) for lead in s.leads])
    lo, hi = s.fermi_level - 1.0, s.fermi_level + 1.0
    edges = np.sort(edges[(edges > lo) & (edges < hi)])[:3]
    assert len(edges) == 3 and abs(level - s.fermi_level) < 1.0
    return np.concatenate([[lo + 0.1, s.fermi_level, hi - 0.1, level, level + 1e-7,
                            level - 1e-4, slab_level], edges, edges + 1e-9, edges - 1e-9])


@pytest.mark.parametrize("hopping", ["dense", "sparse"])
@pytest.mark.parametrize("ik", [0, 3])
def test_solvers_agree_with_the_inverse(disordered, ik, hopping, monkeypatch):
    """Columns of G_F at B_L, B_R, both, and at atoms inside the device (repeated): each
    solver equals the inverse of the full matrix G_F^-1 (dense LU) to 1e-10 relative, at
    Gamma (real H) and at k = (1/2, 1/2) (complex H); the recursive solver with the
    hoppings between slabs as dense and as sparse blocks."""
    monkeypatch.setattr(rgf, "SPARSE_MIN", 0 if hopping == "sparse" else np.inf)
    monkeypatch.setattr(rgf, "SPARSE_HOPPING", 1.0)
    s = disordered
    assert (ik == 0) == (not np.iscomplexobj(s._H[ik].toarray()))   # complex off Gamma
    E = energies_to_test(s, ik)
    sigmas = [greens.self_energy(V, s._lead_gf(t, E, ik)) for t, V in enumerate(s._V[ik])]
    bl, br = (c.boundary for c in s.lead_contacts)
    middle = np.array([s.n_atoms // 2, 3, s.n_atoms // 2, s.n_atoms - 2])
    M = s._M[ik]
    for cols in (br, bl, np.concatenate([bl, br]), middle):
        full = np.stack([np.linalg.inv(M(e, [sg[m] for sg in sigmas]).toarray())[:, cols]
                         for m, e in enumerate(E)])
        for solver in SOLVERS:
            D = greens.DeviceMatrix(s._H[ik], s.lead_contacts, s.eta, solver)
            if solver == "rgf":
                assert all(sp.issparse(f.up) == (hopping == "sparse")
                           for f in D.slabs().interfaces)
            X = D.solve(E, sigmas, cols)
            for m in range(len(E)):
                assert relative_gap(X[m], full[m]) < 1e-10, (solver, E[m])
            if solver == "rgf":
                # in single precision: within 1e-4 (1e-6 to 2e-5 measured), returned in
                # double; and really in single (above double's round-off)
                Y = D.solve(E, sigmas, cols, single=True)
                assert Y.dtype == np.complex128
                gaps = [relative_gap(Y[m], full[m]) for m in range(len(E))]
                assert max(gaps) < 1e-4 and min(gaps) > 1e-9, gaps


def test_forces_and_transmission_agree_across_solvers(disordered):
    """Renormalized forces, densities and conductance at 0.6 V (2x2 k grid, 12 nodes per
    segment, the window crossing channel edges) and T(E) on a grid through each solver
    agree to 1e-10 (relative, max norm)."""
    s = disordered
    E = np.linspace(s.fermi_level - 0.8, s.fermi_level + 0.8, 7)
    results = {}
    for solver in SOLVERS:
        use_solver(s, solver)
        results[solver] = s.forces(0.6, beta=0.4, n_points=12), s.transmission(E)
    ref, tref = results["schur"]
    assert np.abs(ref.forces).max() > 0.01 and tref.min() > 0.1
    # the integrand solves for the scattering states; G_F's boundary columns give the same
    solve = type(s).scattering
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(s), "scattering", lambda self, E, ik=0, sources=(0, 1), gs=None,
                   states=False, single=False: solve(self, E, ik, sources, gs, False))
        results["columns"] = s.forces(0.6, beta=0.4, n_points=12), tref
    for solver in ("lu", "rgf", "columns"):
        r, t = results[solver]
        assert relative_gap(r.forces, ref.forces) < 1e-10
        assert relative_gap(r.density, ref.density) < 1e-10
        assert r.conductance == pytest.approx(ref.conductance, rel=1e-10)
        assert relative_gap(t, tref) < 1e-10


@pytest.fixture
def blas_pools():
    """The process's OpenBLAS thread pools, each at one thread during the test (their
    sizes restored after): single precision needs fewer than two threaded pools."""
    pools = openblas_pools()
    before = [get() for _, get, _ in pools]
    for _, _, put in pools:
        put(1)
    try:
        if threaded_pools() > 1:
            pytest.skip("BLAS threads set by the environment, not settable here")
        yield pools
    finally:
        for (_, _, put), n in zip(pools, before):
            put(n)


def test_mixed_precision_forces_agree_with_double(disordered, blas_pools, monkeypatch):
    """precision "mixed" (the default: the forces' integrand solves the recursive Green's
    function in single precision): forces, densities and conductance at 0.6 V (2x2 k
    grid, complex hoppings off Gamma) within 2e-5 (relative, max norm) of "double"
    (2e-6, 1e-6 and 2e-8 measured). In double all the same (equal to 1e-12): to a
    tolerance below SINGLE_TOL, with bond currents, and between leads that need the
    search for unbroadened states (a broadening eta > 0, wire leads), and the precision
    note names each of these (none where the forces are single, nor in "double"). Other
    precisions are refused."""
    s = disordered
    ref = s.forces(0.6, beta=0.4, n_points=12)
    refc = s.forces(0.6, beta=0.4, n_points=12, bond_currents=True)
    assert s.precision_note(0.5 * system_module.SINGLE_TOL) is None       # "double"
    monkeypatch.setattr(s, "precision", "mixed")
    mixed = s.forces(0.6, beta=0.4, n_points=12)
    assert 1e-9 < relative_gap(mixed.forces, ref.forces) < 2e-5
    assert relative_gap(mixed.density, ref.density) < 2e-5
    assert mixed.conductance == pytest.approx(ref.conductance, rel=2e-5)
    assert s.precision_note(DEFAULT_TOL) is None
    tight = s.forces(0.6, beta=0.4, n_points=12, tol=0.5 * system_module.SINGLE_TOL)
    assert relative_gap(tight.forces, ref.forces) < 1e-12
    assert s.precision_note(0.5 * system_module.SINGLE_TOL) == (
        f"precision mixed: the forces of this {s.n_atoms}-atom device are solved in double "
        "precision, as tol 5e-05 is below SINGLE_TOL = 0.0001 eV/A (docs/large.md)")
    currents = s.forces(0.6, beta=0.4, n_points=12, bond_currents=True)
    assert relative_gap(currents.bond_currents.current, refc.bond_currents.current) < 1e-12
    assert "double precision, as bond currents are on (" in s.precision_note(1e-2, True)
    monkeypatch.setattr(system_module, "looked_for", lambda system: True)
    searched = s.forces(0.6, beta=0.4, n_points=12, unbroadened=False)
    assert relative_gap(searched.forces, ref.forces) < 1e-12
    assert "as the leads need the search for unbroadened states" in s.precision_note(1e-2)
    with pytest.raises(ValueError, match="precision must be one of"):
        build_filament(gap_layers=3).recoil_system(precision="half")


def test_mixed_precision_where_blas_pools_compete(disordered, blas_pools, monkeypatch):
    """numpy's and scipy's wheels each bring an OpenBLAS with its own thread pool; with
    both threaded they compete in single precision, and "mixed" solves in double (forces
    equal to 1e-12), with one threaded pool in single (1e-9 to 2e-5 from double). The
    pools are set and read through the libraries."""
    if len(blas_pools) < 2:
        pytest.skip("one BLAS thread pool in this process: nothing competes")
    s = disordered
    ref = s.forces(0.6, beta=0.4, n_points=12)
    monkeypatch.setattr(s, "precision", "mixed")
    blas_pools[0][2](2)
    assert threaded_pools() == 1
    one = s.forces(0.6, beta=0.4, n_points=12)
    assert s.precision_note(1e-2) is None
    for _, _, put in blas_pools:
        put(2)
    assert threaded_pools() == len(blas_pools)
    both = s.forces(0.6, beta=0.4, n_points=12)
    assert 1e-9 < relative_gap(one.forces, ref.forces) < 2e-5
    assert relative_gap(both.forces, ref.forces) < 1e-12
    assert "as two BLAS thread pools run several threads (" in s.precision_note(1e-2)


def test_single_precision_near_a_pole_solves_in_double():
    """A chain with a side dimer (sites a, b at eps_a, both bonded to one chain site) has
    a state psi_a - psi_b at eps_a that no lead reaches: a real pole of G_F. In single
    precision the columns there lose about 6e-8 / d of their digits at a distance d from
    it; an energy whose LU meets a pivot below SINGLE_PIVOT of its block is solved again
    in double: at d = 1e-4 and 1e-7 eV the columns equal double's to 1e-12, 0.2 eV away
    they are single (differ by more than 1e-9), and on the pole both raise."""
    t, n_chain, c, ea = -1.0, 300, 150, 0.3
    n = n_chain + 2
    H = sp.lil_matrix((n, n))
    chain = [i for i in range(n) if i not in (c + 1, c + 2)]
    for p, q in zip(chain[:-1], chain[1:]):
        H[p, q] = H[q, p] = t
    for side in (c + 1, c + 2):
        H[c, side] = H[side, c] = 0.7 * t
        H[side, side] = ea
    slabs = BlockTridiagonal(H.tocsr(), (np.array([0]), np.array([n - 1])))
    E = ea + np.array([1e-4, 1e-7, 0.2])
    sigma = (t * t * (E - 1j * np.sqrt(4 * t * t - E * E)) / (2 * t * t))[:, None, None]
    ends = np.array([0, n - 1])
    double = slabs.solve(E + 0j, [sigma, sigma], ends)
    single = slabs.solve(E + 0j, [sigma, sigma], ends, single=True)
    gaps = [relative_gap(single[m], double[m]) for m in range(3)]
    assert gaps[0] < 1e-12 and gaps[1] < 1e-12 and 1e-9 < gaps[2] < 1e-4, gaps
    for single in (False, True):
        with pytest.raises(np.linalg.LinAlgError):
            slabs.solve(np.array([ea + 0j]), [sigma[:1]] * 2, ends, single=single)


@pytest.mark.parametrize("ik", [0, 3])
def test_rows_of_a_few_slabs_equal_the_full_columns(disordered, ik):
    """only_rows: rows in one middle slab, in three slabs, at both ends and everywhere, of
    columns at B_L and B_R, inside the device, and of the scattering-state products
    (weights): through each solver they equal those rows of the full solution to 1e-12
    (the recursive solver carries the columns only to those rows' slabs)."""
    s = disordered
    E = energies_to_test(s, ik)[:6]
    sigmas = [greens.self_energy(V, s._lead_gf(t, E, ik)) for t, V in enumerate(s._V[ik])]
    bl, br = (c.boundary for c in s.lead_contacts)
    rng = np.random.default_rng(5)
    weights = rng.standard_normal((len(E), len(bl), 4)) + 1j * rng.standard_normal(
        (len(E), len(bl), 4))
    # columns of both end slabs; the weights' first column has no row in B_L (its product
    # starts in the last slab, added to nothing), the others rows in both
    both = np.concatenate([bl, br])
    mixed = rng.standard_normal((len(E), len(both), 3)) + 0j
    mixed[:, :len(bl), 0] = 0.0
    for solver in SOLVERS:
        D = greens.DeviceMatrix(s._H[ik], s.lead_contacts, s.eta, solver)
        b = D.slabs().bounds
        k = D.slabs().n_slabs // 2
        for rows in (np.arange(b[k], b[k + 1])[::2], np.arange(b[k - 1] + 3, b[k + 2] - 1),
                     np.array([s.n_atoms - 1, 0, 5]), np.arange(s.n_atoms)):
            for cols, w in ((br, None), (bl, None), (np.array([b[k] + 1, 2, b[k + 2]]), None),
                            (bl, weights), (both, mixed)):
                full = D.solve(E, sigmas, cols, weights=w)
                part = D.solve(E, sigmas, cols, weights=w, only_rows=rows)
                assert part.shape == (len(E), len(rows), full.shape[2])
                assert relative_gap(part, full[:, rows]) < 1e-12, (solver, rows, cols)
        assert D.solve(E, sigmas, br, only_rows=[]).shape == (len(E), 0, len(br))
    # the weighted products against the dense inverse (the columns summed per slab)
    inv = np.stack([np.linalg.inv(D(e, [sg[m] for sg in sigmas]).toarray())[:, both]
                    for m, e in enumerate(E)])
    ref = inv @ mixed
    for solver in SOLVERS:
        D = greens.DeviceMatrix(s._H[ik], s.lead_contacts, s.eta, solver)
        assert relative_gap(D.solve(E, sigmas, both, weights=mixed), ref) < 1e-10, solver


@pytest.mark.parametrize("ik", [0, 3])
def test_bath_spectra_on_sites_equal_the_full_ones(disordered, ik):
    """The electronic bath's G and A_S = phi_S phi_S^+ on chosen sites of the extended
    region (middle device atoms; with a lead's contact sites; both leads'), from the rows
    and columns those sites need (only_rows through the recursive solver), equal those
    entries of the whole region's to 1e-12; with green=False the same A_S and no G."""
    from lammps_recoil import bath
    s = disordered
    assert s._M[ik].solver == "rgf"
    E = np.array([-0.4, 0.0, 0.3]) + s.fermi_level
    full = bath.extended_spectra(s, E, ik)
    A = [p @ greens.dagger(p) for p in full.phi]
    n, nl = s.n_atoms, len(s.lead_contacts[0].contacts)
    middle = np.arange(n // 2 - 20, n // 2 + 20)
    for sites in (middle, np.concatenate([middle, n + np.arange(0, nl, 3)]),
                  np.concatenate([[0, n - 1], middle[::7], n + np.arange(0, nl, 5),
                                  n + nl + np.arange(2, 9)])):
        pick = np.ix_(np.arange(len(E)), sites, sites)
        scale = np.abs(full.G[pick]).max()
        for green in (True, False):
            part = bath.extended_spectra(s, E, ik, sites=sites, green=green)
            np.testing.assert_allclose(part.G, full.G[pick] if green else 0.0, rtol=0,
                                       atol=1e-12 * scale)
            for S in (0, 1):
                a = part.phi[S] @ greens.dagger(part.phi[S])
                np.testing.assert_allclose(a, A[S][pick], rtol=0,
                                           atol=1e-12 * np.abs(A[S]).max())


@pytest.fixture(scope="module")
def thin():
    """The same electrodes with the 23-atom filament as the device, displaced 0.12 A rms:
    more open channels on each lead's contact atoms (12) than boundary atoms (7)."""
    f = build_filament(orientation="111", nx=6, ny=4, frozen_layers=2, electrode_layers=3,
                       gap_layers=4, neck_radius=3.0, base_radius=4.0)
    x = f.positions.copy()
    dev = f.device("filament")
    x[dev] = displaced(x[dev], 0.12, 5)
    return system_from_types(x, f.types, f.box, orientation="111", device="filament",
                             kpoints=(2, 2))


@pytest.mark.parametrize("ik", [0, 3])
@pytest.mark.parametrize("name", ["disordered", "thin"])
def test_scattering_states_equal_boundary_columns(request, name, ik):
    """Solving for the scattering states of the open channels, G_F V_S^+ w_S (a_S =
    w_S w_S^+), instead of G_F's columns at B_S: through each solver, the bond densities
    (Re and Im, device-device and device-contact bonds), the site densities of the
    extended region, T(E) and the transmission eigenvalues equal the columns' to 1e-10,
    at the energies of the solver test (channel edges included). The mobile device's
    boundary is a whole lead layer (fewer open channels than boundary atoms: fewer
    columns); the thin filament's contacts carry more channels than its boundary atoms
    (the channels are combined to |B_S| columns, the rest added to the contacts)."""
    s = request.getfixturevalue(name)
    E = energies_to_test(s, ik)
    gs = [s._lead_gf(t, E, ik) for t in (0, 1)]
    spectral = [greens.open_columns(greens.spectral_factor(g)) for g in gs]
    b = s.ext_bonds
    phase = b.phases(s.kpoints[ik])
    for t, c in enumerate(s.lead_contacts):
        channels, atoms = spectral[t].shape[2], len(c.boundary)
        assert (channels < atoms) if name == "disordered" else (channels > atoms)
    for solver in SOLVERS:
        M = greens.DeviceMatrix(s._H[ik], s.lead_contacts, s.eta, solver)
        cols = greens.Scattering(E, M, s._V[ik], gs)
        states = greens.Scattering(E, M, s._V[ik], gs, spectral=spectral)
        for source in (0, 1):
            assert states.X[source].shape[2] == min(spectral[source].shape[2],
                                                    len(s.lead_contacts[source].boundary))
            (X, P, diag), (Y, R, dy) = cols.density_factors(source), states.density_factors(source)
            ref = greens.bond_density(b.i, b.j, X, P, phase, imag=True)
            got = greens.bond_density(b.i, b.j, Y, R, phase, imag=True)
            for m in range(len(E)):
                for part in (0, 1):
                    assert relative_gap(got[part][m], ref[part][m]) < 1e-10, (solver, E[m])
                assert relative_gap(dy[m], diag[m]) < 1e-10, (solver, E[m])
        for st in (cols, states):
            st.X[0] = None                           # T from the right lead's solution
        assert relative_gap(states.transmission(), cols.transmission()) < 1e-10
        assert relative_gap(states.channels(), cols.channels()) < 1e-10


def test_rgf_on_a_device_detached_from_one_lead(monkeypatch):
    """A ruptured chain (no bond to the left lead: an empty B_L, slabs cut from B_R alone):
    the recursive solver gives the LU's columns at B_R, and T = 0."""
    from lammps_recoil import LayeredLead, RecoilSystem
    from lammps_recoil.geometry import A_NN_CU, chain_lattice
    a, lat = A_NN_CU, chain_lattice(A_NN_CU)
    xyz = lambda z: np.column_stack([np.zeros_like(z), np.zeros_like(z), z])
    s = RecoilSystem(xyz(a * np.arange(-3.0, 4.0)), LayeredLead(lat, xyz(np.array([-4 * a])),
                     "left"), LayeredLead(lat, xyz(np.array([4 * a])), "right"),
                     fermi_level=0.3)
    s.update(s.positions + [0.0, 0.0, 1.0])      # 3.54 A from the left lead: detached
    assert len(s.lead_contacts[0].boundary) == 0 < len(s.lead_contacts[1].boundary)
    E = np.array([-0.4, 0.3, 0.9])
    sigmas = [greens.self_energy(V, s._lead_gf(t, E, 0)) for t, V in enumerate(s._V[0])]
    cols = np.concatenate([s.lead_contacts[1].boundary, [0, 2]])
    monkeypatch.setattr(rgf, "SLAB_MIN", 1)                   # one atom per slab
    X = {solver: greens.DeviceMatrix(s._H[0], s.lead_contacts, 0.0, solver).solve(E, sigmas, cols)
         for solver in ("lu", "rgf")}
    assert greens.DeviceMatrix(s._H[0], s.lead_contacts, 0.0, "rgf").slabs().n_slabs == 7
    assert relative_gap(X["rgf"], X["lu"]) < 1e-10
    use_solver(s, "rgf")
    assert np.all(s.transmission(E) == 0.0)


def test_solver_choice():
    """auto: the dense Schur complement up to SCHUR_MAX atoms, the recursive Green's
    function above; an unknown solver is refused with the accepted names."""
    n = greens.SCHUR_MAX
    lead_contacts = []
    for size, expect in ((n, "schur"), (n + 1, "rgf")):
        assert greens.DeviceMatrix(sp.eye(size), lead_contacts).solver == expect
    with pytest.raises(ValueError, match="'schur', 'lu', 'rgf'.*got 'qr'"):
        greens.DeviceMatrix(sp.eye(4), lead_contacts, solver="qr")


@pytest.mark.parametrize("cols", [[4, 5], [5, 2, 0], slice(1, 6), np.arange(6)])
def test_inverse_columns_equal_the_inverse(cols):
    """LAPACK LU columns of a stack of complex matrices (few columns: triangular solves;
    most: the whole inverse) equal numpy's inverse; a singular matrix is refused."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((3, 6, 6)) + 1j * rng.standard_normal((3, 6, 6))
    X = rgf.inverse_columns(A.copy(), cols)
    assert relative_gap(X, np.linalg.inv(A)[:, :, cols]) < 1e-13
    # the pivot watch: min |U_ii| of each LU (scipy's, of the transpose that LAPACK sees)
    # over the largest real or imaginary part of the matrix
    pivots = np.array([np.inf, np.inf, 1e-9])
    rgf.inverse_columns(A.copy(), cols, pivots)
    watched = [np.abs(np.diag(scipy.linalg.lu(a.T)[2])).min() / np.abs(a.view(float)).max()
               for a in A]
    assert pivots == pytest.approx([watched[0], watched[1], 1e-9], rel=1e-12)
    A[1, 3] = 0.0
    with pytest.raises(np.linalg.LinAlgError):
        rgf.inverse_columns(A.copy(), cols)
    pivots = np.full(3, np.inf)                # watched: zero columns and ratio, no error
    Y = rgf.inverse_columns(A.copy(), cols, pivots)
    assert pivots[1] == 0.0 and not np.any(Y[1]) and relative_gap(Y[0], X[0]) < 1e-13
    assert rgf.pivot_ratio(np.array([[1.0, np.nan]]), np.array([1.0]))[0] == 0.0


@pytest.mark.parametrize("ik", [0, 3])
@pytest.mark.parametrize("min_size", [1, 16, 1000])
def test_slab_bonds_equal_rows_gathered_per_bond(disordered, ik, min_size):
    """Re and Im of conj(phase) rho_ij on every bond of the extended region (device-device
    across and within slabs, device-contact) from slab-block products equal the per-bond
    gather to 1e-12 relative: both leads injecting (columns of one solve), at Gamma and at
    k = (1/2, 1/2) (complex phases), for one-atom slabs, merged slabs and a single slab."""
    s = disordered
    n, b = s.n_atoms, s.ext_bonds
    dev = b.j < n
    bounds = slab_partition(n, np.concatenate([b.i[dev], b.j[dev]]),
                            np.concatenate([b.j[dev], b.i[dev]]),
                            *(c.boundary for c in s.lead_contacts), min_size)
    assert (len(bounds) > 8) == (min_size == 1) and (len(bounds) == 2) == (min_size == 1000)
    slab_bonds = SlabBonds(bounds, b.i, b.j, n)
    phase = b.phases(s.kpoints[ik])
    E = s.fermi_level + np.array([-0.45, -0.1, 0.2, 0.4])
    sc = s.scattering(E, ik, (0, 1))
    for source in (0, 1):
        X, P, _ = sc.density_factors(source)
        ref = greens.bond_density(b.i, b.j, X, P, phase, imag=True)
        got = slab_bonds(X, P, phase, imag=True)
        for part in (0, 1):                               # Re and Im
            assert np.abs(ref[part]).max() > 1e-3
            assert relative_gap(got[part], ref[part]) < 1e-12
        assert np.array_equal(slab_bonds(X, P, phase), got[0])


def test_spectral_factor_of_known_rank():
    """a = i(g - g^+) of rank k (k channels open; one energy with none, a = 0): w w^+ = a
    to round-off with exactly k nonzero columns, the first ones, even where a's other
    eigenvalues are round-off of either sign."""
    rng = np.random.default_rng(5)
    n, ranks = 9, [4, 9, 1, 0]
    g = np.empty((len(ranks), n, n), dtype=complex)
    for e, k in enumerate(ranks):
        u = rng.normal(size=(n, k)) + 1j * rng.normal(size=(n, k))
        h = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
        # g = Re part (any Hermitian) - (i/2) u u^+: then i(g - g^+) = u u^+
        g[e] = (h + dagger(h)) / 2 - 0.5j * (u @ dagger(u))
        if k:
            g[e] += 1e-17 * (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    w = greens.spectral_factor(g)
    a = 1j * (g - dagger(g))
    for e, k in enumerate(ranks):
        assert np.abs(w[e] @ dagger(w[e]) - a[e]).max() <= 1e-13 * max(np.abs(a[e]).max(), 1)
        nonzero = np.flatnonzero(np.abs(w[e]).max(axis=0) > 0)
        assert list(nonzero) == list(range(k))
    assert greens.open_columns(w).shape[2] == max(ranks)


def dagger(a):
    return np.conj(np.swapaxes(a, -1, -2))


@pytest.mark.parametrize("ne, r", [(3, 4), (1, 5), (0, 4), (2, 0)])
@pytest.mark.parametrize("kind", [float, complex])
def test_sparse_left_multiply_equals_dense(kind, ne, r):
    """A sparse hopping block times a stack (real and complex blocks; one energy, no
    energy, no column) and the sandwich m a m^+ with it equal numpy's dense products."""
    rng = np.random.default_rng(2)
    m = sp.random(7, 5, density=0.3, random_state=3, dtype=float)
    if kind is complex:
        m = m + 1j * sp.random(7, 5, density=0.3, random_state=4)
    m = sp.csr_matrix(m)
    a = rng.normal(size=(ne, 5, r)) + 1j * rng.normal(size=(ne, 5, r))
    got = rgf.left_multiply(m, a)
    assert got.shape == (ne, 7, r)
    np.testing.assert_allclose(got, m.toarray() @ a, rtol=0, atol=1e-13)
    b = rng.normal(size=(ne, 5, 5)) + 1j * rng.normal(size=(ne, 5, 5))
    mh = sp.csr_matrix(m.conj().T)
    np.testing.assert_allclose(rgf.sandwich(m, b, mh), m.toarray() @ b @ mh.toarray(),
                               rtol=0, atol=1e-12)


def test_spectral_factor_refuses_a_non_finite_lead_function():
    g = np.zeros((3, 4, 4), dtype=complex) - 0.5j * np.eye(4)
    g[1, 0, 2] = np.nan
    with pytest.raises(FloatingPointError, match="not finite at 1 of 3 energies"):
        greens.spectral_factor(g)
