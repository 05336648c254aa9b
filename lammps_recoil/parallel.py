"""What a process that repeats NEGF updates needs: LAMMPS's MPI communicator as mpi4py, and
the heap kept between updates (:func:`keep_heap`)."""
from __future__ import annotations

import ctypes
import functools
import itertools
import os
import re
import sys

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


#: Environment variables that set the BLAS threads of each process, in the order OpenBLAS
#: reads them (the package sets OMP_NUM_THREADS=1 unless one is given).
THREAD_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def blas_threads() -> tuple[str, int]:
    """The variable that sets the BLAS threads of this process and the threads it gives:
    the first of THREAD_ENV whose value, read as OpenBLAS reads it (its leading integer),
    is a positive count (OpenBLAS skips one that is not). Where a variable is set but none
    gives a count, OpenBLAS takes a thread per core: (that variable, os.cpu_count()).
    With none set, ("OMP_NUM_THREADS", 1)."""
    invalid = None
    for name in THREAD_ENV:
        value = os.environ.get(name, "").strip()
        if value:
            count = _thread_count(value)
            if count > 0:
                return name, count
            invalid = invalid or name
    if invalid:
        return invalid, os.cpu_count() or 1
    return "OMP_NUM_THREADS", 1


def _thread_count(value: str) -> int:
    """A thread variable's value as OpenBLAS reads it (C's atoi: its leading integer, 0
    where there is none)."""
    digits = re.match(r"\s*[+-]?\d+", value)
    return int(digits.group()) if digits else 0


#: The thread-count functions of OpenBLAS builds: the plain names, those of 64-bit-integer
#: builds (numpy's wheels) and scipy's wheels' prefixed ones.
OPENBLAS_PREFIXES = ("openblas_", "scipy_openblas_")
OPENBLAS_SUFFIXES = ("", "64_")


def openblas_pools() -> tuple:
    """The thread pools of the OpenBLAS libraries loaded in this process (Linux: mapped
    files named ``*openblas*.so*`` in /proc/self/maps), each as (path, get_num_threads,
    set_num_threads) ctypes functions, one per pool (libraries that resolve to the same
    functions, as Debian's libblas and liblapack over one libopenblas, count once).
    numpy's and scipy's wheels each bring their own OpenBLAS with its own pool, sized
    from the environment when it is loaded. The map (a millisecond to read) is read again
    when the number of imported modules changes."""
    return _mapped_pools(len(sys.modules))


@functools.lru_cache(maxsize=1)
def _mapped_pools(modules: int) -> tuple:
    """:func:`openblas_pools` with ``modules`` modules imported."""
    try:
        with open("/proc/self/maps", "rb") as maps:
            files = {line.split(None, 5)[-1].strip() for line in maps.read().split(b"\n")
                     if b"openblas" in line.lower()}
    except OSError:
        return ()
    return _pools(frozenset(os.fsdecode(f) for f in files
                            if b"openblas" in os.path.basename(f).lower() and b".so" in f))


@functools.cache
def _pools(paths: frozenset) -> tuple:
    """:func:`openblas_pools` of these mapped files (opened once per set of files)."""
    pools, seen = [], set()
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in itertools.product(OPENBLAS_PREFIXES, OPENBLAS_SUFFIXES):
            get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
            if get is not None and put is not None:
                address = ctypes.cast(get, ctypes.c_void_p).value
                if address not in seen:
                    seen.add(address)
                    get.argtypes, get.restype = [], ctypes.c_int
                    put.argtypes, put.restype = [ctypes.c_int], None
                    pools.append((path, get, put))
                break
    return tuple(pools)


def threaded_pools() -> int:
    """How many BLAS thread pools of this process have more than one thread: of its
    OpenBLAS libraries (:func:`openblas_pools`), read from each; where none is found (MKL,
    not Linux), 2 if the environment asks for more than one thread (:func:`blas_threads`:
    every library's pool may then have them), else 0."""
    pools = openblas_pools()
    if not pools:
        return 2 if blas_threads()[1] > 1 else 0
    return sum(get() > 1 for _, get, _ in pools)


def check_threads(local_ranks: int = 1, cores: int | None = None) -> None:
    """Refuse BLAS threads that oversubscribe the cores: ``local_ranks`` processes on this
    node (MPI ranks) times the BLAS threads of each above the node's ``cores`` (default
    os.cpu_count()) or above the cores this process may run on, and thread variables of
    which none gives a positive count (OpenBLAS would take a thread per core). An NEGF update
    is many small matrix products and LU factorizations, which threads do not speed up
    and which slow down many times when threads wait for a busy core (docs/large.md:
    ranks against threads)."""
    name, threads = blas_threads()
    value = os.environ.get(name, "").strip()
    if value and _thread_count(value) < 1:       # set, and no variable gives a count
        raise RuntimeError(
            f"{name}={value!r} is not a positive number of BLAS threads, and no other of "
            f"{', '.join(THREAD_ENV)} gives one (OpenBLAS then runs one per core, "
            f"{threads}): set {name} to a positive integer, 1 (the default) for NEGF "
            "updates")
    cores = cores or os.cpu_count() or 1
    mine = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    if threads > 1 and (local_ranks * threads > cores or threads > mine):
        raise RuntimeError(
            f"{name}={threads} BLAS threads in each of {local_ranks} process(es) on this "
            f"node oversubscribe its {cores} cores ({mine} for this process): set {name} "
            f"to at most {max(1, min(cores // local_ranks, mine))}; 1 (the default) with "
            "one MPI rank per core is the fastest for NEGF updates")


def node_memory() -> float:
    """Physical memory of this machine (bytes)."""
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def lammps_comm(lmp):
    """LAMMPS's MPI communicator as mpi4py, checking that both use the same MPI library
    and that the BLAS threads of the ranks on each node fit its cores
    (:func:`check_threads`)."""
    nprocs = lmp.extract_setting("world_size")
    try:
        comm = lmp.get_mpi_comm()
    except Exception:                      # mpi4py missing or unusable
        comm = None
    if comm is None:
        if nprocs > 1:
            raise RuntimeError(f"LAMMPS runs on {nprocs} MPI ranks but mpi4py is not usable "
                               "with it: install mpi4py built for LAMMPS's MPI library")
        check_threads()
        return None
    from mpi4py import MPI
    if comm.Get_size() != nprocs:
        raise RuntimeError(
            f"mpi4py and LAMMPS use different MPI libraries: LAMMPS sees {nprocs} ranks, "
            f"mpi4py {comm.Get_size()} ({MPI.Get_library_version().splitlines()[0]})")
    check_threads(node_ranks(comm))
    return comm


def node_ranks(comm) -> int:
    """The MPI ranks of ``comm`` on this node (1 without a communicator)."""
    if comm is None:
        return 1
    from mpi4py import MPI
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    local = node.Get_size()
    node.Free()
    return local


def lammps_comm_or_none(lmp):
    """LAMMPS's communicator as mpi4py if at hand, else None (to abort after an error)."""
    try:
        return lmp.get_mpi_comm()
    except Exception:
        return None
