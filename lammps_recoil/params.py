"""The deck's parameters: the variables the Python side reads by name, and the other names.

:data:`PARAMS` is the one list of the deck variables the Python side reads, each a
:class:`Param` with its default, what it accepts and what it means. A new parameter is one
``variable NAME index DEFAULT`` line in the deck and one :class:`Param` line appended to
:data:`PARAMS` (``run=True`` if it defines the run: it then goes into the run header and
must match on resume). :func:`parse_params` validates them, each by its own entry, before
anything runs; an error names the parameter, the value found and what is accepted.

The other names the Python side and the deck share (computes, fixes, equal-style variables)
are :data:`DECK_NAMES`; :func:`check_deck_names` refuses a deck that lacks one.
"""
from __future__ import annotations

import ctypes
import difflib
import math
import os
import re
import time
from dataclasses import dataclass
from typing import Callable

from .builders import DEVICES, LATTICES, LEADS, check_leads
from .forces import MODELS
from .leads import DEFAULT_ETA, DEFAULT_KMESH
from .protocols import KINDS, POLARITIES
from .system import PRECISIONS

#: Values of the ``bath`` parameter (lammps_recoil.bathmd).
BATHS = ("none", "friction", "full")
#: The default of ``Te``, as the deck writes it: the phonon temperature T.
TE_DEFAULT = "${T}"


def integer(text: str) -> int:
    """An integer written with digits ("100"; not "1e2" or "100.0", which LAMMPS, reading
    the same text for its own integer parameters, refuses)."""
    if not re.fullmatch(r"\s*[+-]?\d+\s*", text):
        raise ValueError(text)
    return int(text)


def _one_of(choices):
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text
    return parse


_yes_no = _one_of(("yes", "no"))


def _real(accept: Callable[[float], bool]):
    def parse(text: str) -> float:
        value = float(text)
        if not accept(value):
            raise ValueError(text)
        return value
    return parse


def _bound(sign: float):
    """A bound of a zone along z (A): a finite number, or INF (as in a LAMMPS region
    block: that side unbounded, ``sign`` x infinity; a signed INF is refused)."""
    def parse(text: str) -> float:
        if text.strip().upper() == "INF":
            return sign * math.inf
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text)
        return value
    return parse


def _count(least: int, most: int | None = None):
    def parse(text: str) -> int:
        value = integer(text)
        if value < least or (most is not None and value > most):
            raise ValueError(text)
        return value
    return parse


#: The largest seed: LAMMPS's Marsaglia generator (velocity, fix langevin) takes seeds up to
#: 900000000, and a resumed run's Langevin seed is seed + resume step.
SEED_MAX = 800000000


@dataclass(frozen=True)
class Param:
    """One deck variable the Python side reads (an ``index`` or ``string`` variable).

    ``parse`` turns the deck's text into the value (raising ValueError if it is not one of
    the values ``accepts`` describes); ``run``: the parameter defines the run (run header,
    compared on resume); ``file``: it names an input file that must exist.
    """

    name: str
    default: str
    parse: Callable[[str], object]
    accepts: str
    help: str
    run: bool = False
    file: bool = False

    def value(self, text) -> object:
        """The parsed value of ``text``, or ValueError naming the parameter, the value found
        and what is accepted."""
        try:
            return self.parse(str(text))
        except (ValueError, OverflowError):
            raise ValueError(f"{self.name} ({self.help}) must be {self.accepts}, "
                             f"got {str(text)!r}") from None


#: The deck variables the Python side reads, by name, with the default used when a deck
#: does not define one. A new parameter: one line appended here.
PARAMS = (
    Param("V", "1.0", _real(math.isfinite), "a finite number of volts",
          "bias", run=True),
    Param("beta", "0.5", _real(lambda b: 0.0 <= b <= 1.0), "in [0, 1]",
          "voltage-drop asymmetry", run=True),
    Param("tol", "1e-2", _real(lambda t: t > 0), "> 0 eV/A",
          "energy-integral tolerance", run=True),
    Param("model", "paper", _one_of(MODELS), f"one of {', '.join(sorted(MODELS))}",
          "force model", run=True),
    Param("T", "300.0", _real(lambda t: math.isfinite(t) and t >= 0), ">= 0 K",
          "Langevin temperature", run=True),
    Param("seed", "58213", _count(1, SEED_MAX), f"an integer from 1 to {SEED_MAX}",
          "Langevin and velocity seed", run=True),
    Param("device", "filament", _one_of(DEVICES), f"one of {', '.join(sorted(DEVICES))}",
          "NEGF device", run=True),
    Param("every", "100", _count(1), "an integer >= 1 step",
          "NEGF update interval", run=True),
    Param("lattice", "auto", _one_of(LATTICES),
          "auto (measured from the frozen layers), 001 or 111", "electrode orientation",
          run=True),
    Param("kpoints", "1", _count(1), "an integer >= 1 (an n x n grid)",
          "transverse Bloch vectors of the periodic device", run=True),
    Param("lead_eta", "0", _real(lambda e: math.isfinite(e) and e >= 0), ">= 0 eV",
          "broadening of the periodic leads: > 0 turns their flat bands into Lorentzians",
          run=True),
    Param("leads", "periodic", _one_of(LEADS), " or ".join(LEADS),
          "the electrons' leads: the box's periodic electrodes, or laterally infinite "
          "ideal half-crystals around the filament alone", run=True),
    Param("inf_kmesh", str(DEFAULT_KMESH), _count(1), "an integer >= 1 (an n x n mesh)",
          "zone mesh of the laterally infinite leads", run=True),
    Param("inf_eta", str(DEFAULT_ETA), _real(lambda e: math.isfinite(e) and e > 0),
          "> 0 eV", "broadening of the laterally infinite leads", run=True),
    Param("precision", "mixed", _one_of(PRECISIONS), " or ".join(PRECISIONS),
          "mixed: large devices' recursive Green's function in single precision "
          "(docs/large.md); double: all in double", run=True),
    Param("recoil", "yes", _yes_no, "yes or no", "no: plain EAM MD", run=True),
    Param("data", "inputs/filament.data", str, "a file name", "LAMMPS data file",
          run=True, file=True),
    Param("potential", "potentials/Cu_Sheng2011.eam.alloy", str, "a file name",
          "EAM potential file", run=True, file=True),
    Param("out", "runs/filament", str, "a path prefix", "prefix of the outputs"),
    Param("restart_every", "10000", _count(0), "an integer >= 0 steps",
          "production steps between restart files, 0: none"),
    Param("resume", "no", _yes_no, "yes or no", "continue a killed run"),
    Param("overwrite", "no", _yes_no, "yes or no", "replace an earlier run's outputs"),
    # the applied bias V(t) (lammps_recoil.protocols; ``constant`` applies V throughout),
    # the current compliance and the optional transport diagnostics
    Param("protocol", "constant", _one_of(KINDS), f"one of {', '.join(KINDS)}",
          "bias protocol", run=True),
    Param("V_min", "0.0", _real(math.isfinite), "a finite number of volts",
          "lower bias of a sweep or sine, base of a pulse train", run=True),
    Param("V_max", "1.0", _real(math.isfinite), "a finite number of volts",
          "upper bias of a sweep or sine, height of a pulse", run=True),
    Param("rate", "0.1", _real(lambda r: math.isfinite(r) and r > 0), "> 0 V/ps",
          "sweep rate of a ramp or triangle", run=True),
    Param("cycles", "1", _count(1), "an integer >= 1", "triangle and sine cycles", run=True),
    Param("period", "10.0", _real(lambda t: math.isfinite(t) and t > 0), "> 0 ps",
          "sine period, pulse repetition period", run=True),
    Param("width", "1.0", _real(lambda t: math.isfinite(t) and t > 0), "> 0 ps",
          "pulse width", run=True),
    Param("pulses", "1", _count(1), "an integer >= 1", "number of pulses", run=True),
    Param("polarity", "same", _one_of(POLARITIES), f"one of {', '.join(POLARITIES)}",
          "pulse signs: same, or alternate (SET and RESET pulses)", run=True),
    Param("vfile", "none", str, "a file name", "time (ps), voltage (V) file of protocol "
          "file", run=True),
    Param("compliance", "0", _real(lambda c: math.isfinite(c) and c >= 0),
          ">= 0 uA (0: none)", "current compliance", run=True),
    Param("channels", "0", _count(0), "an integer >= 0",
          "transmission eigenvalues at E_F in the time series", run=True),
    Param("currents", "no", _yes_no, "yes or no",
          "bond currents: per-atom current columns in the dump", run=True),
    Param("bath", "none", _one_of(BATHS), f"one of {', '.join(BATHS)}",
          "electronic bath on the filament: friction, friction and Berry force (full), "
          "with the current-induced noise", run=True),
    Param("Te", TE_DEFAULT, _real(lambda t: math.isfinite(t) and t >= 0), ">= 0 K",
          "electron temperature of the bath (default: T)", run=True),
    Param("bath_every", "1000", _count(1), "an integer >= 1 step, a multiple of every",
          "steps between computations of the bath's kernels", run=True),
    Param("bath_scale", "1", _real(lambda f: math.isfinite(f) and f > 0), "> 0",
          "factor on the bath's friction and noise (1: physical)", run=True),
    Param("bath_zlo", "INF", _bound(-1.0), "a number (A) or INF (no lower bound)",
          "the bath acts on the filament atoms with z >= bath_zlo", run=True),
    Param("bath_zhi", "INF", _bound(1.0), "a number (A) or INF (no upper bound)",
          "the bath acts on the filament atoms with z <= bath_zhi", run=True),
    Param("filament_thermostat", "yes", _yes_no, "yes or no",
          "the Langevin thermostat of the production acts on the filament too", run=True),
    Param("production_ps", "150", _real(lambda t: math.isfinite(t) and t >= 0), ">= 0 ps",
          "production time (the bias protocol is checked against it)"),
    # read by LAMMPS alone, checked here so that a bad value stops the run before it starts
    Param("warmup_ps", "5", _real(lambda t: math.isfinite(t) and t >= 0), ">= 0 ps",
          "warm-up time at T without bias"),
    Param("thermo_every", "100", _count(0), "an integer >= 0 steps", "thermo output interval"),
    Param("dump_every", "1000", _count(1), "an integer >= 1 step", "dump interval"),
)
#: The parameters by name.
BY_NAME = {p.name: p for p in PARAMS}
#: Their defaults by name (those of inputs/in.filament).
DEFAULTS = {p.name: p.default for p in PARAMS}
#: Parameters that define a run: written to the header of the log and the time series
#: and compared on resume.
RUN_PARAMS = tuple(p.name for p in PARAMS if p.run)
#: Parameters naming input files, checked to exist before any run.
FILES = tuple(p.name for p in PARAMS if p.file)

#: The time step (ps) of LAMMPS metal units, which the decks keep; a deck that sets another
#: before ``recoil_check`` has its protocol checked against it.
DEFAULT_DT = 0.001
#: The fix external holding the recoil forces.
FIX_ID = "recoil"
#: The deck's fix store/force on the filament group (its EAM force, the Feam columns).
EAM_FIX = "eamf"
#: Other names the Python side depends on, defined by the deck (kind, name, role); a deck
#: lacking one is refused by :func:`check_deck_names` with the missing name.
DECK_NAMES = (("variable", "prod_steps", "production steps (progress and ETA)"),
              ("fix", EAM_FIX, "fix store/force on the filament: its EAM force (Feam columns)"),
              ("fix", "frec", "fix property/atom d2_frec 3: per-atom recoil force for dumps"),
              ("fix", FIX_ID, "fix external holding the recoil forces"))
#: Deck variable set before the atoms are read: the step a resumed run continues from (0
#: for a fresh run), e.g. for the Langevin seed.
RESUME_STEP = "resume_step"
#: The deck variable holding the dump's current columns (set by the check step).
CURRENT_COLUMNS_VARIABLE = "jcols"
#: Deck variables that lammps-recoil sets itself (``-var`` may not): the resume step, the
#: dump's current columns, the route.
SET_INSIDE = (RESUME_STEP, CURRENT_COLUMNS_VARIABLE, "route")


def parse_params(**named) -> dict:
    """Validate the deck's parameters (strings from LAMMPS variables), by name.

    Parameters not given take their :data:`PARAMS` default. Returns all of them parsed
    (numbers as numbers, words as text).
    """
    unknown = sorted(set(named) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown recoil parameter {unknown[0]}; known: "
                         f"{', '.join(BY_NAME)}")
    named = dict(named)
    if named.get("Te", TE_DEFAULT) == TE_DEFAULT:
        named["Te"] = named.get("T", BY_NAME["T"].default)
    p = {param.name: param.value(named.get(param.name, param.default)) for param in PARAMS}
    problems = []
    if p["restart_every"] % p["every"]:
        problems.append(f"restart_every must be 0 or a multiple of every ({p['every']} "
                        f"steps), got {p['restart_every']}")
    if p["bath"] != "none":
        if p["bath_every"] % p["every"]:
            problems.append(f"bath_every must be a multiple of every ({p['every']} steps), "
                            f"got {p['bath_every']}")
        if p["recoil"] == "no":
            problems.append(f"bath {p['bath']} needs the NEGF (recoil yes); got recoil no")
        if p["bath_zlo"] >= p["bath_zhi"]:
            problems.append(f"bath_zlo must be below bath_zhi, got bath_zlo "
                            f"{p['bath_zlo']:g} A and bath_zhi {p['bath_zhi']:g} A")
    elif not (p["bath_zlo"] == -math.inf and p["bath_zhi"] == math.inf):
        problems.append(f"bath_zlo and bath_zhi choose the electronic bath's atoms; with "
                        f"bath none they would do nothing (got bath_zlo {p['bath_zlo']:g}, "
                        f"bath_zhi {p['bath_zhi']:g} A): set -var bath friction or full")
    if problems:
        raise ValueError("; ".join(problems))
    check_leads(p["leads"], p["device"], p["lead_eta"], p["kpoints"])
    return p


def check_files(p: dict) -> None:
    """Refuse parsed parameters ``p`` whose input files (:data:`FILES`) do not exist, naming
    the path and the working directory it is relative to."""
    for label in FILES:
        if os.path.isdir(p[label]):
            raise ValueError(f"{label} file {p[label]} is a directory, not a file")
        if not os.path.isfile(p[label]):
            raise ValueError(f"missing {label} file: {p[label]} (paths are relative to the "
                             f"working directory {os.getcwd()})")


def check_repeated_vars(pairs) -> None:
    """Refuse a ``-var`` name given twice ((name, value) pairs): LAMMPS keeps the first
    value and ignores the second without a word."""
    seen = {}
    for name, value in pairs:
        if name in seen:
            raise ValueError(f"-var {name} is given twice ({seen[name]} and {value}): LAMMPS "
                             "would keep the first and ignore the second; give it once")
        seen[name] = value


def check_var_names(names, defined, source: str, computed=(), settable=None) -> None:
    """Refuse ``-var`` names that are not among ``defined`` (the variables ``source``
    defines or uses), naming each with the closest of ``settable`` (default ``defined``):
    a misspelled variable would otherwise be ignored silently. ``computed``: variables
    ``source`` computes itself (equal, string, ... styles), which LAMMPS refuses to
    redefine over a ``-var``."""
    settable = defined if settable is None else settable
    unknown = [n for n in dict.fromkeys(names) if n not in defined]
    inner = [n for n in unknown if n in computed]
    if inner:
        raise ValueError(f"-var {', '.join(inner)}: {source} and lammps-recoil set "
                         f"{'it' if len(inner) == 1 else 'them'} from the parameters; set "
                         f"the parameters instead (-var takes: {', '.join(sorted(defined))})")
    if not unknown:
        return
    close = {n: difflib.get_close_matches(n, sorted(settable), n=3, cutoff=0.6)
             for n in unknown}
    words = "; ".join(f"-var {n}" + (f" (closest: {', '.join(c)})" if c else "")
                      for n, c in close.items())
    every = "" if all(close.values()) else f"; its variables: {', '.join(sorted(settable))}"
    raise ValueError(f"{source} defines no variable {', '.join(unknown)} ({words}): a -var "
                     f"that the deck does not use would be ignored{every}")


def lead_options(p: dict) -> dict:
    """The keywords of :func:`~lammps_recoil.builders.system_from_types` (and of
    :func:`~lammps_recoil.check.check_data`) that the parsed parameters ``p`` choose: the
    leads and their k points and broadenings, and the solver's precision."""
    return dict(leads=p["leads"], kpoints=p["kpoints"], lead_eta=p["lead_eta"] or None,
                inf_kmesh=p["inf_kmesh"], inf_eta=p["inf_eta"], precision=p["precision"])


def deck_text(lmp, name):
    """The text of the deck's ``index`` or ``string`` variable ``name``, or None.

    Read through ``lammps_extract_variable`` as a C string: the 2025 Python module calls it
    that way with ``LMP_VAR_STRING``, and the 2021-2022 module has no such constant but
    its library returns the same pointer (equal-style variables: :func:`deck_equal`).
    """
    if not lmp.has_id("variable", name):
        return None
    lib = lmp.lib
    lib.lammps_extract_variable.restype = ctypes.c_char_p
    value = lib.lammps_extract_variable(lmp.lmp, name.encode(), None)
    return None if value is None else value.decode()


def deck_equal(lmp, name):
    """The value of the deck's equal-style variable ``name`` as an integer, or None."""
    if not lmp.has_id("variable", name):
        return None
    value = lmp.extract_variable(name)
    return None if value is None else int(value)


def deck_values(lmp) -> dict:
    """The deck's :data:`PARAMS` by name (defaults for the ones it does not define)."""
    return {name: v if (v := deck_text(lmp, name)) is not None else default
            for name, default in DEFAULTS.items()}


def check_deck_names(lmp) -> None:
    """Refuse a deck that lacks one of :data:`DECK_NAMES`, naming it."""
    for kind, name, role in DECK_NAMES:
        if not lmp.has_id(kind, name):
            raise ValueError(f"the deck defines no {kind} {name} ({role}); lammps-recoil "
                             f"needs it (params.DECK_NAMES)")


def vfile_digest(params: dict) -> str | None:
    """SHA-256 (hex) of the bias protocol's time-voltage file, or None without one: the
    header records the file's contents, not only its name, for resuming."""
    if params.get("protocol") != "file":
        return None
    import hashlib
    with open(params["vfile"], "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def start_time() -> str:
    """The current UTC time as the run header writes it."""
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def run_header(params: dict, lammps_version=None) -> list:
    """``name = value`` lines of the run's parameters and versions (:data:`RUN_PARAMS`;
    with a protocol file, its :func:`vfile_digest`)."""
    from . import __version__
    lines = [f"{name} = {params[name]}" for name in RUN_PARAMS]
    if (digest := vfile_digest(params)) is not None:
        lines.append(f"vfile_sha256 = {digest}")
    lines += [f"lammps = {lammps_version}", f"lammps_recoil = {__version__}",
              f"start = {params.get('start') or start_time()}",
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
