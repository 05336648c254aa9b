"""LAMMPS coupling: recoil forces held in ``fix external``, recomputed every N steps.

The NEGF update gathers the positions of the filament (type 1) and mobile electrode
(type 2) atoms from all MPI ranks, computes the renormalized recoil forces (paper Eq. 10
with Eq. 4, energy points shared among the ranks) on the NEGF device, and writes the
forces on the filament atoms into the per-atom array of ``fix external``. LAMMPS adds that
array on every step until the next update (zero-order hold, as the paper's 0.1 ps updates
with 1 fs steps), and the array migrates with the atoms between ranks. The NEGF device is
the deck's ``device``: "filament" (the paper's partition; the electrodes are ideal leads
for the electrons) or "mobile" (filament and mobile electrode atoms at their positions; the
frozen layers, types 3 and 4, are the lead surfaces). See :mod:`lammps_recoil.builders`.
Each update of a "filament" device checks that the mobile electrode atoms stay within
SITE_TOLERANCE of their lattice sites; once one does not, the electrodes are no longer
ideal crystals and the device widens to "mobile" for the rest of the run (reported on
stderr and in the n_device column; restart files remember it).

With ``leads infinite`` the electrons see the filament alone between laterally infinite
ideal half-crystals (:func:`~lammps_recoil.builders.infinite_leads`): the filament's
positions are followed across the periodic box from one update to the next (the lead
patches need one continuous filament), the patches are built again around it once an atom
comes within reach of a lead site they do not hold, and a mobile electrode atom that
leaves its site stops the run (the device cannot widen between infinite leads).

The deck route (``fix python/invoke`` with ``fix external pf/array``) and the pip route
(``fix external pf/callback``) drive the same :class:`RecoilCoupling` through the entry
points of :mod:`lammps_recoil.hooks`; the deck's parameters are :mod:`lammps_recoil.params`.

The fix's global vector (``f_recoil[i]`` in thermo output) holds :data:`VECTOR`; the same
numbers go, one row per update, to the time-series file ``<out>.recoil.csv``, flushed as
the run goes. Setting up the coupling calls :func:`~lammps_recoil.parallel.keep_heap`,
which stops glibc from handing the updates' arrays back to the system between updates.
"""
from __future__ import annotations

import ctypes
import os
import sys
import time

import numpy as np

from . import runstate
from .bathmd import COLUMNS as BATH_COLUMNS, MASS_UNIT, BathForces, zone_tags
from .builders import (ELECTRODE_TYPE, FILAMENT_TYPE, SITE_TOLERANCE, ElectrodeSites,
                       check_device, measure_electrodes, system_from_types)
from .geometry import minimum_image
from .integration import K_B
from .parallel import keep_heap, lammps_comm
from .compliance import comply
from .params import (BY_NAME, EAM_FIX, FIX_ID, check_deck_names, deck_equal, deck_text,
                     lead_options, run_header)
from .protocols import deck_protocol

#: The deck's fix property/atom holding the per-atom electronic columns of the dump: the
#: change of the electron count d_dn (always) and, with ``currents yes``, the current
#: vector d2_jcur (uA) and throughput d_icur (uA) of :mod:`lammps_recoil.bondcurrent`.
CURRENT_FIX = "electrons"
CURRENT_NAMES = ("d_dn", "d2_jcur", "3", "d_icur")
#: What the deck variable params.CURRENT_COLUMNS_VARIABLE, appended to the dump's columns,
#: holds with ``currents yes`` (empty otherwise; set by the check step before the dump).
CURRENT_COLUMNS = "d2_jcur[1] d2_jcur[2] d2_jcur[3] d_icur"

#: Entries of the fix's global vector and columns of the time series (after step, time).
#: Feam is the EAM force on the filament (the sum of the deck's ``fix eamf``).
#: dX_site is the largest distance of a mobile electrode atom from its lattice site (A; 0 for
#: the "mobile" device) and n_device the number of NEGF device atoms. V is the bias applied
#: (V_protocol where no compliance lowered it), I_uA the Landauer current G_V V
#: (microamperes), P_uW the electrical power I V (microwatts) and in_compliance 1 where the
#: compliance lowered the bias. n_unbroadened counts the device states in and near the
#: window that no open lead channel broadens, found at the update
#: (``RecoilResult.n_unbroadened``; with periodic leads they are not looked for, and it is
#: 0 unless a node of the energy rule hit one: docs/bound_states.md). With ``channels``
#: n > 0, T_1 ... T_n follow: the largest transmission eigenvalues at E_F.
VECTOR = ("G_EF", "G_V", "Frec_x", "Frec_y", "Frec_z", "Frec_max", "work", "negf_s",
          "n_energies", "Feam_x", "Feam_y", "Feam_z", "dX_site", "n_device", "V",
          "V_protocol", "I_uA", "P_uW", "in_compliance", "n_unbroadened")
#: LAMMPS's per-atom arrays of rows (double **) among those the bath reads.
ROW_ARRAYS = ("x", "v", "f")
#: The fix external holding the electronic bath's per-step forces (bath on).
BATH_FIX = "bath"
#: Seconds of wall time between progress lines on stderr.
PROGRESS_EVERY = 15.0
#: Seconds an erring rank waits for the others before aborting without crash data.
CRASH_WAIT = 10.0


def vector_names(params: dict) -> tuple:
    """The fix's global vector and the time series' columns of a run: :data:`VECTOR`, the
    ``channels`` transmission eigenvalues and, with the bath on, its columns
    (:data:`lammps_recoil.bathmd.COLUMNS`)."""
    bath = BATH_COLUMNS if params.get("bath", "none") != "none" else ()
    return VECTOR + tuple(f"T_{k}" for k in range(1, params["channels"] + 1)) + bath


def series_header(params: dict) -> str:
    """First line of the time-series file (after the run header)."""
    return "step,time_ps," + ",".join(vector_names(params))


class RecoilCoupling:
    """State of the recoil forces in one LAMMPS instance (see module docstring)."""

    def __init__(self, lmp, params: dict):
        """Light setup, before minimization and warm-up: the fix's vector (for thermo
        output, zeros until :meth:`start`) and zero held forces. ``fix recoil`` and the
        other :data:`~lammps_recoil.params.DECK_NAMES` must exist."""
        self.lmp, self.p = lmp, params
        check_deck_names(lmp)
        keep_heap()
        self.comm = lammps_comm(lmp)
        self.rank = 0 if self.comm is None else self.comm.Get_rank()
        # a separate communicator for the crash report: an error may stop one rank while
        # the others wait in a collective call on self.comm
        self.crash_comm = None if self.comm is None else self.comm.Dup()
        if params["currents"] == "yes" and not lmp.has_id("fix", CURRENT_FIX):
            raise ValueError(f"currents yes needs the deck's fix {CURRENT_FIX} (fix "
                             f"{CURRENT_FIX} all property/atom {' '.join(CURRENT_NAMES)})")
        self.bath = None
        if params.get("bath", "none") != "none":
            if not lmp.has_id("fix", BATH_FIX):
                raise ValueError(f"bath {params['bath']}: the deck defines no fix {BATH_FIX} "
                                 "(fix external on the filament for the bath's forces)")
            self.bath = BathForces(params, self.comm, self.rank)
        n = len(vector_names(params))
        lmp.fix_external_set_vector_length(FIX_ID, n)
        self.vector = np.zeros(n)
        for i in range(n):                       # LAMMPS 2022 leaves the vector unset
            lmp.fix_external_set_vector(FIX_ID, i + 1, 0.0)
        self.started, self.finished, self.series, self.pending = False, False, None, None
        self._bath_local = None                  # (local IDs, filament rows, bath rows)
        self._calls, self._views = {}, {}        # LAMMPS arrays' numpy views (bath)
        self.tags = np.zeros(0, dtype=np.int64)
        self.held = np.zeros((0, 3))
        self.electrons = np.zeros((0, 5))

    def start(self) -> None:
        """The production begins (collective call): build the NEGF device from the current
        positions, restore a resumed run's state, open the time series (with the run
        header) and make the simulation time step * dt (see :func:`set_time`)."""
        lmp, params = self.lmp, self.p
        set_time(lmp)
        self.protocol = deck_protocol(params, params["every"] * lmp.extract_global("dt"))
        self.started = True
        self.dt = lmp.extract_global("dt")
        self.steps = deck_equal(lmp, "prod_steps")
        self.started_at, self.reported = time.time(), time.time()
        self.first_step = lmp.extract_global("ntimestep")
        if params["recoil"] == "no":           # plain EAM MD: zero forces, no time series
            return
        boxlo, boxhi, *_ = lmp.extract_box()
        self.box = np.array([boxhi[0] - boxlo[0], boxhi[1] - boxlo[1]])
        tags, types, x = self._gather(None)
        resume = params["resume"] == "yes"
        state = runstate.load_state(params["out"]) if resume else {}
        # a resumed run keeps a device that had widened before the restart
        device = "mobile" if "mobile" in (params["device"], str(state.get("device"))) \
            else params["device"]
        self.electrodes = measure_electrodes(x, types, self.box, tags, params["lattice"])
        self.sites = None
        if device == "filament":
            self.sites = ElectrodeSites(x, types, self.box, self.electrodes, tags)
        if self.bath is not None:
            self.bath_tags = self._bath_atoms(state, tags, types, x)
        self._build(device, tags, types, x)
        self.held = np.zeros((len(self.tags), 3))
        self.electrons = np.zeros((len(self.tags), 5))
        self.last_step = None
        self.work = 0.0
        if resume:
            self._restore(state)
            self._precision_note()
        if self.rank == 0:
            path = params["out"] + ".recoil.csv"
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            self.series = open(path, "a" if resume else "w")
            if not resume:
                for line in run_header(params, lmp.version()):
                    self.series.write(f"# {line}\n")
                self.series.write(series_header(params) + "\n")
            self.series.flush()

    def _bath_atoms(self, state, tags, types, x) -> np.ndarray:
        """The bath's atoms (IDs): a resumed run's saved ones, else the filament atoms in
        the zone bath_zlo..bath_zhi at the production's first step (named on stderr)."""
        lo, hi = self.p["bath_zlo"], self.p["bath_zhi"]
        if "bath_tags" in state:
            return state["bath_tags"]
        try:
            chosen = zone_tags(tags, types, x[:, 2], lo, hi, FILAMENT_TYPE)
        except ValueError as err:
            raise ValueError(f"at the production's first step, after minimization and "
                             f"warm-up: {err}; bounds halfway between the filament's layers "
                             "keep their atoms") from None
        if self.rank == 0:
            ids = chosen.tolist()
            zone = "" if (lo, hi) == (-np.inf, np.inf) else f" with {lo:g} <= z <= {hi:g} A"
            sys.stderr.write(f"lammps-recoil: the electronic bath acts on {len(ids)} filament "
                             f"atoms{zone}: IDs {ids[:20]}{' ...' if len(ids) > 20 else ''}\n")
            sys.stderr.flush()
        return chosen

    def _build(self, device, tags, types, x) -> None:
        """The NEGF system of ``device`` for all atoms (tags, types, positions)."""
        self.active_device = device
        self.system = system_from_types(x, types, self.box, ids=tags, device=device,
                                        sites=self.sites, electrodes=self.electrodes,
                                        comm=self.comm, **lead_options(self.p))
        mobile = np.isin(types, (FILAMENT_TYPE, ELECTRODE_TYPE))
        self.mobile_tags, self.mobile_types = tags[mobile], types[mobile]
        # device atoms and electrode atoms among the gathered mobile atoms (tag order)
        self.device = np.isin(types[mobile], check_device(device))
        self.electrode = types[mobile] == ELECTRODE_TYPE
        self.tags = self.mobile_tags[self.device]
        self.filament = types[mobile][self.device] == FILAMENT_TYPE
        self.last_x = self.system.positions.copy()      # (infinite leads: unwrapped)
        self.last_shift = np.zeros_like(self.last_x)    # v dt/2 at the last update
        # the bath's atoms among the device atoms (its coordinates, tag order)
        if self.bath is not None:
            self.bath_atoms = np.flatnonzero(np.isin(self.tags, self.bath_tags))

    def _precision_note(self) -> None:
        """Say where precision "mixed" solves this device in double all the same (a fresh
        run's data check says it before the run starts)."""
        note = self.system.precision_note(self.p["tol"], self.p["currents"] == "yes")
        if note and self.rank == 0:
            sys.stderr.write(f"lammps-recoil: note: {note}\n")
            sys.stderr.flush()

    def _repatch(self, mobile, x) -> np.ndarray:
        """New surface patches of the laterally infinite leads around the filament at
        ``x`` (unwrapped; ``mobile``: all mobile atoms as gathered), once the old ones no
        longer hold every lead site within its reach (collective call). The adaptive
        energy partitions are kept; the leads' Green's functions are computed again.
        Returns the filament's positions in the new system."""
        mobile = mobile.copy()
        mobile[self.device] = x
        partitions = self.system.energy_partitions()
        self.system = system_from_types(mobile, self.mobile_types, self.box,
                                        ids=self.mobile_tags, sites=self.sites,
                                        electrodes=self.electrodes, comm=self.comm,
                                        require_contact=False, **lead_options(self.p))
        self.system.set_energy_partitions(partitions)
        return self.system.positions.copy()

    def _widen(self, step, reason: str) -> None:
        """Make all mobile atoms the NEGF device (collective call): the electrodes are no
        longer ideal crystals. Held forces stay on their atoms."""
        held = dict(zip(self.tags.tolist(), self.held))
        tags, types, x = self._gather(None)
        self.sites = None
        self._build("mobile", tags, types, x)
        self.held = np.array([held.get(t, np.zeros(3)) for t in self.tags.tolist()])
        self.electrons = np.zeros((len(self.tags), 5))        # until this update's solve
        if self.rank == 0:
            sys.stderr.write(f"lammps-recoil: step {step}: {reason}; the NEGF device is now "
                             f"all {len(self.tags)} mobile atoms (device mobile)\n")
            sys.stderr.flush()
        self._precision_note()

    def _gather(self, wanted, velocities: bool = False):
        """Tags, types and positions of all atoms (or of types ``wanted``), by tag; with
        ``velocities``, their velocities as a fourth array."""
        lmp = self.lmp
        n = lmp.extract_setting("nlocal")
        arrays = [np.array(lmp.numpy.extract_atom("id")[:n], dtype=np.int64),
                  np.array(lmp.numpy.extract_atom("type")[:n]),
                  np.array(lmp.numpy.extract_atom("x")[:n], dtype=float)]
        if velocities:
            arrays.append(np.array(lmp.numpy.extract_atom("v")[:n], dtype=float))
        if wanted is not None:
            keep = (arrays[1][:, None] == np.asarray(wanted)).any(axis=1)   # few types: no isin
            arrays = [a[keep] for a in arrays]
        if self.comm is not None and self.comm.Get_size() > 1:
            parts = self.comm.allgather(arrays)
            arrays = [np.concatenate([p[i] for p in parts]) for i in range(len(arrays))]
        order = np.argsort(arrays[0])
        return tuple(a[order] for a in arrays)

    def _snapshot(self, step) -> dict:
        return dict(step=step, tags=self.tags, held=self.held, electrons=self.electrons,
                    last_x=self.last_x, last_shift=self.last_shift, work=self.work, vector=self.vector,
                    device=self.active_device,
                    **self.system.energy_partitions(),
                    **(self.bath.snapshot() if self.bath is not None else {}))

    def _restore(self, state) -> None:
        step = self.lmp.extract_global("ntimestep")
        saved = {t: n for n, t in enumerate(state["tags"].tolist())}
        if int(state["step"]) != step or not set(saved) <= set(self.tags.tolist()):
            raise ValueError(f"the recoil state ({runstate.state_path(self.p['out'])}, step "
                             f"{int(state['step'])}) does not match the restart (step {step})")
        if self.active_device != self.p["device"] and self.rank == 0:
            sys.stderr.write(f"lammps-recoil: the saved run had widened its NEGF device to all "
                             f"{len(self.tags)} mobile atoms (device mobile)\n")
        # held forces and last positions by tag (atoms new to a wider device: none held)
        rows = [saved.get(t) for t in self.tags.tolist()]
        self.held = np.array([state["held"][r] if r is not None else np.zeros(3)
                              for r in rows])
        self.electrons = np.array([state["electrons"][r] if r is not None else np.zeros(5)
                                   for r in rows])
        self.last_x = np.array([state["last_x"][r] if r is not None else x
                                for r, x in zip(rows, self.last_x)])
        shift = state.get("last_shift")           # (a state saved before it was kept: 0)
        self.last_shift = np.array([shift[r] if r is not None and shift is not None
                                    else np.zeros(3) for r in rows])
        self.work, self.vector = float(state["work"]), state["vector"]
        self.last_step = step
        self.system.set_energy_partitions(state)
        if self.bath is not None:
            self.bath.restore(state)

    def update(self, step: int) -> None:
        """Recompute the recoil forces from the current positions (collective call); before
        :meth:`start` (minimization, warm-up) and with ``recoil no`` the forces stay zero."""
        if not self.started or self.p["recoil"] == "no":
            return
        if self.finished:
            # a deck's tail at the last step (run 0, write_data) keeps the last forces; a
            # run past it would apply them unrecorded
            if step > self.finish_step:
                raise ValueError("a run after the deck's recoil_finish step: its recoil "
                                 "forces would act, but the time series and the restart "
                                 "state are closed; put every production run before "
                                 "recoil_finish (or unfix recoil before such a run)")
            return
        self._check_unchanged()
        t0 = time.perf_counter()
        if self.pending is not None and self.pending["step"] < step:
            # LAMMPS finished the restart file of that step: its state can be saved
            if self.rank == 0:
                runstate.save_state(self.p["out"], self.pending)
            self.pending = None
        tags, _, mobile, velocity = self._gather((FILAMENT_TYPE, ELECTRODE_TYPE), True)
        if len(tags) != len(self.mobile_tags) or np.any(tags != self.mobile_tags):
            lost = np.setdiff1d(self.mobile_tags, tags)
            raise ValueError(f"mobile atoms {lost[:10].tolist()} left the simulation")
        x = mobile[self.device]
        if step != self.last_step:
            # work of the held forces since the last update as velocity Verlet does it,
            # sum_k F . (x_k+1 - x_k-1) / 2 = F . (xbar - xbar_last), xbar_k = x_k - v dt/2
            # with LAMMPS's half-step velocity v_k-1/2 at post_force (minimum image in x, y)
            dx, _ = minimum_image(x - self.last_x, self.box)
            shift = 0.5 * self.dt * velocity[self.device]
            work = float(np.sum(self.held * (dx - shift + self.last_shift)))
            self.work += work
            infinite = self.p["leads"] == "infinite"
            if infinite:                  # the filament followed across the periodic box
                x = self.last_x + dx
            dx_site = 0.0
            if self.sites is not None:
                dx_site, off = self.sites.off_site(mobile[self.electrode])
                reason = (f"mobile electrode atom {off[0]} is {dx_site:.2f} A from its "
                          f"lattice site (> {SITE_TOLERANCE:.2f} A)" if off.size else "")
                if off.size and infinite:
                    raise ValueError(
                        f"step {step}: {reason}: the laterally infinite leads continue ideal "
                        "electrodes, and the NEGF device cannot widen to the mobile atoms "
                        "between them; the run stops here (its outputs so far are kept). "
                        "With -var leads periodic the device widens to all mobile atoms "
                        "and the run goes on")
                if off.size:
                    self._widen(step, reason)
                    x = mobile[self.device]
            if infinite and any(np.concatenate(lead.reach(x)).size
                                for lead in self.system.leads):
                x = self._repatch(mobile, x)
                if self.rank == 0:
                    sys.stderr.write(f"lammps-recoil: step {step}: the filament reached "
                                     "beyond the infinite leads' surface patches; new "
                                     "patches around it\n")
            self.system.update(x, self.tags)
            p = self.p
            dt = self.lmp.extract_global("dt")
            wanted = self.protocol.bias(step * dt)
            currents = p["currents"] == "yes"
            state = comply(lambda V: self.system.forces(V, p["beta"], model=p["model"],
                                                        tol=p["tol"], bond_currents=currents),
                           wanted, p["compliance"])
            res, V = state.result, state.applied
            self.held = np.where(self.filament[:, None], res.forces, 0.0)
            self.electrons = np.zeros((len(self.tags), 5))
            self.electrons[:, 0] = res.density
            if currents:
                flow = res.bond_currents
                self.electrons[:, 1:4] = flow.atom_vectors()
                self.electrons[:, 4] = flow.atom_throughput()
            fil = self.held[self.filament]
            channels = np.zeros(p["channels"])
            top = res.channels[:p["channels"]]
            channels[:len(top)] = top
            seconds = time.perf_counter() - t0
            bath = [] if self.bath is None else self._bath_update(step, work, V)
            self.vector = np.array([res.fermi_transmission, res.conductance, *fil.sum(axis=0),
                                    np.linalg.norm(fil, axis=1).max(initial=0.0), self.work,
                                    seconds, res.n_energies, *_eam_force(self.lmp, self.comm), dx_site,
                                    len(self.tags), V, wanted, res.current, res.current * V,
                                    float(state.limited), res.n_unbroadened, *channels,
                                    *bath])
            # the production's first forces are set between runs, where LAMMPS's velocities
            # are full-step ones: they give only the first half kick (x_-1 = x_0)
            first = self.last_step is None
            self.last_x, self.last_step = x, step
            self.last_shift = (np.zeros_like(x) if first
                               else 0.5 * self.dt * velocity[self.device])
            if self.series is not None:
                self.series.write(f"{step},{step * dt:.6f}," +
                                  ",".join(f"{v:.10g}" for v in self.vector) + "\n")
                self.series.flush()
                self._progress(step, dt)
            every = self.p["restart_every"]
            if every and (step % every == 0 or step == self.steps) and step > self.first_step:
                # (the production's last step too: finish writes its restart file)
                self.pending = self._snapshot(step)
        for i, v in enumerate(self.vector):
            self.lmp.fix_external_set_vector(FIX_ID, i + 1, float(v))

    def _bath_update(self, step: int, work: float, bias: float) -> list:
        """The bath at an NEGF update (collective call): new kernels at the applied bias
        every ``bath_every`` steps (and whenever none are held), and the update's
        :data:`BATH_COLUMNS`."""
        bath, dt = self.bath, self.lmp.extract_global("dt")
        res = None
        if bath.friction is None or step % self.p["bath_every"] == 0:
            mass = self.lmp.numpy.extract_atom("mass")
            res = bath.update_kernels(self.system, bias, self.bath_atoms,
                                      self.tags[self.bath_atoms],
                                      np.full(len(self.bath_atoms), float(mass[FILAMENT_TYPE])),
                                      step)
        elapsed = (step - self.last_step) * dt if self.last_step is not None else 0.0
        p_rec = work / elapsed if elapsed > 0 else 0.0
        return bath.diagnostics(res, self._kinetic_temperature(ELECTRODE_TYPE), p_rec, step)

    def _kinetic_temperature(self, atom_type: int) -> float:
        """Kinetic temperature (K) of the atoms of one type, sum m v^2 / (3 N k_B)."""
        lmp = self.lmp
        n = lmp.extract_setting("nlocal")
        types = np.asarray(lmp.numpy.extract_atom("type")[:n])
        v = np.asarray(lmp.numpy.extract_atom("v")[:n])[types == atom_type]
        mass = float(lmp.numpy.extract_atom("mass")[atom_type]) * MASS_UNIT
        sums = np.array([mass * float(np.sum(v * v)), 3.0 * len(v)])
        if self.comm is not None and self.comm.Get_size() > 1:
            sums = self.comm.allreduce(sums)
        return float(sums[0] / (sums[1] * K_B)) if sums[1] else 0.0

    def write_bath(self, step: int, fext) -> None:
        """The bath's forces of this step on this rank's local bath atoms into ``fext``
        (nlocal x 3; collective call: the bath atoms' velocities are gathered). Which
        local atoms are the bath's, and their rows among its coordinates,
        is kept while the local atom IDs stay the same (LAMMPS reorders and migrates atoms
        between neighbour-list builds only)."""
        lmp = self.lmp
        n = lmp.extract_setting("nlocal")
        fext[:n] = 0.0
        bath = self.bath
        if bath is None or bath.friction is None or not self.started:
            return
        tags = self._atom_view("id", n)
        local = self._bath_local
        if local is None or len(local[0]) != n or not np.array_equal(local[0], tags):
            mine = np.flatnonzero(np.isin(tags, bath.tags))
            rows = np.searchsorted(bath.tags, tags[mine])
            self._bath_local = local = (np.array(tags), mine, rows)
        _, mine, rows = local
        v = self._atom_view("v", n)[mine]
        if self.comm is not None and self.comm.Get_size() > 1:
            parts = self.comm.allgather((rows, v))
            rows_all = np.concatenate([p[0] for p in parts])
            v_all = np.concatenate([p[1] for p in parts])
        else:
            rows_all, v_all = rows, v
        if len(rows_all) != len(bath.tags):
            lost = np.setdiff1d(np.arange(len(bath.tags)), rows_all)
            raise ValueError(f"the bath's atoms {bath.tags[lost][:10].tolist()} left the "
                             "simulation")
        ordered = np.empty((len(bath.tags), 3))
        ordered[rows_all] = v_all
        forces = bath.forces(step, ordered, self.dt, self.p["every"])
        if self.pending is not None and self.pending["step"] == step:
            self.pending["bath_force"] = forces       # a resumed run applies it again
        fext[mine] = forces[rows]

    def _address(self, function: str, name: str) -> int | None:
        """Where the library call ``function(handle, name)`` finds its data (a double **
        array: where its rows are)."""
        call = self._calls.get(function)
        if call is None:
            # a function object of its own: the lammps module sets the shared one's restype
            # per call
            call = self._calls[function] = self.lmp.lib[function]
            call.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            call.restype = ctypes.c_void_p
        where = call(self.lmp.lmp, name.encode())
        if where and (function != "lammps_extract_atom" or name in ROW_ARRAYS):
            where = ctypes.cast(where, ctypes.POINTER(ctypes.c_void_p))[0]
        return where

    def _held_view(self, key: str, where, n: int, make) -> np.ndarray:
        """The numpy view ``make()`` of n rows of LAMMPS data at ``where``, kept while
        LAMMPS keeps the data there (the lammps module's numpy wrappers cost about 10 us a
        call, a fifth of the bath's time per step)."""
        held = self._views.get(key)
        if held is None or held[0] != (where, n):
            held = self._views[key] = ((where, n), make())
        return held[1]

    def _atom_view(self, name: str, n: int) -> np.ndarray:
        """The first n rows of LAMMPS's per-atom array ``name`` ("id" or "v")."""
        return self._held_view(name, self._address("lammps_extract_atom", name), n,
                               lambda: self.lmp.numpy.extract_atom(name)[:n])

    def bath_force_array(self) -> np.ndarray:
        """The bath's fix external force array (nlocal x 3) of this rank (deck route)."""
        n = self.lmp.extract_setting("nlocal")
        return self._held_view("bath", self._address("lammps_fix_external_get_force",
                                                     BATH_FIX), n,
                               lambda: self.lmp.numpy.fix_external_get_force(BATH_FIX))

    def _progress(self, step, dt) -> None:
        """A line on stderr every PROGRESS_EVERY seconds: time, G, force, ETA."""
        now = time.time()
        if now - self.reported < PROGRESS_EVERY:
            return
        self.reported = now
        eta = ""
        if self.steps and step > 0:
            left = (now - self.started_at) / step * max(self.steps - step, 0)
            eta = f"  ETA {int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}"
        total = f"/{self.steps * dt:g}" if self.steps else ""
        v = dict(zip(VECTOR, self.vector))
        sys.stderr.write(f"lammps-recoil: t = {step * dt:.2f}{total} ps  V = {v['V']:.3f} V  "
                         f"I = {v['I_uA']:.1f} uA  G = {v['G_EF']:.3f} G0  Frec_z = "
                         f"{v['Frec_z']:+.3f} eV/A  NEGF {v['negf_s']:.2f} s/update{eta}\n")
        sys.stderr.flush()

    def write_forces(self, fext) -> None:
        """Copy the held forces of this rank's local atoms into ``fext`` (nlocal x 3)."""
        lmp = self.lmp
        n = lmp.extract_setting("nlocal")
        tags = np.asarray(lmp.numpy.extract_atom("id")[:n])
        if len(self.tags) == 0:                     # before start: no forces
            fext[:n] = 0.0
            return
        row = np.searchsorted(self.tags, tags)
        row = np.clip(row, 0, len(self.tags) - 1)
        ours = self.tags[row] == tags
        forces = np.where(ours[:, None], self.held[row], 0.0)
        fext[:n] = forces
        frec = _custom_array(lmp, "d2_frec", n)
        if frec is not None:
            frec[:n] = forces
        if not lmp.has_id("fix", CURRENT_FIX):
            return
        electrons = np.where(ours[:, None], self.electrons[row], 0.0)
        _custom_array(lmp, "d_dn", n)[:n] = electrons[:, 0]
        if self.p["currents"] == "yes":
            _custom_array(lmp, "d2_jcur", n)[:n] = electrons[:, 1:4]
            _custom_array(lmp, "d_icur", n)[:n] = electrons[:, 4]

    def all_ranks_failed(self, wait: float = CRASH_WAIT) -> bool:
        """True once every rank has stopped with an error (within ``wait`` seconds)."""
        if self.crash_comm is None or self.crash_comm.Get_size() == 1:
            return True
        request, start = self.crash_comm.Ibarrier(), time.time()
        while time.time() - start < wait:
            if request.Test():
                return True
            time.sleep(0.01)
        return False

    def write_crash_data(self) -> str:
        """All atoms' positions and velocities as a LAMMPS data file (collective call on
        ``crash_comm``)."""
        lmp = self.lmp
        n = lmp.extract_setting("nlocal")
        part = (np.array(lmp.numpy.extract_atom("id")[:n]),
                np.array(lmp.numpy.extract_atom("type")[:n]),
                np.array(lmp.numpy.extract_atom("x")[:n]),
                np.array(lmp.numpy.extract_atom("v")[:n]))
        parts = [part] if self.crash_comm is None else self.crash_comm.gather(part)
        path = self.p["out"] + ".crash.data"
        if self.rank == 0:
            tags, types, x, v = (np.concatenate([p[i] for p in parts]) for i in range(4))
            order = np.argsort(tags)
            lo, hi, *_ = lmp.extract_box()
            lines = [f"LAMMPS data file: lammps-recoil state at step "
                     f"{lmp.extract_global('ntimestep')} when the run stopped", "",
                     f"{len(tags)} atoms", f"{int(types.max())} atom types", ""]
            lines += [f"{lo[d]:.10f} {hi[d]:.10f} {a}lo {a}hi" for d, a in enumerate("xyz")]
            lines += ["", "Atoms # atomic", ""]
            lines += [f"{tags[i]} {types[i]} {x[i, 0]:.10f} {x[i, 1]:.10f} {x[i, 2]:.10f}"
                      for i in order]
            lines += ["", "Velocities", ""]
            lines += [f"{tags[i]} {v[i, 0]:.10f} {v[i, 1]:.10f} {v[i, 2]:.10f}" for i in order]
            with open(path, "w") as fh:
                fh.write("\n".join(lines) + "\n")
        return path

    def _check_unchanged(self) -> None:
        """Refuse what a deck may change between its runs but the production fixes at its
        start: the time step (time_ps, the protocol's V(t) and the restart steps assume one)
        and the bias V (recorded in the run header; a bias that changes in time is a
        protocol)."""
        lmp = self.lmp
        dt = lmp.extract_global("dt")
        if dt != self.dt:
            raise ValueError(f"the time step changed from {self.dt} to {dt} ps during the "
                             "production: time_ps, the bias protocol and the restart state "
                             "assume one time step; set timestep before recoil_start")
        text = deck_text(lmp, "V")
        if text is not None and BY_NAME["V"].value(text) != self.p["V"]:
            raise ValueError(f"the deck's V changed from {self.p['V']:g} to {text} V during "
                             "the production: the bias is set once, at its start (the run "
                             "header records it); for a bias that changes in time use -var "
                             "protocol ramp, triangle, sine, pulse or file (docs/protocols.md)")

    def finish(self) -> None:
        """After the production run (collective call): the recoil state of its last
        restart file is saved, and, when the production ended at an NEGF update between
        restart steps, a restart file of that last step is written with its state, so that
        a resume (to extend the run) continues from the end, not from the restart before
        it; a production that ends between updates says which steps a resume repeats."""
        out, now = self.p["out"], self.lmp.extract_global("ntimestep")
        step = None if self.pending is None else int(self.pending["step"])
        if step is not None and step == now and not os.path.exists(f"{out}.restart.{step}"):
            self.lmp.command(f"write_restart {out}.restart.{step}")
        if step is not None and self.rank == 0 and os.path.exists(f"{out}.restart.{step}"):
            runstate.save_state(out, self.pending)
        if self.p["restart_every"] and self.p["recoil"] == "yes" and step != now \
                and self.rank == 0:
            last = "no restart file" if step is None else f"its last restart file (step {step})"
            sys.stderr.write(f"lammps-recoil: note: the production ended at step {now}, after "
                             f"{last} and between NEGF updates: a resume to extend it "
                             "continues from that restart file and repeats the steps after "
                             "it\n")
        self.pending = None
        self.finished, self.finish_step = True, self.lmp.extract_global("ntimestep")
        self.close()

    def close(self) -> None:
        if self.series is not None:
            self.series.close()
            self.series = None


def _eam_force(lmp, comm) -> list:
    """The EAM force on the filament (eV/A): the sum of the deck's per-atom ``fix eamf``
    (store/force on the filament group, zero elsewhere; :data:`~lammps_recoil.params.
    DECK_NAMES`) over the atoms of all ranks (collective call). Read from the fix itself,
    valid between runs, where a ``compute reduce`` of it may still point at a fix that a
    deck's ``unfix``/``fix`` moved (until the next run initializes it)."""
    from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY
    n = lmp.extract_setting("nlocal")
    f = lmp.numpy.extract_fix(EAM_FIX, LMP_STYLE_ATOM, LMP_TYPE_ARRAY, nrow=n, ncol=3)
    total = np.zeros(3) if n == 0 or f is None else np.asarray(f[:n], dtype=float).sum(axis=0)
    if comm is not None and comm.Get_size() > 1:
        total = comm.allreduce(total)
    return [float(v) for v in total]


def set_time(lmp) -> None:
    """Make the simulation time (dump ``ITEM: TIME``, ``time`` in thermo) step * dt.

    ``reset_timestep 0`` after the warm-up resets the time too in LAMMPS since 2022 but
    not in 29Sep2021 (Debian 12's ``lmp``, whose ``reset_timestep`` has no ``time``
    keyword): the library's pointers to ``update->atime`` and ``atimestep`` are set
    directly, on both routes, so that the dump's times are the time series' ``time_ps``.
    """
    lib = lmp.lib
    lib.lammps_extract_global.restype = ctypes.c_void_p
    step = lmp.extract_global("ntimestep")
    atime = lib.lammps_extract_global(lmp.lmp, b"atime")
    atimestep = lib.lammps_extract_global(lmp.lmp, b"atimestep")
    if not (atime and atimestep):
        raise RuntimeError("this LAMMPS library does not expose atime and atimestep")
    ctypes.cast(atime, ctypes.POINTER(ctypes.c_double))[0] = step * lmp.extract_global("dt")
    ctypes.cast(atimestep, ctypes.POINTER(ctypes.c_int64))[0] = step


def _custom_array(lmp, name, n):
    """The per-atom array ``name`` of a fix property/atom (for dumps: d2_ names of 3
    columns, d_ names of one), if defined."""
    try:
        from lammps import LAMMPS_DOUBLE, LAMMPS_DOUBLE_2D
        if name.startswith("d2_"):
            return lmp.numpy.extract_atom(name, LAMMPS_DOUBLE_2D, nelem=n, dim=3)
        return lmp.numpy.extract_atom(name, LAMMPS_DOUBLE, nelem=n)
    except Exception:
        return None
