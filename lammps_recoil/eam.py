"""Hessian of an embedded-atom potential (LAMMPS eam/alloy, one element) for linear stability.

The EAM energy E = sum_k F(rho_k) + 1/2 sum_{k != l} phi(r_kl), rho_k = sum_{l != k} f(r_kl)
(Daw and Baskes, PRB 29, 6443 (1984)) has the second derivatives, for moving atoms i, j
and every atom k whose density they change,

.. math::

    \\frac{\\partial^2 E}{\\partial x_i \\partial x_j} = \\sum_{\\rm pairs} W_{kl}\\,
        (\\delta_{ik} - \\delta_{il})(\\delta_{jk} - \\delta_{jl})
        + \\sum_k F''(\\rho_k) \\frac{\\partial \\rho_k}{\\partial x_i}
          \\frac{\\partial \\rho_k}{\\partial x_j},

W_kl = P(phi) + [F'(rho_k) + F'(rho_l)] P(f) for the pair k-l, with
P(g) = g''(r) u u^T + g'(r)/r (1 - u u^T) (u the unit vector k -> l). The setfl tables
(F on a rho grid, f and r phi on an r grid) are interpolated by cubic splines; LAMMPS uses
its own cubic interpolation of the same tables, so the two differ at the level of the
interpolation error (tests/test_bath.py compares with finite differences of LAMMPS forces).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from .geometry import neighbor_pairs


@dataclass
class EAMPotential:
    """The tabulated functions of a one-element setfl file: F(rho) (eV), f(r) (density),
    phi(r) (eV), cutoff (A), mass (g/mol)."""

    embedding: CubicSpline
    density: CubicSpline
    rphi: CubicSpline
    cutoff: float
    mass: float

    @classmethod
    def read(cls, path: str) -> "EAMPotential":
        with open(path) as fh:
            lines = fh.read().splitlines()
        if len(lines[3].split()) < 2 or int(lines[3].split()[0]) != 1:
            raise ValueError(f"{path}: only one-element eam/alloy files are supported")
        nrho, drho, nr, dr, cutoff = lines[4].split("#")[0].split()[:5]
        nrho, nr, drho, dr, cutoff = int(nrho), int(nr), float(drho), float(dr), float(cutoff)
        mass = float(lines[5].split()[1])
        values = np.array(" ".join(lines[6:]).replace("#", " # ").split("#")[0].split(),
                          dtype=float)
        if len(values) < nrho + 2 * nr:
            raise ValueError(f"{path}: {len(values)} table values, {nrho + 2 * nr} expected")
        rho = np.arange(nrho) * drho
        r = np.arange(nr) * dr
        return cls(CubicSpline(rho, values[:nrho]), CubicSpline(r, values[nrho:nrho + nr]),
                   CubicSpline(r, values[nrho + nr:nrho + 2 * nr]), cutoff, mass)

    def pair(self, r):
        """phi, phi', phi'' at distances r."""
        g, g1, g2 = self.rphi(r), self.rphi(r, 1), self.rphi(r, 2)
        phi = g / r
        d1 = (g1 - phi) / r
        return phi, d1, (g2 - 2.0 * d1) / r


def hessian(potential: EAMPotential, positions: np.ndarray, moving, box=None) -> np.ndarray:
    """d^2 E / dx_i dx_j (eV/A^2) for the atoms ``moving`` (indices into ``positions``; rows
    and columns 3 m + c in that order), all other atoms held fixed; periodic in x, y
    with ``box``."""
    x = np.asarray(positions, dtype=float)
    moving = np.asarray(moving, dtype=int)
    where = np.full(len(x), -1)
    where[moving] = np.arange(len(moving))
    i, j, d, _ = neighbor_pairs(x, potential.cutoff, box)
    r = np.linalg.norm(d, axis=1)
    u = d / r[:, None]
    f1, f2 = potential.density(r, 1), potential.density(r, 2)
    rho = np.bincount(i, potential.density(r), len(x)) + np.bincount(j, potential.density(r),
                                                                      len(x))
    F1, F2 = potential.embedding(rho, 1), potential.embedding(rho, 2)
    _, p1, p2 = potential.pair(r)
    uu = u[:, :, None] * u[:, None, :]

    def radial(g1, g2):
        return g2[:, None, None] * uu + (g1 / r)[:, None, None] * (np.eye(3) - uu)

    W = radial(p1, p2) + (F1[i] + F1[j])[:, None, None] * radial(f1, f2)
    n = len(moving)
    H = np.zeros((n, 3, n, 3))
    mi, mj = where[i], where[j]
    for a, b, sign in ((mi, mi, 1.0), (mj, mj, 1.0), (mi, mj, -1.0), (mj, mi, -1.0)):
        ok = (a >= 0) & (b >= 0)
        np.add.at(H, (a[ok], slice(None), b[ok], slice(None)), sign * W[ok])
    # F'' term: drho_k/dx_l = f'(r) u (k -> l), drho_k/dx_k = -sum_l f'(r) u
    grad = np.zeros((len(x), n, 3))
    g = f1[:, None] * u
    for k, l, v in ((i, j, g), (j, i, -g)):
        ok = where[l] >= 0
        np.add.at(grad, (k[ok], where[l][ok]), v[ok])
        ok = where[k] >= 0
        np.add.at(grad, (k[ok], where[k][ok]), -v[ok])
    grad = grad.reshape(len(x), 3 * n)
    return H.reshape(3 * n, 3 * n) + grad.T @ (F2[:, None] * grad)
