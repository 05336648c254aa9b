"""Leads: closed-form surface Green's functions, sum rules, Fermi level, k-mesh limit."""
import numpy as np
import pytest
from conftest import ORIGIN, fcc_box

from lammps_recoil import (A0_CU, HoppingModel, LayeredLead, WireLead, chain_lattice,
                           fcc_lattice)
from lammps_recoil.geometry import lattice_sites
from lammps_recoil.integration import gauss_legendre
from lammps_recoil import leads
from lammps_recoil.leads import chain_surface_gf

T1 = HoppingModel().nearest_neighbour_hopping()


def test_nearest_neighbour_hopping():
    assert T1 == pytest.approx(-1.8 * np.exp(-1.0), rel=1e-12)      # zeta * a = 1
    assert T1 == pytest.approx(-0.6622, abs=1e-4)


def test_chain_gf_is_the_papers_closed_form():
    """Section 3: g_R^{11}(E) = (E - i sqrt(4t^2 - E^2)) / 2t^2 in the band; outside,
    the decaying real root."""
    t = -1.8
    E = np.linspace(-3.55, 3.55, 41)
    paper = (E - 1j * np.sqrt(4 * t**2 - E**2)) / (2 * t**2)
    np.testing.assert_allclose(chain_surface_gf(E + 0j, 0.0, t**2), paper, atol=1e-12)
    out = np.array([-9.0, -3.7, 3.7, 9.0]) + 0j
    g = chain_surface_gf(out, 0.0, t**2)
    assert np.all(g.imag == 0) and np.all(np.abs(g) < 1 / abs(t))
    np.testing.assert_allclose(g, (out - np.sign(out.real) * np.sqrt(out**2 - 4 * t**2))
                               / (2 * t**2), atol=1e-12)


def test_decimation_wire_equals_closed_form_chain():
    hop = HoppingModel(t0=-1.8 * np.exp(1.0), zeta=1 / 2.5, r_on=3.5, r_off=3.5)
    wire = WireLead([[0, 0, -2.5]], [0, 0, -2.5], "left", hop, eta=1e-9)
    chain = LayeredLead(chain_lattice(2.5), [[0, 0, -2.5]], "left", hop)
    # (exactly E = 0, the centre of the bipartite chain's band, decimation stalls)
    for E in (-3.3, -1.0, 0.013, 2.2, 3.9):
        assert wire.surface_gf(E)[0, 0] == pytest.approx(chain.surface_gf(E)[0, 0], abs=1e-7)


def test_batched_decimation_equals_one_energy_at_a_time():
    """A wire lead decimates a batch of energies together; energies in and outside the band
    converge after different numbers of steps and leave the batch at different times, each
    with the same g as when decimated alone (and g = g^T: no magnetic field)."""
    lat = fcc_lattice("001")
    cell = lattice_sites(lat, ORIGIN, [0, 1], center_xy=ORIGIN[:2], radius=2.6)
    step = np.array([0.0, 0.0, -lat.spacing * 2])
    E = np.array([-9.0, -3.3, -0.4, 0.61, 2.2, 7.5])
    batch = WireLead(cell, step, "left", eta=1e-9).surface_gf(E)
    alone = np.array([WireLead(cell, step, "left", eta=1e-9).surface_gf(e) for e in E])
    np.testing.assert_allclose(batch, alone, rtol=0, atol=1e-13)
    np.testing.assert_allclose(batch, np.swapaxes(batch, 1, 2), atol=1e-12)
    assert np.all(np.abs(batch[[0, -1]].imag) < 1e-8)        # outside the band: real


def test_exact_wire_equals_closed_form_chain():
    """The exact (mode-matching) wire lead of a 1D chain is the chain's closed form at real
    energies, in and outside the band, at its centre and on and next to its edges."""
    hop = HoppingModel(t0=-1.8 * np.exp(1.0), zeta=1 / 2.5, r_on=3.5, r_off=3.5)
    wire = WireLead([[0, 0, -2.5]], [0, 0, -2.5], "left", hop)
    chain = LayeredLead(chain_lattice(2.5), [[0, 0, -2.5]], "left", hop)
    edge = 2 * 1.8
    E = np.array([-9.0, -edge - 1e-9, -edge + 1e-9, -1.0, 0.0, 0.013, 2.2, edge - 1e-9,
                  edge + 1e-9, 9.0])
    np.testing.assert_allclose(wire.surface_gf(E)[:, 0, 0], chain.surface_gf(E)[:, 0, 0],
                               rtol=1e-10)
    # on an edge itself (group velocity zero, a double mode) g is the limit from either side
    g = wire.surface_gf(np.array([-edge, edge]))[:, 0, 0]
    np.testing.assert_allclose(g, [-1 / 1.8, 1 / 1.8], rtol=1e-7)


def fcc_wire(orientation, layers, radius, eta=1e-9):
    """An fcc wire lead (by default broadened: decimated at E + 1e-9 i)."""
    lat = fcc_lattice(orientation)
    cell = lattice_sites(lat, ORIGIN, list(range(layers)), center_xy=ORIGIN[:2], radius=radius)
    return WireLead(cell, [0.0, 0.0, -lat.spacing * layers], "left", eta=eta)


def relative_gaps(a, b):
    """max |a - b| / max |b| per energy of two stacks."""
    return np.abs(a - b).max(axis=(1, 2)) / np.abs(b).max(axis=(1, 2))


@pytest.mark.parametrize("orientation, layers", [("001", 2), ("111", 3)])
def test_reduced_chain_equals_decimating_the_whole_cell(orientation, layers):
    """A wire lead decimates the chain of the atoms C its previous cell bonds to, with the
    rest X of each cell eliminated: that chain's g equals the whole cell's decimation at
    ordinary energies and just outside WIRE_MIN_GAP of a level of H0_XX, and solves the
    lead's Dyson equation g = (z - H0 - H1 g H1^T)^-1; on such a level the lead decimates
    the whole cell. A lead whose cells are not bonded is z - H0 inverted. (The (111) cell
    ABC has no mirror plane through X, so the chain's hopping there is not symmetric and
    the direction of its construction is tested as well.)"""
    wire = fcc_wire(orientation, layers, 4.0)
    assert 0 < len(wire._c) < len(wire.positions)
    levels = wire._levels[[0, len(wire._levels) // 2, -1]]    # (the middle one: E = 0,
    gap = 1.01 * leads.WIRE_MIN_GAP                           # a flat band, g ~ 1/eta)
    E = np.concatenate([[-6.1, -2.9, -0.37, 0.8, 2.3], levels + gap, levels - gap])
    z = E + 1j * wire.eta
    reduced, whole = wire._cell_gf(z, reduced=True), wire._cell_gf(z, reduced=False)
    assert relative_gaps(reduced, whole).max() < 1e-9
    assert wire.dyson_residual(z, reduced).max() < 1e-9
    on = levels[[0, -1]]                    # (routed by the gap alone, not the Dyson check)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(leads, "WIRE_RESIDUAL", np.inf)
        on_whole = wire._cell_gf(on + 1j * wire.eta, reduced=False)
        assert relative_gaps(wire.surface_gf(on), on_whole).max() < 1e-14
    apart = WireLead(wire.positions, [0.0, 0.0, -12.0], "left", eta=wire.eta)
    assert not np.any(apart.H1)
    alone = np.linalg.inv(z[:, None, None] * np.eye(len(wire.positions)) - apart.H0)
    np.testing.assert_allclose(apart.surface_gf(E), alone, rtol=1e-12)


def channel_counter(wire):
    """A function giving the right-moving channels of a wire at energy E from its subbands
    eps_n(q), 0 < q < pi: each crossing of a band (on a fine q grid) is one channel,
    counted in the middle of the interval between channel edges that holds E (the count
    is constant there)."""
    edges = np.concatenate([[-np.inf], wire.channel_edges(), [np.inf]])
    eps = np.linalg.eigvalsh(wire._bloch(np.linspace(0.0, np.pi, 4001)))

    def count(E):
        i = np.searchsorted(edges, E)
        mid = 0.5 * (edges[i - 1] + edges[i]) if np.isfinite(edges[i - 1:i + 1]).all() else E
        return int(np.sum(np.abs(np.diff(np.sign(eps - mid), axis=0)) > 0))

    return count


@pytest.mark.parametrize("orientation, layers", [("001", 2), ("111", 3)])
def test_exact_wire_is_the_limit_of_decimation(orientation, layers):
    """The exact wire lead is the eta -> 0 limit of decimation at E + i eta (Richardson
    extrapolation 2 g(eta) - g(2 eta) from eta = 1e-8 eV), on a grid over the band and
    1e-4 eV either side of every channel edge; g = g^T, its spectral function
    i (g - g^+) is positive semi-definite (retarded), and its outgoing propagating modes are
    the subbands' crossings of E, each carrying current away from the device. (The (001)
    wire's flat band at E = 0 is tested below.)"""
    exact = fcc_wire(orientation, layers, 3.0, eta=0.0)
    edges = np.setdiff1d(exact.channel_edges(), exact.flat_bands())
    E = np.concatenate([np.linspace(edges[0] - 0.5, edges[-1] + 0.5, 41) + 1.23e-3,
                        edges + 1e-4, edges - 1e-4])
    g = exact.surface_gf(E)
    ref = [fcc_wire(orientation, layers, 3.0, eta=eta).surface_gf(E) for eta in (1e-8, 2e-8)]
    assert relative_gaps(g, 2 * ref[0] - ref[1]).max() < 5e-8
    np.testing.assert_allclose(g, np.swapaxes(g, 1, 2), atol=1e-10)
    a = 1j * (g - np.conj(np.swapaxes(g, 1, 2)))
    assert np.linalg.eigvalsh(a).min() > -1e-10 * np.abs(g).max()
    n, open_channels = len(exact.positions), channel_counter(exact)
    far = np.abs(E[:, None] - exact.channel_edges()).min(axis=1) > 1e-3   # (q grid resolves)
    for e in E[far][::5]:
        m = exact.modes(e)
        assert m.propagating[:n].sum() == m.propagating[n:].sum() == open_channels(e)
        assert np.all(m.current[:n][m.propagating[:n]] > 0)
        assert np.all(np.abs(m.lam[:n][~m.propagating[:n]]) < 1)


def test_exact_wire_across_its_channel_edges():
    """1e-9 eV either side of each channel edge (group velocity near zero, two modes nearly
    merged) the exact lead still counts its open channels right, each outgoing one carrying
    current away from the device, and g stays retarded and symmetric to 1e-6 (round-off of
    the nearly merged modes, ~1e-16 / q^2 with q ~ 3e-5 their splitting). (Its value can
    grow as |E - E_c|^-1/2: some edges of the (111) wire are van Hove points of the surface
    block. Its flat band at 1.3244 eV, an edge too, is left out: there g ~ 1/(E - E_f) is
    10^8 eV^-1 at 1e-9 eV and its round-off depends on the BLAS; integrals keep away from
    it, see test_exact_wire_on_a_flat_band.)"""
    wire = fcc_wire("111", 3, 3.0, eta=0.0)
    n, open_channels = len(wire.positions), channel_counter(wire)
    edges = wire.channel_edges()
    apart = np.diff(edges, prepend=-np.inf, append=np.inf)
    flat = np.abs(edges[:, None] - wire.flat_bands()).min(axis=1, initial=np.inf) < 1e-3
    for Ec in edges[(apart[:-1] > 1e-3) & (apart[1:] > 1e-3) & ~flat]:     # (q grid resolves)
        for e in (Ec - 1e-9, Ec + 1e-9):
            m = wire.modes(e)
            assert m.propagating[:n].sum() == open_channels(e)
            assert np.all(m.current[:n][m.propagating[:n]] > 0)
            g = wire.surface_gf(e)
            a = 1j * (g - g.conj().T)
            assert np.linalg.eigvalsh(a).min() > -1e-6 * np.abs(g).max()
            assert np.abs(g - g.T).max() < 1e-6 * np.abs(g).max()


def test_exact_wire_on_a_flat_band():
    """The symmetric (001) wire has flat bands at E = 0 and 1.324 eV (levels of H(q) at
    every Bloch vector q): at E = 0 g has a pole, (E - E_f) g tends to a finite residue
    (within 10 |E - E_f| relative), and on the band itself the lead refuses the energy by
    name; the window check keeps integrals away from it."""
    wire = fcc_wire("001", 2, 3.0, eta=0.0)
    flat = wire.flat_bands()
    assert flat[0] == pytest.approx(0.0, abs=1e-12) and len(flat) == 2
    q = np.random.default_rng(3).uniform(0.0, np.pi, 5)
    levels = np.linalg.eigvalsh(wire._bloch(q))
    assert np.abs(levels[:, :, None] - flat).min(axis=1).max() < 1e-9
    d = np.array([1e-3, 1e-4, 1e-5, -1e-5, -1e-4, -1e-3])
    residue = d[:, None, None] * wire.surface_gf(d)
    limit = (4 * residue[2] - residue[1]) / 3        # (one Richardson step from 1e-5, 1e-4)
    gap = np.abs(residue - limit).max(axis=(1, 2)) / np.abs(limit).max()
    assert np.all(gap <= 10.0 * np.abs(d))                          # tends to the residue
    assert np.abs(residue[2] - residue[3]).max() < 1e-4 * np.abs(limit).max()
    with pytest.raises(ValueError, match="E = 0.0 eV lies on a flat band of the left wire"):
        wire.surface_gf(0.0)


class MatrixWire(WireLead):
    """A wire lead given by its cell matrices H0, H1 instead of atoms and a hopping law."""

    def __init__(self, H0, H1, eta):
        self._given = {0: H0, 1: H1}
        cell = np.column_stack([np.arange(len(H0)) * 10.0, np.zeros((len(H0), 2))])
        super().__init__(cell, [0.0, 0.0, -1.0], "left", eta=eta)

    def _coupling(self, shift):
        return self._given.get(int(round(-shift[2])), np.zeros_like(self._given[0]))


def test_reduced_chain_with_hopping_within_c_matches_a_long_finite_wire():
    """Cells where atoms of C (bonded from the previous cell) also bond to the next cell,
    H1_CC != 0, and X is not empty: the reduced chain's g equals the surface of a finite
    wire of 3000 cells built cell by cell (g <- (z - H0 - H1 g H1^T)^-1, converged at
    eta = 0.05)."""
    rng = np.random.default_rng(7)
    n = 8
    H0 = rng.normal(size=(n, n))
    H0 = H0 + H0.T
    H1 = rng.normal(size=(n, n))
    H1[:, [1, 4, 6]] = 0.0                                      # X = atoms 1, 4, 6
    wire = MatrixWire(H0, H1, eta=0.05)
    assert np.any(H1[np.ix_(wire._c, wire._c)]) and len(wire._c) == n - 3
    E = np.array([-5.0, -1.3, 0.2, 2.9, 6.0])
    z = E + 1j * wire.eta
    g = np.linalg.inv(z[:, None, None] * np.eye(n) - H0)
    for _ in range(3000):
        g = np.linalg.inv(z[:, None, None] * np.eye(n) - H0 - H1 @ g @ H1.T)
    assert relative_gaps(wire._cell_gf(z, reduced=True), g).max() < 1e-10
    assert relative_gaps(wire.surface_gf(E), g).max() < 1e-10


def test_wire_lead_redoes_a_reduced_chain_that_misses_the_dyson_equation(monkeypatch):
    """A reduced chain's g that misses the lead's Dyson equation by more than
    WIRE_RESIDUAL is redone on the whole cell, one that meets it is kept (the reduced
    chain's g scaled by 1 + 1e-6 and by 1 + 1e-13 stand in for its round-off, which varies
    with the BLAS and its threads). A decimation that does not converge is an error naming
    the energy."""
    E = np.array([-2.9, -0.37, 2.3])
    for kick, redone in ((1e-6, True), (1e-13, False)):
        wire = fcc_wire("001", 2, 4.0)
        z = E + 1j * wire.eta
        exact, whole = wire._cell_gf(z, reduced=True), wire._cell_gf(z, reduced=False)
        assert relative_gaps(exact, whole).max() > 1e-15          # (two different results)
        monkeypatch.setattr(wire, "_cell_gf", lambda z, reduced, cell=wire._cell_gf, k=kick:
                            cell(z, reduced) * (1.0 + k * reduced))
        expected = whole if redone else exact * (1.0 + kick)
        assert relative_gaps(wire.surface_gf(E), expected).max() < 1e-15
    short = fcc_wire("001", 2, 5.5)
    short.max_iter = 3
    with pytest.raises(RuntimeError, match=r"decimation did not converge at E = -0.4"):
        short.surface_gf([-0.4, 0.2])


@pytest.mark.parametrize("orientation, nx, ny", [("001", 2, 2), ("001", 3, 3), ("111", 4, 2)])
def test_surface_dos_integrates_to_one_state_per_site(orientation, nx, ny):
    """-(1/pi) int Im g_ii dE = 1 for the surface and second layer. Layers of the kappa
    points where h1 = 0 are flat bands (delta peaks a quadrature cannot see): they hold
    exactly their share n_flat / N_kappa of the states."""
    box = fcc_box(orientation, nx, ny)
    lat = fcc_lattice(orientation)
    lead = LayeredLead(lat, lattice_sites(lat, ORIGIN, [0, 1], box=box), "right", box=box)
    n_flat = np.sum(np.abs(lead.h1(lead.kappa)) < 1e-9)
    E, w = gauss_legendre(*np.array(lead.band_edges()) + [-0.01, 0.01], 6000)
    total = w @ lead.layer_dos(E)
    np.testing.assert_allclose(total, 1.0 - n_flat / len(lead.kappa), atol=2e-4)
    # layer_dos is the diagonal of the real-space surface Green's function
    for e in (-5.0, 0.61):
        diag = -np.diag(lead.surface_gf(e)).imag / np.pi
        np.testing.assert_allclose(diag, lead.layer_dos(e)[0][lead.layer], atol=1e-12)


@pytest.mark.parametrize("box", [True, False])
def test_block_gf_is_the_per_atom_fourier_sum(box):
    """g between any two block atoms (three fcc (111) layers, a Bloch vector k, a periodic
    box or a laterally infinite patch) equals the explicit sum over kappa with per-atom phases,
    sum_kappa e^{i kappa.(x_a - x_b)} G_{n_a n_b}(kappa + k) / N_kappa; requests for a
    shallower block after a deeper one are served from the same cache."""
    lat = fcc_lattice("111")            # h1(kappa) complex: G_nm != G_mn
    if box:
        cell = fcc_box("111", 2, 2)
        lead = LayeredLead(lat, lattice_sites(lat, ORIGIN, [0, 1, 2], box=cell), "left",
                           box=cell)
        k = np.array([0.31, -0.17])
    else:
        patch = lattice_sites(lat, ORIGIN, [0, 1, 2], center_xy=ORIGIN[:2], radius=3.0)
        lead, k = LayeredLead(lat, patch, "right", kmesh=12, eta=0.05), None
    E = np.array([-3.1, 0.6, 2.4])
    kappa = lead.kappa + (0.0 if k is None else k)
    G = lead._block_gf(E, kappa, 3)                     # (layer, layer, E, kappa)
    x, n = lead.positions[:, :2], lead.layer
    phase = np.exp(1j * (x[:, None] - x[None]) @ lead.kappa.T) * lead.weights
    ref = np.einsum("abq,abeq->eab", phase, G[n[:, None], n[None, :]])
    surface = np.flatnonzero(n == 0)[::-1]
    first = lead.surface_gf(E, k, surface)
    np.testing.assert_allclose(first, ref[:, surface[:, None], surface], atol=1e-13)
    np.testing.assert_allclose(lead.surface_gf(E, k), ref, atol=1e-13)
    again = lead.surface_gf(E[::-1], k, surface)
    np.testing.assert_allclose(again, first[::-1], atol=1e-13)
    assert len(lead._caches) == 1


@pytest.mark.parametrize("orientation", ["001", "111"])
def test_layer_green_functions_invert_the_truncated_half_chain(orientation):
    """The closed form of G_nm(E, kappa) on the first four layers is the inverse of the
    4 x 4 block E + i eta - H of the per-kappa chain closed by the surface Green's
    function of the rest (independent: a dense inversion), on a zone mesh that holds
    kappa where the layers decouple (h1 = 0: flat bands of (001))."""
    lat = fcc_lattice(orientation)
    patch = lattice_sites(lat, ORIGIN, [0, 1, 2, 3], center_xy=ORIGIN[:2], radius=3.0)
    lead = LayeredLead(lat, patch, "right", kmesh=8, eta=0.03)
    kappa = np.vstack([lead.kappa, 0.5 * lat.reciprocal()[0]])
    E = np.array([-6.2, -1.0, 0.6, 2.2])
    z = E[:, None] + 1j * lead.eta
    h0, h1 = lead.h0(kappa), lead.h1(kappa)
    gs = chain_surface_gf(z, h0, np.abs(h1) ** 2)
    M = np.zeros(gs.shape + (4, 4), dtype=complex)
    i = np.arange(4)
    M[..., i, i] = (z - h0)[..., None]
    M[..., i[:-1], i[1:]] = -h1[:, None]
    M[..., i[1:], i[:-1]] = -np.conj(h1)[:, None]
    M[..., 3, 3] -= np.abs(h1) ** 2 * gs
    G = np.moveaxis(lead._block_gf(E, kappa, 4), (0, 1), (2, 3))
    np.testing.assert_allclose(G, np.linalg.inv(M), atol=1e-12)
    if orientation == "001":
        assert np.min(np.abs(h1)) < 1e-12


def test_lead_caches_share_one_memory_bound(monkeypatch):
    """The caches of the Bloch vectors of one lead hold at most CACHE_BYTES together, also
    when they fill one after another (a cache filled before the bound was shared is cut back),
    and the values they serve are those of a fresh lead."""
    monkeypatch.setattr(leads, "CACHE_BYTES", 2**16)
    lat, cell = fcc_lattice("111"), fcc_box("111", 2, 2)
    sites = lattice_sites(lat, ORIGIN, [0, 1], box=cell)
    lead = LayeredLead(lat, sites, "left", box=cell)
    ks = [np.array([q, 0.0]) for q in (0.0, 0.2, 0.4, 0.6)]
    grid = np.linspace(-5.0, 2.0, 240)
    for k in ks:                                # each k fills its cache in turn
        for chunk in np.array_split(grid, 24):
            lead.surface_gf(chunk, k)
    held = sum(c.values.nbytes for _, c in lead._caches.values() if c.values is not None)
    assert held <= leads.CACHE_BYTES
    fresh = LayeredLead(lat, sites, "left", box=cell)
    np.testing.assert_allclose(lead.surface_gf(grid[:10], ks[1]),
                               fresh.surface_gf(grid[:10], ks[1]), atol=1e-14)


@pytest.mark.parametrize("orientation", ["001", "111"])
def test_fermi_level_against_bulk_brillouin_zone(orientation):
    """E_F at one electron per atom is the median of the bulk band
    eps(k) = 4 t1 (cx cy + cy cz + cz cx) over the 3D zone, computed independently."""
    lat = fcc_lattice(orientation)
    box = fcc_box(orientation, 2, 2)
    lead = LayeredLead(lat, lattice_sites(lat, ORIGIN, [0, 1], box=box), "left", box=box)
    ef = lead.fermi_level()
    # cubic cell sampling of the simple-cubic-folded zone: k in [0, 4 pi / a0)^3 covers
    # the fcc zone four times uniformly
    n = 96
    k = (np.arange(n) + 0.5) * 4 * np.pi / (A0_CU * n)
    c = np.cos(k * A0_CU / 2)
    cx, cy, cz = np.meshgrid(c, c, c, indexing="ij", sparse=True)
    eps = 4 * T1 * (cx * cy + cy * cz + cz * cx)
    assert ef == pytest.approx(np.median(eps), abs=2e-3)
    assert ef == pytest.approx(0.6077, abs=2e-4)
    assert lead.band_edges() == pytest.approx((12 * T1, -4 * T1), abs=1e-9)
    assert lead.fermi_level(kmesh=480) == pytest.approx(ef, abs=1e-4)


def test_laterally_infinite_lead_converges_with_k_mesh():
    """The laterally infinite (001) surface at E_F: the surface-patch Green's function
    converges as the Brillouin-zone mesh grows (fixed eta)."""
    lat = fcc_lattice("001")
    patch = lattice_sites(lat, ORIGIN, [0], center_xy=ORIGIN[:2], radius=4.0)
    ref = LayeredLead(lat, patch, "right", kmesh=256, eta=0.05).surface_gf(0.6)
    err = [np.abs(LayeredLead(lat, patch, "right", kmesh=n, eta=0.05).surface_gf(0.6)
                  - ref).max() for n in (16, 32, 64, 128)]
    assert err[0] > 1e-3
    assert all(b < a / 2 for a, b in zip(err, err[1:]))
    assert err[-1] < 5e-5


def test_lead_atoms_off_lattice_are_rejected():
    lat = fcc_lattice("001")
    box = fcc_box("001", 2, 2)
    sites = lattice_sites(lat, ORIGIN, [0, 1], box=box)
    sites[3, 0] += 0.2
    with pytest.raises(ValueError, match="not on ideal"):
        LayeredLead(lat, sites, "left", box=box)
    with pytest.raises(ValueError, match="complete layer"):
        LayeredLead(lat, lattice_sites(lat, ORIGIN, [0, 1], box=box)[1:], "left", box=box)


def test_isolated_filament_between_infinite_half_spaces():
    """The laterally infinite limit for the default filament: T(E_F) converges with the
    zone mesh and with eta -> 0 (3.0236, 3.0233, 3.0230 for eta = 0.05, 0.02, 0.01 eV) and
    lies within 2e-3 of the periodic 4x4 cell's 3.0221: the filament couples locally."""
    from lammps_recoil.builders import build_filament
    f = build_filament()
    T = {(k, e): f.isolated_system(kmesh=k, eta=e).conductance()
         for k in (32, 96) for e in (0.05, 0.01)}
    assert abs(T[32, 0.01] - T[96, 0.01]) < 2e-4
    assert T[96, 0.01] == pytest.approx(3.0230, abs=5e-4)
    assert abs(T[96, 0.05] - T[96, 0.01]) < 1e-3
    assert abs(T[96, 0.01] - f.recoil_system().conductance()) < 2e-3


def test_no_energies_give_an_empty_stack():
    """An empty array of energies gives an empty stack of the requested atoms' g, from a
    fresh lead (nothing cached yet) of either kind."""
    lat, cell = fcc_lattice("111"), fcc_box("111", 2, 2)
    layered = LayeredLead(lat, lattice_sites(lat, ORIGIN, [0, 1], box=cell), "left", box=cell)
    wire = WireLead([[0, 0, -2.5]], [0, 0, -2.5], "left")
    assert layered.surface_gf(np.zeros(0), None, [0, 3]).shape == (0, 2, 2)
    assert wire.surface_gf(np.zeros(0)).shape == (0, 1, 1)
