"""The paper's 1D chain (section 3): numeric NEGF against the closed forms Eqs. 14-17."""
import numpy as np
import pytest

from lammps_recoil.chain import (chain_system, force_eq16, force_eq17, transmission_eq14,
                                 v_crit_eq19)

T = -1.8
ZETA = 1.0 / 2.5


@pytest.mark.parametrize("vl, vr, eps", [(-2.52, -1.08, 0.0), (-1.3, -2.1, 0.4),
                                         (-1.8, -1.8, -0.7), (-0.5, -2.9, 1.1)])
def test_transmission_equals_eq14(vl, vr, eps):
    s = chain_system(vl, vr, eps)
    E = np.array([-3.4, -2.0, -0.3, 0.0, 0.9, 3.1])
    np.testing.assert_allclose(s.transmission(E), transmission_eq14(E, vl, vr, eps), atol=1e-8)
    assert s.transmission([]).shape == (0,)


def test_gamma_04_gives_half_transmission():
    """The paper's Fig. 1(b) case: v_L,R = (1 +- 0.4) t has T(E_F = 0) = 0.524."""
    s = chain_system(1.4 * T, 0.6 * T)
    assert s.fermi_level == 0.0
    assert s.conductance() == pytest.approx(0.5244, abs=2e-4)
    assert s.band_edges == pytest.approx((2 * T, -2 * T))


def test_zero_bias_force_approaches_eq16():
    """Eq. 16 is first order in v_L - v_R; F(0) is odd in gamma, so the relative error
    shrinks like gamma^2 (4x per halving). The full force includes the bound state that
    splits off below the band (a 1D chain binds for any gamma != 0)."""
    errors = []
    for g in (0.2, 0.1, 0.05):
        vl, vr = (1 + g) * T, (1 - g) * T
        s = chain_system(vl, vr)
        assert len(s.bound_states()) == 1 and s.bound_states()[0][0] < 2 * T
        F = s.forces(0.0, full=True, full_points=200).forces[0, 2]
        errors.append(abs(F / force_eq16(vl, vr, ZETA) - 1))
    assert errors[0] == pytest.approx(0.012, abs=0.001)
    assert errors[1] < errors[0] / 3.5 and errors[2] < errors[1] / 3.5
    assert errors[2] < 1e-3


def test_half_filled_chain_is_neutral_with_its_bound_state():
    """Particle-hole symmetry (bipartite chain, eps = 0, E_F = 0): every site holds exactly
    one electron at V = 0 - but only once the bound state below the band is counted."""
    s = chain_system(1.4 * T, 0.6 * T, n_side=6)
    full = s.forces(0.0, full=True, full_points=200)
    np.testing.assert_allclose(full.density, 1.0, atol=1e-6)
    (E, psi), = s.bound_states()
    weight = np.abs(psi[:s.n_atoms]) ** 2
    assert E < 2 * T and 0.5 < weight.sum() < 1.0      # the rest lies in the leads


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("eps0", [0.0, 0.1])
def test_renormalized_force_approaches_eq17(beta, eps0):
    """Eq. 17 is bilinear in V and (v_L - v_R, eps). Scaling all three by lambda, the
    error relative to the size of the first-order terms is O(lambda): it halves."""
    rel = []
    for lam in (1.0, 0.5, 0.25):
        g, eps, V = 0.08 * lam, eps0 * lam, 0.2 * lam
        vl, vr = (1 + g) * T, (1 - g) * T
        F = chain_system(vl, vr, eps).forces(V, beta=beta, n_points=12).forces[0, 2]
        scale = ZETA * V / (np.pi * abs(T)) * (abs(vl - vr) + abs(eps))
        rel.append(abs(F - force_eq17(V, vl, vr, eps, beta, T, ZETA)) / scale)
    assert rel[0] < 0.2
    assert rel[1] < rel[0] / 1.7 and rel[2] < rel[1] / 1.7
    assert rel[2] < 0.045


def test_reflection_symmetry():
    """After Eq. 17: F -> -F (mirrored) under V -> -V, beta -> 1 - beta, v_L <-> v_R."""
    a = chain_system(-2.1, -1.3, eps=0.3, n_side=2).forces(0.7, beta=0.2)
    b = chain_system(-1.3, -2.1, eps=0.3, n_side=2).forces(-0.7, beta=0.8)
    np.testing.assert_allclose(a.forces[:, 2], -b.forces[::-1, 2], atol=1e-13)
    np.testing.assert_allclose(a.density, b.density[::-1], atol=1e-13)
    assert a.conductance == pytest.approx(b.conductance, abs=1e-13)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_symmetric_chain_feels_no_force(beta):
    s = chain_system(T, T, n_side=2)
    assert np.abs(s.forces(1.0, beta=beta).forces).max() < 1e-12
    assert np.abs(s.forces(0.0, full=True).forces).max() < 1e-12
    # the ideal chain is a perfect conductor with one electron per site
    assert s.conductance(1.0) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(s.forces(0.0, full=True).density, 1.0, atol=1e-6)


def test_vcrit_paper_example():
    """Eq. 19 with q_eff = 0.8 e0, beta = 0, t = -2 eV, a = 2.5 A: about 1.7 V."""
    assert v_crit_eq19(0.8, 0.0, t=-2.0) == pytest.approx(1.757, abs=1e-3)


@pytest.mark.parametrize("V", [0.0, 0.8, -0.8])
def test_finite_temperature_approaches_zero_temperature(V):
    """Fermi functions at 5 K against the T = 0 window: conductance and forces agree to
    O(kT) (kT = 0.4 meV); at 300 K the conductance stays positive."""
    s = chain_system(-2.1, -1.3, eps=0.2, n_side=2)
    cold, warm = s.forces(V, 0.3), s.forces(V, 0.3, temperature=5.0)
    assert warm.conductance == pytest.approx(cold.conductance, abs=2e-3)
    np.testing.assert_allclose(warm.forces, cold.forces, atol=2e-3)
    assert 0.0 < s.conductance(V, 0.3, temperature=300.0) <= 1.0
