"""Current compliance: never above I_cc (beyond RTOL), equal to it while in compliance,
checked against an independent integral of T(E) at the applied bias."""
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import build_filament, displaced

from lammps_recoil.compliance import MAX_STEPS, RTOL, check_limit, comply
from lammps_recoil.protocols import make_protocol


@pytest.fixture(scope="module")
def system():
    f = build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=1, gap_layers=4,
                       shape="cylinder", neck_radius=1.3)
    s = f.recoil_system()
    s.update(displaced(s.positions, 0.1, 3))
    return s


def test_closed_form_root():
    """A nonlinear I(V) = 100 V (1 + V^2) uA with I_cc = 200 uA: the root V = 1 V (V^3 + V =
    2), from either sign of the bias, in a few steps."""
    calls = []

    def solve(V):
        calls.append(V)
        return SimpleNamespace(current=100.0 * V * (1 + V * V), bias=V)

    for V in (1.7, -1.7):
        calls.clear()
        c = comply(solve, V, 200.0)
        assert c.limited and c.requested == V
        assert c.applied == pytest.approx(np.sign(V) * 1.0, rel=RTOL)
        assert abs(c.result.current) == pytest.approx(200.0, rel=RTOL)
        assert c.steps == len(calls) - 1 <= 6
    c = comply(solve, 0.9, 200.0)                  # I = 162.9 uA: below the compliance
    assert not c.limited and c.applied == 0.9 and c.steps == 0


def test_step_function_keeps_the_last_bias_below():
    """A current that jumps over I_cc (no root within RTOL): after MAX_STEPS the largest
    bias found below the compliance is applied, with its current below I_cc."""
    def solve(V):
        return SimpleNamespace(current=50.0 if abs(V) < 0.5 else 500.0, bias=V)

    c = comply(solve, 1.0, 200.0)
    assert c.limited and c.steps == MAX_STEPS
    assert c.result.current == 50.0 and 0.4 < c.applied < 0.5


def test_triangle_sweep_under_compliance(system):
    """A 0 -> 1.1 -> -1.1 -> 0 V triangle sampled every 0.1 ps with I_cc = 60 uA: |I| <=
    I_cc (1 + RTOL) everywhere; where the compliance holds, |I| = I_cc within RTOL, the
    bias keeps its sign and is lower, and an independent adaptive integral of T(E) at
    the applied bias (system.current) gives I_cc too; elsewhere the protocol's bias."""
    p = make_protocol("triangle", V_min=-1.1, V_max=1.1, rate=0.55, update_ps=0.1)
    limit = 60.0
    limited = free = 0
    for t in np.arange(0.0, 8.0, 0.1):
        V = p.bias(t)
        c = comply(lambda v: system.forces(v, tol=1e-3), V, limit)
        I = c.result.current
        assert abs(I) <= limit * (1 + RTOL)
        if c.limited:
            limited += 1
            assert abs(I) >= limit * (1 - RTOL)
            assert np.sign(c.applied) == np.sign(V) and abs(c.applied) < abs(V)
            assert c.result.bias == c.applied
            assert abs(system.current(c.applied, tol=1e-7)) == pytest.approx(
                limit, rel=RTOL + 1e-4)
            assert c.steps <= 5
        else:
            free += 1
            assert c.applied == V and c.steps == 0
    assert limited >= 10 and free >= 10


@pytest.mark.parametrize("bad", [-1.0, "ten", float("nan"), float("inf")])
def test_bad_compliance_is_refused(bad):
    with pytest.raises(ValueError, match="compliance"):
        check_limit(bad)
