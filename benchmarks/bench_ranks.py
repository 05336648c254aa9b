"""Benchmark: one recoil update on 1 and 2 MPI ranks, replayed from an MD run.

    python benchmarks/bench_ranks.py [--ranks 1 2] [--repeat 5] [--device mobile]

Runs the default deck (2 ps warm-up, 10 ps at 1 V, a dump at every recoil update), then
replays its last 80 updates of the filament NEGF device (or, with ``--device mobile``, of
all 226 mobile atoms; V = 1 V, the deck's tol = 1e-2) on each rank count through
mpiexec, with the heap kept between updates as in MD (``parallel.keep_heap``), and prints
a Markdown table: the energy points are shared among the ranks, and an update is the wall
time of ``system.update`` and ``system.forces`` behind a barrier, the
MD coupling's LAMMPS exchange left out. Each rank count replays the updates ``--repeat``
times from scratch (energy partitions and lead caches cleared), and the fastest time of
each update counts (the machine is shared); the first 5 updates, while the partition
settles, are left out of the median and mean. OMP_NUM_THREADS=1.

The machine's two cores are not always equally fast (a virtual machine on a shared host):
before and after the replays every rank runs the same fixed work at the same time (the
"core check"); unequal times there mean that a rank count's ratio measures the host.
Equal times do not prove the host idle: a load shared evenly by both cores slows both
alike (times well above an idle run's mean the same), and the ratio then measures it too.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from bench_negf import md_dump, replay  # noqa: E402

MPIEXEC = Path(sys.executable).parent / "mpiexec"
SETTLE = 5


def core_check(comm):
    """Wall time (s) of the same fixed work (a Python loop and small numpy products, about
    0.1 s) on every rank at once: equal times mean that the ranks' cores were equally fast."""
    from mpi4py import MPI
    a = np.random.default_rng(0).normal(size=(40, 40))
    comm.Barrier()
    t0 = MPI.Wtime()
    total = 0
    for i in range(200000):
        total += i
    for _ in range(2000):
        a = np.tanh(a @ a)
    return comm.gather(MPI.Wtime() - t0)


def child(dump, repeat, device):
    """Replay on the ranks of COMM_WORLD; rank 0 prints the fastest time of each update
    and the core check before and after the replays."""
    from mpi4py import MPI
    from lammps_recoil.parallel import keep_heap
    keep_heap()
    comm = MPI.COMM_WORLD
    checks = [core_check(comm)]
    system, xyz, ids = replay(dump, n=80, comm=comm if comm.Get_size() > 1 else None,
                              device=device)
    best = np.full(len(xyz), np.inf)
    for _ in range(repeat):
        system._partitions.clear()
        for lead in system.leads:
            lead._caches.clear()
        for k, x in enumerate(xyz):
            comm.Barrier()
            t0 = MPI.Wtime()
            system.update(x, ids)
            system.forces(1.0, tol=1e-2)
            best[k] = min(best[k], MPI.Wtime() - t0)
    checks.append(core_check(comm))
    if comm.Get_rank() == 0:
        print(json.dumps([best.tolist(), checks]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--device", default="filament", choices=("filament", "mobile"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.repeat, args.device)
    print(f"# python benchmarks/bench_ranks.py --ranks {' '.join(map(str, args.ranks))} "
          f"--repeat {args.repeat} --device {args.device}\n# {time.strftime('%Y-%m-%d')}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {sys.version.split()[0]}\n")
    print("| ranks | update, median (ms) | update, mean (ms) | median / 1 rank | core check "
          "before / after, per rank (ms) |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        dump = md_dump(tmp)
        base = None
        for n in args.ranks:
            cmd = [sys.executable, __file__, "--child", dump, "--repeat", str(args.repeat),
                   "--device", args.device]
            if n > 1:
                cmd = [str(MPIEXEC), "-n", str(n)] + cmd
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            times, checks = json.loads(out.stdout.strip().splitlines()[-1])
            times = np.array(times)[SETTLE:]
            median = float(np.median(times))
            base = base or median
            cores = " / ".join(", ".join(f"{1e3 * t:.0f}" for t in c) for c in checks)
            print(f"| {n} | {1e3 * median:.2f} | {1e3 * times.mean():.2f} | "
                  f"{median / base:.2f} | {cores} |", flush=True)


if __name__ == "__main__":
    main()
