"""The electronic bath in MD: friction, Berry and noise forces on the filament every step.

With the deck's ``bath`` set to ``friction`` or ``full``, every MD step the filament atoms
(type 1; with ``bath_zlo`` and ``bath_zhi``, those of them in that zone along z,
:func:`zone_tags`) receive, besides the held mean recoil force, the Langevin forces of the
electronic bath (:mod:`lammps_recoil.bath`; Lu, Brandbyge, Hedegard, Todorov, Dundas, PRB
85, 245444 (2012)):

.. math::

    F_a = -\\sum_b \\gamma_{ab} v_b + \\xi_a,\\qquad
    \\langle \\xi_a(t) \\xi_b(t') \\rangle = D_{ab} \\delta(t - t'),

gamma the symmetric friction (``friction``) or friction plus Berry tensor (``full``), D
the noise covariance, both for the bath atoms' coordinates in tag order. The kernels are
computed every ``bath_every`` steps (a multiple of the NEGF interval ``every``) from the
NEGF system of the mean force at the same positions, at bias V and electron temperature
``Te``, and held in between; the velocities are taken every step (those LAMMPS holds when
``fix external`` adds its forces, as ``fix langevin`` does). On one step of length dt the
noise is xi = L z / sqrt(dt) with L L^T = D and z standard normal: its covariance D/dt is
the discrete delta function. z comes from a generator keyed on (seed, first step of the
NEGF interval): every rank draws the same numbers for all the bath's coordinates, so the
forces depend neither on the number of ranks nor on where a resumed run restarts.
``bath_scale`` multiplies gamma and D together (1: the physical bath; a larger factor
speeds up the relaxation to the same effective temperature, for tests and studies).

Per NEGF update the time series gets :data:`COLUMNS` (docs/bath.md): the bath atoms' and
the mobile electrode atoms' kinetic temperatures (the bath atoms' averaged over the steps
since the previous update), the mean diagonal friction and noise (per coordinate), the
kernels' effective temperatures (power balance, lowest and highest mode), the lowest
friction eigenvalue, the largest growth rate of the linearized dynamics, the mean power of
the recoil force, of the friction, of the noise and of the Berry force over the steps
since the previous update, and the seconds spent on the kernels (0 when held).
"""
from __future__ import annotations

import sys
import time

import numpy as np

from . import bath as kernels
from .integration import K_B

#: Time-series columns appended with the bath on (after the mean force's).
COLUMNS = ("T_fil", "T_el", "gamma_mean", "D_mean", "Te_bal", "Te_mode_min", "Te_mode_max",
           "gamma_min", "runaway", "P_rec", "P_fric", "P_noise", "P_berry", "bath_s")
#: Accuracy of the kernels' energy integrals in MD, relative to the largest zero-bias
#: friction element of the current geometry or of the first kernels of the run, whichever
#: is larger (bath.electronic_bath's ``tol`` and ``reference``): at 1 V along a 300 K run
#: the mean force's partition mostly meets it unrefined, and the kernels are within 2% of
#: a tight integral (docs/bath.md).
MD_TOL = 1.0
#: Largest gamma dt / m of a mode: the explicit friction force is exact as gamma dt / m -> 0;
#: the full-step kinetic temperature stays right (docs/bath.md), the dynamics of modes
#: damped within a few steps do not. Modes above it (a large ``bath_scale`` at a geometry
#: with bonds in the hopping cutoff zone) are capped there with their noise (:meth:`BathForces.
#: capped`), which keeps their temperature D / 2 gamma.
MAX_DAMPING_STEP = 0.5

#: g/mol -> eV ps^2 / A^2 (LAMMPS metal units).
MASS_UNIT = 1.0364269e-4


def zone_tags(tags, types, z, zlo: float, zhi: float, filament_type: int = 1) -> np.ndarray:
    """The LAMMPS IDs of the filament atoms (``filament_type``) with zlo <= z <= zhi (A;
    +-inf: no bound), in tag order: the bath's atoms. A zone that holds none is refused,
    naming the filament's extent along z."""
    tags, types, z = np.asarray(tags), np.asarray(types), np.asarray(z, dtype=float)
    fil = types == filament_type
    chosen = fil & (z >= zlo) & (z <= zhi)
    if not chosen.any():
        span = "there is none"
        if fil.any():
            zf = z[fil]
            span = f"its {int(fil.sum())} atoms lie at z = {zf.min():.3f} to {zf.max():.3f} A"
            below, above = zf[zf < zlo], zf[zf > zhi]
            if below.size and above.size:
                span += (f", the nearest below at z = {below.max():.3f} A and above at "
                         f"z = {above.min():.3f} A")
        raise ValueError(f"the electronic bath's zone bath_zlo = {zlo:g} to bath_zhi = "
                         f"{zhi:g} A holds no filament atom (type {filament_type}): {span}")
    return np.sort(tags[chosen]).astype(np.int64)


class BathForces:
    """The bath's kernels, held between updates, and the per-step forces (module
    docstring). One per LAMMPS instance, next to the mean force's coupling."""

    def __init__(self, params: dict, comm, rank: int):
        self.p, self.comm, self.rank = params, comm, rank
        self.mode, self.scale = params["bath"], params["bath_scale"]
        self.tags = np.zeros(0, dtype=np.int64)      # the bath's atoms (tag order)
        self.factor = self.friction = self.berry = None
        self.reference = None          # the first kernels' friction scale (accuracy floor)
        self.partition = ()            # the last kernels' energy partition
        self.kernel_step = None
        self.block = (None, None)         # ((first step, kernels, dt), noise forces)
        self.version = 0                  # kernels held so far (the noise block's key)
        self.replay = None                           # (step, forces) on resuming
        # the steps since the diagnostics' last sums: step, velocities, noise forces; and
        # the friction and Berry forces of the first of them if it was carried over
        self.record, self.carried = ([], [], []), None
        self.drag_parts = []               # the velocity kernels: friction (and Berry)
        self._reset()
        self.warned = self.cap_noted = False

    def _reset(self) -> None:
        # pairs of consecutive steps, sum of m v^2, work of the noise, friction and Berry
        # force (per step)
        self.sums = np.zeros(5)

    def _close(self) -> None:
        """Add the recorded steps to the diagnostics' sums, each with the kernels that
        acted on it: over each pair of consecutive steps, the full-step velocity between
        them (v(t - dt/2) + v(t + dt/2)) / 2 (LAMMPS adds the forces of step t with the
        half-step velocities v(t - dt/2) of velocity Verlet), its kinetic energy and the
        power of step t's noise, friction and Berry forces along it (the half-step
        velocities' kinetic temperature is biased by 1 / (1 - gamma dt / 2m)). The last
        step stays recorded, with its friction and Berry forces: it pairs with the next,
        whose kernels may differ."""
        steps, vs, noises = self.record
        if not steps:
            return
        v = np.array(vs)
        pair = np.flatnonzero(np.diff(steps) == 1)
        mid = 0.5 * (v[pair] + v[pair + 1])
        s = self.sums
        s[0] += len(pair)
        s[1] += np.sum(self.masses * mid * mid)
        s[2] += np.sum(np.array(noises)[pair] * mid)
        for k, kernel in enumerate(self.drag_parts):
            force = v[pair] @ kernel.T
            if self.carried is not None and len(pair) and pair[0] == 0:
                force[0] = self.carried[k]           # the earlier kernels' force
            s[3 + k] += np.sum(force * mid)
        last = self.carried if len(steps) == 1 and self.carried is not None else \
            [kernel @ v[-1] for kernel in self.drag_parts]
        self.record, self.carried = ([steps[-1]], [vs[-1]], [noises[-1]]), last

    # ---------------------------------------------------------------- kernels
    def update_kernels(self, system, bias, atoms, tags, masses,
                       step) -> kernels.ElectronicBath:
        """New kernels from the NEGF ``system`` at its current positions and the applied
        ``bias`` (V; collective call), starting from the energy partition of the mean
        force just computed there (its intervals and channel-edge cuts: the same nodes,
        refined where the kernels' own error estimate exceeds :data:`MD_TOL`; at V = 0 from
        the previous kernels' partition): ``atoms`` the
        bath's atoms among the device atoms, ``tags`` their LAMMPS IDs, ``masses`` their
        masses (g/mol)."""
        p = self.p
        t0 = time.perf_counter()
        # the bias window's one segment, as system.forces keys its partition (none at
        # V = 0: then the previous kernels' partition)
        start = system._partitions.get((0, False, p["model"], p["tol"]), self.partition)
        res = kernels.electronic_bath(system, bias, p["beta"], p["Te"], p["model"],
                                      tol=MD_TOL, atoms=atoms, start=start,
                                      reference=self.reference, kinks=system._cuts(p["tol"]))
        if self.reference is None:
            self.reference = res.reference
        self.partition = res.partition
        self.set_kernels(res.friction, res.berry, res.noise, tags, masses)
        self.kernel_step, self.seconds = step, time.perf_counter() - t0
        return res

    def set_kernels(self, friction, berry, noise, tags, masses) -> None:
        """Hold these kernels (unscaled, eV ps/A^2 and eV^2 ps/A^2) for the atoms ``tags``."""
        self.tags = np.asarray(tags, dtype=np.int64)
        self.atom_masses = np.asarray(masses, dtype=float)
        self.masses = np.repeat(self.atom_masses * MASS_UNIT, 3)
        self.friction, self.berry, self.noise = friction, berry, noise
        self._apply(friction, berry, noise)
        self.version += 1
        self.capped_dt = None

    def _apply(self, friction, berry, noise) -> None:
        """The per-step operators of kernels (unscaled): -gamma v as the friction's rows,
        and the Berry tensor's (full), summed for the step's force and apart for the
        diagnostics; the noise factor L (L L^T = D)."""
        if self.drag_parts:
            self._close()                        # the steps so far, with their kernels
        self.drag_parts = [-self.scale * friction] + (
            [-self.scale * berry] if self.mode == "full" else [])
        self.velocity_kernel = sum(self.drag_parts)
        lam, U = np.linalg.eigh(noise)
        if lam.min(initial=0.0) < -1e-8 * abs(lam).max(initial=0.0):
            raise FloatingPointError(f"the noise covariance has a negative eigenvalue "
                                     f"{lam.min():.3g} eV^2 ps/A^2 (largest {lam.max():.3g})")
        self.factor = np.sqrt(self.scale) * U * np.sqrt(np.clip(lam, 0.0, None))

    def capped(self, dt: float):
        """The held kernels (friction, Berry, noise) with every mode whose scaled rate
        gamma dt / m exceeds MAX_DAMPING_STEP brought down to it, and the number of such
        modes. In mass-weighted coordinates the scaled friction is U diag(lam) U^T; with
        c = min(1, MAX_DAMPING_STEP / (|lam| dt)) and S = M^(1/2) U diag(c)^(1/2) U^T
        M^(-1/2), each kernel K becomes S K S^T: the friction's modes are scaled by c and
        at V = 0 (D = 2 k_B T_e gamma) the noise with them, so D / 2 gamma is kept."""
        root = np.sqrt(self.masses)
        rates = self.scale * self.friction / np.outer(root, root)
        lam, U = np.linalg.eigh(rates)
        c = np.minimum(1.0, MAX_DAMPING_STEP / np.maximum(np.abs(lam) * dt, 1e-300))
        S = root[:, None] * ((U * np.sqrt(c)) @ U.T) / root[None, :]
        return (S @ self.friction @ S.T, S @ self.berry @ S.T, S @ self.noise @ S.T,
                int(np.sum(c < 1.0)))

    # ---------------------------------------------------------------- every step
    def noises(self, step: int, every: int, dt: float) -> np.ndarray:
        """The noise forces xi = L z / sqrt(dt) of this NEGF interval (every x 3N, eV/A),
        one product per interval, from standard normals keyed on (seed, first step of the
        interval) (module docstring)."""
        first = step - step % every
        key = (first, self.version, dt)
        if self.block[0] != key:
            rng = np.random.default_rng([int(self.p["seed"]), first, 0x6261])
            z = rng.standard_normal((every, 3 * len(self.tags)))
            self.block = (key, z @ (self.factor.T * dt ** -0.5))
        return self.block[1]

    def forces(self, step: int, v: np.ndarray, dt: float, every: int) -> np.ndarray:
        """Bath forces on the filament (N x 3, eV/A) for velocities v (N x 3, A/ps, tag
        order), and the step's contributions to the diagnostics."""
        if self.replay is not None and self.replay[0] == step:
            # a resumed run's first step: the force the interrupted run applied there
            # (taken with the velocities of that step, not the restart's end-of-step ones)
            self.record, self.carried, forces = ([], [], []), None, self.replay[1]
            self.replay = None
            return forces
        if self.capped_dt != dt:
            friction, berry, noise, n = self.capped(dt)
            if n:
                self._apply(friction, berry, noise)
                self.block = (None, None)
                if self.rank == 0 and not self.cap_noted:
                    sys.stderr.write(f"lammps-recoil: note: step {step}: {n} modes of the "
                                     f"bath's friction (x bath_scale {self.scale:g}) exceed "
                                     f"gamma dt/m = {MAX_DAMPING_STEP}; they are capped "
                                     "there with their noise (at V = 0 their temperature "
                                     "D/2gamma is kept), here and at later kernels (noted "
                                     "once)\n")
                    self.cap_noted = True
            self.capped_dt = dt
        u = np.array(v, dtype=float).reshape(-1)
        noise = self.noises(step, every, dt)[step % every]
        for rec, value in zip(self.record, (step, u, noise)):
            rec.append(value)
        return (noise + self.velocity_kernel @ u).reshape(-1, 3)

    # ---------------------------------------------------------------- per update
    def diagnostics(self, res, t_el: float, p_rec: float, step: int) -> list:
        """The :data:`COLUMNS` of this update (``res`` the new kernels or None when held;
        ``t_el`` the electrode atoms' kinetic temperature, ``p_rec`` the mean power of the
        recoil force since the previous update)."""
        self._close()
        steps, ke, noise, fric, berry = self.sums
        n = max(steps, 1)
        t_fil = ke / n / (len(self.masses) * K_B) if steps else np.nan
        held = res is None
        if not held:
            self.summary = self._summary(res, step)
        out = [t_fil, t_el, *self.summary, p_rec, fric / n, noise / n, berry / n,
               0.0 if held else self.seconds]
        self._reset()
        return out

    def _summary(self, res, step) -> list:
        """Effective temperatures, lowest friction eigenvalue and runaway rate of new
        kernels (the bath_scale factor cancels in the temperatures)."""
        teff = kernels.effective_temperature(res)
        modes = teff.modes if len(teff.modes) else np.array([np.nan])
        lo = float(np.linalg.eigvalsh(res.friction).min(initial=0.0))
        gamma = res.friction + (res.berry if self.mode == "full" else 0.0)
        run = kernels.linear_stability(self.scale * gamma, self.masses).rate
        if run > 0 and self.rank == 0 and not self.warned:
            sys.stderr.write(f"lammps-recoil: warning: step {step}: the electronic friction "
                             f"has a negative eigenvalue ({lo:.3g} eV ps/A^2): a free mode "
                             f"grows at {run:.3g} /ps (e-folding time {1 / run:.3g} ps); "
                             "further such updates are in the runaway column\n")
            sys.stderr.flush()
            self.warned = True
        return [float(np.mean(np.diagonal(res.friction))), float(np.mean(np.diagonal(res.noise))),
                teff.balance, modes.min(), modes.max(), lo, run]

    # ---------------------------------------------------------------- restart
    def snapshot(self) -> dict:
        if self.friction is None:
            return {}
        return dict(bath_tags=self.tags, bath_friction=self.friction, bath_berry=self.berry,
                    bath_noise=self.noise, bath_masses=self.atom_masses,
                    bath_step=self.kernel_step, bath_summary=np.asarray(self.summary),
                    bath_partition=np.asarray(self.partition, dtype=float),
                    bath_reference=self.reference)

    def restore(self, state: dict) -> None:
        if "bath_friction" not in state:
            return
        self.set_kernels(state["bath_friction"], state["bath_berry"], state["bath_noise"],
                         state["bath_tags"], state["bath_masses"])
        self.kernel_step = int(state["bath_step"])
        self.summary = list(state["bath_summary"])
        self.partition = state["bath_partition"]
        self.reference = float(state["bath_reference"])
        if "bath_force" in state:
            self.replay = (int(state["step"]), state["bath_force"])

