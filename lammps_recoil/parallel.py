"""What a process that repeats NEGF updates needs: LAMMPS's MPI communicator as mpi4py, and
the heap kept between updates (:func:`keep_heap`)."""
from __future__ import annotations

import ctypes
import os

#: glibc malloc settings of :func:`keep_heap` (bytes): arrays up to this size come from the
#: heap (glibc's largest allowed value) ...
MMAP_THRESHOLD = 32 * 2**20
#: ... and freed heap memory up to this size stays in the process.
TRIM_THRESHOLD = 2**30
#: Environment variables by which a user sets these glibc settings; they are then kept.
MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
              "GLIBC_TUNABLES")


def keep_heap() -> bool:
    """Keep memory freed by one NEGF update for the next (glibc only; the whole process).

    glibc serves arrays above a threshold (128 KB at start, then adapted to the arrays
    freed) with fresh pages from the system and returns freed heap memory above another,
    so an update whose arrays add up to tens of MB faults all their pages in again, every
    time, and spends system time doing so (measured with ``benchmarks/bench_heap.py``:
    docs/performance.md, "Memory between updates"). With the thresholds fixed at
    :data:`MMAP_THRESHOLD` and :data:`TRIM_THRESHOLD` the pages stay in the process, which
    keeps the memory of the largest update (what the run needs anyway). Nothing is changed
    when one of :data:`MALLOC_ENV` is set (the user's own settings) or the C library is not
    glibc. Returns whether the settings were applied.
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


def lammps_comm_or_none(lmp):
    """LAMMPS's communicator as mpi4py if at hand, else None (to abort after an error)."""
    try:
        return lmp.get_mpi_comm()
    except Exception:
        return None
