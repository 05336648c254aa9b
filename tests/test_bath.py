"""Electronic friction, Berry tensor and noise (bath.py): identities that wrong physics breaks.

The kernels come from the Green's functions of the mean force (docs/bath.md). They are
checked against: the mean force itself (the coupling operator), the spectral sum rule,
fluctuation-dissipation at zero bias, time reversal, positivity, an independent
scattering-matrix route (Bode, Kusminskiy, Egger, von Oppen, PRL 107, 036804 (2011)) with
dS/dX by finite differences of the package's own scattering amplitudes after moving the
atoms, a closed form for the chain's central atom, and the mirror map V -> -V.
"""
import numpy as np
import pytest

from lammps_recoil import bath
from lammps_recoil import integration as quad
from lammps_recoil.chain import chain_system, gamma_chain
from lammps_recoil.greens import dagger, sqrtm_psd

HB = bath.HBAR


def window_nodes(system, bias, n=40, temperature=0.0):
    seg = quad.bias_window(system.fermi_level, bias, 0.5, temperature)[0]
    E, w = seg.nodes(n)
    return seg, E, w


@pytest.mark.parametrize("model", ["paper", "hellmann-feynman"])
def test_operator_expectation_is_the_mean_force(model):
    """2 tr[rho F_a] over the bias window, with rho = sum_S w_S A_S / 2 pi, is the
    renormalized force of system.forces (Eq. 10 with Eq. 4): same operator, spin, sign."""
    s = gamma_chain(0.3, eps=0.2, n_side=2)
    ops = bath.force_operators(s, model)
    seg, E, w = window_nodes(s, 0.7)
    wl, wr = seg.occupation(E)
    A = bath.extended_spectra(s, E).A
    rho = (wl[:, None, None] * A[0] + wr[:, None, None] * A[1]) / (2 * np.pi)
    F = np.array([[np.sum(ops.matrix(a).toarray().T * r) for a in range(3 * s.n_atoms)]
                  for r in rho])
    ref = s.forces(0.7, model=model, n_points=40).forces.ravel()
    assert np.abs(ref).max() > 1e-3
    np.testing.assert_allclose(2 * (w @ F).real, ref, atol=1e-12)


def test_hellmann_feynman_operator_is_minus_dH_dX(small_filament):
    """F_a = -dH/dX_a for the hopping gradient, by central differences of the device
    Hamiltonian and the device-lead couplings of the moved geometry."""
    s = small_filament.recoil_system()
    x0 = s.positions.copy()
    ops = bath.force_operators(s, "hellmann-feynman")
    n, off = s.n_atoms, s.n_atoms + len(s.lead_contacts[0].contacts)

    def h_ext(x):
        s.update(x)
        H = np.zeros((s.n_ext, s.n_ext))
        H[:n, :n] = np.real(np.asarray(s._H[0].toarray() if hasattr(s._H[0], "toarray")
                                       else s._H[0]))
        for t, o in enumerate((n, off)):
            c = s.lead_contacts[t]
            V = s._V[0][t].real
            H[o:o + len(c.contacts), c.boundary] = V
            H[c.boundary, o:o + len(c.contacts)] = V.T
        return H

    d = 1e-5
    for a in (0, 4, 3 * n - 1):
        xp, xm = x0.copy(), x0.copy()
        xp.flat[a] += d
        xm.flat[a] -= d
        dH = (h_ext(xp) - h_ext(xm)) / (2 * d)
        s.update(x0)
        Fa = ops.matrix(a).toarray()
        assert np.abs(Fa).max() > 0.1
        np.testing.assert_allclose(Fa.real, -dH, atol=1e-7)


def test_spectral_sum_rule():
    """A_L + A_R = i (G - G^+) on the extended region (device plus lead contacts)."""
    s = gamma_chain(0.4, eps=0.3, n_side=1)
    sp = bath.extended_spectra(s, np.array([-1.2, 0.05, 0.9]))
    total = 1j * (sp.G - dagger(sp.G))
    np.testing.assert_allclose(sp.A[0] + sp.A[1], total, atol=1e-13)


@pytest.mark.parametrize("temperature", [100.0, 200.0, 300.0])
def test_fluctuation_dissipation_at_zero_bias(temperature, small_filament):
    """V = 0: D = 2 k_B T_e gamma_s; no Berry part (time reversal, real H at Gamma);
    friction symmetric positive semidefinite, noise positive semidefinite."""
    s = small_filament.recoil_system()
    b = bath.electronic_bath(s, 0.0, temperature=temperature)
    kT = quad.K_B * temperature
    scale = np.abs(b.friction).max()
    assert scale > 1e-7
    np.testing.assert_allclose(b.noise, 2 * kT * b.friction, atol=1e-9 * kT * scale)
    assert np.abs(b.berry).max() <= 1e-12 * scale
    np.testing.assert_allclose(b.friction, b.friction.T, atol=1e-15 * scale)
    assert np.linalg.eigvalsh(b.friction).min() > -1e-12 * scale
    np.testing.assert_allclose(b.friction, b.equilibrium, atol=1e-14 * scale)


def test_zero_bias_friction_grows_smoothly_with_temperature():
    """The Fermi-surface friction at T_e is the -df/dE average of its T_e = 0 integrand:
    at 30 K it differs from T_e = 0 by less than the tolerance (chain, smooth T(E))."""
    s = gamma_chain(0.2, n_side=1)
    b0 = bath.electronic_bath(s, 0.0, temperature=0.0)
    b1 = bath.electronic_bath(s, 0.0, temperature=30.0, tol=1e-6)
    np.testing.assert_allclose(b1.friction, b0.friction, atol=1e-4 * np.abs(b0.friction).max())
    assert np.all(b0.noise == 0.0)


@pytest.mark.parametrize("bias", [0.3, -0.6, 1.0])
def test_noise_positive_semidefinite_at_bias(bias, small_filament):
    s = small_filament.recoil_system()
    b = bath.electronic_bath(s, bias, temperature=0.0)
    lam = np.linalg.eigvalsh(b.noise)
    assert lam.max() > 0
    assert lam.min() > -1e-10 * lam.max()
    np.testing.assert_allclose(b.noise, b.noise.T, atol=1e-15 * lam.max())


def test_bias_correction_formula_against_temperature_change():
    """The bias term of gamma, -(2 hbar/pi) int w Im tr[A F dG/dE F], holds for any change
    w of the occupations that stays inside the band. With w = f_T - f_0 (the same Fermi
    sea heated) it must give gamma_FS(T) - gamma_FS(0), the change of the Fermi-surface
    friction (ħ/2π) int (-df/dE) tr[A F A F]: a check of its sign, factors and of the
    finite-difference dG/dE that does not use it."""
    s = gamma_chain(0.35, eps=0.25, n_side=1)
    ops = bath.force_operators(s, "paper")
    T = 600.0
    EF, tail = s.fermi_level, 20 * quad.K_B * T
    nodes, wts = [], []
    for lo, hi in ((EF - tail, EF), (EF, EF + tail)):
        e, w = quad.gauss_legendre(lo, hi, 120)
        nodes.append(e)
        wts.append(w)
    E, w = np.concatenate(nodes), np.concatenate(wts)
    dw = quad.fermi(E, EF, T) - quad.fermi(E, EF, 0.0)
    phi = np.concatenate(bath.extended_spectra(s, E).phi, axis=2)     # A = A_L + A_R
    dG = bath.energy_derivative(s, E)
    traces = bath.window_traces(ops, ops.lift(phi), dG, "imag")
    change = -2 * HB / np.pi * np.einsum("e,eab->ab", w * dw, traces)
    b0 = bath.electronic_bath(s, 0.0, temperature=0.0)
    bT = bath.electronic_bath(s, 0.0, temperature=T, tol=1e-7)
    diff = bT.friction - b0.friction
    assert np.abs(diff).max() > 1e-3 * np.abs(b0.friction).max()
    np.testing.assert_allclose(0.5 * (change + change.T), diff, atol=1e-4 * np.abs(diff).max())


# ------------------------------------------------------------- scattering-matrix route
def s_matrix(system, E):
    """Fisher-Lee S on the leads' contact sites, S_ts = -delta_ts + i a_t^1/2 V_t
    G_F[B_t, B_s] V_s^+ a_s^1/2 (a_s = i(g_s - g_s^+)): the scattering matrix up to
    unitary maps fixed by the leads alone (independent of the device geometry)."""
    sc = system.scattering(np.array([E]), 0, (0, 1))
    gs = [system._lead_gf(s, np.array([E]), 0)[0] for s in (0, 1)]
    roots = [sqrtm_psd(1j * (g - dagger(g))) for g in gs]
    V = system._V[0]
    blocks = []
    for t in (0, 1):
        row = []
        for s in (0, 1):
            Gts = sc.X[s][0][system.lead_contacts[t].boundary]
            m = 1j * roots[t] @ V[t] @ Gts @ dagger(V[s]) @ roots[s]
            if s == t:
                m = m - np.eye(len(m))
            row.append(m)
        blocks.append(row)
    sizes = [len(r) for r in roots]
    return np.block(blocks), sizes


def s_matrix_kernels(system, E, coords, d=1e-5):
    """K_a = S^+ dS/dX_a by central differences of the moved geometry (Hellmann-Feynman
    coupling: the electrons see H(X)); returns K (coords x channels x channels) and the
    projectors on the left and right leads' channels."""
    x0 = system.positions.copy()
    S0, sizes = s_matrix(system, E)
    K = []
    for a in coords:
        xp, xm = x0.copy(), x0.copy()
        xp.flat[a] += d
        xm.flat[a] -= d
        system.update(xp)
        Sp = s_matrix(system, E)[0]
        system.update(xm)
        Sm = s_matrix(system, E)[0]
        K.append(dagger(S0) @ (Sp - Sm) / (2 * d))
    system.update(x0)
    P = np.zeros((2, len(S0)))
    P[0, :sizes[0]] = 1.0
    P[1, sizes[0]:] = 1.0
    return np.array(K), P


def bode_traces(K, P):
    """-tr[Pi_S K_a Pi_S' K_b] for (S, S') in LL, RR, LR: equals tr[A_S F_a A_S' F_b]."""
    t = lambda s, u: -np.einsum("i,aij,j,bji->ab", P[s], K, P[u], K)
    return t(0, 0), t(1, 1), t(0, 1)


def _systems():
    from lammps_recoil.builders import build_filament
    fil = build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=1, gap_layers=3,
                         shape="cylinder", neck_radius=1.3)
    return {"chain": chain_system(-1.8, -1.8, 0.0, n_side=1),
            "constriction": fil.recoil_system()}


@pytest.fixture(scope="module")
def systems():
    return _systems()


@pytest.mark.parametrize("name", ["chain", "constriction"])
def test_scattering_matrix_route_friction_and_noise(systems, name):
    """Bode et al.: gamma_s = (hbar/4 pi) sum_a int (-df_a) tr[Pi_a dS^+ dS] (zero bias,
    T_e = 0: at E_F) and D = (hbar/2 pi) sum_ab int f_a (1 - f_b) tr[Pi_a (S^+ dS)^+ Pi_b
    S^+ dS] (symmetrized), times 2 for spin, with dS/dX from moving the atoms; against the
    Green's-function kernels (Hellmann-Feynman coupling)."""
    s = systems[name]
    n3 = 3 * s.n_atoms
    # the chain's hopping is fixed on the central atom's bonds unless that atom moves
    # (ContactHopping identifies it by z = 0), so only its coordinates follow H(X)
    coords = [3, 4, 5] if name == "chain" else [2, 3, 5, n3 - 1, n3 - 3]
    K, P = s_matrix_kernels(s, s.fermi_level, coords)
    LL, RR, LR = bode_traces(K, P)
    friction = 2 * HB / (4 * np.pi) * (LL + RR + LR + LR.T).real
    b0 = bath.electronic_bath(s, 0.0, temperature=0.0, model="hellmann-feynman")
    ref = b0.friction[np.ix_(coords, coords)]
    assert np.abs(ref).max() > 1e-6
    np.testing.assert_allclose(friction, ref, atol=1e-6 * np.abs(ref).max())
    # noise at T_e = 0 and V = 0.4 V: shot noise of the window, f_R (1 - f_L) = 1 there
    bias = 0.4
    _, E, w = window_nodes(s, bias, n=6)
    noise = 0.0
    for e, we in zip(E, w):
        K, P = s_matrix_kernels(s, e, coords)
        _, _, LR = bode_traces(K, P)
        noise = noise + we * 2 * HB / (2 * np.pi) * (LR + LR.T).real / 2 * 1.0
    bV = bath.electronic_bath(s, bias, temperature=0.0, model="hellmann-feynman", n_points=3)
    ref = bV.noise[np.ix_(coords, coords)]
    np.testing.assert_allclose(noise, ref, atol=1e-6 * np.abs(ref).max())


def test_chain_central_atom_closed_form():
    """The paper's chain with its central atom (v_L = v_R = t, eps = 0, Hellmann-Feynman
    coupling -zeta t along the two bonds). At E_F = 0 the chain is reflectionless and
    moving the central atom by u changes v_L,R = t e^(-+zeta u); from the S-matrix of the
    resonant site, S = [[0, -1], [-1, 0]] and dS/du = diag(2 zeta, -2 zeta) (up to lead
    phases), so K = S^+ dS has K_LR = -K_RL = 2 zeta, K_LL = K_RR = 0. Hence (spin 2)
    gamma = 2 (hbar/4 pi) (-2 K_LR K_RL) = 4 hbar zeta^2 / pi, and, the coupling being
    purely inter-lead, the noise is the shot noise of the L-R term only:
    D = 2 (hbar/2 pi) 4 zeta^2 eV coth(eV/2kT) / ... so that k_B T_eff = D / 2 gamma =
    (eV/2) coth(eV / 2 k_B T_e) for eV small against the band (cf. the symmetric
    resonant level of Bode et al., Beilstein J. Nanotechnol. 3, 144 (2012), whose
    level-shift coupling gives eV/4 because it adds the intra-lead terms)."""
    s = chain_system(-1.8, -1.8, 0.0, n_side=0)
    zeta = s.hopping.zeta
    b0 = bath.electronic_bath(s, 0.0, temperature=0.0, model="hellmann-feynman")
    assert b0.friction[2, 2] == pytest.approx(4 * HB * zeta**2 / np.pi, rel=1e-12)
    for bias, T in ((0.01, 0.0), (0.01, 50.0), (0.02, 300.0)):
        b = bath.electronic_bath(s, bias, temperature=T, model="hellmann-feynman", tol=1e-8)
        t_eff = bath.effective_temperature(b).modes[0]
        eV = abs(bias)
        expect = eV / (2 * quad.K_B) if T == 0 else eV / (2 * quad.K_B) / np.tanh(
            eV / (2 * quad.K_B * T))
        assert t_eff == pytest.approx(expect, rel=2e-3)


def test_mirror_symmetry_maps_bias_sign():
    """A chain symmetric under z -> -z (eps on the central atom, equal bonds) at beta =
    1/2: the mirror swaps the leads, so the tensors at -V are those at +V with atom j ->
    -j and the z components' sign flipped twice (unchanged)."""
    s = chain_system(-1.5, -1.5, 0.4, n_side=2)
    bp = bath.electronic_bath(s, 0.5, temperature=100.0, tol=1e-6)
    bm = bath.electronic_bath(s, -0.5, temperature=100.0, tol=1e-6)
    z = np.arange(2, 15, 3)
    for name in ("friction", "berry", "noise"):
        p, m = getattr(bp, name)[np.ix_(z, z)], getattr(bm, name)[np.ix_(z, z)]
        # the map R on z coordinates: atom j -> -j with z -> -z, i.e. a reversal and two
        # sign flips; for the antisymmetric part the reversal alone
        mapped = p[::-1, ::-1]
        scale = np.abs(bp.friction).max()
        np.testing.assert_allclose(m, mapped, atol=1e-4 * scale)
    assert np.abs(bp.berry).max() > 1e-3 * np.abs(bp.friction).max()


def test_effective_temperature_equilibrium_and_errors():
    s = gamma_chain(0.3, n_side=1)
    b = bath.electronic_bath(s, 0.0, temperature=450.0)
    t = bath.effective_temperature(b)
    np.testing.assert_allclose(t.modes, 450.0, rtol=1e-9)
    assert t.overall == pytest.approx(450.0, rel=1e-9)
    assert t.balance == pytest.approx(450.0, rel=1e-9)
    with pytest.raises(ValueError, match="force model"):
        bath.electronic_bath(s, 0.1, model="ehrenfest")
    with pytest.raises(ValueError, match="electron temperature"):
        bath.electronic_bath(s, 0.1, temperature=-1.0)


def test_low_rank_traces_equal_dense_traces(small_filament):
    """pair_traces and window_traces (through A_S = phi_S phi_S^+) against tr[X F_a Y F_b]
    of dense matrices, on a few coordinates of a 3D constriction."""
    s = small_filament.recoil_system()
    ops = bath.force_operators(s)
    E = np.array([s.fermi_level - 0.2, s.fermi_level + 0.1])
    sp = bath.extended_spectra(s, E)
    dG = bath.energy_derivative(s, E)
    AL, AR = sp.A
    F = [ops.matrix(a).toarray() for a in range(ops.values.shape[0])]
    coords = [0, 4, 8, len(F) - 1]
    pair = bath.pair_traces(ops, sp.phi[0], sp.phi[1])
    np.testing.assert_allclose(bath.pair_traces(ops, sp.phi[0], sp.phi[1], real=True),
                               pair.real, rtol=0, atol=1e-13 * abs(pair).max())
    x = ops.lift(sp.phi[1])
    window = bath.window_traces(ops, x, dG, "real") + 1j * bath.window_traces(ops, x, dG, "imag")
    for e in range(len(E)):
        for a in coords:
            for b in coords:
                ref = np.trace(AL[e] @ F[a] @ AR[e] @ F[b])
                assert pair[e, a, b] == pytest.approx(ref, abs=1e-12 * abs(pair[e]).max())
                ref = np.trace(AR[e] @ F[a] @ dG[e] @ F[b])
                assert window[e, a, b] == pytest.approx(ref, abs=1e-12 * abs(window[e]).max())


def test_real_pair_traces_of_one_atom_and_one_column(small_filament):
    """pair_traces(real=True) equals the real part of the complex traces when its
    products are views with a strided last axis: one atom, phi1 of three columns against
    phi2 of one."""
    s = small_filament.recoil_system()
    ops = bath.force_operators(s, atoms=[0])
    phi = bath.extended_spectra(s, np.array([s.fermi_level - 0.1, s.fermi_level + 0.2])).phi[1]
    phi1, phi2 = phi[:, :, :3], phi[:, :, 1:2]
    full = bath.pair_traces(ops, phi1, phi2)
    assert np.abs(full).max() > 0
    np.testing.assert_allclose(bath.pair_traces(ops, phi1, phi2, real=True), full.real,
                               rtol=0, atol=1e-13 * np.abs(full).max())


@pytest.mark.parametrize("name", ["chain", "constriction"])
def test_golden_rule_route_gives_the_friction_at_bias(systems, name):
    """The symmetric friction at bias from the golden rule at hbar omega -> 0, with
    spectral densities only (kernels_at_frequency), against electronic_bath's
    equilibrium part plus its bias term -(2 hbar/pi) int w Im tr[A F dG/dE F]: an
    independent route to the bias term (which is 3-20% of the friction here; the chain
    has a central site eps = 0.25 eV between bonds v_L,R = (1 +- 0.35) t). At
    hbar omega = 1e-4 eV the golden-rule friction differs from its limit by O(omega^2)
    and the noise by O(omega / V)."""
    s = gamma_chain(0.35, eps=0.25, n_side=1) if name == "chain" else systems[name]
    for bias in (0.4, -0.7):
        b = bath.electronic_bath(s, bias, temperature=0.0, tol=1e-8)
        k = bath.kernels_at_frequency(s, bias, 1e-4, temperature=0.0, tol=1e-8)
        scale = np.abs(b.friction).max()
        assert np.abs(b.friction - b.equilibrium).max() > 0.03 * scale
        np.testing.assert_allclose(k.friction, b.friction, atol=1e-7 * scale)
        np.testing.assert_allclose(k.noise, b.noise, atol=1e-3 * np.abs(b.noise).max())


def test_quantum_fluctuation_dissipation_at_frequency():
    """At zero bias, D(omega) = hbar omega coth(hbar omega / 2 k_B T) gamma(omega)."""
    s = gamma_chain(0.35, eps=0.25, n_side=1)
    for T, e in ((300.0, 0.02), (50.0, 0.03)):
        k = bath.kernels_at_frequency(s, 0.0, e, temperature=T, tol=1e-8)
        ratio = e / np.tanh(e / (2 * quad.K_B * T))
        np.testing.assert_allclose(k.noise, ratio * k.friction,
                                   atol=1e-9 * ratio * np.abs(k.friction).max())


def test_linear_stability_closed_forms():
    """Damped oscillator: rate -gamma/2m, frequency sqrt(k/m - (gamma/2m)^2); negative
    friction: +|gamma|/2m; free atoms: rate -lambda_min(gamma)/m. Circulating force
    (waterwheel) on an isotropic 2D oscillator, K = [[k, c], [-c, k]], gamma = g:
    lambda^2 + (g/m) lambda + (k +- i c)/m = 0."""
    m, k, g = 2.0, 3.0, 0.4
    st = bath.linear_stability(np.array([[g]]), np.array([m]), np.array([[k]]))
    assert st.rate == pytest.approx(-g / (2 * m), rel=1e-12)
    assert st.frequency == pytest.approx(np.sqrt(k / m - (g / (2 * m)) ** 2), rel=1e-12)
    assert bath.linear_stability(np.array([[-g]]), np.array([m]),
                                 np.array([[k]])).rate == pytest.approx(g / (2 * m))
    gam = np.array([[0.5, 0.1], [0.1, -0.2]])
    free = bath.linear_stability(gam, np.array([m, m]))
    assert free.rate == pytest.approx(-np.linalg.eigvalsh(gam).min() / m, rel=1e-12)
    c, g = 0.3, 0.1
    K = np.array([[k, c], [-c, k]])
    roots = np.concatenate([np.roots([1.0, g / m, (k + 1j * s * c) / m]) for s in (1, -1)])
    st = bath.linear_stability(g * np.eye(2), np.array([m, m]), K)
    assert st.rate == pytest.approx(roots.real.max(), rel=1e-12)
    assert st.rate > 0                    # c / 2 sqrt(m k) = 0.061 beats g / 2m = 0.025


@pytest.mark.parametrize("model", ["paper", "hellmann-feynman"])
def test_force_jacobian_against_finite_differences(model):
    """dF_a/dX_b of the mean force from the kernels' energies (response of A_S to H(X) plus
    the operator's own gradient) against central differences of system.forces, on a
    17-atom filament displaced off its lattice sites, at 0.4 V."""
    from lammps_recoil.builders import build_filament
    s = build_filament(gap_layers=3).recoil_system()
    x0 = s.positions + 0.05 * np.random.default_rng(2).standard_normal(s.positions.shape)
    s.update(x0)
    b = bath.electronic_bath(s, 0.4, temperature=0.0, model=model, tol=1e-5, jacobian=True)
    d = 1e-4
    for c in (0, 25, 3 * s.n_atoms - 1):
        xp, xm = x0.copy(), x0.copy()
        xp.flat[c] += d
        xm.flat[c] -= d
        s.update(xp)
        fp = s.forces(0.4, model=model, tol=1e-8).forces.ravel()
        s.update(xm)
        fm = s.forces(0.4, model=model, tol=1e-8).forces.ravel()
        fd = (fp - fm) / (2 * d)
        assert np.abs(fd).max() > 1e-3
        np.testing.assert_allclose(b.force_jacobian[:, c], fd, atol=1e-8)
    s.update(x0)
    J = b.force_jacobian
    assert np.abs(J - J.T).max() > 0.1 * np.abs(J).max()        # not conservative at bias


def test_fewest_columns_keep_the_spectral_density():
    """phi phi^+ of known ranks 3, 1, 0 and 5 per energy (10 sites, 7 columns): the factor
    has the batch's largest rank, 5, columns and the same phi phi^+ to round-off."""
    rng = np.random.default_rng(3)
    phi = np.zeros((4, 10, 7), dtype=complex)
    for e, rank in enumerate((3, 1, 0, 5)):
        x = rng.standard_normal((10, rank)) + 1j * rng.standard_normal((10, rank))
        phi[e] = x @ (rng.standard_normal((rank, 7)) + 1j * rng.standard_normal((rank, 7)))
    cut = bath.fewest_columns(phi)
    assert cut.shape == (4, 10, 5)
    A = phi @ dagger(phi)
    np.testing.assert_allclose(cut @ dagger(cut), A, atol=1e-12 * np.abs(A).max())
    assert bath.fewest_columns(phi[:, :, :0]).shape == (4, 10, 0)


def test_kernels_of_middle_atoms_need_fewer_columns(small_filament, monkeypatch):
    """The middle atom of the 3-atom constriction touches 3 sites, on which each lead's
    4 channels span one state: its kernels from the one-column factors equal those from
    the full ones (fewest_columns switched off) to 1e-10 at 0.4 V and T_e = 100 K."""
    s = small_filament.recoil_system()
    ops, sites = bath._operators_on_support(s, "paper", 1, [1])
    phi = bath.extended_spectra(s, np.array([s.fermi_level]), sites=sites).phi
    assert [p.shape[2] for p in phi] == [1, 1] and len(s.lead_contacts[0].contacts) == 4
    cut = bath.electronic_bath(s, 0.4, temperature=100.0, n_points=5, atoms=[1])
    monkeypatch.setattr(bath, "fewest_columns", lambda p: p)
    full = bath.electronic_bath(s, 0.4, temperature=100.0, n_points=5, atoms=[1])
    for name in ("friction", "berry", "noise"):
        ref = getattr(full, name)
        np.testing.assert_allclose(getattr(cut, name), ref, atol=1e-10 * np.abs(ref).max())


def test_green_function_of_device_sites_alone(small_filament):
    """G on device sites alone, without the spectra (the solve of their columns only, as
    for dG/dE next to a large filament's neck), equals that block of the full extended
    G."""
    s = small_filament.recoil_system()
    E = np.array([-0.8, 0.1, 0.7]) + s.fermi_level
    full = bath.extended_spectra(s, E).G
    for sites in ([1], [0, 2], [2, 1, 0]):
        part = bath.extended_spectra(s, E, spectra=False, sites=np.array(sites))
        assert part.phi == []
        np.testing.assert_allclose(part.G, full[:, sites][:, :, sites], rtol=0,
                                   atol=1e-13 * np.abs(full).max())


def test_a_lead_without_contacts_gives_empty_factors(small_filament):
    """A filament that broke off one electrode couples to no contact of that lead: its
    spectral factor has no column, and its traces vanish (the kernels are then those of
    the other lead's equilibrium)."""
    s = small_filament.recoil_system()
    ops = bath.force_operators(s)
    phi = bath.extended_spectra(s, np.array([0.3, 0.5])).phi[0]
    empty = phi[:, :, :0]
    x = ops.lift(empty)
    assert x.shape[0] == 2 and x.shape[-1] == 0
    assert np.all(bath.pair_traces(ops, phi, empty) == 0)
    assert np.all(bath.pair_traces(ops, empty, phi) == 0)
    assert np.all(bath.window_traces(ops, x, np.ones((2, s.n_ext, s.n_ext)), "imag") == 0)


def test_kernels_between_laterally_infinite_leads():
    """Between laterally infinite leads (the shipped filament, leads="infinite": surface
    Green's functions integrated over the lateral zone, broadening inf_eta) the kernels
    keep fluctuation-dissipation at V = 0 (100 and 300 K, 1e-9), time reversal (Berry
    part zero), a symmetric PSD friction, and a PSD noise at 0.5 V; the friction differs
    from the periodic leads' (the leads are not the same)."""
    from lammps_recoil.check import system_from_data
    from test_lammps import ROOT
    path = str(ROOT / "inputs" / "filament.data")
    s = system_from_data(path, leads="infinite")
    for T in (100.0, 300.0):
        b = bath.electronic_bath(s, 0.0, temperature=T, tol=1e-3)
        np.testing.assert_allclose(b.noise, 2 * quad.K_B * T * b.friction,
                                   atol=1e-9 * np.abs(b.noise).max())
        assert np.abs(b.berry).max() <= 1e-12 * np.abs(b.friction).max()
        assert np.linalg.eigvalsh(b.friction).min() > -1e-9 * np.abs(b.friction).max()
    hot = bath.electronic_bath(s, 0.5, temperature=0.0, tol=1e-2)
    assert np.linalg.eigvalsh(hot.noise).min() > -1e-9 * np.abs(hot.noise).max()
    assert np.abs(hot.berry).max() > 1e-3 * np.abs(hot.friction).max()
    periodic = bath.electronic_bath(system_from_data(path), 0.0, temperature=300.0, tol=1e-3)
    assert np.abs(periodic.friction - b.friction).max() > 1e-3 * np.abs(b.friction).max()


def test_mobile_device_gives_the_filament_kernels():
    """With ideal electrodes the mobile NEGF device (226 atoms) is the filament device with
    the electrodes' atoms at their sites, so the kernels of its 34 filament atoms (computed
    on the sites next to them: G_F columns of those sites only) equal the filament
    device's."""
    from lammps_recoil.builders import build_filament
    fil = build_filament()
    small = fil.recoil_system()
    big = fil.recoil_system(device="mobile")
    atoms = np.flatnonzero(fil.types[np.isin(fil.types, (1, 2))] == 1)
    a = bath.electronic_bath(small, 0.5, temperature=0.0, n_points=4)
    b = bath.electronic_bath(big, 0.5, temperature=0.0, n_points=4, atoms=atoms)
    for name in ("friction", "berry", "noise"):
        x, y = getattr(a, name), getattr(b, name)
        np.testing.assert_allclose(y, x, atol=1e-9 * np.abs(x).max())
