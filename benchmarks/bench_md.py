"""Benchmark: MD wall time per simulated ps, plain EAM vs recoil MD, 1 and 2 MPI ranks.

    python benchmarks/bench_md.py [--ps 2] [--repeat 3] [--tol 1e-2]   # Markdown table
    python benchmarks/bench_md.py --data big.data --configs plain 100 10  # another system

Runs the test deck tests/in.checks (the default deck's system and coupling: 482 atoms,
Langevin at 300 K; NEGF device the 34 filament atoms, or all 226 mobile atoms with
``device mobile``) through the pip route, `lammps-recoil run`: no minimization and no
warm-up, only the timed production. Each
configuration runs ``--repeat`` times, interleaved with the others, and the fastest run
counts (the machine is shared: the minimum is the least disturbed measurement). Times are
LAMMPS's "Loop time" of the production run; ratios are against plain EAM MD at the same
rank count, measured in the same invocation. "update" is the wall time of one recoil update
(gathering the atoms, NEGF forces, G(E_F), outputs) from the run's time series: the mean
(which includes the first updates, before the energy partition settles) and the median
(the steady state of a long run).

The protocol configurations sweep the bias with a triangle (a 10 ps cycle: the window,
the energy partition and the leads' Green's functions follow the bias at every update),
alone and under a current compliance (extra solves at the updates whose current would
exceed it); the constant-bias configurations run at V = 1 V.

``--data`` runs the same deck on another data file (``lammps-recoil build-filament``, types
as in the default one; (001) electrodes unless ``--lattice 111``), for instance wider and
thicker electrodes around the same filament: the NEGF update does not grow with the
electrodes, the EAM work does. ``--leads infinite`` runs every configuration between
laterally infinite leads (their Green's functions are zone sums, computed once per
energy: a protocol's moving window computes new ones at every update). ``--configs``
picks configurations (plain, 100, 10, mobile, triangle, compliance).

The host is shared, so the EAM work itself (LAMMPS's "Pair" time, the same in every
configuration) runs faster or slower from one run to the next. The "within the run"
ratio removes that: LAMMPS's timing breakdown puts the recoil callbacks in "Modify", so
a run's recoil cost is its Modify time minus the plain run's (per step), and the ratio is
Loop / (Loop - recoil cost) of that one run - the slowdown the callbacks caused under the
host conditions of that run (it leaves out any indirect effect of the callbacks on the
EAM steps, such as evicted caches; the wall-time ratio includes it).
"""
import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lammps_recoil.analysis import read_series

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
CONFIGS = {  # name: (label, deck variables)
    "plain": ("plain EAM", dict(recoil="no")),
    "100": ("recoil every 100 steps", dict(every=100)),
    "10": ("recoil every 10 steps", dict(every=10)),
    "mobile": ("recoil every 100 steps, device mobile", dict(every=100, device="mobile")),
    "triangle": ("recoil every 100 steps, triangle 0 -> 1 -> -1 -> 0 V at 0.4 V/ps",
                 dict(every=100, protocol="triangle", V_min=-1, V_max=1, rate=0.4,
                      cycles=100)),
    "compliance": ("the same triangle under a 150 uA compliance",
                   dict(every=100, protocol="triangle", V_min=-1, V_max=1, rate=0.4,
                        cycles=100, compliance=150)),
}


def production_time(log: str) -> dict:
    """Loop time and the Pair and Modify times (average over ranks) of the last run."""
    loops = re.findall(r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps", log)
    section = lambda name: float(re.findall(rf"^{name}\s+\|\s+[0-9.eE+-]+\s+\|\s+([0-9.eE+-]+)",
                                            log, re.M)[-1])
    return dict(loop=float(loops[-1][0]), pair=section("Pair"), modify=section("Modify"))


def run(outdir, name, ranks, ps, tol, **var):
    cmd = [sys.executable, "-m", "lammps_recoil.cli", "run", "tests/in.checks"]
    for k, v in dict(production_ps=ps, outdir=outdir, name=name,
                     thermo_every=1000, dump_every=100000, tol=tol, overwrite="yes",
                     **var).items():
        cmd += ["-var", k, str(v)]
    if ranks > 1:
        cmd = [str(MPIEXEC), "-n", str(ranks)] + cmd
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, check=True)
    update = points = None
    if var.get("recoil") != "no":
        series = read_series(Path(outdir) / f"{name}.recoil.csv")
        times = series["negf_s"][1:]                      # the first update is at setup
        update = (float(times.mean()), float(np.median(times)))
        points = float(series["n_energies"][1:].mean())
    return {k: v / ps for k, v in production_time(out.stdout).items()}, update, points


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ps", type=float, default=2.0, help="timed production (ps)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    ap.add_argument("--tol", type=float, default=1e-2, help="NEGF energy-integral tolerance")
    ap.add_argument("--data", help="LAMMPS data file instead of the default deck's")
    ap.add_argument("--lattice", default="001", choices=("001", "111"))
    ap.add_argument("--leads", default="periodic", choices=("periodic", "infinite"))
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = ap.parse_args()
    if "plain" not in args.configs:
        ap.error("the configurations need plain EAM to compare with")
    extra = {} if args.data is None else dict(data=os.path.abspath(args.data),
                                              lattice=args.lattice)
    if args.leads != "periodic":
        extra["leads"] = args.leads
    command = f"--ps {args.ps:g} --repeat {args.repeat} --tol {args.tol:g}" + (
        f" --data {args.data} --lattice {args.lattice}" if args.data else "") + (
        f" --leads {args.leads}" if args.leads != "periodic" else "") + (
        f" --configs {' '.join(args.configs)}" if args.configs != list(CONFIGS) else "")
    print(f"# python benchmarks/bench_md.py {command}\n# "
          f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, python {sys.version.split()[0]}\n")
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for ranks in (1, 2):
                for name in args.configs:
                    label, var = CONFIGS[name]
                    res = run(tmp, f"{name}_{ranks}", ranks, args.ps, args.tol, **var, **extra)
                    key = (ranks, label)
                    if key not in best or res[0]["loop"] < best[key][0]["loop"]:
                        best[key] = res
    print("| ranks | MD | wall s per simulated ps | EAM (Pair) s per ps | ratio to plain EAM | "
          "ratio within the run | update, mean / median (ms) | energy points |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for (ranks, label), (t, update, points) in best.items():
        plain = best[(ranks, "plain EAM")][0]
        within = t["loop"] / (t["loop"] - (t["modify"] - plain["modify"]))
        extra = ("- | -" if update is None else
                 f"{1e3 * update[0]:.1f} / {1e3 * update[1]:.1f} | {points:.0f}")
        print(f"| {ranks} | {label} | {t['loop']:.3f} | {t['pair']:.3f} | "
              f"{t['loop'] / plain['loop']:.2f} | {within:.2f} | {extra} |")


if __name__ == "__main__":
    main()
