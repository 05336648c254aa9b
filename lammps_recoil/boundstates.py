"""Device states that no open lead channel broadens (bound states in and near the window).

Eq. 9 builds the density matrix from scattering states incident from the leads. A state of
the device (with its self-energies) that no open channel reaches -- a bound state in the
continuum held by a symmetry, or a state in a subband gap of a lead -- is not one of them:
it is a real pole E_b of the retarded Green's function with a norm-one eigenvector psi,

.. math::

    [E_b - H_F - \\Lambda(E_b)]\\,\\psi = 0,\\qquad \\Gamma(E_b)\\,\\psi = 0,

where Sigma = Lambda - i Gamma / 2. Between exact leads (every lead type at eta = 0, the
default) the pole stays real and of zero width: G Gamma_S G^+ stays bounded through it
(psi^+ Gamma_S(E) psi vanishes as (E - E_b)^2), the state adds nothing to Eq. 9, and E_b
need only be an end of the integration intervals, so that no node falls on the pole. A
numerical broadening eta of the leads (decimation's E + i eta) or of the device moves the
pole to E_b - i gamma / 2 with gamma ~ eta, and the injected densities G Gamma_S G^+ then
carry a Lorentzian of full weight,

.. math::

    G\\,\\Gamma_S\\,G^\\dagger \\simeq \\hat P\\,\\frac{\\gamma_S}{(E - E_b)^2 + \\gamma^2/4},
    \\qquad \\hat P = \\frac{\\psi\\psi^\\dagger}{N},\\quad
    N = \\psi^\\dagger [1 - \\Lambda'(E_b)]\\,\\psi,

split between the leads as gamma_S / gamma (gamma_S = psi^+ Gamma_S psi / N) -- a number
set by how eta enters each lead, not by physics. The package takes eta -> 0 before the
energy integral: the Lorentzian (and with it its tails) is subtracted from the integrand
(:class:`PoleTerms`), and E_b is an interval end as well. ``N`` includes the tails in the
leads, and psi extends over the lead contact atoms (psi_t = g_t V_t psi on lead t's
contacts), as the densities of Eq. 9 do. What is left of the state is of order eta: an odd
term ~ eta / (E - E_b) (the energy dependence of gamma_S and the state's cross terms with
the rest of the density), which integrates to order eta.

States are found as fixed points E = Re lambda(E) of the eigenvalues lambda(E) of the
effective Hamiltonian H_F + Sigma(E) (dense): on a scan over the window each nearly real
eigenvalue predicts its fixed point by one Newton step with lambda'(E) = l^T Sigma'(E) r
(left and right eigenvectors; lambda' is large and negative for a state with long tails
in the leads), is refined by secant steps from the scan energy it belongs to, and a
converged state is unbroadened when its width gamma is at most ``BOUND_WIDTH_FACTOR``
times the largest numerical eta (plus ``BOUND_WIDTH_FLOOR``): an open channel broadens a
state by far more, an eta by at most 2 eta.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scipy.linalg import eigh

from .greens import self_energy, sqrtm_psd, to_dense
from .leads import WireLead

#: Spacing (eV) of the scan energies at which H_F + Sigma(E) is diagonalized.
SCAN_STEP = 0.05
#: The scan also samples each lead channel edge at these distances (eV) on both sides.
EDGE_OFFSETS = np.array([1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 2.5e-2])
#: States this far (eV) outside the integration window are found too (their tails reach in).
MARGIN = 0.05
#: Eigenvalues with |Im lambda| up to this (eV) at a scan energy are refined.
CANDIDATE_WIDTH = 0.02
#: A state is unbroadened when gamma <= BOUND_WIDTH_FACTOR * eta + BOUND_WIDTH_FLOOR (eV),
#: eta the largest numerical broadening of the leads and the device (an eta broadens a
#: state by at most 2 eta: its weight in the device and the lead tails sums to one).
BOUND_WIDTH_FACTOR = 4.0
BOUND_WIDTH_FLOOR = 1e-10
#: Leads with a broadening above this (eV) are lossy models (the laterally infinite lead's
#: k-mesh smoothing, 0.01 eV by default): every state has a width of at least their eta,
#: so no state is unbroadened and none is looked for.
MAX_NUMERICAL_ETA = 1e-6
#: A refined eigenvalue is dropped as a broadened resonance once |Im lambda| exceeds
#: REJECT_CURVATURE * (Re lambda - E)^2 + REJECT_WIDTH * (1 - lambda') (1/eV, eV): the
#: width of an unbroadened state vanishes quadratically at its energy (its width in
#: energy is |Im lambda| / (1 - lambda'), and lambda' is large and negative for a state
#: with long tails in the leads).
REJECT_CURVATURE = 1e3
REJECT_WIDTH = 1e-6
#: Secant refinement: converged when |E - Re lambda(E)| or the secant step is below this
#: (eV; the step, where the tails are long and Re lambda(E) - E is steep and noisy).
ENERGY_TOL = 1e-12
MAX_STEPS = 40
#: Finite-difference step (eV) for lambda'(E) and Lambda'(E_b) in the norm N; at most a
#: tenth of the distance to the nearest channel edge (Sigma is not smooth across one).
DERIVATIVE_STEP = 1e-5


@dataclass(frozen=True)
class BoundState:
    """An unbroadened state of the device at one Bloch vector.

    ``energy``: E_b (eV); ``width``: its width gamma from the numerical broadenings
    (eV, removed from the integrals); ``lead_widths``: gamma_L, gamma_R (eV);
    ``psi``: amplitudes on the extended region (device in internal order, then each
    lead's contacts), normalized with the lead tails (psi^+ [1 - Lambda'] psi = 1 on the
    device); ``device_weight``: its weight on each device atom (internal order; sums to
    1 minus the tails); ``lead_weights``: the weight of its tails in the left and right
    lead (which leads it touches); ``ik``: the Bloch vector index; ``lead_amplitudes``:
    a_S^1/2 V_S psi on each lead's contacts (gamma_S = |u_S|^2; states of one energy
    couple through u_Sa^+ u_Sb).
    """

    energy: float
    width: float
    lead_widths: tuple
    psi: np.ndarray
    device_weight: np.ndarray
    lead_weights: tuple
    ik: int = 0
    lead_amplitudes: tuple = ()


class PoleTerms:
    r"""The eta-Lorentzians of unbroadened states at one Bloch vector, as the integrand
    of Eq. 9 accumulates them. For states a, b of one energy E_b (b = a for a lone state)

    .. math::

        G\Gamma_S G^\dagger \supset \sum_{ab} \psi_a \psi_b^\dagger
        \frac{\gamma_{S,ab}}{(E - E_b + i\gamma_a/2)(E - E_b - i\gamma_b/2)},

    gamma_S,ab = u_Sa^+ u_Sb; on the extended bonds as Re(e^{-ik.d} ...) (as the integrand
    has them) and on the sites; in the Caroli trace sum_ab gamma_L,ab^* gamma_R,ab (...)."""

    def __init__(self, states, bond_i, bond_j, phase):
        psi = np.array([s.psi for s in states])                       # states x extended
        E = np.array([s.energy for s in states])
        a, b = np.nonzero(np.abs(E[:, None] - E[None, :]) < 1e-8)     # pairs of one energy
        self.a, self.b, self.energy = a, b, E
        self.width = np.array([s.width for s in states])
        self.lead = np.array([[np.vdot(states[i].lead_amplitudes[s],
                                       states[j].lead_amplitudes[s]) for i, j in zip(a, b)]
                              for s in (0, 1)])                      # gamma_S,ab
        self.bond = phase * psi[a][:, bond_i] * psi[b][:, bond_j].conj()   # pairs x bonds
        self.site = psi[a] * psi[b].conj()

    def _poles(self, E):
        """1 / ((E - E_b + i gamma_a/2)(E - E_b - i gamma_b/2)), energies x pairs."""
        d = np.asarray(E)[:, None] - self.energy[self.a]
        return 1.0 / ((d + 0.5j * self.width[self.a]) * (d - 0.5j * self.width[self.b]))

    def densities(self, E, lead: int):
        """The Lorentzians in the bond and site densities from lead S (energies x bonds,
        complex: the real part enters the forces, the imaginary one the bond currents;
        energies x extended sites, real)."""
        c = self.lead[lead] * self._poles(E)
        return c @ self.bond, (c @ self.site).real

    def transmission(self, E) -> np.ndarray:
        """The Lorentzians in T(E)."""
        return (self._poles(E) @ (self.lead[0].conj() * self.lead[1])).real


def numerical_eta(system) -> float:
    """Largest numerical broadening (eV) of the system's leads and device."""
    return max([system.eta] + [float(getattr(lead, "eta", 0.0)) for lead in system.leads])


def looked_for(system) -> bool:
    """Whether ``unbroadened="auto"`` looks for the states: where a lead or the device has a
    broadening eta > 0 (their Lorentzians are removed), and where a lead is a wire (few
    channels and subband gaps make such states common; an exact lead leaves each a real
    pole, which must be an end of the integration intervals). Not for lossless periodic
    and chain leads, where a state carries no weight and the search costs ten times the
    forces (docs/performance.md); a node that hits one is cut there
    (:meth:`~lammps_recoil.system.RecoilSystem.forces`)."""
    return numerical_eta(system) > 0.0 or any(isinstance(lead, WireLead)
                                              for lead in system.leads)


def effective_hamiltonian(system, E: np.ndarray, ik: int) -> np.ndarray:
    """H_F + Sigma_L(E) + Sigma_R(E) (+ i eta of the device absorbed as -i eta) on the
    device atoms in internal order, a dense stack over the energies E."""
    H = to_dense(system._H[ik]).astype(complex)
    out = np.broadcast_to(H, (len(E),) + H.shape).copy()
    for s, c in enumerate(system.lead_contacts):
        sigma = self_energy(system._V[ik][s], system._lead_gf(s, E, ik))
        out[:, c.boundary[:, None], c.boundary[None, :]] += sigma
    if system.eta:
        out -= 1j * system.eta * np.eye(len(H))
    return out


def find_bound_states(system, lo: float, hi: float, ik: int = 0) -> list[BoundState]:
    """Unbroadened states with E_b in [lo - MARGIN, hi + MARGIN] at Bloch vector ik.

    Empty when a lead's broadening exceeds MAX_NUMERICAL_ETA (lossy leads broaden every
    state). The scan covers the interval on a grid of spacing at most SCAN_STEP.
    """
    eta = numerical_eta(system)
    if eta > MAX_NUMERICAL_ETA or system.n_atoms == 0:
        return []
    lo, hi = lo - MARGIN, hi + MARGIN
    band_lo, band_hi = system.band_edges
    lo, hi = max(lo, band_lo), min(hi, band_hi)
    if hi <= lo:
        return []
    scan = np.linspace(lo, hi, int(np.ceil((hi - lo) / SCAN_STEP)) + 1)
    # near a channel edge the tails' decay length diverges and lambda(E) moves fast: the
    # scan closes in on every edge geometrically
    edges = system._kinks()
    near_edges = (edges[:, None] + np.concatenate([EDGE_OFFSETS, -EDGE_OFFSETS])).ravel()
    scan = np.unique(np.concatenate([scan, near_edges[(near_edges > lo) & (near_edges < hi)]]))
    mid = 0.5 * (scan[1:] + scan[:-1])
    cell_lo = np.concatenate([[lo], mid])
    cell_hi = np.concatenate([mid, [hi]])
    h = _derivative_step(system, scan)
    M = effective_hamiltonian(system, np.concatenate([scan, scan - h, scan + h]), ik)
    n = len(scan)
    lam, R = np.linalg.eig(M[:n])
    # lambda'(E) = (R^-1 Sigma' R)_kk: first-order change of each eigenvalue
    dM = (M[2 * n:] - M[n:2 * n]) / (2 * h[:, None, None])
    slope = np.einsum("eki,eij,ejk->ek", np.linalg.inv(R), dM, R).real
    found = []
    for E0, a, b, vals, dl in zip(scan, cell_lo, cell_hi, lam, slope):
        with np.errstate(divide="ignore", invalid="ignore"):
            guess = E0 + (vals.real - E0) / (1.0 - dl)         # Newton step to E = lambda(E)
        pad = 0.5 * (b - a)
        near = (np.abs(vals.imag) <= CANDIDATE_WIDTH) & (guess >= a - pad) & (guess <= b + pad)
        for start, d in zip(guess[near], dl[near]):
            E = _refine(system, float(start), ik, float(d))
            if E is not None and lo <= E <= hi and not any(abs(E - f) < 1e-8 for f in found):
                found.append(E)
    threshold = BOUND_WIDTH_FACTOR * eta + BOUND_WIDTH_FLOOR
    states = []
    for E in sorted(found):
        states += [s for s in _states_at(system, E, ik) if s.width <= threshold]
    return states


def _derivative_step(system, E: np.ndarray) -> np.ndarray:
    """DERIVATIVE_STEP, or a tenth of the distance of each energy to the nearest channel
    edge (at least 1e-12 eV)."""
    edges = system._kinks()
    if not edges.size:
        return np.full(len(E), DERIVATIVE_STEP)
    d = np.abs(E[:, None] - edges[None, :]).min(axis=1)
    return np.clip(0.1 * d, 1e-12, DERIVATIVE_STEP)


def _nearest_eigenvalue(system, E: float, target: complex, ik: int) -> complex:
    vals = np.linalg.eigvals(effective_hamiltonian(system, np.array([E]), ik)[0])
    return vals[np.argmin(np.abs(vals - target))]


def _refine(system, E: float, ik: int, slope: float = 0.0) -> float | None:
    """Fixed point E = Re lambda(E) of the eigenvalue followed from E, by secant steps on
    f(E) = Re lambda(E) - E, the first a Newton step with lambda' = ``slope`` (None if it
    does not converge)."""
    lam = _nearest_eigenvalue(system, E, E, ik)
    x0, f0 = E, lam.real - E
    x1 = E + f0 / (1.0 - slope) if slope < 1.0 else lam.real
    for _ in range(MAX_STEPS):
        lam = _nearest_eigenvalue(system, x1, lam, ik)
        f1 = lam.real - x1
        if abs(f1) < ENERGY_TOL:
            return x1
        if f1 == f0:
            return None
        stretch = (f0 - f1) / (x1 - x0)                      # 1 - lambda'
        # an unbroadened state's width closes quadratically in the distance to E_b, a
        # resonance's stays: give up on it once that is plain
        if abs(lam.imag) > REJECT_CURVATURE * f1 ** 2 + REJECT_WIDTH * max(1.0, stretch):
            return None
        step = f1 / stretch
        if abs(step) < ENERGY_TOL:
            return x1
        x0, x1, f0 = x1, x1 + step, f1
        if not np.isfinite(x1):
            return None
    return None


def _states_at(system, E: float, ik: int) -> list[BoundState]:
    """The states with eigenvalue lambda(E) = E (within 1e-8 eV: a degenerate group too),
    normalized with their lead tails, and their widths.

    A group of k states is made orthonormal in the norm N_ab = psi_a^+ (1 - Lambda') psi_b
    and diagonal in its width matrix, W c = gamma N c (a generalized Hermitian eigenproblem),
    so that each state has one pole; the leads' width matrices keep their off-diagonal
    parts, which the states' ``lead_amplitudes`` carry (gamma_S,ab = u_Sa^+ u_Sb)."""
    vals, vecs = np.linalg.eig(effective_hamiltonian(system, np.array([E]), ik)[0])
    pick = np.flatnonzero(np.abs(vals.real - E) < 1e-8)
    if not pick.size:
        return []
    B = np.linalg.qr(vecs[:, pick])[0]          # orthonormal, if (nearly) degenerate
    h = float(_derivative_step(system, np.array([E]))[0])
    energies = np.array([E - h, E, E + h])
    N = B.conj().T @ B
    W = 2.0 * system.eta * N
    tails, half, amps = [], [], []
    for s, c in enumerate(system.lead_contacts):
        g = system._lead_gf(s, energies, ik)
        V = system._V[ik][s]
        sig = self_energy(V, g)
        d = (sig[2] - sig[0]) / (2.0 * h)                     # Sigma_S'(E_b)
        Bb = B[c.boundary]
        # the tail in lead S: -psi^+ Lambda_S' psi (the Hermitian part of Sigma_S')
        tail = -(Bb.conj().T @ (0.5 * (d + d.conj().T)) @ Bb)
        root = sqrtm_psd(1j * (g[1] - g[1].conj().T)) @ (V @ Bb)   # a_S^1/2 V_S psi
        N, W = N + tail, W + root.conj().T @ root
        tails.append(tail)
        half.append(root)
        amps.append(g[1] @ (V @ Bb))                          # psi on S's contacts
    N, W = 0.5 * (N + N.conj().T), 0.5 * (W + W.conj().T)
    if not np.all(np.linalg.eigvalsh(N) > 0):
        return []
    widths, C = eigh(W, N)                                    # C^+ N C = 1
    device = B @ C
    states = []
    for a in range(len(widths)):
        c = C[:, a]
        states.append(BoundState(
            energy=E, width=float(widths[a]),
            lead_widths=tuple(float(np.vdot(u @ c, u @ c).real) for u in half),
            psi=np.concatenate([device[:, a]] + [m @ c for m in amps]),
            device_weight=np.abs(device[:, a]) ** 2,
            lead_weights=tuple(float(np.real(c.conj() @ t @ c)) for t in tails), ik=ik,
            lead_amplitudes=tuple(u @ c for u in half)))
    return states
