"""Current compliance, as a source-measure unit applies it.

A compliance I_cc > 0 caps the magnitude of the current. At an NEGF update whose protocol
bias V_p would drive |I(V_p)| > I_cc, the bias is lowered to the V_c between 0 and V_p at
which |I(V_c)| = I_cc (relative tolerance :data:`RTOL`), and the forces are those at V_c.
The root is bracketed by V = 0 (no current) and V_p, and found by regula falsi in its
Illinois form (Dowell and Jarratt, BIT 11, 168 (1971)): the next bias is where the chord
through the bracket's ends crosses I_cc, and an end that is kept twice in a row has its
residual halved, which makes the convergence superlinear where plain regula falsi would
creep from one side. I(V) = G(V) V of Eq. 11 is continuous in V and nearly linear over a
step, so two to four steps suffice.

Each step is a full NEGF solve (forces, current and charges at that bias): the current
reported is the one of the forces that are applied. The steps reuse what does not change
with V: the device's geometry, the leads' Green's functions at the energy nodes that did
not move (cached per energy) and the previous step's energy partition
(:meth:`~lammps_recoil.system.RecoilSystem.forces`). Without compliance (``limit`` None
or 0) the update is the single solve at V_p.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

#: Relative tolerance on |I| = I_cc while in compliance.
RTOL = 1e-3
#: Most Illinois steps before the last bias below the compliance is kept.
MAX_STEPS = 30


@dataclass
class Compliance:
    """The outcome of an update under a compliance.

    ``result``: the solve at the applied bias (a :class:`~lammps_recoil.system.
    RecoilResult`); ``requested``: the protocol's bias V_p; ``applied``: the bias solved
    (V_p, or V_c when in compliance); ``limited``: whether the compliance lowered it;
    ``steps``: solves beyond the one at V_p.
    """

    result: object
    requested: float
    applied: float
    limited: bool
    steps: int


def check_limit(limit) -> float:
    """The compliance I_cc (microamperes) as a float: 0 (none) or a positive number."""
    try:
        value = float(limit)
    except (TypeError, ValueError):
        raise ValueError(f"compliance must be a current in microamperes (0: none), got "
                         f"{limit!r}") from None
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"compliance must be a current >= 0 uA (0: none), got {limit}")
    return value


def comply(solve: Callable, bias: float, limit, rtol: float = RTOL,
           max_steps: int = MAX_STEPS) -> Compliance:
    """Solve at ``bias`` V_p, or at the lower bias where |I| = ``limit`` (uA) if the current
    at V_p exceeds it (module docstring).

    ``solve(V)`` returns a result with ``current`` (uA), e.g.
    ``lambda V: system.forces(V, beta, tol=tol)``. Guaranteed: |I| <= limit (1 + rtol); in
    compliance |I| >= limit (1 - rtol) unless ``max_steps`` steps did not get there, in
    which case the largest bias found below the compliance is applied.
    """
    limit = check_limit(limit)
    first = solve(bias)
    excess = abs(first.current) - limit
    if limit == 0 or excess <= rtol * limit:
        return Compliance(first, bias, bias, False, 0)
    # f(x) = |I(x V_p)| - I_cc on x in [0, 1]: f(0) = -I_cc < 0 < f(1)
    a, fa, b, fb = 0.0, -limit, 1.0, excess
    below, side = None, 0
    for step in range(1, max_steps + 1):
        x = (a * fb - b * fa) / (fb - fa)
        result = solve(x * bias)
        fx = abs(result.current) - limit
        if abs(fx) <= rtol * limit:
            return Compliance(result, bias, x * bias, True, step)
        if fx > 0:
            b, fb = x, fx
            if side > 0:
                fa *= 0.5
            side = 1
        else:
            a, fa, below = x, fx, result
            if side < 0:
                fb *= 0.5
            side = -1
    if below is None:
        below = solve(0.0)
    return Compliance(below, bias, below.bias, True, max_steps)
