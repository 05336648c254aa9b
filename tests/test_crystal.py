"""A perfect crystal between identical ideal leads: quantized T(E) and no recoil."""
import numpy as np
import pytest
from conftest import perfect_system


@pytest.mark.parametrize("orientation, nx, ny, kpoints", [
    ("001", 2, 2, 1), ("001", 2, 2, (2, 1)), ("111", 3, 2, 1)])
def test_transmission_counts_open_channels(orientation, nx, ny, kpoints):
    s = perfect_system(orientation, nx, ny, layers=5, kpoints=kpoints)
    left = s.leads[0]
    E = np.array([-7.61, -5.3, -2.77, -0.9, 0.61, 1.13, 2.4])
    expected = [np.mean([left.open_channels(e, k) for k in s.kpoints]) for e in E]
    T = s.transmission(E)
    assert len(set(expected)) > 1
    np.testing.assert_allclose(T, expected, atol=1e-8)
    for k in range(len(s.kpoints)):
        ch = s.channels(0.61, ik=k)
        assert np.sum(ch > 0.5) == left.open_channels(0.61, s.kpoints[k])
        np.testing.assert_allclose(ch[ch > 0.5], 1.0, atol=1e-8)


@pytest.mark.parametrize("orientation, nx, ny, betas", [
    ("001", 2, 2, (0.5,)),           # beta = 0, 1 windows would hold (001) flat bands
    ("111", 3, 2, (0.0, 0.5, 1.0))])
@pytest.mark.parametrize("model", ["paper", "hellmann-feynman"])
def test_perfect_crystal_feels_no_recoil(orientation, nx, ny, betas, model):
    s = perfect_system(orientation, nx, ny, layers=4)
    for beta in betas:
        r = s.forces(1.0, beta=beta, model=model)
        assert np.abs(r.forces).max() < 1e-6
        assert r.conductance == pytest.approx(s.conductance(), abs=1e-3)
    # the bias window adds (mu_R - mu_L) x DOS-weighted charge but no net force
    assert np.abs(s.forces(1.0, model=model).density).max() > 1e-3
