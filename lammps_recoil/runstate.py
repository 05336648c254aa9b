"""Run bookkeeping: output files, the saved recoil state, and resuming a killed run.

A production run writes LAMMPS restart files ``<out>.restart.<step>`` every
``restart_every`` steps (a multiple of the NEGF interval). At each such step the coupling
keeps a snapshot of its own state (held forces, positions of the last update, work, the
adaptive energy partitions); at its next update LAMMPS has finished writing that restart
file, and the snapshot is saved atomically to ``<out>.recoil_state.npz``. So the state
file always names a complete restart file and holds the recoil state of the same step.

Resuming from step S truncates the time series to the rows up to S (the row of step S was
written by the update at S, whose forces the state restores) and the dump to the frames
before S (LAMMPS writes frame S again when the resumed run starts), then continues with
``run N upto``: every step appears once in both files.
"""
from __future__ import annotations

import os

import numpy as np

SUFFIXES = (".recoil.csv", ".dump", ".log", ".recoil_state.npz")


def state_path(out: str) -> str:
    return out + ".recoil_state.npz"


def restart_files(out: str) -> list:
    """The restart files ``<out>.restart.<step>`` that exist, by step."""
    folder, stem = os.path.split(out + ".restart.")
    names = [n for n in os.listdir(folder or ".") if n.startswith(stem)
             and n[len(stem):].isdigit()]
    return [os.path.join(folder, n) for n in sorted(names, key=lambda n: int(n[len(stem):]))]


def check_fresh(out: str, overwrite: bool) -> None:
    """Refuse to overwrite the outputs of an earlier run (its restart files included)
    unless asked; asked, remove them all, so that no restart file of the earlier run
    stays beside the new run's."""
    if not os.path.isdir(os.path.dirname(out) or "."):
        return
    found = [out + s for s in SUFFIXES if os.path.exists(out + s)] + restart_files(out)
    if found and not overwrite:
        more = f" and {len(found) - 4} more" if len(found) > 4 else ""
        raise ValueError(f"outputs of an earlier run exist ({', '.join(found[:4])}{more}): "
                         "pass -var overwrite yes (lammps-recoil run --overwrite) to replace "
                         "them, or -var resume yes (--resume) to continue that run")
    if overwrite:
        for path in found:
            os.remove(path)


def save_state(out: str, state: dict) -> None:
    """Write the recoil state atomically (a kill leaves the previous file intact)."""
    tmp = state_path(out) + ".tmp.npz"
    np.savez(tmp, **state)
    os.replace(tmp, state_path(out))


def load_state(out: str) -> dict:
    path = state_path(out)
    if not os.path.exists(path):
        raise ValueError(f"nothing to resume: {path} does not exist (the run wrote no "
                         "restart state yet; restart files come every restart_every steps): "
                         "start it again with -var overwrite yes (lammps-recoil run "
                         "--overwrite)")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def resume_step(out: str) -> int:
    """Step of the last complete restart file with a saved recoil state."""
    step = int(load_state(out)["step"])
    if not os.path.exists(f"{out}.restart.{step}"):
        raise ValueError(f"restart file {out}.restart.{step} named by the recoil state is "
                         "missing")
    return step


def truncate_outputs(out: str, step: int) -> None:
    """Cut the time series after ``step`` and the dump before ``step`` (see module doc)."""
    series = out + ".recoil.csv"
    if os.path.exists(series):
        with open(series) as fh:
            lines = fh.readlines()
        keep = [ln for ln in lines if not ln.split(",", 1)[0].isdigit()   # the headers
                or int(ln.split(",", 1)[0]) <= step]
        with open(series, "w") as fh:
            fh.writelines(keep)
    dump = out + ".dump"
    if os.path.exists(dump):
        with open(dump, "r+b") as fh:
            cut, frame_start, offset, timed, previous = None, 0, 0, False, b""
            for line in fh:
                if line.strip() == b"ITEM: TIME":        # dump_modify time yes: frame start
                    frame_start, timed = offset, True
                elif line.startswith(b"ITEM: TIMESTEP"):
                    if not timed:
                        frame_start = offset
                    timed = False
                elif previous.startswith(b"ITEM: TIMESTEP") and int(line) >= step:
                    cut = frame_start
                    break
                previous = line
                offset += len(line)
            if cut is not None:
                fh.truncate(cut)
