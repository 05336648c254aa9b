"""Benchmark: MD with the electronic bath against the mean-force-only run of the same deck.

    python benchmarks/bench_bath.py [--ps 5] [--repeat 3] [--V 1.0] [--Te 0] [--configs mean 100 ...]
                                    [--route pip|deck]
    python benchmarks/bench_bath.py --accuracy [--ps 2] [--V 1.0] [--md-tol 1 10]
    python benchmarks/bench_bath.py --sizes [--V 1.0]
    python benchmarks/bench_bath.py --zones [--V 1.0]
    python benchmarks/bench_bath.py --large [--ps 5] [--repeat 3] [--V 1.0]

Runs the test deck tests/in.checks (482 atoms, Langevin at 300 K, recoil forces every 100
steps on the 34-atom filament device) through the pip route, ``lammps-recoil run`` (or,
with ``--route deck``, the deck route: ``lmp -in`` with LAMMPS's PYTHON package), without
the bath and with the full bath (friction, Berry force and noise every step) whose kernels
are recomputed every ``bath_every`` steps (100: at every NEGF update; 1000; 5000).
Configurations run ``--repeat`` times, interleaved, and the fastest run counts (the host
is shared). Times are LAMMPS's "Loop time" of the production per simulated ps; "ratio" is
against the mean-force-only run; "per step" is the bath's cost per MD step outside the
kernels ((Modify - Modify of the mean-force run - kernel seconds) / steps); "kernels" the
mean seconds of one computation of the kernels (the time series' bath_s).

``--accuracy``: the kernels as the MD computes them (on the mean force's partition of the
same update, to the relative tolerance ``--md-tol``, default bathmd.MD_TOL; several values
give a column group each) against a tight integral (tol 1e-3 of this geometry's zero-bias
friction), on the frames of a mean-force-only run of the same deck (300 K, every 200
steps): energies used and the largest deviation of friction, Berry tensor and noise,
relative to the largest element of each.

``--sizes``: one computation of the kernels of every filament atom of filament devices of
34-243 atoms (the default (001) 4x4 and (111) hourglasses of 12 layers), as in MD: on the
mean force's partition (tol 1e-2) of a geometry displaced by 0.05 A rms, to bathmd.MD_TOL:
energies, CPU time (per energy) and the peak memory traced (tracemalloc, in a second
computation) against
bath.kernel_memory's estimate at KERNEL_POINTS energies, and the fitted exponent of the
time per energy against the atoms.

``--zones``: the same on the 878-atom filament device of benchmarks/bench_large.py (whose
whole filament the bath refuses), for the filament atoms within 2, 4 and 6 A of its middle
along z (what ``-var bath_zlo``, ``-var bath_zhi`` choose), next to the mean force's
update of the same geometry; the memory traced in a second computation.

``--large``: that device's deck (benchmarks/bench_large.py, 4014 atoms, the test deck's
Langevin at 300 K) in MD: plain EAM, the mean force every 100 steps, and the full bath on
the filament atoms within 2 A of the middle of the data file's filament with its kernels
every 1000 steps (default ``bath_every``), interleaved, the fastest run of each.
"""
import argparse
import csv
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"mean": ("mean force only", dict(bath="none")),
           "100": ("full bath, kernels every 100 steps", dict(bath="full", bath_every=100)),
           "1000": ("full bath, kernels every 1000 steps (default)",
                    dict(bath="full", bath_every=1000)),
           "5000": ("full bath, kernels every 5000 steps", dict(bath="full", bath_every=5000))}


def times(log: str) -> dict:
    loop = re.findall(r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps", log)[-1]
    modify = re.findall(r"^Modify\s+\|\s+[0-9.eE+-]+\s+\|\s+([0-9.eE+-]+)", log, re.M)[-1]
    return dict(loop=float(loop[0]), steps=int(loop[1]), modify=float(modify))


def run(outdir, name, ps, V, Te, route="pip", **var):
    cmd = ([sys.executable, "-m", "lammps_recoil.cli", "run", "tests/in.checks"]
           if route == "pip" else ["lmp", "-in", "tests/in.checks"])
    var = dict(dict(dump_every=100000), **var)
    for k, v in dict(production_ps=ps, outdir=outdir, name=name, V=V, Te=Te, every=100,
                     thermo_every=1000, overwrite="yes", **var).items():
        cmd += ["-var", k, str(v)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, check=True)
    t = times(out.stdout)
    t["kernels"] = []
    if var.get("recoil") == "no":                   # plain EAM MD: no time series
        return t
    with open(Path(outdir) / f"{name}.recoil.csv") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    t["kernels"] = [float(r["bath_s"]) for r in rows[1:] if float(r.get("bath_s", 0) or 0) > 0]
    t["updates"] = [float(r["negf_s"]) for r in rows[1:]]
    return t


def large(ps, repeat, V):
    """The 878-atom deck: plain EAM, the mean force every 100 steps, and the full bath on
    the filament atoms within 2 A of the filament's middle (kernels every 1000 steps)."""
    import numpy as np
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_large import DECKS, deck_data
    from lammps_recoil.check import read_data
    with tempfile.TemporaryDirectory() as tmp:
        data = deck_data("878", tmp)
        d = read_data(data)
        z = d.positions[d.types == 1, 2]
        mid = 0.5 * (z.min() + z.max())
        zone = dict(bath_zlo=f"{mid - 2:.4f}", bath_zhi=f"{mid + 2:.4f}")
        n_zone = int(np.sum(np.abs(z - mid) <= 2.0))
        configs = {"plain": ("plain EAM", dict(recoil="no")),
                   "mean": ("mean force every 100 steps", dict()),
                   "zone": (f"and full bath on {n_zone} middle atoms, kernels every 1000 "
                            "steps", dict(bath="full", bath_every=1000, **zone))}
        best = {}
        for _ in range(repeat):
            for key, (_, var) in configs.items():
                t = run(tmp, key, ps, V, 0.0, data=data, **var)
                if key not in best or t["loop"] < best[key]["loop"]:
                    best[key] = t
    print(f"Command: python benchmarks/bench_bath.py --large --ps {ps:g} --repeat {repeat} "
          f"--V {V:g}")
    print(f"Date {time.strftime('%Y-%m-%d')}, {platform.machine()}, Python "
          f"{platform.python_version()}, OMP_NUM_THREADS=1, 1 rank, V = {V:g} V, T_e = 0; "
          f"{DECKS['878'][0]} of {int(np.sum(d.types == 1))} atoms in a deck of "
          f"{len(d.ids)} atoms; the fastest of {repeat} interleaved runs\n")
    print("| configuration | s per simulated ps | ratio to plain EAM | ratio to the mean force "
          "| NEGF update, median (s) | kernels, mean (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for key, (label, _) in configs.items():
        t = best[key]
        update = f"{np.median(t['updates']):.3f}" if t.get("updates") else "-"
        kern = f"{np.mean(t['kernels']):.2f}" if t["kernels"] else "-"
        mean = f"{t['loop'] / best['mean']['loop']:.2f}" if key != "plain" else "-"
        print(f"| {label} | {t['loop'] / ps:.2f} | {t['loop'] / best['plain']['loop']:.2f} | "
              f"{mean} | {update} | {kern} |", flush=True)


def accuracy(ps, V, md_tols):
    import numpy as np
    sys.path.insert(0, str(ROOT))
    from lammps_recoil import bath
    from lammps_recoil.analysis import read_dump
    from lammps_recoil.bathmd import MD_TOL
    from lammps_recoil.check import system_from_data
    with tempfile.TemporaryDirectory() as tmp:
        run(tmp, "traj", ps, V, 0.0, bath="none", dump_every=200)
        frames = read_dump(Path(tmp) / "traj.dump")
    system = system_from_data(str(ROOT / "inputs" / "filament.data"))
    md_tols = md_tols or [MD_TOL]
    floor = None
    print(f"Command: python benchmarks/bench_bath.py --accuracy --ps {ps:g} --V {V:g} "
          f"--md-tol {' '.join(f'{t:g}' for t in md_tols)}")
    print(f"Date {time.strftime('%Y-%m-%d')}: kernels at T_e = 0 on the mean force's partition "
          "(tol 1e-2) against tol 1e-3; per MD tolerance: energies, largest deviation of "
          "friction, Berry tensor, noise\n")
    group = " | ".join(f"tol {t:g}: energies | friction | Berry | noise" for t in md_tols)
    print(f"| t (ps) | mean force energies | tight energies | {group} |")
    print("| --- | --- | --- | " + " | ".join(["---"] * 4 * len(md_tols)) + " |")
    for n, fr in enumerate(frames):
        order = np.argsort(fr["id"])
        x = np.column_stack([fr["x"], fr["y"], fr["z"]])[order]
        system.update(x[np.asarray(fr["type"])[order] == 1])
        force = system.forces(V, 0.5, tol=1e-2)
        start = system._partitions.get((0, False, "paper", 1e-2), ())
        tight = bath.electronic_bath(system, V, 0.5, 0.0, tol=1e-3)
        cells = []
        for tol in md_tols:
            md = bath.electronic_bath(system, V, 0.5, 0.0, tol=tol, reference=floor,
                                      start=start, kinks=system._cuts(1e-2))
            floor = md.reference if floor is None else floor
            dev = [np.abs(getattr(md, k) - getattr(tight, k)).max()
                   / np.abs(getattr(tight, k)).max() for k in ("friction", "berry", "noise")]
            cells.append(f"{md.n_energies} | " + " | ".join(f"{d:.1e}" for d in dev))
        print(f"| {0.2 * n:.1f} | {force.n_energies} | {tight.n_energies} | "
              + " | ".join(cells) + " |", flush=True)


def timed_kernels(system, V, start, atoms=None):
    """One computation of the kernels as in MD (on the mean force's partition ``start``,
    to bathmd.MD_TOL, T_e = 0): the result, its CPU seconds, and the peak memory traced
    (tracemalloc) in a second computation (tracing costs time)."""
    import tracemalloc
    from lammps_recoil import bath
    from lammps_recoil.bathmd import MD_TOL
    kernels = lambda: bath.electronic_bath(system, V, 0.5, 0.0, tol=MD_TOL, start=start,
                                           kinks=system._cuts(1e-2), atoms=atoms)
    t0 = time.process_time()
    res = kernels()
    cpu = time.process_time() - t0
    tracemalloc.start()
    kernels()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return res, cpu, peak


def sizes(V):
    import numpy as np
    sys.path.insert(0, str(ROOT))
    from lammps_recoil import bath
    from lammps_recoil.builders import build_filament
    hourglass = lambda nx, ny, neck, base: dict(orientation="111", nx=nx, ny=ny, gap_layers=12,
                                                neck_radius=neck, base_radius=base)
    cases = [("(001) 4x4, 6 layers (default)", dict()),
             ("(111) 6x4, 12 layers, neck 3, base 4.5", hourglass(6, 4, 3.0, 4.5)),
             ("(111) 8x5, 12 layers, neck 4, base 6.5", hourglass(8, 5, 4.0, 6.5)),
             ("(111) 10x6, 12 layers, neck 5, base 8", hourglass(10, 6, 5.0, 8.0))]
    print(f"Command: python benchmarks/bench_bath.py --sizes --V {V:g}")
    print(f"Date {time.strftime('%Y-%m-%d')}, {platform.machine()}, Python "
          f"{platform.python_version()}, OMP_NUM_THREADS=1, 1 rank, V = {V:g} V, T_e = 0\n")
    print("| filament device | atoms | energies | kernels, CPU (s) | ms per energy | "
          "peak memory (MB) | estimate at 180 energies (MB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    atoms, per = [], []
    for label, kw in cases:
        system = build_filament(**kw).recoil_system(device="filament")
        rng = np.random.default_rng(0)
        system.update(system.positions + 0.05 * rng.standard_normal(system.positions.shape))
        system.forces(V, tol=1e-2)
        start = system._partitions.get((0, False, "paper", 1e-2), ())
        res, cpu, peak = timed_kernels(system, V, start)
        atoms.append(system.n_atoms)
        per.append(cpu / res.n_energies)
        print(f"| {label} | {system.n_atoms} | {res.n_energies} | {cpu:.2f} | "
              f"{1e3 * per[-1]:.1f} | {peak / 2**20:.0f} | "
              f"{bath.kernel_memory(system.n_atoms) / 2**20:.0f} |", flush=True)
    slope = np.polyfit(np.log(atoms), np.log(per), 1)[0]
    print(f"\nTime per energy grows as atoms^{slope:.2f}.")


def zones(V):
    import numpy as np
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_large import DECKS
    from lammps_recoil.builders import build_filament
    label, args, device = DECKS["878"]
    system = build_filament(**args).recoil_system(device=device)
    rng = np.random.default_rng(0)
    system.update(system.positions + 0.05 * rng.standard_normal(system.positions.shape))
    t0 = time.process_time()
    system.forces(V, tol=1e-2)
    update = time.process_time() - t0
    start = system._partitions.get((0, False, "paper", 1e-2), ())
    z = system.positions[:, 2]
    middle = 0.5 * (z.min() + z.max())
    print(f"Command: python benchmarks/bench_bath.py --zones --V {V:g}")
    print(f"Date {time.strftime('%Y-%m-%d')}, {platform.machine()}, Python "
          f"{platform.python_version()}, OMP_NUM_THREADS=1, 1 rank, V = {V:g} V, T_e = 0; "
          f"{label} ({system.n_atoms} atoms); its first mean-force update, with the leads' "
          f"Green's functions, {update:.2f} s CPU\n")
    print("| bath atoms | within (A) of the middle | energies | kernels, CPU (s) | "
          "ms per energy | peak memory (MB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for half in (2.0, 4.0, 6.0):
        atoms = np.flatnonzero(np.abs(z - middle) <= half)
        res, cpu, peak = timed_kernels(system, V, start, atoms)
        print(f"| {len(atoms)} | {half:g} | {res.n_energies} | {cpu:.2f} | "
              f"{1e3 * cpu / res.n_energies:.1f} | {peak / 2**20:.0f} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ps", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--V", type=float, default=1.0)
    ap.add_argument("--Te", type=float, default=0.0)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    ap.add_argument("--accuracy", action="store_true")
    ap.add_argument("--md-tol", type=float, nargs="+", default=None)
    ap.add_argument("--sizes", action="store_true")
    ap.add_argument("--zones", action="store_true")
    ap.add_argument("--large", action="store_true")
    ap.add_argument("--route", choices=("pip", "deck"), default="pip")
    args = ap.parse_args()
    if args.zones:
        return zones(args.V)
    if args.large:
        return large(args.ps, args.repeat, args.V)
    if args.accuracy:
        return accuracy(args.ps, args.V, args.md_tol)
    if args.sizes:
        return sizes(args.V)
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for key in args.configs:
                t = run(tmp, key, args.ps, args.V, args.Te, args.route, **CONFIGS[key][1])
                if key not in best or t["loop"] < best[key]["loop"]:
                    best[key] = t
    configs = "" if args.configs == list(CONFIGS) else f" --configs {' '.join(args.configs)}"
    route = "" if args.route == "pip" else f" --route {args.route}"
    print(f"Command: python benchmarks/bench_bath.py --ps {args.ps:g} --repeat {args.repeat} "
          f"--V {args.V:g} --Te {args.Te:g}{configs}{route}")
    print(f"Date {time.strftime('%Y-%m-%d')}, {platform.machine()}, Python "
          f"{platform.python_version()}, OMP_NUM_THREADS=1, 1 rank, V = {args.V:g} V, "
          f"T_e = {args.Te:g} K\n")
    base = best.get("mean")
    print("| configuration | s per simulated ps | ratio | per step (ms) | kernels (s) |")
    print("| --- | --- | --- | --- | --- |")
    for key in args.configs:
        t = best[key]
        ratio = t["loop"] / base["loop"] if base else float("nan")
        step = kern = "-"
        if key != "mean" and base:
            k = sum(t["kernels"])
            step = f"{1e3 * (t['modify'] - base['modify'] - k) / t['steps']:.3f}"
            kern = f"{k / len(t['kernels']):.2f}" if t["kernels"] else "-"
        print(f"| {CONFIGS[key][0]} | {t['loop'] / args.ps:.3f} | {ratio:.2f} | {step} | "
              f"{kern} |")


if __name__ == "__main__":
    sys.exit(main())
