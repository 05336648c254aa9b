"""Benchmark: instruction counts of one recoil update (callgrind), by library and operation.

    python benchmarks/bench_profile.py [--updates 20] [--settle 10] [--device filament]
    python benchmarks/bench_profile.py --ranks 1 2 [--updates 10] [--device mobile]

Wall times on a shared machine move by 10-30% from run to run; instruction counts do not
(the same code and inputs give the same count to 0.1%, whatever the other core is doing).
This replays MD updates of the default deck (as ``bench_ranks.py``: 2 ps warm-up, 10 ps at
1 V, a dump at every recoil update; V = 1 V, tol = 1e-2) under valgrind's callgrind, with
the instrumentation switched on only around ``--updates`` updates (system.update and
system.forces) after ``--settle`` updates that settle the energy partition and fill the
lead caches.
It prints the instructions per update and where they go: by library (self cost: the
Python interpreter, numpy, OpenBLAS/LAPACK, scipy, libc) and by numpy operation
(inclusive cost of the LU solves, matrix products, fancy indexing, einsum, KD-tree
searches). Needs valgrind (Debian package ``valgrind``). OMP_NUM_THREADS=1.

With ``--ranks``, the replay runs on each number of MPI ranks (energy points shared, as in
MD; mpiexec next to the Python executable, valgrind on every rank) and the table gives the
instructions per update of each rank outside MPI calls (the instrumentation is switched
off while a rank is inside a collective, where it waits for the others, spinning): the
division of the work among the ranks, which the host's load does not move.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

#: Self cost by shared object: (label, pattern of the object's path).
LIBRARIES = [("Python interpreter", r"libpython"), ("OpenBLAS / LAPACK", r"openblas"),
             ("numpy", r"numpy/(core|linalg)"), ("scipy", r"scipy"),
             ("libc (memcpy, memset, malloc)", r"libc\.so|libm\.so")]
#: Inclusive cost of numpy entry points: (label, function name).
OPERATIONS = [("LU solves (np.linalg.solve, zgesv)", "void solve<npy_cdouble>"),
              ("sparse LU factorizations (scipy splu)", "newSuperLUObject"),
              ("sparse LU triangular solves", "SuperLU_solve"),
              ("complex matrix products (@)", "CDOUBLE_matmul"),
              ("real matrix products (@)", "DOUBLE_matmul"),
              ("fancy indexing (gather)", "array_subscript"),
              ("take (gather)", "PyArray_TakeFrom"),
              ("fancy indexing (scatter)", "array_assign_subscript"),
              ("einsum", "array_einsum"),
              ("KD-tree searches", "void traverse<")]


_counting = False      # the instrumentation is on


def _switch(on: bool):
    global _counting
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   check=True, capture_output=True)
    _counting = on


class Uncounted:
    """An mpi4py communicator whose collectives are not counted (instrumentation off)."""

    def __init__(self, comm):
        self.comm = comm

    def Get_size(self):
        return self.comm.Get_size()

    def Get_rank(self):
        return self.comm.Get_rank()

    def allgather(self, value):
        counting = _counting
        if counting:
            _switch(False)
        out = self.comm.allgather(value)
        if counting:
            _switch(True)
        return out


def child(dump, settle, updates, device, mpi):
    """Replay under callgrind: instrumentation on around ``updates`` updates only."""
    from bench_negf import replay
    comm = None
    if mpi:
        from mpi4py import MPI
        comm = Uncounted(MPI.COMM_WORLD) if MPI.COMM_WORLD.Get_size() > 1 else None
    system, xyz, ids = replay(dump, n=settle + updates, device=device, comm=comm)
    for x in xyz[:settle]:
        system.update(x, ids)
        system.forces(1.0, tol=1e-2)
    points = 0
    _switch(True)
    for x in xyz[settle:]:
        system.update(x, ids)
        points += system.forces(1.0, tol=1e-2).n_energies
    _switch(False)
    if comm is None or comm.Get_rank() == 0:
        print(f"POINTS {points} ATOMS {system.n_atoms}")


def callgrind(args, dump, out, ranks=None):
    """Run the child under valgrind (on ``ranks`` MPI ranks, or without MPI); returns
    (energy points, device atoms) from its output."""
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
           f"--callgrind-out-file={out}", sys.executable, __file__, "--device", args.device,
           "--settle", str(args.settle), "--updates", str(args.updates), "--child", dump]
    if ranks is not None:
        cmd = [str(Path(sys.executable).parent / "mpiexec"), "-n", str(ranks)] + cmd + ["--mpi"]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    return tuple(map(int, re.search(r"POINTS (\d+) ATOMS (\d+)", run.stdout).groups()))


def instructions(path) -> int:
    """Instructions recorded in a callgrind output file."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", path], capture_output=True,
                         text=True, check=True).stdout
    return int(re.search(r"([\d,]+) \([ \d.]+%\)\s+PROGRAM TOTALS", out).group(1)
               .replace(",", ""))


def ranks_table(args, dump, tmp):
    """Instructions per update of each rank, for each number of ranks."""
    print("| ranks | million instructions per update, each rank (outside MPI calls) | "
          "busiest rank / 1 rank |")
    print("| --- | --- | --- |")
    one = None
    for n in args.ranks:
        out = os.path.join(tmp, f"ranks{n}.%p.out")
        callgrind(args, dump, out, ranks=n)
        counts = [instructions(f) / args.updates / 1e6
                  for f in sorted(Path(tmp).glob(f"ranks{n}.*.out"))]
        one = one or (max(counts) if n == 1 else None)
        ratio = f"{max(counts) / one:.3f}" if one else "-"
        print(f"| {n} | {', '.join(f'{c:.2f}' for c in counts)} | {ratio} |", flush=True)
def annotate(path, inclusive):
    """{(function, object): Ir} from callgrind_annotate."""
    out = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}",
                          "--threshold=100", path], capture_output=True, text=True,
                         check=True).stdout
    cost = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*?)(?: \[(.*)\])?$", line)
        if m and "PROGRAM TOTALS" not in line:
            cost[(m.group(2), m.group(3) or "")] = int(m.group(1).replace(",", ""))
    return cost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=20, help="updates counted")
    ap.add_argument("--settle", type=int, default=10, help="updates replayed before")
    ap.add_argument("--device", default="filament", choices=("filament", "mobile"))
    ap.add_argument("--ranks", type=int, nargs="+", help="MPI rank counts: per-rank table")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--mpi", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.settle, args.updates, args.device, args.mpi)
    ranks = f" --ranks {' '.join(map(str, args.ranks))}" if args.ranks else ""
    print(f"# python benchmarks/bench_profile.py --updates {args.updates} --settle "
          f"{args.settle} --device {args.device}{ranks}\n# {time.strftime('%Y-%m-%d')}, "
          f"valgrind --tool=callgrind, python {sys.version.split()[0]}\n")
    from bench_negf import md_dump
    with tempfile.TemporaryDirectory() as tmp:
        dump, out = md_dump(tmp), os.path.join(tmp, "callgrind.out")
        if args.ranks:
            return ranks_table(args, dump, tmp)
        points, atoms = callgrind(args, dump, out)
        own, incl = annotate(out, False), annotate(out, True)
    total = sum(own.values())
    per = lambda ir: f"{ir / args.updates / 1e6:.2f}"
    print(f"{args.updates} updates of the {atoms}-atom {args.device} device, "
          f"{points / args.updates:.1f} energy points per update: **{per(total)} million "
          f"instructions per update** ({total / points / 1e3:.0f} thousand per energy "
          "point, geometry included)\n")
    print("| library (self cost) | million instructions per update | share |")
    print("| --- | --- | --- |")
    by_lib = defaultdict(int)
    for (_, obj), ir in own.items():
        label = next((name for name, pat in LIBRARIES if re.search(pat, obj)), "other")
        by_lib[label] += ir
    for name in [n for n, _ in LIBRARIES] + ["other"]:
        print(f"| {name} | {per(by_lib[name])} | {100 * by_lib[name] / total:.0f}% |")
    print("\n| operation (inclusive cost) | million instructions per update | share |")
    print("| --- | --- | --- |")
    for name, fn in OPERATIONS:
        # the outermost frame of the function (recursive frames carry a "'2" suffix)
        ir = max((v for (f, _), v in incl.items()
                  if re.search(r"(^|:)" + re.escape(fn), f) and "'" not in f), default=0)
        if ir:
            print(f"| {name} | {per(ir)} | {100 * ir / total:.0f}% |")


if __name__ == "__main__":
    main()
