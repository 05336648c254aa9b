"""The chain toy model as a tool: Eq. 18/19 against numerical stiffness, momentum balance,
and the `lammps-recoil chain` outputs."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lammps_recoil import chain
from lammps_recoil.plots import read_csv

ROOT = Path(__file__).resolve().parents[1]
PAPER = dict(t=-2.0, beta=0.0)          # the paper's example after Eq. 19


def test_zero_bias_stiffness_is_eq18():
    """At V = 0 the numerical dF/dZ0 (NEGF force + screened Coulomb) equals Eq. 18: the
    zero-bias term -2 zeta^2 t (1 + 8/pi) is exact to first order in Z0."""
    k = chain.stiffness(0.0, 0.8, **PAPER)
    assert k == pytest.approx(chain.hessian_eq18(0.0, 0.8, **PAPER), abs=1e-5)
    assert k == pytest.approx(-0.0895, abs=1e-3)          # barely stable at V = 0
    # another spacing: the chain's zeta = 1/a, and Eq. 18's default follows it
    k3 = chain.stiffness(0.0, 0.8, a=3.0, **PAPER)
    assert k3 == pytest.approx(chain.hessian_eq18(0.0, 0.8, a=3.0, **PAPER), abs=1e-5)
    assert chain.v_crit_eq19(0.8, 0.0, t=-2.0, a=3.0) == pytest.approx(
        chain.v_crit_eq19(0.8, 0.0, t=-2.0, a=3.0, zeta=1.0 / 3.0), rel=1e-12)


def test_bias_slope_of_stiffness_approaches_eq18():
    """Eq. 18 is linear in V; the numerical slope (k(V) - k(0))/V approaches its
    coefficient -2 zeta^2 (beta - 1/2)/pi with an error linear in V."""
    k0 = chain.stiffness(0.0, 0.8, **PAPER)
    coeff = chain.hessian_eq18(1.0, 0.8, **PAPER) - chain.hessian_eq18(0.0, 0.8, **PAPER)
    err = [abs((chain.stiffness(v, 0.8, **PAPER) - k0) / v - coeff) for v in (0.1, 0.05)]
    assert err[1] < 0.6 * err[0] and err[1] < 0.03 * coeff


def test_critical_bias_approaches_eq19_when_small():
    """Eq. 19 is the first-order root of Eq. 18; the numerical root differs at the next
    order, so the relative difference shrinks with V_crit. For the paper's q_eff = 0.8
    there is no numerical root: the bias term saturates near 1 V (docs/chain.md)."""
    rel = []
    for q in (0.787, 0.7862):
        eq19 = chain.v_crit_eq19(q, 0.0, t=-2.0)
        rel.append(chain.critical_bias(q, 0.0, t=-2.0, v_max=0.6, n_grid=3) / eq19 - 1)
    assert 0.15 < rel[0] < 0.25 and 0.0 < rel[1] < 0.7 * rel[0]
    assert chain.v_crit_eq19(0.8, 0.0, t=-2.0) == pytest.approx(1.757, abs=1e-3)
    with pytest.raises(ValueError, match="no instability"):
        chain.critical_bias(0.8, 0.0, t=-2.0, v_max=2.0, n_grid=5)


def test_momentum_balance_of_the_lattice_model():
    """Bond forces are antisymmetric pairs, so with Hellmann-Feynman forces the total on
    the whole chain vanishes (the segment total is 1% of Eq. 4's); Eq. 4's on-site term
    leaves a total from the charge imbalance between the leads, below Eq. 13."""
    for g in (0.2, 0.6):
        _, paper = chain.contact_forces(g, 0.05, n_side=20)
        _, hf = chain.contact_forces(g, 0.05, n_side=20, model="hellmann-feynman")
        T = chain.gamma_chain(g).conductance()
        total = chain.total_force(paper.forces)
        assert abs(chain.total_force(hf.forces)) < 0.02 * total
        assert 0.2 < total / chain.momentum_balance_eq13(0.05, T) < 0.35


def test_fig1b_command_writes_the_forces_and_charges(tmp_path):
    subprocess.run([sys.executable, "-m", "lammps_recoil.cli", "chain", "fig1b", "--outdir",
                    str(tmp_path)], check=True, cwd=ROOT, capture_output=True)
    data = read_csv(tmp_path / "chain_fig1b.csv")
    assert (tmp_path / "chain_fig1b.png").stat().st_size > 10_000
    np.testing.assert_allclose(data["charge_V0"], 0.0, atol=1e-6)   # particle-hole symmetry
    s, r = chain.contact_forces(0.4, 1.0, n_side=6, full=True)
    np.testing.assert_allclose(data["F_V1"], r.forces[:, 2], rtol=1e-8)
    assert abs(data["F_V0"][6]) > 1.0          # about 1 eV/A at the contact (paper Fig. 1b)
