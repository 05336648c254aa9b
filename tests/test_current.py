"""Landauer current in microamperes (Eq. 11 times G0 V) against an independent integral of
the Caroli transmission (Eq. 7)."""
import numpy as np
import pytest
from conftest import build_filament

from lammps_recoil import G0_SIEMENS
from lammps_recoil.integration import chemical_potentials, gauss_legendre


@pytest.fixture(scope="module")
def system():
    return build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=2, gap_layers=4,
                          shape="cylinder", neck_radius=1.3).recoil_system()


@pytest.mark.parametrize("bias, beta", [(0.7, 0.5), (-0.4, 0.0), (0.3, 1.0)])
def test_current_is_two_e_over_h_times_the_integral_of_T(system, bias, beta):
    """I = (2e/h) int_{mu_L}^{mu_R} T(E) dE at T = 0; with E in eV the integral is in
    volts, so I = G0 [S] x int T dE [V]. Reference: composite 40 x 24-point Gauss-Legendre
    on T(E) alone (the lead channel edges of this 2x2 cell lie in the window, so many
    panels)."""
    mu_l, mu_r = chemical_potentials(system.fermi_level, bias, beta)
    edges = np.linspace(mu_l, mu_r, 41)
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        E, w = gauss_legendre(a, b, 24)
        total += w @ system.transmission(E)
    expected = G0_SIEMENS * total * 1e6                       # microamperes
    I = system.current(bias, beta, tol=1e-8)
    assert I == pytest.approx(expected, rel=1e-6)
    assert np.sign(I) == np.sign(bias)
    r = system.forces(bias, beta, tol=1e-8)
    assert r.current == pytest.approx(expected, rel=1e-6)


def test_zero_bias_current_vanishes(system):
    assert system.current(0.0) == 0.0
    assert system.forces(0.0).current == 0.0
