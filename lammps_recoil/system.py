"""The public entry point: a device between two leads, built once and solved many times.

    >>> system = RecoilSystem(device_positions, left_lead, right_lead, box=(Lx, Ly))
    >>> system.transmission([0.0, 0.5])        # Caroli T(E), Eq. 7
    >>> result = system.forces(bias=1.0)       # renormalized recoil forces, Eq. 10
    >>> system.update(new_positions)           # same atoms moved: leads are reused

Building validates the geometry (finite coordinates, no overlaps, every device atom
connected to a lead, nothing reaching past the lead blocks: :mod:`lammps_recoil.device`)
and sets up the tight-binding Hamiltonian and the device-lead couplings; the density
matrix of Eq. 9 becomes forces by Eq. 4 in :mod:`lammps_recoil.forces`. Lead Green's functions are cached per energy,
so repeated evaluations on the same energy grid (an MD run) only redo the device part.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import scipy.sparse as sp

from . import integration as quad
from .bondcurrent import BondCurrents, window_currents
from .boundstates import BoundState, PoleTerms, find_bound_states, looked_for, numerical_eta
from .device import device_topology, lead_neighbors
from .forces import BondForces, onsite_weight, require_finite
from .geometry import check_box, check_positions
from .greens import (SCHUR_MAX, DeviceMatrix, Scattering, bond_density, open_columns,
                     self_energy, spectral_factor, to_dense)
from .hamiltonian import HoppingModel, hamiltonian
from .leads import CACHE_BYTES, EnergyCache
from .parallel import blas_threads, openblas_pools, threaded_pools
from .rgf import SlabBonds, slab_partition

#: Conductance quantum G0 = 2 e^2 / h (siemens).
G0_SIEMENS = 7.748091729e-5
#: Flat lead bands closer than this to an energy window are rejected (eV).
FLAT_MARGIN = 0.02
#: Memory (bytes) for the arrays of one batch of energies solved together.
BATCH_BYTES = 64 * 2**20
#: A device Green's function with an element above this (1/eV) is singular: a node within
#: about 1e-10 eV of a real pole, where the LU's round-off has taken over.
G_SINGULAR = 1e10
#: RecoilSystem's precision settings (its docstring).
PRECISIONS = ("mixed", "double")
#: With precision "mixed", the forces' integrals to a tolerance below this (eV/A) solve in
#: double (RecoilSystem._single).
SINGLE_TOL = 1e-4
#: T(E_F) on a real pole exactly at E_F is the mean of T at E_F +- this (eV).
POLE_STEP = 1e-7
#: Most energies at which one energy integral may find G_F singular and be redone.
MAX_SINGULAR = 8


class SingularEnergy(FloatingPointError):
    """G_F(E)^-1 is singular at ``energy`` (eV), exactly or to round-off: a real pole of the
    device Green's function, a state that no lead channel broadens between exact leads."""

    def __init__(self, message: str, energy: float):
        super().__init__(message)
        self.energy = energy


@dataclass
class RecoilResult:
    """Renormalized (or full) recoil forces and what came with them.

    ``forces``: (N, 3) eV/A on the device atoms; ``conductance``: Landauer G/G0 at the
    bias (Eq. 11; at zero bias T(E_F) at T = 0, the -df/dE average of T at T > 0);
    ``fermi_transmission``: T(E_F), the zero-bias conductance G/G0 of the same geometry
    at T = 0 (solved with the first batch); ``density``: change of the electron count
    per atom (spin included) from the integrated window; ``n_energies``: energy points
    used; ``error``: the adaptive integral's error estimate (NaN for fixed rules); ``at_lead``:
    device atoms bonded to lead atoms (their environment includes the idealized frozen
    lead); ``timings``: seconds spent in lead Green's functions, device solves (including
    the density matrix) and force contraction; ``unbroadened``: the states in and near
    the window that no open lead channel broadens (:class:`~lammps_recoil.boundstates.
    BoundState`, device atoms in the caller's order), removed from the integrals;
    ``channels``: the transmission eigenvalues at E_F, largest first (solved with
    T(E_F); for an n x n grid of Bloch vectors those of the n x n supercell, which add up
    to n^2 T(E_F)); ``bond_currents``: the currents on the device's bonds
    (:class:`~lammps_recoil.bondcurrent.BondCurrents`) when asked for, else None.
    """

    forces: np.ndarray
    conductance: float
    fermi_transmission: float
    density: np.ndarray
    bias: float
    beta: float
    temperature: float
    n_energies: int
    error: float
    at_lead: np.ndarray
    timings: dict = field(default_factory=dict)
    unbroadened: tuple = ()
    channels: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bond_currents: BondCurrents | None = None

    @property
    def total(self) -> np.ndarray:
        """Sum of the forces on all device atoms (eV/A)."""
        return self.forces.sum(axis=0)

    @property
    def current(self) -> float:
        """Landauer current I = G(V) V (microamperes, Eq. 11 times G0 V; the sign of V)."""
        return current_microamperes(self.conductance, self.bias)

    @property
    def n_unbroadened(self) -> int:
        """Number of unbroadened states found in and near the window (0 also where none
        were looked for: see ``unbroadened`` of :meth:`RecoilSystem.forces`)."""
        return len(self.unbroadened)

    @property
    def max_norm(self) -> float:
        """Largest per-atom force magnitude (eV/A)."""
        return float(np.linalg.norm(self.forces, axis=1).max(initial=0.0))


def _within(a: np.ndarray, bound: float) -> bool:
    """Whether every element of the real array ``a`` lies in [-bound, bound] (False for a
    NaN)."""
    return not a.size or bool(a.max() <= bound and -a.min() <= bound)


def _singular(E: float, why) -> str:
    return (f"device Green's function is singular at E = {float(E)!r} eV (a real pole: a "
            f"state of the device that no lead channel broadens): {why}")


def current_microamperes(conductance: float, bias: float) -> float:
    """I = (G/G0) G0 V in microamperes for a conductance G/G0 at bias V (volts)."""
    return float(conductance) * G0_SIEMENS * float(bias) * 1e6


def bloch_vectors(box, kpoints) -> tuple[np.ndarray, np.ndarray]:
    """Gamma-centred grid of transverse Bloch vectors of the periodic box, equal weights.

    An (n, m) grid is exactly equivalent to an n x m supercell of the box at Gamma.
    """
    n = np.broadcast_to(np.asarray(kpoints, dtype=int), (2,))
    if np.any(n < 1):
        raise ValueError(f"k-point grid must be positive, got {kpoints}")
    if box is None:
        if np.any(n != 1):
            raise ValueError("k-point sampling needs a periodic box")
        return np.zeros((1, 2)), np.ones(1)
    fx, fy = np.meshgrid(np.arange(n[0]) / n[0], np.arange(n[1]) / n[1], indexing="ij")
    k = np.stack([fx.ravel() * 2 * np.pi / box[0], fy.ravel() * 2 * np.pi / box[1]], axis=1)
    return k, np.full(len(k), 1.0 / len(k))


class RecoilSystem:
    """Device atoms between a left and a right lead (see module docstring).

    Parameters
    ----------
    positions : (N, 3) array
        Device atoms (A): the filament and any mobile electrode atoms, in any order
        (results come back in this order; internally they are sorted along z).
    left, right : LayeredLead or WireLead
        The leads, holding their own surface-block atoms.
    hopping : HoppingModel, optional
        Defaults to the left lead's hopping model.
    box : (Lx, Ly), optional
        Periodic box in x, y; must be the leads' box.
    kpoints : int or (int, int)
        Gamma-centred grid of transverse Bloch vectors for a periodic device (1 = Gamma);
        (n, m) is equivalent to an n x m supercell.
    fermi_level : float, optional
        E_F (eV). Default: the bulk Fermi level of the left lead at one electron per atom.
    eta : float
        Broadening added to the device Green's function (eV); 0 by default (the leads
        provide the broadening; a device eta acts as an absorber).
    onsite : float or (N,) array
        On-site energies of the device atoms (eV); 0 in the paper's Cu model.
    comm : mpi4py communicator, optional
        Energy points are shared among its ranks (all ranks must make the same calls);
        results do not depend on the number of ranks.
    require_contact : bool
        True (default): the device must be bonded to both leads when the system is built.
        False: a device already detached from a lead (a filament ruptured during MD, whose
        system is rebuilt) is accepted: T = 0, and the lead it touches alone injects.
    ids : (N,) array, optional
        Labels of the device atoms in error messages (e.g. LAMMPS atom IDs), as in
        :meth:`update`.
    precision : {"mixed", "double"}
        "mixed" (default): the forces' energy integrand solves the recursive Green's
        function of devices above SCHUR_MAX atoms in single precision (complex64: its
        products at twice the rate), where :meth:`_single` allows it; energies near a pole
        of G_F, and everything else, in double. Forces differed from "double" by at
        most 2e-6 eV/A along 300 K MD (measured: docs/large.md). "double": all in double
        precision (for finite differences of the forces, or a state that no lead reaches
        in the window).
    """

    def __init__(self, positions, left, right, hopping: HoppingModel | None = None,
                 box=None, kpoints=1, fermi_level: float | None = None, eta: float = 0.0,
                 onsite=None, comm=None, require_contact: bool = True, ids=None,
                 precision: str = "mixed"):
        if left.side != "left" or right.side != "right":
            raise ValueError("pass the left lead first and the right lead second")
        self.leads = (left, right)
        self.hopping = hopping or left.hopping
        self.box = check_box(box)
        for lead in self.leads:
            if (lead.box is None) != (self.box is None) or (
                    self.box is not None and not np.allclose(lead.box, self.box)):
                raise ValueError(f"the {lead.side} lead's periodic box {lead.box} differs "
                                 f"from the device box {self.box}")
        self.kpoints, self.kweights = bloch_vectors(self.box, kpoints)
        self._neighbors = lead_neighbors(left, right, self.hopping, self.box)
        self._partitions = {}
        self._factors = {}             # (lead, Bloch vector) -> (contacts, EnergyCache)
        self.eta = quad.real_number(eta, "eta (the device's broadening, eV)")
        if not (np.isfinite(self.eta) and self.eta >= 0.0):
            raise ValueError(f"eta (the device's broadening, eV) must be >= 0, got {eta}: a "
                             "negative eta makes the device emit electrons instead of "
                             "absorbing them")
        self.onsite = onsite
        self.comm = comm
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        if fermi_level is None:
            fermi_level = left.fermi_level()
        self.fermi_level = quad.real_number(fermi_level, "fermi_level (eV)")
        if not np.isfinite(self.fermi_level):
            raise ValueError(f"fermi_level must be a finite energy in eV, got {fermi_level}")
        self._band = self._edges = self._flat = None
        self.positions = None
        self._require_contact = bool(require_contact)
        self.update(positions, ids)

    # ----------------------------------------------------------------- building
    @property
    def band_edges(self) -> tuple[float, float]:
        """Bulk band bottom E_0 and top (eV) of the left lead."""
        if self._band is None:
            self._band = self.leads[0].band_edges()
        return self._band

    def update(self, positions, ids=None) -> None:
        """Rebuild Hamiltonian and couplings for new positions of the device atoms.

        ``ids`` (optional) are the atoms' labels in error messages, e.g. LAMMPS atom IDs.
        Internally the atoms are ordered along z, which makes the sparse factorization of
        G_F^-1 banded (block tridiagonal) and its cost linear in the filament length;
        results come back in the caller's order. The device must be built in contact with
        both leads; later it may lose one (a ruptured filament): T = 0, and the recoil
        forces come from the lead it still touches.
        """
        user = check_positions(positions, "device", ids)
        n = len(user)
        if n == 0:
            raise ValueError("the device is empty: no atoms between the leads")
        if self.positions is not None and n != len(self.positions):
            raise ValueError(f"update moves the same {len(self.positions)} device atoms, got "
                             f"{n} positions: build a new RecoilSystem for another set of "
                             "atoms")
        self.ids = np.arange(n) if ids is None else np.asarray(ids)
        if len(self.ids) != n:
            raise ValueError(f"{len(self.ids)} atom ids for {n} device atoms")
        if self.onsite is not None:
            values = np.asarray(self.onsite)
            if values.ndim > 1 or values.size not in (1, n) or values.dtype.kind not in "iuf":
                raise ValueError(f"onsite energies (eV): one real number or one per device "
                                 f"atom ({n}), got {values.size} of type {values.dtype}")
            if not np.all(np.isfinite(values)):
                bad = self.ids[np.flatnonzero(~np.isfinite(np.broadcast_to(values, (n,))))]
                raise ValueError(f"onsite energies (eV) must be finite: not for atoms "
                                 f"{bad[:10].tolist()}")
        topo = device_topology(user, self._neighbors, self.leads, self.hopping, self.box,
                               self.ids, self.names, need_both=self.positions is None
                               and self._require_contact)
        self._order, self.n_ext = topo.order, topo.n_ext
        self.device_bonds, self.ext_bonds = topo.device_bonds, topo.ext_bonds
        self.lead_contacts = lead_contacts = topo.lead_contacts
        self.at_lead = self._to_user(topo.at_lead)
        self.positions = user
        onsite = None if self.onsite is None else \
            np.broadcast_to(self.onsite, (n,))[self._order]
        self._H = [hamiltonian(self.device_bonds, n, k, onsite, dense=n <= SCHUR_MAX)
                   for k in self.kpoints]
        self._V = [[c.matrix(k) for c in lead_contacts] for k in self.kpoints]
        # large devices: V_S (a few bonds per boundary atom) as sparse matrices in the solve
        self._V_solve = [[sp.csr_matrix(V) for V in Vk] if n > SCHUR_MAX else Vk
                         for Vk in self._V]
        self._M = [DeviceMatrix(H, lead_contacts, self.eta) for H in self._H]
        self._bond_forces = BondForces(self.ext_bonds, n, self.n_ext)
        b, boundary = self.ext_bonds, max(len(c.boundary) for c in lead_contacts)
        # above SCHUR_MAX atoms the integrand solves for the scattering states (small
        # devices: G_F's boundary columns, which cost less than the channels' bookkeeping)
        self._states = n > SCHUR_MAX
        if n <= SCHUR_MAX:           # bond densities from rows gathered per bond
            self._bond_density = partial(bond_density, b.i, b.j)
            gathered = 2 * len(b) * boundary
        else:                        # from products of slab blocks
            dev = b.j < n
            rows = np.concatenate([b.i[dev], b.j[dev]])
            cols = np.concatenate([b.j[dev], b.i[dev]])
            bounds = slab_partition(n, rows, cols, *(c.boundary for c in lead_contacts))
            self._bond_density = SlabBonds(bounds, b.i, b.j, n)
            gathered = 0
        # energies per batch: dense device matrices and density factors within BATCH_BYTES
        per_energy = 16 * ((n * n if n <= SCHUR_MAX else 0) + sum(
            3 * len(c.contacts) ** 2 + 4 * self.n_ext * len(c.boundary) for c in lead_contacts)
            + gathered)
        self._batch = max(1, BATCH_BYTES // per_energy)

    def names(self, idx) -> str:
        """Labels (ids) of device atoms for messages, at most ten."""
        idx = np.asarray(idx)
        return f"{self.ids[idx[:10]].tolist()}{' ...' if idx.size > 10 else ''}"

    def _to_user(self, values: np.ndarray) -> np.ndarray:
        """Per-atom values from the internal z order back to the caller's order."""
        out = np.empty_like(values)
        out[self._order] = values
        return out

    @property
    def n_atoms(self) -> int:
        return len(self.positions)

    # ----------------------------------------------------------------- solving
    def _lead_gf(self, s: int, E, ik: int) -> np.ndarray:
        """Lead s Green's function on its contact atoms (one energy or a stack)."""
        k = self.kpoints[ik] if self.box is not None else None
        return self.leads[s].surface_gf(E, k, self.lead_contacts[s].contacts)

    def _spectral(self, s: int, E: np.ndarray, ik: int, g: np.ndarray) -> np.ndarray:
        """Lead s's spectral function on its contacts in factors, a_S = w_S w_S^+
        (:func:`~lammps_recoil.greens.spectral_factor`, ``g``: its Green's function on E),
        cut to the open channels; computed once per energy while the contact atoms stay
        (the leads never move)."""
        contacts = self.lead_contacts[s].contacts
        if not len(contacts):              # detached from the lead: no channel reaches it
            return np.zeros((len(E), 0, 0), dtype=complex)
        held = self._factors.get((s, ik))
        if held is None or not np.array_equal(held[0], contacts):
            held = self._factors[s, ik] = (contacts, EnergyCache(
                CACHE_BYTES // (2 * len(self.kpoints))))
        row = {e: m for m, e in enumerate(E)}
        slot = held[1].slots(E, lambda new: spectral_factor(g[[row[e] for e in new]]))
        return open_columns(held[1].values.take(slot, axis=0))

    def scattering(self, E, ik: int = 0, sources=(0, 1), gs=None,
                   states: bool = False, single: bool = False) -> Scattering:
        """Solve the device problem on energies E (eV) at Bloch vector index ik (``gs``:
        the leads' contact Green's functions on E, if already at hand): for the columns of
        G_F at the sources' boundary atoms, or with ``states`` for the scattering states
        of their open channels (:class:`~lammps_recoil.greens.Scattering`; ``single``:
        the recursive solver in single precision)."""
        E = np.atleast_1d(np.asarray(E, dtype=float))
        if gs is None:
            gs = [self._lead_gf(s, E, ik) for s in (0, 1)]
        spectral = [self._spectral(s, E, ik, g) if s in sources else None
                    for s, g in enumerate(gs)] if states else None
        try:
            sc = Scattering(E, self._M[ik], self._V_solve[ik], gs, sources, spectral, single)
        except (RuntimeError, np.linalg.LinAlgError) as err:   # exactly singular
            for m, e in enumerate(E):                        # at which energy?
                try:
                    Scattering(E[m:m + 1], self._M[ik], self._V_solve[ik],
                               [g[m:m + 1] for g in gs], sources)
                except (RuntimeError, np.linalg.LinAlgError):
                    raise SingularEnergy(_singular(e, err), float(e)) from None
            raise FloatingPointError(f"device Green's function is singular at an energy in "
                                     f"[{E.min()}, {E.max()}] eV: {err}") from None
        # a real pole within round-off: an LU that met no exact zero returns garbage (the
        # largest and smallest real and imaginary parts, read without a temporary array;
        # NaN fails the test too)
        if not all(_within(sc.X[s].view(float), G_SINGULAR) for s in sources):
            size = np.max([np.abs(sc.X[s]).max(axis=(1, 2)) for s in sources], axis=0)
            m = int(np.argmax(~(size <= G_SINGULAR)))
            raise SingularEnergy(_singular(E[m], f"|G_F| = {size[m]:.1e} /eV"), float(E[m]))
        return sc

    def inverse_green(self, E: float, ik: int = 0):
        """The sparse matrix G_F(E)^-1 = E - H_F - Sigma_L - Sigma_R (Eq. 6)."""
        return self._M[ik](E, [self_energy(V, self._lead_gf(s, E, ik))
                               for s, V in enumerate(self._V[ik])])

    def transmission(self, energies) -> np.ndarray:
        """Caroli transmission T(E) (Eq. 7), averaged over Bloch vectors, per supercell."""
        E = np.atleast_1d(np.asarray(energies, dtype=float))
        return self._map(self._transmission, E) if E.size else np.zeros(0)

    def _transmission(self, E: np.ndarray, poles=None) -> np.ndarray:
        """T(E) on this rank alone, without the Lorentzians of the ``poles``
        (:meth:`_pole_terms`)."""
        T = np.zeros(len(E))
        for ik, wk in enumerate(self.kweights):
            T += wk * self.scattering(E, ik, (1,)).transmission()
            if poles is not None and poles[ik] is not None:
                T -= wk * poles[ik].transmission(E)
        return T

    def _map(self, fn, energies) -> np.ndarray:
        """Rows fn(E) for an array of energies, evaluated in batches of at most
        ``self._batch`` energies and shared among the ranks of ``comm`` in contiguous blocks
        (in the first round of the adaptive rule, neighbouring nodes: at T = 0 a rank then
        mostly serves one injecting lead)."""
        size = 1 if self.comm is None else self.comm.Get_size()
        if size == 1 and 0 < len(energies) <= self._batch:
            return fn(energies)
        rank = 0 if size == 1 else self.comm.Get_rank()
        mine = np.array_split(np.arange(len(energies)), size)[rank]
        batches = np.array_split(mine, max(1, -(-len(mine) // self._batch)))
        try:
            parts = [fn(energies[b]) for b in batches if len(b)]
            rows, singular = (np.concatenate(parts) if parts else None), None
        except SingularEnergy as err:          # every rank learns of it and raises it too
            if size == 1:
                raise
            rows, singular = None, (str(err), err.energy)
        if size == 1:
            return rows
        gathered = self.comm.allgather((rows, singular))
        for _, singular in gathered:
            if singular is not None:
                raise SingularEnergy(*singular)
        return np.concatenate([p for p, _ in gathered if p is not None])

    def channels(self, energy: float | None = None, ik: int = 0) -> np.ndarray:
        """Transmission eigenvalues at one energy (eV, default E_F) and Bloch vector index
        ``ik`` (0 .. number of Bloch vectors - 1)."""
        E = self.fermi_level if energy is None else energy
        if not (isinstance(ik, (int, np.integer)) and 0 <= ik < len(self.kpoints)):
            raise ValueError(f"ik must be a Bloch vector index 0..{len(self.kpoints) - 1}, "
                             f"got {ik!r}")
        return self.scattering(E, ik, sources=(1,)).channels()[0]

    def conductance(self, bias: float = 0.0, beta: float = 0.5, temperature: float = 0.0,
                    tol: float = quad.DEFAULT_TOL, n_points: int | None = None,
                    unbroadened="auto") -> float:
        """Landauer conductance G/G0 (Eq. 11); T(E_F) in linear response at T = 0.
        ``unbroadened`` as in :meth:`forces`."""
        segments = quad.bias_window(self.fermi_level, bias, beta, temperature)
        if not segments:
            return self._fermi_probe()[0]
        self._check_window(segments)
        states = self._unbroadened(segments, unbroadened)
        cuts = [b.energy for b in states]
        poles = self._pole_terms(states)

        def func(E, seg):
            T = self._map(lambda e: self._transmission(e, poles), E)
            return (seg.landauer(E) * T)[:, None]

        return float(sum(self._integrate(seg, func, n_points, tol / len(segments),
                                         self._cuts(tol), (), cuts, []).value[0]
                         for seg in segments))

    def current(self, bias: float, beta: float = 0.5, temperature: float = 0.0,
                tol: float = quad.DEFAULT_TOL, n_points: int | None = None) -> float:
        """Landauer current (microamperes) at bias V (volts), Eq. 11 times G0 V:
        I = (2e/h) int dE T(E) [f(E - mu_R) - f(E - mu_L)], with the sign of V (for V > 0
        electrons flow from the right lead, whose chemical potential is higher, to the
        left)."""
        return current_microamperes(self.conductance(bias, beta, temperature, tol, n_points),
                                    bias)

    def forces(self, bias: float, beta: float = 0.5, temperature: float = 0.0,
               model: str = "paper", tol: float = quad.DEFAULT_TOL,
               n_points: int | None = None, full: bool = False,
               full_points: int = 96, unbroadened="auto",
               bond_currents: bool = False) -> RecoilResult:
        """Recoil forces at bias V (volts) on the device atoms (Eq. 10 with Eq. 4).

        By default the renormalized force F(V) - F(0) from the bias window only (what MD
        adds on top of a zero-bias force field), integrated adaptively to absolute accuracy
        ``tol`` (eV/A for forces, G0 for the conductance), or with a fixed ``n_points``
        Gauss-Legendre rule per segment. ``full=True`` integrates each lead's states from
        the band bottom E_0 up to mu_S instead (the full F(V), ``full_points`` nodes per
        lead) and adds the occupied bound states below E_0 (see :meth:`bound_states`),
        which Eq. 10's integral leaves out. ``model`` selects Eq. 4 (``"paper"``) or
        ``"hellmann-feynman"``. ``temperature`` is the electron temperature (K).

        Eq. 9 counts scattering states only: a state in or near the window that no open
        lead channel broadens (a bound state in the continuum, a state in a lead's subband
        gap) is, between exact leads, a real pole of zero width that adds nothing; found
        (:mod:`~lammps_recoil.boundstates`), it is reported in the result's
        ``unbroadened`` and its energy becomes an end of the integration intervals, and
        between broadened leads its eta-dependent Lorentzian is subtracted from the
        integrand (eta -> 0 before the energy integral). ``unbroadened="auto"`` looks for
        them where a lead or the device has a numerical broadening eta > 0 or a lead is a
        wire; with lossless periodic and chain leads they are looked for only with
        ``True`` (``False`` never looks), and a node that lands on one, where G_F is
        singular, is made an interval end and the integral redone (:meth:`_integrate`).

        ``bond_currents=True`` also integrates the currents on the device's bonds
        (:mod:`~lammps_recoil.bondcurrent`) on the same energy nodes (they do not steer the
        adaptive rule, so forces and conductance are those of a call without them).

        The adaptive partition of each segment is kept and starts the next call's integral
        (an MD run's next update, or a nearby bias: its ends inside the new window are
        reused, and so are the leads' Green's functions at the nodes that did not move).
        """
        onsite_weight(model)
        if bond_currents and full:
            raise ValueError("bond currents come from the bias window (the equilibrium "
                             "density carries none): call forces with full=False")
        if full:
            n_points = quad.positive_count(full_points, "full_points")
            segments = quad.full_band(self.band_edges[0], self.fermi_level, bias, beta,
                                      temperature)
        else:
            segments = quad.bias_window(self.fermi_level, bias, beta, temperature)
        self._check_window(segments)
        states = self._unbroadened(segments, unbroadened)
        poles = self._pole_terms(states)
        cuts = [b.energy for b in states]
        timings = {"leads": 0.0, "solve": 0.0, "forces": 0.0}
        n = self.n_atoms
        watch = 4 * n + 1              # forces, conductance, charges steer the integral
        total = np.zeros(watch + (len(self.ext_bonds) if bond_currents else 0))
        error, n_energies = 0.0, 0
        EF = self.fermi_level
        # T(E_F) and channels, solved with the first batch of the last rank (the one
        # that the energies' split leaves the fewest) and shared with the others
        fermi = []
        size = 1 if self.comm is None else self.comm.Get_size()
        prober = size == 1 or self.comm.Get_rank() == size - 1
        single = self._single(tol, bond_currents)

        def batch(E, seg):
            probes = () if fermi or not prober else (EF,)
            try:
                rows, probe = self._integrand(E, seg, model, timings, probes, poles,
                                              bond_currents, single)
            except SingularEnergy as err:
                if not probes or err.energy != EF:
                    raise
                rows, _ = self._integrand(E, seg, model, timings, (), poles, bond_currents,
                                          single)
                probe = [self._fermi_probe()]
            fermi.extend(probe)
            return rows

        func = lambda E, seg: self._map(lambda e: batch(e, seg), E)
        found = []                     # states located where a node hit them
        for s, seg in enumerate(segments):
            key = (s, full, model, tol)
            res = self._integrate(seg, func, n_points, tol / len(segments), self._cuts(tol),
                                  self._partitions.get(key, ()), cuts, found, watch)
            if res.partition is not None:
                self._partitions[key] = res.partition
            total, error = total + res.value, error + res.error
            n_energies += res.n_evals
        if full:
            total = total + self._bound_density(temperature, model)
        forces = require_finite(self._to_user(total[:3 * n].reshape(n, 3)), self.names)
        if size > 1:
            fermi = self.comm.allgather(fermi[:1])[-1]     # the last rank's probe
        if not fermi:                  # no segment, or no energy on the last rank
            fermi = [self._fermi_probe()]
            if size > 1:               # solved by every rank: the last rank's, on all
                fermi = [self.comm.allgather(fermi[0])[-1]]
        fermi_t, channels = fermi[0]
        if full:
            conductance = self.conductance(bias, beta, temperature, tol)
        elif segments:
            conductance = float(total[3 * n])
        else:
            conductance = fermi_t
        return RecoilResult(forces, conductance, fermi_t,
                            self._to_user(total[3 * n + 1:watch]), bias, beta, temperature,
                            n_energies, error, self.at_lead.copy(), timings,
                            tuple(self._user_state(b) for b in states + found), channels,
                            self._bond_currents(total[watch:]) if bond_currents else None)

    def bond_currents(self, bias: float, beta: float = 0.5, temperature: float = 0.0,
                      tol: float = quad.DEFAULT_TOL, n_points: int | None = None,
                      unbroadened="auto") -> BondCurrents:
        """Currents on the device's bonds at bias V (microamperes; :mod:`~lammps_recoil.
        bondcurrent`), integrated with the forces of :meth:`forces` (same keywords)."""
        return self.forces(bias, beta, temperature, tol=tol, n_points=n_points,
                           unbroadened=unbroadened, bond_currents=True).bond_currents

    def _bond_currents(self, current: np.ndarray) -> BondCurrents:
        """The integrated currents on :attr:`ext_bonds` as :class:`BondCurrents` in the
        caller's atom order."""
        b, n = self.ext_bonds, self.n_atoms
        to_lead = b.j >= n
        left = b.j - n < len(self.lead_contacts[0].contacts)
        lead = np.where(to_lead, np.where(left, 1, 2), 0)
        j = np.where(to_lead, -1, self._order[np.minimum(b.j, n - 1)])
        return BondCurrents(self._order[b.i], j, lead, b.vec.copy(), current,
                            self.positions.copy())

    def _probe(self, E: float) -> tuple[float, np.ndarray]:
        """T(E) (averaged over the Bloch vectors) and the transmission eigenvalues at E
        (of all Bloch vectors, largest first), on this rank alone."""
        T, channels = 0.0, []
        for ik, wk in enumerate(self.kweights):
            sc = self.scattering(np.array([E]), ik, (1,))
            T += wk * float(sc.transmission()[0])
            channels.append(sc.channels()[0])
        return T, np.sort(np.concatenate(channels))[::-1]

    def electronic_bath(self, bias: float, **kw):
        """Electronic friction, Berry tensor and current-induced noise of the device atoms
        (:func:`lammps_recoil.bath.electronic_bath`, keywords as there)."""
        from .bath import electronic_bath
        return electronic_bath(self, bias, **kw)

    def _integrate(self, seg, func, n_points, tol, kinks, start, cuts, found,
                   watch=None) -> quad.Integral:
        """``seg.integrate`` cut at the channel edges ``kinks`` and the ``cuts``. Where a node
        lands on a real pole that was not looked for (exact leads: G_F(E)^-1 singular there to
        round-off, :class:`SingularEnergy`), that energy becomes an interval end as well, the
        state there is located (appended to ``found``) and the segment integrated again
        (the energy is appended to ``cuts`` too, for the segments that follow)."""
        for redo in range(MAX_SINGULAR + 1):
            try:
                return seg.integrate(func, n_points, tol, kinks, start, cuts, watch)
            except SingularEnergy as err:
                E = err.energy
                ends = np.array(cuts + list(seg.steps) + [seg.a, seg.b])
                if redo == MAX_SINGULAR or np.abs(ends - E).min() <= quad.CUT_MERGE:
                    raise
                cuts.append(E)
                found.extend(b for ik in range(len(self.kpoints))
                             for b in find_bound_states(self, E, E, ik)
                             if abs(b.energy - E) <= POLE_STEP)

    def _fermi_probe(self) -> tuple[float, np.ndarray]:
        """T(E_F) and the transmission eigenvalues at E_F on this rank (:meth:`_probe`); on a
        real pole exactly at E_F, where G_F does not exist, their means at E_F +- POLE_STEP
        (both are analytic through a pole of zero width)."""
        EF = self.fermi_level
        try:
            return self._probe(EF)
        except SingularEnergy:
            (a, ca), (b, cb) = self._probe(EF - POLE_STEP), self._probe(EF + POLE_STEP)
            return 0.5 * (a + b), 0.5 * (ca + cb)

    def unbroadened_states(self, lo: float, hi: float) -> list[BoundState]:
        """States with energies in [lo, hi] (eV, widened by ``boundstates.MARGIN``) that no
        open lead channel broadens, at every Bloch vector (device atoms in the caller's
        order). See :mod:`lammps_recoil.boundstates`."""
        return [self._user_state(b) for ik in range(len(self.kpoints))
                for b in find_bound_states(self, lo, hi, ik)]

    def _unbroadened(self, segments, policy="auto") -> list[BoundState]:
        """The unbroadened states in and near the segments (internal order), looked for as
        ``policy`` says (see :meth:`forces`)."""
        if policy not in ("auto", True, False):
            raise ValueError(f"unbroadened must be 'auto', True or False, got {policy!r}")
        if policy == "auto":
            policy = looked_for(self)
        if not segments or not policy:
            return []
        lo, hi = min(seg.a for seg in segments), max(seg.b for seg in segments)
        return [b for ik in range(len(self.kpoints)) for b in find_bound_states(self, lo, hi, ik)]

    def _user_state(self, b: BoundState) -> BoundState:
        n = self.n_atoms
        return replace(b, psi=np.concatenate([self._to_user(b.psi[:n]), b.psi[n:]]),
                       device_weight=self._to_user(b.device_weight))

    def _pole_terms(self, states) -> list:
        """Per Bloch vector, the eta-Lorentzians of the unbroadened states
        (:class:`~lammps_recoil.boundstates.PoleTerms`, None where there are none, and
        everywhere when nothing is broadened)."""
        b = self.ext_bonds
        out = [None] * len(self.kpoints)
        if numerical_eta(self) == 0.0:          # no broadening: a state has no Lorentzian
            return out
        for ik in range(len(self.kpoints)):
            mine = [s for s in states if s.ik == ik]
            if mine:
                phase = np.conj(b.phases(self.kpoints[ik] if self.box is not None else None))
                out[ik] = PoleTerms(mine, b.i, b.j, phase)
        return out

    def energy_partitions(self) -> dict:
        """The adaptive energy partitions kept for reuse, as arrays (for restart files)."""
        keys = list(self._partitions)
        return dict(
            part_keys=np.array([[k[0], k[1], k[2] == "paper", k[3]] for k in keys],
                               dtype=float).reshape(-1, 4),
            part_ends=np.concatenate([self._partitions[k] for k in keys] or [np.zeros(0)]),
            part_sizes=np.array([len(self._partitions[k]) for k in keys], dtype=int))

    def set_energy_partitions(self, state: dict) -> None:
        """Restore partitions saved by :meth:`energy_partitions`."""
        ends = np.split(state["part_ends"], np.cumsum(state["part_sizes"])[:-1])
        for key, e in zip(state["part_keys"], ends):
            model = "paper" if key[2] else "hellmann-feynman"
            self._partitions[(int(key[0]), bool(key[1]), model, key[3])] = e

    def _kinks(self) -> np.ndarray:
        """Channel edges of the leads at every Bloch vector (integration breaks; computed
        once, the leads never change); the same edge of two leads, equal to round-off
        (1e-12 eV), is one."""
        if self._edges is None:
            edges = [lead.channel_edges(k if self.box is not None else None)
                     for lead in self.leads if hasattr(lead, "channel_edges")
                     for k in self.kpoints]
            edges = np.unique(np.concatenate(edges)) if edges else np.zeros(0)
            self._edges = edges[np.diff(edges, prepend=-np.inf) > 1e-12]
        return self._edges

    def _cuts(self, tol: float) -> np.ndarray:
        """The channel edges an energy integral to accuracy ``tol`` is cut at
        (:func:`~lammps_recoil.integration.isolated`)."""
        return quad.isolated(self._kinks(), tol)

    def _flat_bands(self) -> tuple:
        """Energies of the unbroadened periodic and wire leads' flat bands and the lead of
        each (computed once)."""
        if self._flat is None:
            found = [(s, e) for s, lead in enumerate(self.leads)
                     if hasattr(lead, "flat_bands") and lead.eta == 0
                     for k in self.kpoints
                     for e in lead.flat_bands(k if self.box is not None else None)]
            self._flat = (np.array([e for _, e in found]), np.array([s for s, _ in found]))
        return self._flat

    def check_bias(self, bias: float, beta: float = 0.5, temperature: float = 0.0) -> None:
        """Refuse a bias whose energy window (tails at T > 0 included) leaves the lead band
        or meets a periodic lead's flat band (ValueError naming both), before any solve."""
        try:
            self._check_window(quad.bias_window(self.fermi_level, bias, beta, temperature))
        except ValueError as err:
            raise ValueError(f"bias V = {bias:g} V (beta = {beta:g}): {err}") from None

    def _check_window(self, segments) -> None:
        """The window must lie in the band and avoid the leads' flat bands."""
        if not segments:
            return
        lo, hi = self.band_edges
        wlo, whi = min(s.a for s in segments), max(s.b for s in segments)
        if not lo < self.fermi_level < hi:
            raise ValueError(f"the Fermi level E_F = {self.fermi_level:.4f} eV lies outside "
                             f"the lead band [{lo:.3f}, {hi:.3f}] eV: no states carry a "
                             "current there (leave fermi_level unset for the leads' own)")
        if wlo < lo or whi > hi:
            raise ValueError(f"energy window [{wlo:.3f}, {whi:.3f}] eV leaves the lead band "
                             f"[{lo:.3f}, {hi:.3f}] eV: reduce the bias")
        flat, lead = self._flat_bands()
        inside = np.flatnonzero((flat >= wlo - FLAT_MARGIN) & (flat <= whi + FLAT_MARGIN))
        if inside.size:
            raise ValueError(
                f"the {self.leads[lead[inside[0]]].side} lead has a decoupled flat "
                f"band at E = {flat[inside[0]]:.4f} eV, within {FLAT_MARGIN} eV of the energy "
                f"window [{wlo:.3f}, {whi:.3f}] eV: its delta peak makes the integral "
                "ill-defined. Use laterally infinite leads (leads='infinite': no flat "
                "bands), a lead broadening (lead_eta > 0, or eta > 0 of a lead), another "
                "transverse cell or k grid (periodic leads; lammps-recoil check names the "
                "cells that accept a bias) or another cross-section (wire leads)")

    def _single(self, tol: float, currents: bool) -> bool:
        """Whether the forces' integrand solves in single precision: with ``precision``
        "mixed", on devices above SCHUR_MAX atoms, where :meth:`_double_reasons` finds
        nothing against it."""
        return (self._states and self.precision == "mixed"
                and not self._double_reasons(tol, currents))

    def precision_note(self, tol: float, currents: bool = False) -> str | None:
        """A note where ``precision`` "mixed" solves the forces in double precision all
        the same on a device above SCHUR_MAX atoms (why: :meth:`_double_reasons`), else
        None."""
        if self.precision != "mixed" or not self._states:
            return None
        reasons = self._double_reasons(tol, currents)
        return (f"precision mixed: the forces of this {self.n_atoms}-atom device are solved "
                f"in double precision, as {'; '.join(reasons)} (docs/large.md)"
                if reasons else None)

    def _double_reasons(self, tol: float, currents: bool = False) -> list[str]:
        """Why the forces' integrand would solve in double precision although single
        precision is asked for (``precision`` "mixed"; empty: nothing against it): a
        tolerance below SINGLE_TOL (single precision's round-off, about 1e-6 eV/A, would
        reach the integral's error estimate), bond currents (Kirchhoff's law holds to
        round-off in double), leads that need the search for unbroadened states (a
        broadening eta > 0 makes a pole's Lorentzian, solved at a condition number of
        about |H| / eta; wire leads have such states often), or more than one BLAS thread
        pool with several threads (:func:`~lammps_recoil.parallel.threaded_pools`: the
        OpenBLAS pools of numpy's products and of scipy's LU factorizations then compete
        for the cores in single precision; docs/large.md)."""
        reasons = []
        if tol < SINGLE_TOL:
            reasons.append(f"tol {tol:g} is below SINGLE_TOL = {SINGLE_TOL:g} eV/A")
        if currents:
            reasons.append("bond currents are on")
        if looked_for(self):
            reasons.append("the leads need the search for unbroadened states (eta > 0 "
                           "or wire leads)")
        if threaded_pools() >= 2:
            pools = openblas_pools()
            threads = (", ".join(f"{os.path.basename(path)} {get()}" for path, get, _ in pools)
                       if pools else "%s=%d" % blas_threads())
            reasons.append(f"two BLAS thread pools run several threads ({threads}; "
                           "OMP_NUM_THREADS=1, the default, is the fastest)")
        return reasons

    def _integrand(self, E: np.ndarray, seg, model: str, timings: dict, probes=(),
                   poles=None, currents: bool = False, single: bool = False):
        """Rows of forces (3N), conductance weight x T (1) and density (N) per unit energy,
        and with ``currents`` the bond currents (one per extended bond, uA per eV), one row
        per energy of the batch E; and (T(E), transmission eigenvalues) at the energies
        ``probes`` (solved in the same batch).

        The density matrix of Eq. 9 from each lead S with occupation weight w_S(E) is
        accumulated on the bonds and sites of the extended region (summed over Bloch
        vectors) and contracted into forces with Eq. 4. Each energy is solved only for the
        columns of the leads that inject at it (at T = 0: the left lead below E_F, the
        right one above), in one group per set of injecting leads; energies where none
        does (the probes) join a group, for T alone. ``poles`` (:meth:`_pole_terms`): the
        eta-Lorentzians of the unbroadened states, subtracted (eta -> 0 before the energy
        integral: see :mod:`lammps_recoil.boundstates`). ``single``: the device solves in
        single precision (:meth:`_single`).
        """
        ne = len(E)
        E = np.concatenate([E, probes])
        w, tw = np.zeros((2, len(E))), np.ones(len(E))     # probes: T alone
        w[0, :ne], w[1, :ne] = seg.occupation(E[:ne])
        w /= 2.0 * np.pi
        tw[:ne] = seg.landauer(E[:ne])
        inject = (w[0] != 0.0) + 2 * (w[1] != 0.0)          # 1 left, 2 right, 3 both
        count = np.bincount(inject, minlength=4)
        join = next((code for code in (2, 1, 3) if count[code]), 2)
        inject[inject == 0] = join                         # T alone: join a group
        count[join] += count[0]
        groups = [(np.flatnonzero(inject == code), sources) for code, sources in
                  ((1, (0,)), (2, (1,)), (3, (0, 1))) if count[code]]
        b = self.ext_bonds
        rho_bond = np.zeros((len(E), len(b)))          # Re of the Bloch-phased rho_ij
        rho_imag = np.zeros((len(E), len(b))) if currents else None      # and its Im
        rho_diag = np.zeros((len(E), self.n_ext))
        G = np.zeros(len(E))
        channels = [[] for _ in probes]
        for ik, wk in enumerate(self.kweights):
            t0 = time.perf_counter()
            gs = [self._lead_gf(s, E, ik) for s in (0, 1)]
            t1 = time.perf_counter()
            # Re(exp(-ik.d) sum_b X_ib conj(P_jb)) on the bonds
            phase = b.phases(self.kpoints[ik] if self.box is not None else None)
            pole = None if poles is None else poles[ik]
            for sel, sources in groups:
                sc = self.scattering(E[sel], ik, sources, [g[sel] for g in gs],
                                     self._states, single)
                if np.any(tw[sel] != 0.0):
                    T = sc.transmission()
                    if pole is not None:
                        T -= pole.transmission(E[sel])
                    G[sel] += wk * tw[sel] * T
                at = np.flatnonzero(sel >= ne)              # the probes in this group
                if at.size:
                    for m, ch in zip(sel[at] - ne, sc.channels(at)):
                        channels[m].append(ch)
                for s in sources:
                    if not np.any(w[s][sel] != 0.0):
                        continue
                    X, P, diag = sc.density_factors(s)
                    ws = (wk * w[s][sel])[:, None]
                    if currents:                  # and Im(conj(phase) rho_ij)
                        re, im = self._bond_density(X, P, phase, imag=True)
                        rho_imag[sel] += ws * im
                    else:
                        re = self._bond_density(X, P, phase)
                    rho_bond[sel] += ws * re
                    rho_diag[sel] += ws * diag
                    if pole is not None:
                        bond, site = pole.densities(E[sel], s)
                        rho_bond[sel] -= ws * bond.real
                        rho_diag[sel] -= ws * site
                        if currents:
                            rho_imag[sel] -= ws * bond.imag
            timings["leads"] += t1 - t0
            timings["solve"] += time.perf_counter() - t1
        t3 = time.perf_counter()
        out = self._rows(rho_bond[:ne], rho_diag[:ne], G[:ne], model)
        if currents:
            out = np.hstack([out, window_currents(b.t, rho_imag[:ne])])
        timings["forces"] += time.perf_counter() - t3
        probed = [(float(T), np.sort(np.concatenate(ch))[::-1])
                  for T, ch in zip(G[ne:], channels)]
        return out, probed

    def _rows(self, rho_bond, rho_diag, G, model) -> np.ndarray:
        """Rows of forces (Eq. 4), conductance and electron counts, one per energy, from
        the bond and site density matrices (energies x bonds or sites; on the bonds the
        real part, Bloch phases included)."""
        return np.hstack([self._bond_forces(rho_bond, rho_diag, model), G[:, None],
                          2.0 * rho_diag[:, :self.n_atoms]])

    def bound_states(self, ik: int = 0):
        """Bound states below the lead band: energies and normalized extended amplitudes.

        Below E_0 the self-energies are Hermitian and G_F^-1(E) = E - H - Sigma(E) has
        dG^-1/dE >= 1, so its number of negative eigenvalues falls by one at each bound
        state; they are located by bisection on that count. The amplitude on the lead
        contacts is g_S V_S psi, and the norm includes the lead tails, psi^+ (1 - dSigma/dE)
        psi. Dense linear algebra: meant for the small systems where bound states matter.
        Returns a list of (E_b, Psi) with Psi over the extended region (device in internal
        z order, then lead contacts).
        """
        e0 = self.band_edges[0] - 1e-9
        M = lambda e: self.inverse_green(e, ik).toarray()
        negative = lambda e: int(np.sum(np.linalg.eigvalsh(M(e)) < 0))
        sigma0 = to_dense(self._H[ik]) + e0 - M(e0)     # H + Sigma(E_0)
        lo = np.linalg.eigvalsh(sigma0).min() - 1.0
        while negative(lo) < self.n_atoms:
            lo -= 2.0 * (e0 - lo)
        states = []
        for count in range(negative(e0), negative(lo)):
            a, b = lo, e0                               # negative(a) > count >= negative(b)
            for _ in range(60):
                mid = 0.5 * (a + b)
                a, b = (mid, b) if negative(mid) > count else (a, mid)
            E = 0.5 * (a + b)
            w, v = np.linalg.eigh(M(E))
            psi = v[:, np.argmin(np.abs(w))]
            h = 1e-6
            dsigma = ((M(E + h) - M(E - h)) / (2 * h) - np.eye(self.n_atoms))   # -dSigma/dE
            norm = float(np.real(psi.conj() @ (np.eye(self.n_atoms) + dsigma) @ psi))
            tails = [self._lead_gf(s, E, ik) @ (self._V[ik][s] @ psi[c.boundary])
                     for s, c in enumerate(self.lead_contacts)]
            states.append((E, np.concatenate([psi, *tails]) / np.sqrt(norm)))
        return states

    def _bound_density(self, temperature: float, model: str) -> np.ndarray:
        """Forces and electron counts of the occupied bound states (weight f(E_b - E_F))."""
        b = self.ext_bonds
        rho_bond = np.zeros(len(b))
        rho_diag = np.zeros(self.n_ext)
        for ik, wk in enumerate(self.kweights):
            phase = np.conj(b.phases(self.kpoints[ik] if self.box is not None else None))
            for E, psi in self.bound_states(ik):
                occ = wk * float(quad.fermi(E, self.fermi_level, temperature))
                rho_bond += occ * (phase * psi[b.i] * psi[b.j].conj()).real
                rho_diag += occ * np.abs(psi) ** 2
        return self._rows(rho_bond[None], rho_diag[None], np.zeros(1), model)[0]
