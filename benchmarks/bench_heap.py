"""Benchmark: page faults and system time of replayed recoil updates, with and without
``parallel.keep_heap`` (glibc's malloc thresholds fixed, as the LAMMPS coupling does).

    python benchmarks/bench_heap.py [--device mobile] [--updates 25] [--settle 5] [--repeat 2]

Runs the default deck (2 ps warm-up, 10 ps at 1 V, a dump at every recoil update; as
``bench_ranks.py``), then replays the last ``--settle`` + ``--updates`` updates of the
NEGF device (system.update and system.forces, V = 1 V, tol = 1e-2) in a fresh process for
each setting, alternating, and prints per update: minor page faults and system time
(``getrusage``), and the median and mean wall time of the counted updates.
OMP_NUM_THREADS=1.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from bench_negf import md_dump, replay  # noqa: E402


def child(dump, device, settle, updates, keep):
    """Replay in this process; print [faults, system s, wall times] of the counted updates."""
    from lammps_recoil.parallel import keep_heap
    if keep and not keep_heap():
        sys.exit("keep_heap did not apply (not glibc, or MALLOC_* set)")
    system, xyz, ids = replay(dump, n=settle + updates, device=device)
    for x in xyz[:settle]:
        system.update(x, ids)
        system.forces(1.0, tol=1e-2)
    r0, times = resource.getrusage(resource.RUSAGE_SELF), []
    for x in xyz[settle:]:
        t0 = time.perf_counter()
        system.update(x, ids)
        system.forces(1.0, tol=1e-2)
        times.append(time.perf_counter() - t0)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps([r1.ru_minflt - r0.ru_minflt, r1.ru_stime - r0.ru_stime, times]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="mobile", choices=("filament", "mobile"))
    ap.add_argument("--updates", type=int, default=25)
    ap.add_argument("--settle", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=2, help="fresh processes per setting")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], args.device, args.settle, args.updates,
                     args.child[1] == "keep")
    print(f"# python benchmarks/bench_heap.py --device {args.device} --updates {args.updates} "
          f"--settle {args.settle} --repeat {args.repeat}\n# {time.strftime('%Y-%m-%d')}, "
          f"{platform.processor() or platform.machine()}, python {sys.version.split()[0]}\n")
    print("| malloc | run | page faults per update | system time per update (ms) | update, "
          "median / mean (ms) |")
    print("| --- | --- | --- | --- | --- |")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    with tempfile.TemporaryDirectory() as tmp:
        dump = md_dump(tmp)
        for run in range(args.repeat):
            for mode, label in (("default", "glibc defaults"), ("keep", "keep_heap")):
                cmd = [sys.executable, __file__, "--device", args.device, "--updates",
                       str(args.updates), "--settle", str(args.settle), "--child", dump, mode]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env,
                                     cwd=os.path.dirname(os.path.abspath(__file__)))
                faults, stime, times = json.loads(out.stdout.strip().splitlines()[-1])
                n = len(times)
                print(f"| {label} | {run + 1} | {faults / n:.0f} | {1e3 * stime / n:.1f} | "
                      f"{1e3 * np.median(times):.1f} / {1e3 * np.mean(times):.1f} |", flush=True)


if __name__ == "__main__":
    main()
