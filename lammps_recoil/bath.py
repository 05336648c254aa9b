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
from .greens import dagger

#: Reduced Planck constant (eV ps).
HBAR = 6.582119569e-4
#: Energy step (eV) of the finite-difference derivative dG/dE.
DERIV_STEP = 1e-5
#: Default relative accuracy of the energy integrals (of the largest zero-bias friction).
DEFAULT_RTOL = 1e-3
#: Memory (bytes) for the per-energy arrays of one batch.
BATCH_BYTES = 64 * 2**20


@dataclass
class ForceOperators:
    """The force operators F_a (per spin) of one model at one Bloch vector.

    F_a = sum_e values[a, e] |rows[e]><cols[e]| on the extended region (device atoms in
    the system's internal z order, then the left and the right lead contacts: n_ext
    sites); coordinate a = 3 m + c for device atom m of the caller's order (as in
    ``system.positions``) and Cartesian component c. eV/A.
    """

    rows: np.ndarray
    cols: np.ndarray
    values: sp.csr_matrix
    n_ext: int

    def matrix(self, a: int) -> sp.csr_matrix:
        """F_a as a sparse n_ext x n_ext matrix (eV/A)."""
        v = self.values.getrow(a).toarray()[0]
        keep = v != 0
        return sp.csr_matrix((v[keep], (self.rows[keep], self.cols[keep])),
                             shape=(self.n_ext, self.n_ext))


def force_operators(system, model: str = "paper", ik: int = 0) -> ForceOperators:
    """The electron-ion coupling of ``model`` (module docstring) at Bloch vector index ik.

    Its expectation value, 2 tr[rho F_a] with the density matrix of Eq. 9, is the force of
    Eq. 4 (``paper``) or the Hellmann-Feynman force (``hellmann-feynman``) that
    ``system.forces`` returns.
    """
    w = onsite_weight(model)
    b, n, n_ext = system.ext_bonds, system.n_atoms, system.n_ext
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
        for atoms, sign, sel in ((b.i, 1.0, slice(None)), (b.j[dev], -1.0, dev)):
            coord = 3 * user[atoms] + comp
            r += [coord, coord, coord]
            c += [eij[sel], eji[sel], ed[(b.j if sign > 0 else b.i)[sel]]]
            v += [sign * gc[sel] * phase[sel], sign * gc[sel] * np.conj(phase[sel]),
                  sign * w * gc[sel] + 0j]
    values = sp.csr_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(c))),
                           shape=(3 * n, 2 * m + n_ext))
    values.sum_duplicates()
    return ForceOperators(rows, cols, values, n_ext)


@dataclass
class ExtendedSpectra:
    """Per energy (first axis) on the extended region: the retarded Green's function
    ``G`` and the spectral densities ``A[S]`` injected from lead S (1/eV)."""

    G: np.ndarray
    A: list


def extended_spectra(system, E, ik: int = 0) -> ExtendedSpectra:
    """G and A_S on the extended region (device in internal order, then the left and the
    right contacts) on the energies E, from the device Green's function of Eq. 6.

    With G_F the device block and g_S the leads' contact Green's functions, the scattering
    states from S are Psi_S = [G_F V_S^+ ; delta_tS + g_t V_t G_F V_S^+] (rows: device,
    contacts of lead t), A_S = Psi_S a_S Psi_S^+ with a_S = i(g_S - g_S^+), and the columns
    of G on S's contacts are Psi_S g_S; the device columns are [G_F ; g_t V_t G_F].
    """
    E = np.atleast_1d(np.asarray(E, dtype=float))
    n, ne = system.n_atoms, len(E)
    gs = [system._lead_gf(s, E, ik) for s in (0, 1)]
    Vs = system._V[ik]
    sigmas = [dagger(V) @ g @ V for V, g in zip(Vs, gs)]
    try:
        GF = system._M[ik].solve(E, sigmas, np.arange(n))
    except (RuntimeError, np.linalg.LinAlgError) as err:
        raise FloatingPointError(f"device Green's function is singular at an energy in "
                                 f"[{E.min()}, {E.max()}] eV: {err}") from None
    cs = [c.contacts for c in system.lead_contacts]
    bs = [c.boundary for c in system.lead_contacts]
    off = [n, n + len(cs[0])]
    G = np.zeros((ne, system.n_ext, system.n_ext), dtype=complex)
    G[:, :n, :n] = GF
    for t in (0, 1):
        rows = slice(off[t], off[t] + len(cs[t]))
        G[:, rows, :n] = gs[t] @ (Vs[t] @ GF[:, bs[t], :])
    A = []
    for s in (0, 1):
        cols = slice(off[s], off[s] + len(cs[s]))
        psi = np.zeros((ne, system.n_ext, len(cs[s])), dtype=complex)
        psi[:, :n] = GF[:, :, bs[s]] @ dagger(Vs[s])
        for t in (0, 1):
            rows = slice(off[t], off[t] + len(cs[t]))
            psi[:, rows] = gs[t] @ (Vs[t] @ (GF[:, bs[t]][:, :, bs[s]] @ dagger(Vs[s])))
        psi[:, cols] += np.eye(len(cs[s]))
        a = 1j * (gs[s] - dagger(gs[s]))
        G[:, :, cols] = psi @ gs[s]
        A.append(psi @ a @ dagger(psi))
    return ExtendedSpectra(G, A)


def energy_derivative(system, E, ik: int = 0, h: float = DERIV_STEP) -> np.ndarray:
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
    G = extended_spectra(system, (E[:, None] + offsets).ravel(), ik).G
    G = G.reshape(len(E), 2, *G.shape[1:])
    central = (G[:, 1] - G[:, 0]) / (2 * h)
    if not hit.any():
        return central
    G0 = extended_spectra(system, E[hit], ik).G
    one = side[hit][:, None, None] * (-3 * G0 + 4 * G[hit, 0] - G[hit, 1]) / (2 * h)
    central[hit] = one
    return central


def _traces(ops: ForceOperators, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """tr[X F_a Y F_b] for all coordinates a, b (energies x 3N x 3N); X, Y stacks over
    the energies of matrices on the extended region."""
    p, q, phi = ops.rows, ops.cols, ops.values
    # tr[X |p><q| Y |p'><q'|] = X[q', p] Y[q, p']: M[e, e'] = Y[q_e, p_e'] X[q_e', p_e]
    M = Y[:, q[:, None], p[None, :]] * np.swapaxes(X[:, q[:, None], p[None, :]], 1, 2)
    ne, m = M.shape[0], M.shape[1]
    left = phi @ np.moveaxis(M, 1, 0).reshape(m, ne * m)           # (3N, ne * m)
    left = left.reshape(-1, ne, m).transpose(1, 0, 2).reshape(-1, m)
    return (phi @ left.T).T.reshape(ne, phi.shape[0], phi.shape[0])


@dataclass
class ElectronicBath:
    """Adiabatic electronic bath of the device atoms at one bias (module docstring).

    Coordinates a = 3 m + c (device atom m in the caller's order, component c).
    ``friction``: symmetric part of gamma (eV ps/A^2); ``berry``: antisymmetric part
    (eV ps/A^2; -berry X' is the Berry, "magnetic" force); ``noise``: D, the covariance
    of the Langevin force per unit time (eV^2 ps/A^2); ``equilibrium``: the zero-bias
    friction at the same electron temperature (eV ps/A^2). ``bias`` (V), ``beta``,
    ``temperature`` (K, electrons), ``model``, ``n_energies`` energy points, ``error``
    the integrals' estimate (units of friction).
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

    @property
    def gamma(self) -> np.ndarray:
        """Full velocity kernel gamma = friction + berry (force -gamma X')."""
        return self.friction + self.berry

    def per_atom(self, tensor: np.ndarray) -> np.ndarray:
        """Diagonal 3 x 3 blocks of a 3N x 3N tensor: (N, 3, 3)."""
        n = tensor.shape[0] // 3
        t = tensor.reshape(n, 3, n, 3)
        return t[np.arange(n), :, np.arange(n), :]


def electronic_bath(system, bias: float, beta: float = 0.5, temperature: float = 300.0,
                    model: str = "paper", tol: float = DEFAULT_RTOL,
                    n_points: int | None = None) -> ElectronicBath:
    """Friction, Berry tensor and noise of the device atoms at bias V (module docstring).

    ``temperature`` is the electron temperature T_e (K). Energies are integrated with the
    bias window of the mean force (its Fermi tails at T_e > 0) adaptively to the accuracy
    ``tol`` relative to the largest zero-bias, T_e = 0 friction element (noise columns
    scaled by 2 k_B T_e + |V|), or with a fixed ``n_points`` rule per segment. At T_e = 0
    the equilibrium friction is the Fermi-surface value (-df/dE = delta(E - E_F)); at
    V = 0 and T_e = 0 the noise vanishes.
    """
    onsite_weight(model)
    quad.check_bias(bias, beta, temperature)
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    segments = quad.bias_window(system.fermi_level, bias, beta, temperature)
    system._check_window(segments)
    nk = len(system.kweights)
    ops = [force_operators(system, model, ik) for ik in range(nk)]
    N3 = 3 * system.n_atoms
    iu = np.triu_indices(N3)
    EF = system.fermi_level
    mu = quad.chemical_potentials(EF, bias if abs(bias) >= quad.TINY_BIAS else 0.0, beta)
    per_energy = 16 * (8 * system.n_ext ** 2 + 3 * len(ops[0].rows) ** 2)
    chunk = max(1, BATCH_BYTES // per_energy)

    def fermi_surface(E):
        out = np.zeros((len(E), N3, N3))
        for ik, wk in enumerate(system.kweights):
            A = sum(extended_spectra(system, E, ik).A)
            out += wk * _traces(ops[ik], A, A).real
        return 2.0 * HBAR / (4.0 * np.pi) * out

    scale = float(np.abs(np.diagonal(fermi_surface(np.array([EF]))[0])).max())
    scale = scale if scale > 0 else 1.0
    e_scale = 2.0 * quad.K_B * temperature + abs(bias)

    def rows(E):
        fL, fR = (quad.fermi(E, m, temperature) for m in mu)
        f0 = quad.fermi(E, EF, temperature)
        wL, wR = fL - f0, fR - f0
        eq, dgam, noise = (np.zeros((len(E), N3, N3)) for _ in range(3))
        for ik, wk in enumerate(system.kweights):
            sp_ = extended_spectra(system, E, ik)
            AL, AR = sp_.A
            LL, RR, LR = (_traces(ops[ik], X, Y).real for X, Y in
                          ((AL, AL), (AR, AR), (AL, AR)))
            cross = LR + np.swapaxes(LR, 1, 2)        # tr[A_L F A_R F] + tr[A_R F A_L F]
            if temperature > 0:
                d0 = (f0 * (1.0 - f0) / (quad.K_B * temperature))[:, None, None]
                eq += wk * d0 * (LL + RR + cross)
            c = (fL * (1 - fR) + fR * (1 - fL))[:, None, None]
            noise += wk * ((fL * (1 - fL))[:, None, None] * LL
                           + (fR * (1 - fR))[:, None, None] * RR + 0.5 * c * cross)
            move = (wL != 0) | (wR != 0)
            if move.any():
                rho = (wL[move, None, None] * AL[move] + wR[move, None, None] * AR[move])
                dG = energy_derivative(system, E[move], ik)
                dgam[move] += wk * _traces(ops[ik], rho, dG).imag
        eq *= HBAR / (2.0 * np.pi)
        dgam *= -2.0 * HBAR / np.pi
        noise *= HBAR / np.pi
        return np.hstack([eq[:, iu[0], iu[1]] / scale, dgam.reshape(len(E), -1) / scale,
                          noise[:, iu[0], iu[1]] / (scale * e_scale)])

    def func(E, seg):
        return system._map(lambda e: np.vstack([rows(e[i:i + chunk])
                                                for i in range(0, len(e), chunk)]), E)

    n_sym = len(iu[0])
    total, error, n_energies = np.zeros(2 * n_sym + N3 * N3), 0.0, 0
    for seg in segments:
        res = seg.integrate(func, n_points, tol / len(segments), system._kinks())
        total, error = total + res.value, error + res.error
        n_energies += res.n_evals

    def sym(vec):
        out = np.zeros((N3, N3))
        out[iu] = vec
        return out + np.triu(out, 1).T

    if temperature == 0.0:
        equilibrium = fermi_surface(np.array([EF]))[0]
        n_energies += 1
    else:
        equilibrium = sym(total[:n_sym]) * scale
    gamma = equilibrium + total[n_sym:n_sym + N3 * N3].reshape(N3, N3) * scale
    noise = sym(total[n_sym + N3 * N3:]) * scale * e_scale
    return ElectronicBath(0.5 * (gamma + gamma.T), 0.5 * (gamma - gamma.T), noise,
                          0.5 * (equilibrium + equilibrium.T), float(bias), beta,
                          temperature, model, n_energies, error * scale)


@dataclass
class EffectiveTemperature:
    """Effective electronic temperatures of a bath (K).

    ``modes``: T_eff of the friction's eigenmodes with nonzero friction,
    D v = 2 k_B T gamma_s v (generalized eigenvalues, ascending), ``vectors`` their
    columns (3N x modes), ``overall``: the kinetic temperature the free atoms (equal
    masses, no potential) would reach under the full gamma and D, from
    gamma K + K gamma^T = D, T = tr K / (modes k_B), on the same subspace; NaN if the
    friction there is not positive definite (negative friction: runaway).
    """

    modes: np.ndarray
    vectors: np.ndarray
    overall: float


def effective_temperature(bath: ElectronicBath, rcond: float = 1e-8
                          ) -> EffectiveTemperature:
    """Per-mode and overall effective temperature (noise over twice the friction)."""
    from scipy.linalg import eigh, solve_continuous_lyapunov
    lam, U = np.linalg.eigh(bath.friction)
    keep = np.abs(lam) > rcond * np.abs(lam).max(initial=0.0)
    if not keep.any():
        return EffectiveTemperature(np.zeros(0), np.zeros((len(lam), 0)), float("nan"))
    P = U[:, keep]
    g, D = P.T @ bath.friction @ P, P.T @ bath.noise @ P
    if np.all(lam[keep] > 0):
        t, v = eigh(D, 2.0 * quad.K_B * g)
        K = solve_continuous_lyapunov(P.T @ bath.gamma @ P, D)
        overall = float(np.trace(K) / (len(g) * quad.K_B))
    else:
        t, v = np.linalg.eig(np.linalg.solve(2.0 * quad.K_B * g, D))
        order = np.argsort(t.real)
        t, v, overall = t.real[order], v.real[:, order], float("nan")
    return EffectiveTemperature(t, P @ v, overall)
