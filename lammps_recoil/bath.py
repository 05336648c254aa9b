"""Electronic friction, Berry force and current-induced noise in the adiabatic limit.

Beyond the mean recoil force (Eq. 10), slowly moving ions feel from the electrons a
velocity-dependent force -gamma X' and a fluctuating force xi (a semiclassical Langevin
equation; Lu, Brandbyge, Hedegard, Todorov, Dundas, PRB 85, 245444 (2012); Bode,
Kusminskiy, Egger, von Oppen, PRL 107, 036804 (2011)):

.. math::

    M \\ddot X_a = F_a(X) - \\sum_b \\gamma_{ab} \\dot X_b + \\xi_a,\\qquad
    \\langle \\xi_a(t) \\xi_b(t') \\rangle = D_{ab} \\delta(t - t').

The electron-ion coupling is the force operator of the chosen model (Eq. 3): per spin
:math:`\\hat F_a = \\sum_{pq} (F_a)_{pq} c_p^+ c_q` on the extended region (device plus lead
contact atoms), with, for each bond i-j (n_ij = (X_j - X_i)/r_ij, t' = dt/dr),

.. math::

    F_i \\ni t'_{ij} n_{ij} (|i\\rangle\\langle j| + |j\\rangle\\langle i|
    + w |j\\rangle\\langle j|),\\qquad
    F_j \\ni -t'_{ij} n_{ij} (|i\\rangle\\langle j| + |j\\rangle\\langle i|
    + w |i\\rangle\\langle i|),

w = 1 for ``model="paper"`` (the coefficients f^i_jk of Eq. 4, whose expectation is the
package's mean force) and w = 0 for ``"hellmann-feynman"`` (then F_a = -dH/dX_a exactly).
The ions perturb the electrons by -sum_a F_a dX_a (Eq. 3 is the Ehrenfest force
-<dH/dX> with the derivative acting on the Kohn-Sham potential alone), so the same
operator is the perturbation and the measured force. With the spectral densities injected
from lead S on the extended region, A_S = Psi_S a_S Psi_S^+ (greens.py), the retarded
Green's function G on the same region, Fermi functions f_S = f(E - mu_S), f_0 = f(E - E_F),
w_S = f_S - f_0, and two spin channels:

.. math::

    \\gamma_{ab} = \\frac{\\hbar}{2\\pi} \\int dE\\, (-\\partial_E f_0)\\,
        \\mathrm{Re\\,tr}[A F_a A F_b]
      - \\frac{2\\hbar}{\\pi} \\sum_S \\int dE\\, w_S\\,
        \\mathrm{Im\\,tr}[A_S F_a \\partial_E G F_b],

    D_{ab} = \\frac{\\hbar}{\\pi} \\sum_{SS'} \\int dE\\,
        \\tfrac12 [f_S (1 - f_{S'}) + f_{S'} (1 - f_S)]\\, \\mathrm{Re\\,tr}[A_S F_a A_{S'} F_b],

A = A_L + A_R. The first term of gamma is the equilibrium (zero-bias) friction at the
electron temperature, the second its change with bias, from the bias window alone (like
the renormalized force); the derivation is in docs/bath.md. ``friction`` is the symmetric
part of gamma, ``berry`` the antisymmetric one (zero at zero bias for a real Hamiltonian).
Energies in eV, hbar = 6.582119569e-4 eV ps, friction in eV ps/A^2, noise in eV^2 ps/A^2.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import integration as quad
from .forces import onsite_weight
from .greens import dagger, open_columns, self_energy, spectral_factor
from .system import FLAT_MARGIN

#: Reduced Planck constant (eV ps).
HBAR = 6.582119569e-4
#: Singular values of the spectral factors below this fraction of the largest are dropped
#: (:func:`fewest_columns`).
FACTOR_RTOL = 1e-9
#: Energy step (eV) of the finite-difference derivative dG/dE.
DERIV_STEP = 1e-5
#: Default relative accuracy of the energy integrals (of the largest zero-bias friction).
DEFAULT_RTOL = 1e-3
#: Scale (eV/A^2) of the force Jacobian's columns in the adaptive rule's error estimate.
K_SCALE = 1e-2
#: Memory (bytes) for the per-energy arrays of one batch.
BATCH_BYTES = 64 * 2**20
#: Bytes that one computation of the kernels holds at its peak per element of a 3N x 3N
#: tensor and per energy point of an adaptive round: the rows of the round (two tensors'
#: worth per energy, gathered on every MPI rank) and their copies into interval sums
#: (tracemalloc: 30-32 on filament devices of 34, 159 and 243 atoms, 16 on 85).
KERNEL_BYTES = 32
#: Energy points of the largest adaptive round of the kernels along MD at 1 V (docs/bath.md).
KERNEL_POINTS = 180


def kernel_memory(n_atoms: int) -> float:
    """Peak memory (bytes, per MPI rank) of one computation of the kernels of ``n_atoms``
    atoms along MD: KERNEL_BYTES x (3 n_atoms)^2 x KERNEL_POINTS (for 243 atoms 1.1 GB
    measured at 71 energy points, 2.9 GB estimated at 180; docs/bath.md, Cost)."""
    return KERNEL_BYTES * (3.0 * n_atoms) ** 2 * KERNEL_POINTS


def largest_kernel_atoms(memory: float) -> int:
    """The most atoms whose kernels :func:`kernel_memory` fits into ``memory`` bytes."""
    return int(np.sqrt(memory / (KERNEL_BYTES * KERNEL_POINTS)) / 3.0)


@dataclass
class ForceOperators:
    """The force operators F_a (per spin) of one model at one Bloch vector.

    F_a = sum_e values[a, e] |rows[e]><cols[e]| on the extended region (device atoms in
    the system's internal z order, then the left and the right lead contacts: n_ext
    sites); coordinate a = 3 m + c for the m-th of the chosen device atoms (``atoms``, in
    the caller's order as in ``system.positions``) and Cartesian component c. eV/A.
    """

    rows: np.ndarray
    cols: np.ndarray
    values: sp.csr_matrix
    n_ext: int
    atoms: np.ndarray
    #: The sites of the extended region the indices refer to (None: all of them, in
    #: order) and, per element, its index in the full list of :func:`force_operators`.
    sites: np.ndarray | None = None
    elements: np.ndarray | None = None

    def __post_init__(self):
        # per atom m of ``atoms``: the sites its operators touch, padded to a common
        # length R with slots that hold zeros (``sites`` (M, R), ``filled`` (M, R)), and
        # F_{3m+c} on them as a dense block, rows (slot, c) (``blocks`` (M, 3R, R))
        v = self.values.tocoo()
        v = sp.coo_matrix((v.data[v.data != 0], (v.row[v.data != 0], v.col[v.data != 0])),
                          shape=v.shape)
        atom, nm = v.row // 3, self.values.shape[0] // 3
        pairs = np.unique(np.concatenate([atom * self.n_ext + self.rows[v.col],
                                          atom * self.n_ext + self.cols[v.col]]))
        owner, site = pairs // self.n_ext, pairs % self.n_ext
        count = np.bincount(owner, minlength=nm)
        first = np.concatenate([[0], np.cumsum(count)[:-1]])
        slot = np.arange(len(pairs)) - first[owner]
        R = int(count.max(initial=0))
        self.sites_of = np.zeros((nm, R), dtype=int)
        self.sites_of[owner, slot] = site
        self.filled = np.zeros((nm, R), dtype=bool)
        self.filled[owner, slot] = True
        local = lambda a, p: slot[np.searchsorted(pairs, a * self.n_ext + p)]
        self.blocks = np.zeros((nm, R, 3, R), dtype=complex)
        np.add.at(self.blocks, (atom, local(atom, self.rows[v.col]), v.row % 3,
                                local(atom, self.cols[v.col])), v.data)
        self.blocks = self.blocks.reshape(nm, 3 * R, R)
        # per site: the (atom, slot) pairs that hold it (the sum over sites of traces)
        order = np.argsort(site, kind="stable")
        cuts = np.searchsorted(site[order], np.arange(self.n_ext + 1))
        self.holders = [(owner[order[a:b]], slot[order[a:b]])
                        for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        self.held_sites = np.unique(site)

    def matrix(self, a: int) -> sp.csr_matrix:
        """F_a as a sparse n_ext x n_ext matrix (eV/A)."""
        v = self.values.getrow(a).toarray()[0]
        keep = v != 0
        return sp.csr_matrix((v[keep], (self.rows[keep], self.cols[keep])),
                             shape=(self.n_ext, self.n_ext))

    def support(self) -> np.ndarray:
        """Sites (extended-region indices) that the chosen coordinates' operators touch."""
        used = np.unique(self.values.nonzero()[1])
        return np.unique(np.concatenate([self.rows[used], self.cols[used]]))

    def restrict(self, sites: np.ndarray) -> "ForceOperators":
        """The same operators on the sites ``sites`` only (which must hold their support):
        the traces of :func:`pair_traces` and :func:`window_traces` need A and M on these
        sites alone."""
        where = np.full(self.n_ext, -1)
        where[sites] = np.arange(len(sites))
        keep = np.flatnonzero((where[self.rows] >= 0) & (where[self.cols] >= 0))
        dropped = np.setdiff1d(np.arange(len(self.rows)), keep)
        if dropped.size and self.values[:, dropped].count_nonzero():
            raise ValueError("the sites do not hold the operators' support")
        return ForceOperators(where[self.rows[keep]], where[self.cols[keep]],
                              self.values[:, keep], len(sites), self.atoms, np.asarray(sites),
                              keep)

    def lift(self, phi: np.ndarray) -> np.ndarray:
        """F_a applied to the columns of ``phi`` (energies x n_ext x r) on the sites of
        atom m's block (``sites_of[m]``), for every coordinate a = 3 m + c:
        X[e, m, k, c, :] = (F_{3m+c} phi[e])[sites_of[m, k], :] (energies x atoms x R x 3
        x r; zero on the empty slots)."""
        ne, _, r = phi.shape
        nm, R = self.sites_of.shape
        return (self.blocks @ phi[:, self.sites_of]).reshape(ne, nm, R, 3, r)


def force_operators(system, model: str = "paper", ik: int = 0,
                    atoms=None) -> ForceOperators:
    """The electron-ion coupling of ``model`` (module docstring) at Bloch vector index ik,
    for the device atoms ``atoms`` (indices in the caller's order; default all).

    Its expectation value, 2 tr[rho F_a] with the density matrix of Eq. 9, is the force of
    Eq. 4 (``paper``) or the Hellmann-Feynman force (``hellmann-feynman``) that
    ``system.forces`` returns.
    """
    w = onsite_weight(model)
    b, n, n_ext = system.ext_bonds, system.n_atoms, system.n_ext
    atoms = np.arange(n) if atoms is None else np.asarray(atoms, dtype=int)
    if atoms.ndim != 1 or np.any((atoms < 0) | (atoms >= n)):
        raise ValueError(f"atoms must be device atom indices 0..{n - 1}, got {atoms}")
    k = system.kpoints[ik] if system.box is not None else None
    g = b.dtdr[:, None] * b.vec / np.linalg.norm(b.vec, axis=1)[:, None]   # (m, 3)
    phase = b.phases(k)
    m = len(b)
    diag = np.arange(n_ext)
    rows = np.concatenate([b.i, b.j, diag])
    cols = np.concatenate([b.j, b.i, diag])
    # element index of each bond's (i, j), (j, i) and of the diagonal sites
    eij, eji, ed = np.arange(m), m + np.arange(m), 2 * m + diag
    user = np.empty(n, dtype=int)
    user[np.arange(n)] = system._order          # internal atom -> caller's atom
    dev = b.j < n
    r, c, v = [], [], []
    for comp in range(3):
        gc = g[:, comp]
        for ends, sign, sel in ((b.i, 1.0, slice(None)), (b.j[dev], -1.0, dev)):
            coord = 3 * user[ends] + comp
            r += [coord, coord, coord]
            c += [eij[sel], eji[sel], ed[(b.j if sign > 0 else b.i)[sel]]]
            v += [sign * gc[sel] * phase[sel], sign * gc[sel] * np.conj(phase[sel]),
                  sign * w * gc[sel] + 0j]
    values = sp.csr_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(c))),
                           shape=(3 * n, 2 * m + n_ext))
    values.sum_duplicates()
    coords = (3 * atoms[:, None] + np.arange(3)).ravel()
    return ForceOperators(rows, cols, values[coords], n_ext, atoms)


@dataclass
class ExtendedSpectra:
    """Per energy (first axis) on the extended region: the retarded Green's function
    ``G`` and the spectral densities A_S = Phi_S Phi_S^+ injected from lead S, given by
    their factors ``phi[S]`` (n_ext x at most the contacts of S: :func:`fewest_columns`;
    1/sqrt(eV))."""

    G: np.ndarray
    phi: list

    @property
    def A(self) -> list:
        """The spectral densities A_S (1/eV)."""
        return [p @ dagger(p) for p in self.phi]


def extended_spectra(system, E, ik: int = 0, spectra: bool = True,
                     sites=None, green: bool = True) -> ExtendedSpectra:
    """G and A_S on the extended region (device in internal order, then the left and the
    right contacts) on the energies E, from the device Green's function of Eq. 6
    (``spectra=False``: G alone, phi empty; ``green=False``: phi alone, G zero); with
    ``sites`` (extended-region indices), G on those sites only and the rows of phi_S
    there, from the columns and rows of G_F that they need (a large device's kernels
    need the sites next to the filament alone).

    With G_F the device block and g_S the leads' contact Green's functions, the scattering
    states from S are Psi_S = [G_F V_S^+ ; delta_tS + g_t V_t G_F V_S^+] (rows: device,
    contacts of lead t), A_S = Psi_S a_S Psi_S^+ with a_S = i(g_S - g_S^+) (so
    phi_S = Psi_S w_S with w_S w_S^+ = a_S, then cut to its rank on the sites), and the
    columns of G on S's contacts are Psi_S g_S; the device columns are [G_F ; g_t V_t G_F].
    """
    E = np.atleast_1d(np.asarray(E, dtype=float))
    n, ne = system.n_atoms, len(E)
    sites = np.arange(system.n_ext) if sites is None else np.asarray(sites)
    dev = sites[sites < n]
    gs = [system._lead_gf(s, E, ik) for s in (0, 1)]
    Vs = system._V[ik]
    sigmas = [self_energy(V, g) for V, g in zip(Vs, gs)]
    cs = [c.contacts for c in system.lead_contacts]
    bs = [c.boundary for c in system.lead_contacts]
    off = [n, n + len(cs[0])]
    # sites kept: device rows, and for each lead the rows of its contacts that are kept
    lead_rows = [np.flatnonzero((sites >= off[t]) & (sites < off[t] + len(cs[t])))
                 for t in (0, 1)]
    lead_at = [sites[lead_rows[t]] - off[t] for t in (0, 1)]
    in_dev = np.flatnonzero(sites < n)
    # columns of G_F: with ``green`` the device sites kept and, for the scattering states
    # or the contacts' rows and columns of G, the atoms bonded to the leads; its rows: the
    # device sites kept and the atoms bonded to a lead whose contacts are kept
    states = spectra or any(len(r) for r in lead_rows)
    cols_f = np.unique(np.concatenate(([dev] if green else []) + (list(bs) if states else [])
                                      + [np.zeros(0, int)])).astype(int)
    rows_f = np.unique(np.concatenate([dev] + [bs[t] for t in (0, 1) if len(lead_rows[t])])
                       ).astype(int)
    at, row = np.full(n, -1), np.full(n, -1)
    at[cols_f] = np.arange(len(cols_f))
    row[rows_f] = np.arange(len(rows_f))
    try:
        GF = system._M[ik].solve(E, sigmas, cols_f, only_rows=rows_f)
    except (RuntimeError, np.linalg.LinAlgError) as err:
        raise FloatingPointError(f"device Green's function is singular at an energy in "
                                 f"[{E.min()}, {E.max()}] eV: {err}") from None
    G = np.zeros((ne, len(sites), len(sites)), dtype=complex)
    if green:
        G[:, in_dev[:, None], in_dev[None, :]] = GF[:, row[dev]][:, :, at[dev]]
    phi = []
    if not states:
        return ExtendedSpectra(G, phi)
    for t in (0, 1):
        if green and len(lead_rows[t]):                                # kept contacts x dev
            part = gs[t][:, lead_at[t]] @ (Vs[t] @ GF[:, row[bs[t]]][:, :, at[dev]])
            G[:, lead_rows[t][:, None], in_dev[None, :]] = part
    for s in (0, 1):
        psi = np.zeros((ne, len(sites), len(cs[s])), dtype=complex)
        psi[:, in_dev] = GF[:, row[dev]][:, :, at[bs[s]]] @ dagger(Vs[s])
        for t in (0, 1):
            if not len(lead_rows[t]):
                continue
            block = gs[t][:, lead_at[t]] @ (Vs[t] @ (GF[:, row[bs[t]]][:, :, at[bs[s]]]
                                                     @ dagger(Vs[s])))
            if t == s:
                block = block + np.eye(len(cs[s]))[lead_at[t]]
            psi[:, lead_rows[t]] = block
        if green:
            G[:, :, lead_rows[s]] = (psi @ gs[s])[:, :, lead_at[s]]
        if spectra:
            phi.append(fewest_columns(psi @ open_columns(spectral_factor(gs[s]))))
    return ExtendedSpectra(G, phi)


def fewest_columns(phi: np.ndarray, rtol: float = FACTOR_RTOL) -> np.ndarray:
    """A factor of A = phi phi^+ (a stack over energies) with the fewest columns: from the
    thin SVD phi = U s W^+, the columns U s of the singular values above ``rtol`` times
    the largest (A loses at most rtol^2 of its norm), as many as the batch's largest rank
    (zero past an energy's own). On the sites next to the neck of a large filament the
    leads' states span fewer combinations than the leads have channels (27-28 of 65-66 on
    the 878-atom device's 54 middle atoms), and every trace's cost is linear or quadratic in
    the columns."""
    if phi.shape[2] == 0 or phi.shape[1] == 0:
        return phi[:, :, :0]
    try:
        u, sv, _ = np.linalg.svd(phi, full_matrices=False)
    except np.linalg.LinAlgError:
        return phi                                  # (still a factor of A)
    sv = np.where(sv > rtol * sv[:, :1], sv, 0.0)
    k = int(np.count_nonzero(sv.any(axis=0)))
    return u[:, :, :k] * sv[:, None, :k]


def energy_derivative(system, E, ik: int = 0, h: float = DERIV_STEP,
                      sites=None) -> np.ndarray:
    """dG/dE on the extended region (1/eV^2) by second-order finite differences: central,
    or one-sided away from a lead channel edge or band edge closer than 2h (there G has a
    square-root branch point)."""
    E = np.atleast_1d(np.asarray(E, dtype=float))
    edges = np.concatenate([system._kinks(), system.band_edges])
    gap = E[:, None] - edges[None, :]
    near = np.abs(gap) < 2.0 * h
    side = np.zeros(len(E))                       # 0 central, +1 forward, -1 backward
    hit = near.any(axis=1)
    if hit.any():
        nearest = gap[hit][np.arange(hit.sum()), np.abs(gap[hit]).argmin(axis=1)]
        side[hit] = np.where(nearest >= 0, 1.0, -1.0)
    offsets = np.where(side[:, None] == 0, [[-h, h]], side[:, None] * [[h, 2 * h]])
    G = extended_spectra(system, (E[:, None] + offsets).ravel(), ik, False, sites).G
    G = G.reshape(len(E), 2, *G.shape[1:])
    central = (G[:, 1] - G[:, 0]) / (2 * h)
    if not hit.any():
        return central
    G0 = extended_spectra(system, E[hit], ik, False, sites).G
    one = side[hit][:, None, None] * (-3 * G0 + 4 * G[hit, 0] - G[hit, 1]) / (2 * h)
    central[hit] = one
    return central


def _operators_on_support(system, model, nk, atoms):
    """The force operators of ``atoms`` at every Bloch vector, restricted to the sites
    their elements touch (all traces need G and A_S there alone), and those sites."""
    ops = [force_operators(system, model, ik, atoms) for ik in range(nk)]
    sites = np.unique(np.concatenate([o.support() for o in ops]))
    return [o.restrict(sites) for o in ops], sites


def pair_traces(ops: ForceOperators, phi1: np.ndarray, phi2: np.ndarray,
                x2: np.ndarray | None = None, real: bool = False) -> np.ndarray:
    """tr[A1 F_a A2 F_b] for all coordinates a, b (energies x 3 atoms x 3 atoms), with
    A1 = phi1 phi1^+, A2 = phi2 phi2^+ (stacks over the energies); Hermitian in (a, b).
    With B_a = phi1^+ F_a phi2 (r1 x r2, from the rows of atom a's block) the trace is
    sum_ij (B_a)_ij conj((B_b)_ij). ``x2``: ``ops.lift(phi2)`` if already computed;
    ``real``: the real part alone (one real product)."""
    x2 = ops.lift(phi2) if x2 is None else x2
    ne, nm, R, _, r2 = x2.shape
    g1 = phi1[:, ops.sites_of].conj()                       # (ne, atoms, R, r1)
    B = np.swapaxes(g1, 2, 3) @ x2.reshape(ne, nm, R, 3 * r2)      # (ne, atoms, r1, 3 r2)
    r1 = phi1.shape[2]
    B = np.swapaxes(B.reshape(ne, nm, r1, 3, r2), 2, 3).reshape(ne, 3 * nm, r1 * r2)
    if real:
        # Re sum_ij B_a conj(B_b) = Re B_a . Re B_b + Im B_a . Im B_b: the product of the
        # float views (B may be a view whose last axis is strided: one atom, one column)
        B = np.ascontiguousarray(B).view(float)
        return B @ np.swapaxes(B, 1, 2)
    return B @ dagger(B)


def window_traces(ops: ForceOperators, x: np.ndarray, M: np.ndarray, part: str,
                  y: np.ndarray | None = None, other: ForceOperators | None = None
                  ) -> np.ndarray:
    """Re or Im (``part`` "real" or "imag") of tr[A F_a M F_b] (energies x 3 atoms x 3
    atoms) with A = phi phi^+, from x = ``ops.lift(phi)``: sum over the columns i of
    (F_a phi_i)^+ M (F_b phi_i); with ``y`` = ``other.lift(phi)``, F_b of the operators
    ``other``. Z_b = M F_b phi on all sites (from the columns of M at b's block), then, site
    by site, the rows of F_a phi whose block holds that site against that row of Z, in real
    arithmetic: Im(conj(x) z) = Re(i x) . Re(z) + Im(i x) . Im(z) and Re(conj(x) z) =
    Re(x) . Re(z) + Im(x) . Im(z) are dot products of the float views (real and imaginary
    parts side by side), half the multiplications of the complex trace."""
    if part not in ("real", "imag"):
        raise ValueError(f"part must be 'real' or 'imag', got {part!r}")
    other = ops if other is None else other
    y = x if y is None else y
    ne, nb, Rb, _, r = y.shape
    n = M.shape[1]
    # Z[e, p, b, (c, i)] = sum_k M[e, p, sites_of[b, k]] y[e, b, k, c, i], laid out so that
    # each site's rows are contiguous; float view: (ne, n, 3 nb, 2r)
    Z = np.empty((ne, n, nb, 3 * r), dtype=complex)
    np.matmul(np.moveaxis(M[:, :, other.sites_of], 2, 1), y.reshape(ne, nb, Rb, 3 * r),
              out=np.moveaxis(Z, 2, 1))
    Z = Z.reshape(ne, n, nb, 3, r).view(float).reshape(ne, n, 3 * nb, 2 * r)
    left = np.ascontiguousarray(1j * x if part == "imag" else x).view(float)  # (ne, atoms, R, 3, 2r)
    out = np.zeros((ne, x.shape[1], 3, 3 * nb))
    for p, (atoms, slots) in zip(ops.held_sites, ops.holders):
        rows = left[:, atoms, slots].reshape(ne, 3 * len(atoms), 2 * r)
        out[:, atoms] += (rows @ np.swapaxes(Z[:, p], 1, 2)).reshape(ne, len(atoms), 3, 3 * nb)
    return out.reshape(ne, 3 * x.shape[1], 3 * nb)


def coefficient_gradient(system, model: str, ik: int, atoms, expectation) -> np.ndarray:
    """sum_e (d values[a, e] / dX_b) expectation[e]: the part of the Jacobian of
    <F_a> = Re sum_e values[a, e] <|rows_e><cols_e|> that comes from the operator's own
    dependence on the positions (through g = t'(r) n of each bond, with
    dg/dX_j = t'' n n^T + (t'/r)(1 - n n^T) = -dg/dX_i), for the coordinates of ``atoms``
    (rows a and columns b). ``expectation``: <|p><q|> per element of
    :func:`force_operators` (bonds i-j, bonds j-i, then the diagonal). The hopping is the
    geometric t(r) of ``system.hopping``."""
    w = onsite_weight(model)
    b, n = system.ext_bonds, system.n_atoms
    k = system.kpoints[ik] if system.box is not None else None
    m = len(b)
    r = np.linalg.norm(b.vec, axis=1)
    nvec = b.vec / r[:, None]
    h = 1e-6
    d2 = (system.hopping.hopping(r + h)[1] - system.hopping.hopping(r - h)[1]) / (2 * h)
    H = (d2 - b.dtdr / r)[:, None, None] * nvec[:, :, None] * nvec[:, None, :] \
        + (b.dtdr / r)[:, None, None] * np.eye(3)
    ph = b.phases(k)
    rho = np.asarray(expectation)
    hop = ph * rho[:m] + np.conj(ph) * rho[m:2 * m]
    s_i = np.real(hop + w * rho[2 * m + b.j])            # <operator of F_i> per bond
    s_j = np.real(hop + w * rho[2 * m + b.i])            # <operator of F_j>
    user = np.empty(n, dtype=int)
    user[np.arange(n)] = system._order
    atoms = np.arange(n) if atoms is None else np.asarray(atoms, dtype=int)
    where = np.full(n, -1)
    where[atoms] = np.arange(len(atoms))
    J = np.zeros((len(atoms), 3, len(atoms), 3))
    dev = b.j < n
    ai = where[user[b.i]]
    aj = np.full(m, -1)
    aj[dev] = where[user[b.j[dev]]]
    # (row atom, column atom, sign, weight) for dF_i/dX_j, dF_i/dX_i, dF_j/dX_j, dF_j/dX_i
    for row, col, sign, weight in ((ai, aj, 1.0, s_i), (ai, ai, -1.0, s_i),
                                   (aj, aj, -1.0, s_j), (aj, ai, 1.0, s_j)):
        ok = (row >= 0) & (col >= 0)
        np.add.at(J, (row[ok], slice(None), col[ok], slice(None)),
                  sign * weight[ok, None, None] * H[ok])
    return J.reshape(3 * len(atoms), 3 * len(atoms))


@dataclass
class ElectronicBath:
    """Adiabatic electronic bath of device atoms at one bias (module docstring).

    Coordinates a = 3 m + c for the m-th atom of ``atoms`` (device atom indices in the
    caller's order) and component c. ``friction``: symmetric part of gamma (eV ps/A^2);
    ``berry``: antisymmetric part (eV ps/A^2; -berry X' is the Berry, "magnetic" force);
    ``noise``: D, the covariance of the Langevin force per unit time (eV^2 ps/A^2);
    ``equilibrium``: the zero-bias friction at the same electron temperature
    (eV ps/A^2). ``bias`` (V), ``beta``, ``temperature`` (K, electrons), ``model``,
    ``n_energies`` energy points, ``error`` the integrals' estimate (units of friction),
    ``partition`` the energies to start a similar integral from (``start``), ``reference``
    the friction that ``tol`` was relative to;
    ``force_jacobian`` dF_a/dX_b of the mean (renormalized) recoil force (eV/A^2; only if
    asked for): its antisymmetric part is the non-conservative (curl) stiffness.
    """

    friction: np.ndarray
    berry: np.ndarray
    noise: np.ndarray
    equilibrium: np.ndarray
    bias: float
    beta: float
    temperature: float
    model: str
    n_energies: int
    error: float
    atoms: np.ndarray
    partition: np.ndarray
    reference: float
    force_jacobian: np.ndarray | None = None

    @property
    def gamma(self) -> np.ndarray:
        """Full velocity kernel gamma = friction + berry (force -gamma X')."""
        return self.friction + self.berry

    def per_atom(self, tensor: np.ndarray) -> np.ndarray:
        """Diagonal 3 x 3 blocks of a 3N x 3N tensor: (N, 3, 3)."""
        n = tensor.shape[0] // 3
        t = tensor.reshape(n, 3, n, 3)
        return t[np.arange(n), :, np.arange(n), :]


def electronic_bath(system, bias: float, beta: float = 0.5, temperature: float = 0.0,
                    model: str = "paper", tol: float = DEFAULT_RTOL,
                    n_points: int | None = None, atoms=None, start=(),
                    jacobian: bool = False, reference: float | None = None,
                    kinks=None) -> ElectronicBath:
    r"""Friction, Berry tensor and noise of device atoms at bias V (module docstring).

    ``temperature`` is the electron temperature T_e (K; default 0, as for the mean force of
    ``system.forces``). Energies are integrated with the
    bias window of the mean force (its Fermi tails at T_e > 0) adaptively to the accuracy
    ``tol`` relative to the largest zero-bias, T_e = 0 friction element (noise columns
    scaled by 2 k_B T_e + |V|), or with a fixed ``n_points`` rule per segment. At T_e = 0
    the equilibrium friction is the Fermi-surface value (-df/dE = delta(E - E_F)); at
    V = 0 and T_e = 0 the noise vanishes. ``atoms``: the device atoms (indices in the
    caller's order) whose coordinates the tensors cover; default all. ``start``: energies
    to start the adaptive rule from (a previous result's ``partition``, or the mean force's
    partition at this geometry). ``kinks``: the channel edges the pieces are cut at
    (default all of them; the mean force's are ``system._cuts(tol)``). ``tol`` is relative
    to the largest zero-bias, T_e = 0 friction element of this geometry or to
    ``reference`` (eV ps/A^2), whichever is larger (the result's ``reference``): a run
    that passes its first kernels' keeps their absolute accuracy when the filament breaks
    and its own friction shrinks. ``jacobian``: also
    the Jacobian of the mean force on the same coordinates, from the same energies: the
    electrons see the displacement through H(X) (dH/dX_b = -F_b of the Hellmann-Feynman
    operator, A_S = G Gamma_S G^+ on the extended region, so dA_S = -G F_b A_S - A_S F_b
    G^+), and the operator F_a itself moves with the atoms (:func:`coefficient_gradient`):

    .. math::

        \frac{\partial F_a}{\partial X_b} = -\frac{2}{\pi} \sum_S \int dE\, w_S\,
            \mathrm{Re\,tr}[A_S F_a G F^{HF}_b] + \sum_e \frac{\partial (F_a)_e}
            {\partial X_b} \langle e \rangle.
    """
    onsite_weight(model)
    quad.check_bias(bias, beta, temperature)
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    check_window(system, bias, beta, temperature)
    segments = quad.bias_window(system.fermi_level, bias, beta, temperature)
    nk = len(system.kweights)
    ops, sites = _operators_on_support(system, model, nk, atoms)
    hf = [force_operators(system, "hellmann-feynman", ik, atoms).restrict(sites)
          for ik in range(nk)] if jacobian else None
    N3 = ops[0].values.shape[0]
    n_el = len(ops[0].rows)
    iu = np.triu_indices(N3)
    EF = system.fermi_level
    mu = quad.chemical_potentials(EF, bias if abs(bias) >= quad.TINY_BIAS else 0.0, beta)
    r = max(len(c.contacts) for c in system.lead_contacts)
    ns = len(sites)
    per_energy = 16 * (8 * ns ** 2 + 4 * N3 * r * ns + 4 * N3 ** 2 + 3 * system.n_atoms * ns)
    chunk = max(1, BATCH_BYTES // per_energy)

    def fermi_surface(E):
        out = np.zeros((len(E), N3, N3))
        for ik, wk in enumerate(system.kweights):
            phi = np.concatenate(extended_spectra(system, E, ik, sites=sites,
                                                  green=False).phi, axis=2)
            out += wk * pair_traces(ops[ik], phi, phi, real=True)
        return 2.0 * HBAR / (4.0 * np.pi) * out

    surface = fermi_surface(np.array([EF]))[0]
    reference = max(float(np.abs(np.diagonal(surface)).max()), reference or 0.0)
    scale = reference if reference > 0 else 1.0
    e_scale = 2.0 * quad.K_B * temperature + abs(bias)

    def rows(E):
        fL, fR = (quad.fermi(E, m, temperature) for m in mu)
        f0 = quad.fermi(E, EF, temperature)
        w = (fL - f0, fR - f0)
        eq, dgam, noise = (np.zeros((len(E), N3, N3)) for _ in range(3))
        jac = np.zeros((len(E), N3, N3)) if jacobian else None
        expect = np.zeros((len(E), nk, n_el), dtype=complex) if jacobian else None
        for ik, wk in enumerate(system.kweights):
            sp_ = extended_spectra(system, E, ik, sites=sites, green=jacobian)
            phi = sp_.phi
            x = [ops[ik].lift(p) for p in phi]
            # tr[A_L F A_R F] + tr[A_R F A_L F]; tr[A_S F A_S F] only where weighted (not
            # inside a T_e = 0 window)
            cross = 2.0 * pair_traces(ops[ik], phi[0], phi[1], x[1], real=True)
            same = [f * (1 - f) for f in (fL, fR)]
            if temperature > 0:
                d0 = (f0 * (1.0 - f0) / (quad.K_B * temperature))[:, None, None]
                eq += wk * d0 * cross
            c = (fL * (1 - fR) + fR * (1 - fL))[:, None, None]
            noise += wk * 0.5 * c * cross
            for s in (0, 1):
                on = (same[s] != 0) | (temperature > 0)
                if on.any():
                    SS = pair_traces(ops[ik], phi[s][on], phi[s][on], x[s][on], real=True)
                    noise[on] += wk * same[s][on, None, None] * SS
                    if temperature > 0:
                        eq += wk * d0 * SS
            move = (w[0] != 0) | (w[1] != 0)
            if move.any():
                dG = energy_derivative(system, E[move], ik, sites=sites)
                for s in (0, 1):
                    on = w[s][move] != 0
                    if on.any():
                        t = window_traces(ops[ik], x[s][move][on], dG[on], "imag")
                        dgam[np.flatnonzero(move)[on]] += wk * w[s][move][on, None, None] * t
                        if jacobian:
                            e = np.flatnonzero(move)[on]
                            ws = w[s][e][:, None, None]
                            t = window_traces(ops[ik], x[s][e], sp_.G[e], "real",
                                              hf[ik].lift(phi[s][e]), hf[ik])
                            jac[e] += wk * ws * t
                            # <|p><q|> = tr[A |p><q|] = A[q, p] per element
                            pe = phi[s][e]
                            a = np.einsum("eqr,eqr->eq", pe[:, ops[ik].cols],
                                          pe[:, ops[ik].rows].conj())
                            expect[e, ik] += w[s][e][:, None] * a
        eq *= HBAR / (2.0 * np.pi)
        dgam *= -2.0 * HBAR / np.pi
        noise *= HBAR / np.pi
        parts = [eq[:, iu[0], iu[1]] / scale, dgam.reshape(len(E), -1) / scale,
                 noise[:, iu[0], iu[1]] / (scale * e_scale)]
        if jacobian:
            # (2 spins / 2 pi) int w (-2 Re tr[...]); expectations 2 int w A / 2 pi
            parts += [(-2.0 / np.pi) * jac.reshape(len(E), -1) / K_SCALE,
                      (expect.real / np.pi).reshape(len(E), -1) / K_SCALE,
                      (expect.imag / np.pi).reshape(len(E), -1) / K_SCALE]
        return np.hstack(parts)

    def func(E, seg):
        return system._map(lambda e: np.vstack([rows(e[i:i + chunk])
                                                for i in range(0, len(e), chunk)]), E)

    n_sym = len(iu[0])
    width = 2 * n_sym + N3 * N3 + ((N3 * N3 + 2 * nk * n_el) if jacobian else 0)
    total, error, n_energies, ends = np.zeros(width), 0.0, 0, []
    if temperature > 0:
        # the Fermi functions' shape: intervals split at mu +- (0, 3, 8) k_B T_e
        marks = np.array([0.0, 3.0, 8.0]) * quad.K_B * temperature
        start = np.concatenate([np.asarray(start, dtype=float),
                                *[m + sign * marks for m in (*mu, EF) for sign in (-1, 1)]])
    for seg in segments:
        res = seg.integrate(func, n_points, tol / len(segments),
                            system._kinks() if kinks is None else kinks, start)
        total, error = total + res.value, error + res.error
        n_energies += res.n_evals
        ends += [] if res.partition is None else list(res.partition)

    def sym(vec):
        out = np.zeros((N3, N3))
        out[iu] = vec
        return out + np.triu(out, 1).T

    if temperature == 0.0:
        equilibrium = surface
        n_energies += 1
    else:
        equilibrium = sym(total[:n_sym]) * scale
    gamma = equilibrium + total[n_sym:n_sym + N3 * N3].reshape(N3, N3) * scale
    noise = sym(total[n_sym + N3 * N3:2 * n_sym + N3 * N3]) * scale * e_scale
    J = None
    if jacobian:
        rest = total[2 * n_sym + N3 * N3:] * K_SCALE
        J = rest[:N3 * N3].reshape(N3, N3)
        expect = (rest[N3 * N3:N3 * N3 + nk * n_el]
                  + 1j * rest[N3 * N3 + nk * n_el:]).reshape(nk, n_el)
        for ik, wk in enumerate(system.kweights):
            full = np.zeros(len(force_operators(system, model, ik).rows), dtype=complex)
            full[ops[ik].elements] = expect[ik]
            J = J + wk * coefficient_gradient(system, model, ik, atoms, full)
    return ElectronicBath(0.5 * (gamma + gamma.T), 0.5 * (gamma - gamma.T), noise,
                          0.5 * (equilibrium + equilibrium.T), float(bias), beta,
                          temperature, model, n_energies, error * scale, ops[0].atoms,
                          np.array(ends, dtype=float), scale, J)


@dataclass
class FrequencyKernels:
    """Symmetric friction and symmetrized noise at the vibration energy hbar omega
    (:func:`kernels_at_frequency`; eV ps/A^2 and eV^2 ps/A^2), ``energy`` hbar omega (eV),
    ``atoms`` as in :class:`ElectronicBath`, ``n_energies`` energy points."""

    friction: np.ndarray
    noise: np.ndarray
    energy: float
    atoms: np.ndarray
    n_energies: int


def kernels_at_frequency(system, bias: float, energy: float, beta: float = 0.5,
                         temperature: float = 0.0, model: str = "paper",
                         tol: float = DEFAULT_RTOL, atoms=None) -> FrequencyKernels:
    r"""The dissipative friction and the noise felt by a vibration of energy
    epsilon = hbar omega > 0, from the golden rule (transitions E -> E + epsilon between the
    scattering states of leads S and S'; only spectral densities, no dG/dE):

    .. math::

        \gamma_{ab}(\omega) = \frac{\hbar}{2\pi\epsilon} \sum_{SS'} \int dE\,
            [f_S(E) - f_{S'}(E + \epsilon)]\,
            \mathrm{Re\,tr}[A_S(E) F_a A_{S'}(E + \epsilon) F_b],

        D_{ab}(\omega) = \frac{\hbar}{\pi} \sum_{SS'} \int dE\, \tfrac12 [f_S(E)
            (1 - f_{S'}(E + \epsilon)) + f_{S'}(E + \epsilon)(1 - f_S(E))]\,
            \mathrm{Re\,tr}[A_S(E) F_a A_{S'}(E + \epsilon) F_b],

    symmetrized in (a, b), both spins. As epsilon -> 0 they are the adiabatic ``friction``
    and ``noise`` of :func:`electronic_bath` (its bias term included: an independent
    route); at zero bias D = epsilon coth(epsilon / 2 k_B T_e) gamma (the quantum
    fluctuation-dissipation theorem). Where they differ from the adiabatic kernels at the
    atoms' vibration energies (resonances narrower than hbar omega), the adiabatic limit
    fails. ``tol`` as in :func:`electronic_bath`.
    """
    onsite_weight(model)
    if not (np.isfinite(energy) and energy > 0):
        raise ValueError(f"vibration energy hbar omega must be > 0 eV, got {energy}")
    check_window(system, bias, beta, temperature)
    nk = len(system.kweights)
    ops, sites = _operators_on_support(system, model, nk, atoms)
    N3 = ops[0].values.shape[0]
    iu = np.triu_indices(N3)
    EF = system.fermi_level
    mu = quad.chemical_potentials(EF, bias if abs(bias) >= quad.TINY_BIAS else 0.0, beta)
    lo, hi = quad.window_bounds(EF, bias if abs(bias) >= quad.TINY_BIAS else 0.0, beta,
                                temperature)
    lo -= energy
    steps = () if temperature > 0 else tuple(sorted({*mu, *(m - energy for m in mu)}))
    seg = quad.Segment(lo, hi, None, None, steps=tuple(e for e in steps if lo < e < hi))
    phi0 = np.concatenate(extended_spectra(system, np.array([EF]), 0, sites=sites,
                                           green=False).phi, axis=2)
    scale = float(np.abs(np.diagonal(pair_traces(ops[0], phi0, phi0, real=True)[0])).max())
    scale = HBAR / (2 * np.pi) * (scale if scale > 0 else 1.0)
    e_scale = 2.0 * quad.K_B * temperature + abs(bias) + energy

    def rows(E, _seg):
        f1 = [quad.fermi(E, m, temperature) for m in mu]
        f2 = [quad.fermi(E + energy, m, temperature) for m in mu]
        fric, noise = np.zeros((len(E), N3, N3)), np.zeros((len(E), N3, N3))
        for ik, wk in enumerate(system.kweights):
            p1 = extended_spectra(system, E, ik, sites=sites, green=False).phi
            p2 = extended_spectra(system, E + energy, ik, sites=sites, green=False).phi
            x2 = [ops[ik].lift(p) for p in p2]
            for s in (0, 1):
                for t in (0, 1):
                    tr = wk * pair_traces(ops[ik], p1[s], p2[t], x2[t], real=True)
                    fric += (f1[s] - f2[t])[:, None, None] * tr
                    noise += (0.5 * (f1[s] * (1 - f2[t]) + f2[t] * (1 - f1[s])))[:, None, None] * tr
        fric *= HBAR / (2 * np.pi * energy)
        noise *= HBAR / np.pi
        return np.hstack([fric[:, iu[0], iu[1]] / scale,
                          noise[:, iu[0], iu[1]] / (scale * e_scale)])

    res = seg.integrate(lambda E, sg: system._map(lambda e: rows(e, sg), E), None, tol,
                        system._kinks())

    def sym(vec):
        out = np.zeros((N3, N3))
        out[iu] = vec
        return out + np.triu(out, 1).T

    n = len(iu[0])
    return FrequencyKernels(sym(res.value[:n]) * scale, sym(res.value[n:]) * scale * e_scale,
                            float(energy), ops[0].atoms, res.n_evals)


@dataclass
class EffectiveTemperature:
    """Effective electronic temperatures of a bath (K).

    ``modes``: T_eff of the modes of the subspace where the friction is positive (its
    eigenvalues above ``rcond`` times the largest), D v = 2 k_B T gamma_s v there
    (generalized eigenvalues, ascending), ``vectors`` their columns (3N x modes);
    ``overall``: the kinetic temperature the free atoms (equal masses, no potential) would
    reach under the full gamma and D, from gamma K + K gamma^T = D, T = tr K / (modes
    k_B), on that subspace, NaN unless the friction is positive there and nowhere
    negative (negative friction: runaway). ``balance``: the temperature at which the bath
    neither gives energy to nor takes it from atoms of equal masses whose velocities are
    equipartitioned, tr D / (2 k_B tr gamma_s): what the atoms approach when their
    potential mixes the modes faster than the bath acts (docs/bath.md); NaN when
    tr gamma_s <= 0.
    """

    modes: np.ndarray
    vectors: np.ndarray
    overall: float
    balance: float


def effective_temperature(bath: ElectronicBath, rcond: float = 1e-8
                          ) -> EffectiveTemperature:
    """Per-mode, overall and power-balance effective temperatures (noise over twice the
    friction)."""
    from scipy.linalg import eigh, solve_continuous_lyapunov
    trace = float(np.trace(bath.friction))
    balance = float(np.trace(bath.noise) / (2.0 * quad.K_B * trace)) if trace > 0 else np.nan
    lam, U = np.linalg.eigh(bath.friction)
    small = rcond * np.abs(lam).max(initial=0.0)
    keep = lam > small
    if not keep.any():
        return EffectiveTemperature(np.zeros(0), np.zeros((len(lam), 0)), np.nan, balance)
    P = U[:, keep]
    g, D = P.T @ bath.friction @ P, P.T @ bath.noise @ P
    t, v = eigh(D, 2.0 * quad.K_B * g)
    overall = np.nan
    if np.all(lam >= -small):
        K = solve_continuous_lyapunov(P.T @ bath.gamma @ P, D)
        overall = float(np.trace(K) / (len(g) * quad.K_B))
    return EffectiveTemperature(t, P @ v, overall, balance)


@dataclass
class Stability:
    """Eigenvalues of the linearized dynamics M x'' = -K x - gamma x' (see
    :func:`linear_stability`): ``rate`` the largest real part (1/ps; > 0: a mode grows as
    exp(rate t), a runaway), ``frequency`` the imaginary part of that eigenvalue (rad/ps)
    and ``mode`` its displacement pattern (3N, complex)."""

    rate: float
    frequency: float
    mode: np.ndarray


def linear_stability(gamma: np.ndarray, masses: np.ndarray,
                     stiffness: np.ndarray | None = None) -> Stability:
    """The fastest-growing mode of M x'' = -K x - gamma x' (Lu, Brandbyge, Hedegard,
    Todorov, Dundas, PRB 85, 245444 (2012), Eq. 5 linearized).

    ``gamma`` the full velocity kernel (friction plus Berry, eV ps/A^2), ``masses`` per
    coordinate (eV ps^2/A^2), ``stiffness`` K = -dF/dX of all conservative and
    non-conservative forces (eV/A^2; not symmetric out of equilibrium). Without K the atoms
    are free: the rates are the eigenvalues of -M^-1 gamma (a negative friction
    eigenvalue is a runaway at rate |lambda| / m for equal masses).
    """
    n = len(masses)
    minv = 1.0 / np.asarray(masses, dtype=float)
    if stiffness is None:
        lam, vec = np.linalg.eig(-minv[:, None] * gamma)
        k = int(np.argmax(lam.real))
        return Stability(float(lam[k].real), float(abs(lam[k].imag)), vec[:, k])
    A = np.zeros((2 * n, 2 * n))
    A[:n, n:] = np.eye(n)
    A[n:, :n] = -minv[:, None] * stiffness
    A[n:, n:] = -minv[:, None] * gamma
    lam, vec = np.linalg.eig(A)
    k = int(np.argmax(lam.real))
    return Stability(float(lam[k].real), float(abs(lam[k].imag)), vec[:n, k])


def largest_temperature(system, bias: float, beta: float) -> float:
    """The largest electron temperature T_e (K) whose bath window at this bias (the bias
    window with Fermi tails of ``TAIL_KT`` k_B T_e) stays inside the lead band and farther
    than FLAT_MARGIN from the periodic leads' flat bands; 0 if none."""
    lo, hi = quad.window_bounds(system.fermi_level, bias, beta)
    flat = system._flat_bands()[0]
    gap = np.min(np.maximum(lo - flat, flat - hi), initial=np.inf) - FLAT_MARGIN
    edge = min(lo - system.band_edges[0], system.band_edges[1] - hi)
    return max(min(gap, edge), 0.0) / (quad.TAIL_KT * quad.K_B)


def check_window(system, bias: float, beta: float, temperature: float) -> None:
    """The bath's energy window at electron temperature T_e (the bias window with its
    Fermi tails) must avoid the periodic leads' flat bands: a clear error naming the
    largest T_e accepted at this bias (:func:`largest_temperature`), before any long
    work."""
    try:
        system._check_window(quad.bias_window(system.fermi_level, bias, beta, temperature))
    except ValueError as err:
        room = largest_temperature(system, bias, beta)
        best = f"T_e below {room:.0f} K" if room > 0 else "no T_e"
        raise ValueError(f"electronic bath at T_e = {temperature} K, V = {bias} V: {err}; "
                         f"at this bias the window's Fermi tails ({quad.TAIL_KT:g} k_B T_e) "
                         f"allow {best}") from None
