"""Bond currents: where the Landauer current flows through the device (paper Eq. 9).

The window density matrix of Eq. 9, rho_ij = <c_j^+ c_i> per spin, is the one whose real
part gives the forces of Eq. 4; its imaginary part carries the current. The Heisenberg
equation of motion of the occupation n_i with the tight-binding Hamiltonian of Eq. 2
(H_ij = t_ij real; a periodic image's Bloch phase is part of rho_ij) gives the electric
current from atom i to atom j (both spins, electrons of charge -e0):

.. math::

    I_{i\\to j} = -\\frac{4 e_0^2}{\\hbar}\\, t_{ij}\\, \\mathrm{Im}\\,\\rho_{ij}
                = -4\\pi G_0\\, t_{ij}\\, \\mathrm{Im}\\,\\rho_{ij},

with t in eV read as volts and G0 = 2 e0^2 / h. The equilibrium density carries no current
(time-reversal symmetry), so the bias window [mu_L, mu_R] that gives the renormalized
forces gives all of it. At each energy the scattering states conserve the current at every
device atom (the bonds to the lead atoms included), and their flux through any plane
between the leads is T(E) [f(E - mu_R) - f(E - mu_L)] with the Caroli T of Eq. 7:
integrated on the same nodes as the conductance, the currents through any cross-section
add up to the Landauer current I = G(V) V of Eq. 11 to round-off. Positive currents flow
towards +z for V > 0 (electrons are injected from the right lead).

Per atom, :meth:`BondCurrents.atom_vectors` gives the current vector
J_i = 1/2 sum_j I_{i->j} n_ij (n_ij the unit vector from i to j; an atom of a straight
chain carrying I along z has J = I z) and :meth:`BondCurrents.atom_throughput` the current
through the atom, 1/2 sum_j |I_{i->j}| (I for that atom), both in microamperes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def window_currents(t: np.ndarray, im_rho: np.ndarray) -> np.ndarray:
    """I_{i->j} = -4 pi G0 t_ij Im rho_ij in microamperes (module docstring) for hoppings
    ``t`` (eV, one per bond) and Im rho_ij per spin (energies x bonds or bonds)."""
    from .system import G0_SIEMENS
    return (-4e6 * np.pi * G0_SIEMENS) * t * im_rho


@dataclass
class BondCurrents:
    """Currents on the bonds of the device atoms (microamperes, from ``i`` to ``j``).

    ``i``: device atom (the caller's order); ``j``: device atom, or -1 for a bond to a lead
    atom; ``lead``: 0 for a bond between device atoms, 1 (left) or 2 (right) for a bond to
    that lead; ``vec``: X_j - X_i (A, the bonded periodic image); ``current``: I_{i->j}
    (uA); ``positions``: the device atoms (A).
    """

    i: np.ndarray
    j: np.ndarray
    lead: np.ndarray
    vec: np.ndarray
    current: np.ndarray
    positions: np.ndarray

    @property
    def n_atoms(self) -> int:
        return len(self.positions)

    def divergence(self) -> np.ndarray:
        """Net current leaving each device atom (uA): zero by Kirchhoff's law."""
        dev = self.lead == 0
        out = np.bincount(self.i, self.current, self.n_atoms)
        return out - np.bincount(self.j[dev], self.current[dev], self.n_atoms)

    def through(self, z: float) -> float:
        """Current crossing the plane at height z towards +z (uA), summed over the bonds
        that cross it (a plane between the leads: no lead-lead bond crosses it)."""
        zi = self.positions[self.i, 2]
        zj = zi + self.vec[:, 2]
        up = (zi < z) & (zj > z)
        down = (zj < z) & (zi > z)
        return float(self.current[up].sum() - self.current[down].sum())

    def _per_atom(self, values: np.ndarray) -> np.ndarray:
        """Sum of per-bond ``values`` (bonds, or bonds x columns) over the bonds of each
        device atom, each bond counted at i and at j (bonds to leads: at i only)."""
        dev = self.lead == 0
        atoms = np.concatenate([self.i, self.j[dev]])
        rows = np.concatenate([values, values[dev]]).reshape(len(atoms), -1)
        out = np.stack([np.bincount(atoms, c, self.n_atoms) for c in rows.T], axis=1)
        return out.reshape((self.n_atoms,) + values.shape[1:])

    def atom_vectors(self) -> np.ndarray:
        """J_i = 1/2 sum_j I_{i->j} n_ij (N x 3, uA): the direction in which the current
        passes atom i (I_{j->i} n_ji = I_{i->j} n_ij, so both ends add the same vector)."""
        n = self.vec / np.linalg.norm(self.vec, axis=1)[:, None]
        return 0.5 * self._per_atom(self.current[:, None] * n)

    def atom_throughput(self) -> np.ndarray:
        """1/2 sum_j |I_{i->j}| (N, uA): the current passing through atom i."""
        return 0.5 * self._per_atom(np.abs(self.current))
